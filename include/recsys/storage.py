"""Object storage access for the platform: a MinIO client with short timeouts and checksummed reads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import urllib3
from minio import Minio
from minio.error import S3Error

from include.checksums import SHA256_META, sha256_bytes, split_s3_uri
from include.recsys.settings import Settings


class StorageError(RuntimeError):
    """An object is missing, unreadable or does not match its checksum."""


def client(settings: Settings, *, timeout_s: float = 10.0) -> Minio:
    # urllib3's default retries would turn a dead endpoint into a long hang; callers retry instead.
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=min(timeout_s, 2.0), read=timeout_s),
        retries=urllib3.Retry(total=1, backoff_factor=0.1),
        maxsize=8,
    )
    return Minio(
        settings.s3_endpoint,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=settings.s3_secure,
        region="us-east-1",
        http_client=http,
    )


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """s3://bucket/prefix/ -> (bucket, "prefix/")."""
    try:
        bucket, prefix = split_s3_uri(uri)
    except ValueError:
        raise StorageError(f"expected an s3://bucket/prefix/ URI, got {uri[:200]!r}") from None
    return bucket, prefix if not prefix or prefix.endswith("/") else prefix + "/"


def read_object(s3: Minio, bucket: str, key: str) -> tuple[bytes, Any]:
    """The object's bytes and response headers (``x-amz-meta-*`` included), its connection given back to the pool."""
    response = s3.get_object(bucket, key)
    try:
        return response.read(), response.headers
    finally:
        response.close()
        response.release_conn()


@contextmanager
def stream(s3: Minio, bucket: str, key: str) -> Iterator[Any]:
    """The object's body as a file-like stream (``read(n)``), its connection given back to the pool after."""
    try:
        response = s3.get_object(bucket, key)
    except S3Error as exc:
        raise StorageError(f"cannot read s3://{bucket}/{key}: {exc.code}") from None
    try:
        yield response
    finally:
        response.close()
        response.release_conn()


def read(s3: Minio, bucket: str, key: str) -> bytes:
    try:
        return read_object(s3, bucket, key)[0]
    except S3Error as exc:
        raise StorageError(f"cannot read s3://{bucket}/{key}: {exc.code}") from None


def write(s3: Minio, bucket: str, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> str:
    """Store bytes with their SHA-256 in metadata; returns the checksum."""
    digest = sha256_bytes(data)
    s3.put_object(bucket, key, io.BytesIO(data), len(data), content_type=content_type, metadata={SHA256_META: digest})
    return digest
