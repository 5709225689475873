"""Reading a tenant's own files: where they may come from, how big they may be, and which format they are in.

A bring-your-own-data URI is either a local path inside the inbox directory (``PIPELINE_INBOX_DIR``, default
``<state dir>/inbox``; relative paths are taken inside it, symlinks are resolved before the check, and ``..`` is
refused outright) or ``s3://bucket/key``, read only through the ``minio_default`` connection. Anything else is
refused with the rule it broke: naming a file must never give a run the worker's own files (the stack's secrets
sit next to the inbox). Files larger than ``PIPELINE_MAX_INPUT_BYTES`` (default 1 GiB) are refused before they
are read, and a gzip'd file may not inflate beyond the same limit.

The format follows the file name: ``.csv``, ``.tsv``, either with ``.gz``, or ``.parquet``. Every column comes
back as text, empty where the file has no value, so a Parquet log and a CSV of the same data map and check alike.
"""

from __future__ import annotations

import csv
import gzip
import io
import os
import re
import zlib
from dataclasses import dataclass

import pandas as pd

from include.config import local_dir
from plugins.journey.tables import parse_delimited

INBOX_ENV = "PIPELINE_INBOX_DIR"
MAX_BYTES_ENV = "PIPELINE_MAX_INPUT_BYTES"
DEFAULT_MAX_BYTES = 1024**3
FORMATS: tuple[str, ...] = (".csv", ".tsv", ".csv.gz", ".tsv.gz", ".parquet")
_CHUNK = 1024 * 1024
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class InputRefused(ValueError):
    """A URI the pipeline will not read: outside the inbox, another scheme, too large, or an unknown format."""


@dataclass(frozen=True)
class TenantFile:
    uri: str
    format: str  # one of FORMATS
    bytes_read: int


def inbox_dir() -> str:
    return os.path.realpath(os.environ.get(INBOX_ENV) or os.path.join(local_dir(), "inbox"))


def max_input_bytes() -> int:
    raw = os.environ.get(MAX_BYTES_ENV)
    if not raw:
        return DEFAULT_MAX_BYTES
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{MAX_BYTES_ENV} must be a whole number of bytes, got {raw[:40]!r}") from None
    if value <= 0:
        raise ValueError(f"{MAX_BYTES_ENV} must be positive, got {value}")
    return value


def file_format(name: str) -> str:
    lowered = name.lower()
    # Longest first, so "x.csv.gz" is gzip'd CSV rather than an unknown ".gz".
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if lowered.endswith(suffix):
            return suffix
    raise InputRefused(f"{name!r}: the format follows the file name, which must end in one of {', '.join(FORMATS)}")


def local_path(uri: str) -> str:
    """The real path a local URI names, if it lies inside the inbox; refuses everything else with why."""
    raw = uri.removeprefix("file://")
    if not raw:
        raise InputRefused("expected a file name inside the inbox, got an empty path")
    if ".." in raw.replace("\\", "/").split("/"):
        raise InputRefused(f"{uri!r}: paths may not contain '..'; name a file inside the inbox {inbox_dir()}")
    inbox = inbox_dir()
    path = os.path.realpath(os.path.join(inbox, raw))  # an absolute raw path stays absolute
    if os.path.commonpath([inbox, path]) != inbox:
        raise InputRefused(
            f"{uri!r} resolves to {path}, outside the inbox {inbox} (set {INBOX_ENV} to read from elsewhere)"
        )
    if not os.path.isfile(path):
        raise FileNotFoundError(f"expected a file inside the inbox {inbox}, found nothing at {uri!r}")
    return path


def _too_large(uri: str, size: int, limit: int, *, inflated: bool = False) -> InputRefused:
    what = "inflates to more than" if inflated else f"is {size:,} bytes, more than"
    return InputRefused(f"{uri!r} {what} the input limit of {limit:,} bytes ({MAX_BYTES_ENV})")


def read_bytes(uri: str) -> bytes:
    """The file's bytes, within the size limit; ``s3://`` through minio_default, anything else from the inbox."""
    limit = max_input_bytes()
    if uri.startswith("s3://"):
        from include.checksums import split_s3_uri
        from plugins.hooks.minio import MinioHook

        bucket, key = split_s3_uri(uri)
        if ".." in key.split("/"):
            raise InputRefused(f"{uri!r}: object keys may not contain '..'")
        hook = MinioHook()
        size = hook.client.stat_object(bucket, key).size
        if size > limit:
            raise _too_large(uri, size, limit)
        return hook.get_bytes(uri)
    if _SCHEME.match(uri) and not uri.startswith("file://"):
        raise InputRefused(
            f"{uri!r}: expected a path inside the inbox or an s3://bucket/key URI (read through minio_default)"
        )
    path = local_path(uri)
    size = os.path.getsize(path)
    if size > limit:
        raise _too_large(uri, size, limit)
    with open(path, "rb") as fh:
        return fh.read()


def _gunzip(data: bytes, *, uri: str, limit: int) -> bytes:
    """Inflates in chunks, so a small file that inflates to terabytes stops at the limit instead of the memory."""
    out, total = io.BytesIO(), 0
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                if total > limit:
                    raise _too_large(uri, total, limit, inflated=True)
                out.write(chunk)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{uri!r} is not a readable gzip file: {exc}") from None
    return out.getvalue()


def _parquet_text(data: bytes, *, uri: str) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(data))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"{uri!r} is not a readable Parquet file: {exc}") from None
    return pd.DataFrame({name: _as_text(table.column(name)) for name in table.column_names})


def _as_text(column) -> list[str]:
    """Parquet values as a CSV of the same data would hold them: integers without '.0', timestamps in ISO-8601
    (with their offset when the column has a timezone), nulls as empty cells."""
    import pyarrow as pa

    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return ["" if v is None else v.isoformat() for v in column.to_pylist()]
    if pa.types.is_floating(kind):
        return ["" if v is None else repr(v) for v in column.to_pylist()]
    return ["" if v is None else str(v) for v in column.to_pylist()]


def read_tenant_file(uri: str, *, what: str) -> tuple[pd.DataFrame, TenantFile]:
    """Every column of a tenant's file as text (``""`` where it has no value), and what was read."""
    fmt = file_format(uri)
    data = read_bytes(uri)
    size = len(data)
    if fmt.endswith(".gz"):
        data = _gunzip(data, uri=uri, limit=max_input_bytes())
    if fmt == ".parquet":
        frame = _parquet_text(data, uri=uri)
    elif fmt.startswith(".tsv"):
        # Tab-separated files have no quoting convention: a quote is part of the value.
        frame = parse_delimited(data, what=what, sep="\t", quoting=csv.QUOTE_NONE)
    else:
        frame = parse_delimited(data, what=what)
    return frame, TenantFile(uri=uri, format=fmt, bytes_read=size)
