"""Data uploads: an object in the store registered with its checksum and row count; an items CSV becomes the catalog."""

from __future__ import annotations

import csv
import hashlib
import io
import uuid
from typing import Literal

from fastapi import APIRouter, Request
from psycopg2.extras import execute_values
from pydantic import BaseModel, Field

from include import config
from include.checksums import sha256_bytes
from include.recsys import audit, storage
from include.recsys.api.admin.common import ACTOR, NO_NUL, Source
from include.recsys.api.admin.tenants import find_tenant
from include.recsys.api.errors import ApiError
from include.recsys.api.web import platform, request_id, run_source
from include.recsys.contract import schema

router = APIRouter()
_CHUNK = 1 << 20


class UploadIn(BaseModel):
    kind: Literal["items", "users", "interactions"]
    bucket: str = Field(min_length=3, max_length=63)
    object_key: str = Field(min_length=1, max_length=1024, pattern=NO_NUL)
    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    source: Source


class _HashingReader(io.RawIOBase):
    """A binary stream that hashes what is read through it."""

    def __init__(self, raw) -> None:
        self.raw, self.digest = raw, hashlib.sha256()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        chunk = self.raw.read(len(buffer))
        buffer[: len(chunk)] = chunk
        self.digest.update(chunk)
        return len(chunk)

    def drain(self) -> str:
        """Hash whatever is left unread; the whole object's SHA-256."""
        while chunk := self.raw.read(_CHUNK):
            self.digest.update(chunk)
        return self.digest.hexdigest()


def _checked(body: UploadIn, actual_sha256: str, rows: int | None, bad_csv: Exception | None) -> None:
    """Checksum first (it pins the content), then the CSV's readability and row count."""
    where = f"s3://{body.bucket}/{body.object_key}"
    if actual_sha256 != body.sha256:
        raise ApiError(
            422, "checksum_mismatch", f"{where}: registered sha256 {body.sha256}, content has {actual_sha256}"
        )
    if bad_csv is not None:
        raise ApiError(422, "invalid_object", f"{where} is not UTF-8 CSV: {bad_csv}")
    if rows is not None and rows != body.rows:
        raise ApiError(422, "row_count_mismatch", f"{where}: registered {body.rows} rows, object has {rows}")


def _check_stream(stream, body: UploadIn) -> None:
    """Checksum and row count of a users or interactions object, read as it streams: held whole, as text and
    as one dict per row, a 10M-row interactions CSV took 6.7 GB of the platform's memory. Rows are counted
    as csv.DictReader counts them (records, not lines; blank lines skipped; the header not counted)."""
    hashing = _HashingReader(stream)
    rows, bad_csv = None, None
    if body.object_key.endswith(".csv"):  # other formats are the tenant's business: the checksum pins them
        text = io.TextIOWrapper(io.BufferedReader(hashing, _CHUNK), encoding="utf-8-sig", newline="")
        try:
            records = csv.reader(text)
            next(records, None)  # the header, as DictReader takes it: the first line, whatever it holds
            rows = sum(1 for record in records if record)
        except (UnicodeDecodeError, csv.Error) as exc:
            bad_csv = exc
    _checked(body, hashing.drain(), rows, bad_csv)


def _check_object(data: bytes, body: UploadIn) -> list[dict]:
    """Verifies an items CSV's checksum and row count; returns the parsed catalog."""
    rows, bad_csv = [], None
    try:
        rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"))))
    except (UnicodeDecodeError, csv.Error) as exc:
        bad_csv = exc
    _checked(body, sha256_bytes(data), len(rows), bad_csv)
    try:
        # Only item_id is required; title, category, price and image_url are read when the CSV has them.
        schema.require_columns(rows[0].keys() if rows else [], ("item_id",), what="an items CSV")
    except schema.ContractError as exc:
        raise ApiError(422, "invalid_object", str(exc)) from None
    problems = [f"row {n}: {p}" for n, row in enumerate(rows, start=2) if (p := schema.item_problem(row))]
    if problems:
        more = f" (+{len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ApiError(422, "invalid_items", "; ".join(problems[:5]) + more)
    return rows


def _catalog_row(r: dict) -> tuple:
    """(item_id, title, category, price, image_url) with absent optional values as NULL ('' for image_url)."""
    return (
        r["item_id"],
        r.get("title") or None,
        r.get("category") or None,
        r.get("price") or None,
        r.get("image_url") or "",
    )


@router.post("/tenants/{tenant}/uploads", status_code=201)
def register_upload(tenant: str, body: UploadIn, request: Request) -> dict:
    if body.bucket not in config.BUCKETS:
        raise ApiError(
            422, "validation_error", f"bucket must be one of {', '.join(config.BUCKETS)}, got {body.bucket!r}"
        )
    source = run_source(request, body.source)
    state = platform(request)
    with state.db.transaction() as cur:
        find_tenant(cur, tenant)  # an unknown tenant is a 404 before any object is read
    if body.kind == "items":
        catalog = _check_object(storage.read(state.s3, body.bucket, body.object_key), body)
    else:
        with storage.stream(state.s3, body.bucket, body.object_key) as stream:
            _check_stream(stream, body)
        catalog = None
    with state.db.transaction() as cur:
        row = find_tenant(cur, tenant)
        cur.execute(
            "INSERT INTO data_uploads (id, tenant_id, kind, bucket, object_key, rows, sha256, source)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (tenant_id, bucket, object_key) DO UPDATE SET kind = EXCLUDED.kind, rows = EXCLUDED.rows,"
            " sha256 = EXCLUDED.sha256, source = EXCLUDED.source, updated_at = now() RETURNING id",
            (str(uuid.uuid4()), row["id"], body.kind, body.bucket, body.object_key, body.rows, body.sha256, source),
        )
        upload_id = cur.fetchone()["id"]
        if catalog:
            values = [_catalog_row(r) for r in catalog]
            execute_values(
                cur,
                "INSERT INTO items (tenant_id, item_id, title, category, price, image_url) VALUES %s"
                " ON CONFLICT (tenant_id, item_id) DO UPDATE SET title = EXCLUDED.title, category = EXCLUDED.category,"
                " price = EXCLUDED.price, image_url = EXCLUDED.image_url, updated_at = now()",
                [(row["id"], *v) for v in values],
                page_size=1000,
            )
            # This upload's own snapshot; a re-registration of the same object replaces it.
            cur.execute("DELETE FROM catalog_items WHERE upload_id = %s", (upload_id,))
            execute_values(
                cur,
                "INSERT INTO catalog_items (upload_id, tenant_id, item_id, title, category, price, image_url) VALUES %s",
                [(upload_id, row["id"], *v) for v in values],
                page_size=1000,
            )
        audit.record(
            cur,
            actor=ACTOR,
            action="upload.registered",
            tenant_id=row["id"],
            object_ref=f"s3://{body.bucket}/{body.object_key}",
            details={
                "source": source,
                "kind": body.kind,
                "rows": body.rows,
                "sha256": body.sha256,
                "upload_id": upload_id,
            },
            request_id=request_id(request),
        )
    return {
        "upload_id": upload_id,
        "tenant_id": row["id"],
        **body.model_dump(exclude={"source"}),
        "source": source,
        "items_upserted": len(catalog or ()),
    }
