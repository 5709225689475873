"""MinioHook: the object store (MinIO, or any S3 API) behind the ``minio_default`` connection.

Why not the Amazon provider's ``S3Hook`` with an endpoint URL (considered 2026-12, provider 9.39.0): it is
not installed, and ``pip install --dry-run`` against our pins adds 27 distributions (boto3, botocore,
s3transfer, aiohttp and its six, redshift_connector, PyAthena, sagemaker_studio, watchtower, lxml, ...).
It would not shorten this hook: its ``load_bytes``/``load_file`` take no per-object metadata, so the
``x-amz-meta-sha256`` every object carries would go through the raw boto3 client anyway, and reading back
the claimed checksum beside the real one is ours either way. boto3 also brings behaviour to configure and
re-test against SeaweedFS (its default CRC checksums on every request since 1.36, its own retry modes).
The ``minio`` client is already the platform's (include/recsys/storage.py), so both sides share one
S3 client and one read-with-release helper (``storage.read_object``).
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

from airflow.sdk import BaseHook

from include.checksums import SHA256_META, sha256_bytes, sha256_file, split_s3_uri
from include.config import MINIO_CONN_ID

if TYPE_CHECKING:
    from datetime import datetime

    from minio import Minio


@dataclass(frozen=True)
class StoredObject:
    bucket: str
    key: str
    size: int
    sha256: str  # of the bytes sent

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ReadBack:
    data: bytes
    sha256: str  # of the bytes received
    metadata_sha256: str | None  # what the object's metadata claims


class MinioHook(BaseHook):
    """Typed helpers over the MinIO client; every object it writes carries the SHA-256 of its bytes."""

    conn_name_attr = "minio_conn_id"
    default_conn_name = MINIO_CONN_ID
    hook_name = "MinIO / S3"

    def __init__(self, minio_conn_id: str = MINIO_CONN_ID) -> None:
        super().__init__()
        self.minio_conn_id = minio_conn_id

    @cached_property
    def client(self) -> Minio:
        return self.get_conn()

    def get_conn(self) -> Minio:
        from minio import Minio

        conn = self.get_connection(self.minio_conn_id)
        if not conn.host or not conn.login or not conn.password:
            raise ValueError(
                f"connection {self.minio_conn_id!r} must set host, login (access key) and password (secret key)"
            )
        endpoint = f"{conn.host}:{conn.port}" if conn.port else conn.host
        secure = bool(conn.extra_dejson.get("secure", False))
        return Minio(endpoint, access_key=conn.login, secret_key=conn.password, secure=secure)

    def put_bytes(
        self, *, bucket: str, key: str, data: bytes, content_type: str = "application/octet-stream"
    ) -> StoredObject:
        digest = sha256_bytes(data)
        self.client.put_object(
            bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata={SHA256_META: digest}
        )
        return StoredObject(bucket, key, len(data), digest)

    def put_file(self, *, bucket: str, key: str, path: str, content_type: str = "text/csv") -> StoredObject:
        digest = sha256_file(path)
        self.client.fput_object(bucket, key, path, content_type=content_type, metadata={SHA256_META: digest})
        return StoredObject(bucket, key, os.path.getsize(path), digest)

    def read_back(self, *, bucket: str, key: str) -> ReadBack:
        """The object's bytes, their real SHA-256, and the SHA-256 its metadata claims."""
        from include.recsys.storage import read_object

        data, headers = read_object(self.client, bucket, key)
        claimed = headers.get(f"x-amz-meta-{SHA256_META}")
        return ReadBack(data=data, sha256=sha256_bytes(data), metadata_sha256=claimed)

    def get_bytes(self, uri: str) -> bytes:
        bucket, key = split_s3_uri(uri)
        return self.read_back(bucket=bucket, key=key).data

    def missing_buckets(self, buckets: tuple[str, ...]) -> list[str]:
        return [b for b in buckets if not self.client.bucket_exists(b)]

    def delete_older_than(self, *, bucket: str, prefix: str, before: datetime) -> tuple[int, int, int]:
        """Remove the objects under a prefix last written before ``before``: (removed, bytes removed, kept)."""
        from minio.deleteobjects import DeleteObject

        old, size, kept = [], 0, 0
        for obj in self.client.list_objects(bucket, prefix=prefix, recursive=True):
            if obj.last_modified is not None and obj.last_modified < before:
                old.append(DeleteObject(obj.object_name))
                size += obj.size or 0
            else:
                kept += 1
        errors = list(self.client.remove_objects(bucket, old)) if old else []
        if errors:
            raise RuntimeError(f"could not delete {len(errors)} objects under s3://{bucket}/{prefix}: {errors[0]}")
        return len(old), size, kept

    def delete_prefix(self, *, bucket: str, prefix: str) -> int:
        """Remove every object under a prefix (used to clear a stage's partial output before a retry)."""
        from minio.deleteobjects import DeleteObject

        keys = [DeleteObject(o.object_name) for o in self.client.list_objects(bucket, prefix=prefix, recursive=True)]
        errors = list(self.client.remove_objects(bucket, keys)) if keys else []
        if errors:
            raise RuntimeError(f"could not delete {len(errors)} objects under s3://{bucket}/{prefix}: {errors[0]}")
        return len(keys)
