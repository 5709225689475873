"""Upload registration's object checks: a users/interactions object streamed through its checksum and row count
gives the verdicts the whole-object check gives, whatever its line endings, quoting, BOM or encoding."""

from __future__ import annotations

import csv
import io

import pytest

from include.checksums import sha256_bytes
from include.recsys.api.admin.uploads import UploadIn, _check_stream
from include.recsys.api.errors import ApiError

CSVS = {
    "plain": b"user_id,item_id\nu1,i1\nu2,i2\n",
    "no final newline": b"user_id,item_id\nu1,i1\nu2,i2",
    "crlf": b"user_id,item_id\r\nu1,i1\r\n",
    "blank lines": b"user_id,item_id\n\nu1,i1\n\n\nu2,i2\n",
    "quoted line break": b'user_id,item_id\nu1,"two\nlines"\nu2,i2\n',
    "bom": "\ufeffuser_id,item_id\nü,i1\n".encode(),
    "header only": b"user_id,item_id\n",
    "empty": b"",
    # Larger than the 1 MiB read size, so records straddle reads.
    "many chunks": b"user_id,item_id\n" + b"".join(f"user-{n},item-{n % 97}\n".encode() for n in range(120_000)),
}


def body(data: bytes, *, rows: int, key: str = "t/run/interactions.csv", sha256: str | None = None) -> UploadIn:
    return UploadIn(
        kind="interactions",
        bucket="recsys-raw",
        object_key=key,
        rows=rows,
        sha256=sha256 or sha256_bytes(data),
        source="test",
    )


@pytest.mark.parametrize("name", CSVS)
def test_rows_are_counted_as_dictreader_counts_them(name):
    data = CSVS[name]
    rows = len(list(csv.DictReader(io.StringIO(data.decode("utf-8-sig")))))
    _check_stream(io.BytesIO(data), body(data, rows=rows))
    with pytest.raises(ApiError, match=f"registered {rows + 1} rows, object has {rows}") as raised:
        _check_stream(io.BytesIO(data), body(data, rows=rows + 1))
    assert raised.value.code == "row_count_mismatch"


def test_the_checksum_is_of_every_byte_and_comes_first():
    data = CSVS["many chunks"]
    with pytest.raises(ApiError, match=f"content has {sha256_bytes(data)}") as raised:
        _check_stream(io.BytesIO(data), body(data, rows=0, sha256="0" * 64))
    assert raised.value.code == "checksum_mismatch"


def test_bad_utf8_midway_is_invalid_and_still_checksummed():
    data = CSVS["many chunks"] + b"\xff\xfe,i1\n" + b"u9,i9\n" * 50_000
    with pytest.raises(ApiError, match="is not UTF-8 CSV") as raised:
        _check_stream(io.BytesIO(data), body(data, rows=170_001))
    assert raised.value.code == "invalid_object"
    # The same bytes under a wrong checksum: the checksum verdict, so the whole object was hashed.
    with pytest.raises(ApiError) as raised:
        _check_stream(io.BytesIO(data), body(data, rows=170_001, sha256="0" * 64))
    assert raised.value.code == "checksum_mismatch"


def test_other_formats_are_only_checksummed():
    data = bytes(range(256)) * 10_000  # not text at all
    _check_stream(io.BytesIO(data), body(data, rows=12345, key="t/run/interactions.parquet"))
    with pytest.raises(ApiError) as raised:
        _check_stream(io.BytesIO(data), body(data, rows=0, key="t/run/interactions.parquet", sha256="0" * 64))
    assert raised.value.code == "checksum_mismatch"
