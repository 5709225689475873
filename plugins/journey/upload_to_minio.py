"""upload_to_minio: store the clean tables in the raw bucket, then register the uploads with the platform (which
loads the catalog from its object, as this upload's catalog snapshot). seed_data has already put the rejected
rows in quarantine.

Every object carries the SHA-256 of its bytes in its metadata. The GX suite reads each object back and proves
same rows and same checksums, and that clean + quarantined rows account for every input row with no more than
``max_bad_share`` set aside. The same suite checks the upload for drift against the tenant's previous upload
(plugins/journey/drift.py); what it found goes to ``drift.json`` in the run's report directory, for the report.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any

import pandas as pd

from include.config import QUARANTINE_BUCKET, RAW_BUCKET
from plugins.journey.run import JourneyRun
from plugins.journey.seed_data import clean_path, quarantine_key
from plugins.journey.seed_data import rejected_rows as seed_rejected_rows
from plugins.journey.tables import TABLES, read_table


def raw_key(run: JourneyRun, name: str) -> str:
    return f"{run.object_prefix}{name}.csv"


def _rows(path: str) -> int:
    return len(pd.read_csv(path, dtype=str, keep_default_na=False))


def accounting_row(
    *, name: str, clean: int, rejected: int, read_back: int, quarantined: int, max_bad_share: float
) -> dict[str, Any]:
    """One table's row accounting: the input rows (seed_data's clean plus rejected) against what the raw bucket
    gives back and what quarantine holds; the suite requires good + quarantined == total, and the share set
    aside no more than ``max_bad_share``."""
    total = clean + rejected
    return {
        "name": name,
        "rows_total": total,
        "rows_good": read_back,
        "rows_quarantined": quarantined,
        "bad_share": quarantined / total if total else 0.0,
        "max_bad_share": max_bad_share,
    }


def run(journey: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    seed = done["seed_data"]
    from plugins.hooks.minio import MinioHook
    from plugins.hooks.recsys_api import RecsysApiHook

    minio, api = MinioHook(), RecsysApiHook(run_key=journey.run_key)
    objects = {}
    for name in TABLES:
        stored = minio.put_file(bucket=RAW_BUCKET, key=raw_key(journey, name), path=clean_path(journey, name))
        objects[name] = {"key": stored.key, "sha256": stored.sha256, "bytes": stored.size, "rows": seed["counts"][name]}
    # Items first: the platform loads the catalog from the object it is told about.
    uploads = {}
    for name in TABLES:
        registered = api.register_upload(
            seed["tenant_id"],
            kind=name,
            bucket=RAW_BUCKET,
            object_key=objects[name]["key"],
            rows=objects[name]["rows"],
            sha256=objects[name]["sha256"],
            source=journey.run_key,
        )
        uploads[name] = registered["upload_id"]
    # uploads["items"] names this run's catalog snapshot: training, deployment and queries use it, not the
    # union of every catalog the tenant ever sent.
    return {"objects": objects, "quarantined": seed["quarantined"], "uploads": uploads}


def validate(run: JourneyRun, done: dict[str, Any]):
    seed = done["seed_data"]
    from include.checksums import sha256_file
    from plugins.hooks.minio import MinioHook
    from plugins.validation import observed_values, validate_stage

    minio = MinioHook()
    objects, accounting = [], []
    read_back: dict[str, pd.DataFrame] = {}
    max_bad_share = float(run.params["max_bad_share"])
    for name in TABLES:
        back = minio.read_back(bucket=RAW_BUCKET, key=raw_key(run, name))
        frame = read_table(back.data, name)
        read_back[name] = frame
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
        if name in seed["quarantined"]:
            q = minio.read_back(bucket=QUARANTINE_BUCKET, key=quarantine_key(run, name))
            quarantined = len(pd.read_csv(io.BytesIO(q.data), dtype=str, keep_default_na=False))
        accounting.append(
            accounting_row(
                name=name,
                clean=seed["counts"][name],
                rejected=seed["rejected"][name],
                read_back=len(frame),
                quarantined=quarantined,
                max_bad_share=max_bad_share,
            )
        )
    drift_batches, parameters, drift_section = _drift(run, read_back, minio=minio)
    frames = {
        "objects": pd.DataFrame(objects),
        "rows_accounting": pd.DataFrame(accounting),
        "read_back": read_back["interactions"],
        **drift_batches,
    }
    result = validate_stage(
        "upload_to_minio", frames, parameters=parameters, results_dir=run.gx_dir, run_name=run.run_id
    )
    drift_section["divergence"] = {
        found["column"]: found["observed_value"]
        for found in observed_values(result, batch="drift_interactions")
        if found["type"] == "expect_column_kl_divergence_to_be_less_than"
    }
    drift_section["success"] = not any(f["batch"].startswith("drift") for f in result.failed_expectations)
    with open(drift_path(run), "w") as fh:
        json.dump(drift_section, fh, indent=2, default=str)
    return result


def drift_path(run: JourneyRun) -> str:
    return os.path.join(run.report_dir, "drift.json")


def _drift(run: JourneyRun, now: dict[str, pd.DataFrame], *, minio: Any) -> tuple[dict, dict, dict[str, Any]]:
    """The drift batches against the tenant's previous upload, read back from the raw bucket."""
    from minio.error import S3Error

    from plugins.hooks.history import HistoryHook
    from plugins.journey import drift

    found = HistoryHook().previous_upload(dag_id=run.dag_id, tenant=run.tenant, before=run.window_start.date())
    previous, note = None, None
    if found is None:
        note = f"first upload of tenant {run.tenant}: no previous upload to compare with (no baseline)"
    else:
        try:
            previous = {
                name: read_table(minio.read_back(bucket=RAW_BUCKET, key=found["checksums"][name]["key"]).data, name)
                for name in TABLES
            }
        except S3Error as exc:
            note = f"the previous upload's objects ({found['logical_date']}) are gone ({exc.code}): only its profile compared"
    profile = ((found or {}).get("upload") or {}).get("profile")
    batches, parameters, section = drift.batches(now, previous, previous_profile=profile, params=run.params)
    section["baseline"] = {"logical_date": str(found["logical_date"]), "run_id": found["run_id"]} if found else None
    section["note"] = note
    return batches, parameters, section


def rejected_rows(done: dict[str, Any]) -> list[str]:
    """The rows seed_data rejected are what this stage's bad-share check counts: its failure names their reasons."""
    return seed_rejected_rows(done)
