"""SHA-256 digests and s3:// URIs: the one toolkit the platform and the pipeline share for both.

No third-party imports: DAG files and hooks import this at parse time.
"""

from __future__ import annotations

import hashlib

_CHUNK = 1 << 20
# Objects carry their bytes' SHA-256 as x-amz-meta-sha256; the platform and the pipeline read and write this key.
SHA256_META = "sha256"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str) -> str:
    """The file's SHA-256, read in 1 MiB chunks so a large file never sits in memory whole."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def split_s3_uri(uri: str) -> tuple[str, str]:
    """'s3://bucket/key/parts' -> ('bucket', 'key/parts'); the key may be empty ('s3://bucket/')."""
    bucket, slash, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not slash or not bucket:
        raise ValueError(f"expected an s3://bucket/key URI, got {uri[:200]!r}")
    return bucket, key
