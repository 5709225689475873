"""upload_to_minio: store the clean tables in the raw bucket and rejected rows in quarantine, then register
the uploads with the platform (which loads the catalog from its object).

Every object carries the SHA-256 of its bytes in its metadata. The GX suite reads each object back and proves
same rows and same checksums, and that clean + quarantined rows account for every input row with no more than
``max_bad_share`` set aside.
"""

from __future__ import annotations

import io
from typing import Any

import pandas as pd

from include.config import QUARANTINE_BUCKET, RAW_BUCKET
from plugins.journey.run import JourneyRun
from plugins.journey.seed_data import clean_path, rejected_path
from plugins.journey.tables import TABLES, read_table


def raw_key(run: JourneyRun, name: str) -> str:
    return f"{run.object_prefix}{name}.csv"


def quarantine_key(run: JourneyRun, name: str) -> str:
    return f"{run.object_prefix}{name}.quarantine.csv"


def _rows(path: str) -> int:
    return len(pd.read_csv(path, dtype=str, keep_default_na=False))


def run(run: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed = done["seed_data"]
    from plugins.hooks.minio import MinioHook
    from plugins.hooks.recsys_api import RecsysApiHook

    minio, api = MinioHook(), RecsysApiHook(run_key=run.run_key)
    objects, quarantined = {}, {}
    for name in TABLES:
        stored = minio.put_file(bucket=RAW_BUCKET, key=raw_key(run, name), path=clean_path(run, name))
        objects[name] = {"key": stored.key, "sha256": stored.sha256, "bytes": stored.size, "rows": seed["counts"][name]}
        bad_rows = seed["rejected"][name]
        if bad_rows:
            q = minio.put_file(bucket=QUARANTINE_BUCKET, key=quarantine_key(run, name), path=rejected_path(run, name))
            quarantined[name] = {"key": q.key, "sha256": q.sha256, "rows": bad_rows}
        else:
            # A rerun with clean input must not leave an earlier attempt's quarantine object behind.
            minio.delete_prefix(bucket=QUARANTINE_BUCKET, prefix=quarantine_key(run, name))
    # Items first: the platform loads the catalog from the object it is told about.
    for name in TABLES:
        api.register_upload(
            seed["tenant_id"],
            kind=name,
            bucket=RAW_BUCKET,
            object_key=objects[name]["key"],
            rows=objects[name]["rows"],
            sha256=objects[name]["sha256"],
            source=run.run_key,
        )
    return {"objects": objects, "quarantined": quarantined}


def validate(run: JourneyRun, done: dict[str, Any]):
    seed, upload = done["seed_data"], done["upload_to_minio"]
    from plugins.hooks.minio import MinioHook, sha256_file
    from plugins.validation import validate_stage

    minio = MinioHook()
    objects, accounting = [], []
    read_back_interactions = None
    max_bad_share = float(run.params["max_bad_share"])
    for name in TABLES:
        back = minio.read_back(bucket=RAW_BUCKET, key=raw_key(run, name))
        frame = read_table(back.data, name)
        if name == "interactions":
            read_back_interactions = frame
        objects.append(
            {
                "name": name,
                "key": raw_key(run, name),
                "rows_local": _rows(clean_path(run, name)),
                "rows_read_back": len(frame),
                "sha256_local": sha256_file(clean_path(run, name)),
                "sha256_metadata": back.metadata_sha256,
                "sha256_read_back": back.sha256,
                "bytes": len(back.data),
            }
        )
        quarantined = 0
        if name in upload["quarantined"]:
            q = minio.read_back(bucket=QUARANTINE_BUCKET, key=quarantine_key(run, name))
            quarantined = len(pd.read_csv(io.BytesIO(q.data), dtype=str, keep_default_na=False))
        total = seed["counts"][name] + seed["rejected"][name]
        accounting.append(
            {
                "name": name,
                "rows_total": total,
                "rows_good": len(frame),
                "rows_quarantined": quarantined,
                "bad_share": quarantined / total if total else 0.0,
                "max_bad_share": max_bad_share,
            }
        )
    frames = {
        "objects": pd.DataFrame(objects),
        "rows_accounting": pd.DataFrame(accounting),
        "read_back": read_back_interactions,
    }
    return validate_stage("upload_to_minio", frames, parameters={}, results_dir=run.gx_dir, run_name=run.run_id)
