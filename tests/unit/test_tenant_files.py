"""Reading a tenant's files: every format gives the same text table, and only files inside the inbox (or s3://
through minio_default) within the size limit are read at all."""

from __future__ import annotations

import gzip
import os
from datetime import UTC, datetime

import pandas as pd
import pytest

from plugins.journey.tenant_files import FORMATS, InputRefused, file_format, read_tenant_file

EXPECTED = pd.DataFrame(
    {
        "user": ["u1", "u2", "u3"],
        "item": ["i1", "i2", "i3"],
        "plays": ["3", "12", ""],
        "title": ['Say "hi"', "Café", "plain"],
    }
)


@pytest.fixture()
def inbox(tmp_path, monkeypatch):
    path = tmp_path / "inbox"
    path.mkdir()
    monkeypatch.setenv("PIPELINE_INBOX_DIR", str(path))
    return path


def write_all(inbox) -> dict[str, str]:
    csv_text = EXPECTED.to_csv(index=False)
    # TSV has no quoting: a quote is part of the value.
    tsv_text = "\n".join("\t".join(row) for row in [list(EXPECTED.columns), *EXPECTED.to_numpy().tolist()]) + "\n"
    (inbox / "log.csv").write_text(csv_text)
    (inbox / "log.tsv").write_text(tsv_text)
    (inbox / "log.csv.gz").write_bytes(gzip.compress(csv_text.encode()))
    (inbox / "log.tsv.gz").write_bytes(gzip.compress(tsv_text.encode()))
    typed = EXPECTED.assign(plays=pd.array([3, 12, None], dtype="Int64"))
    typed.to_parquet(inbox / "log.parquet", index=False)
    return {fmt: f"log{fmt}" for fmt in FORMATS}


def test_every_format_reads_as_the_same_text_table(inbox):
    for fmt, name in write_all(inbox).items():
        frame, read = read_tenant_file(name, what=name)
        assert read.format == fmt
        pd.testing.assert_frame_equal(frame, EXPECTED, check_dtype=False, obj=fmt)


def test_parquet_values_read_as_a_csv_of_them_would(inbox):
    pd.DataFrame(
        {
            "at": [datetime(2026, 3, 1, 10, 0, tzinfo=UTC), None],
            "naive": [datetime(2026, 3, 1, 10, 0), datetime(2026, 3, 2, 0, 0)],
            "score": [4.5, 4.0],
            "epoch": [1_700_000_000, 1_700_000_001],
        }
    ).to_parquet(inbox / "typed.parquet", index=False)
    frame, _ = read_tenant_file("typed.parquet", what="typed")
    assert frame.to_dict("list") == {
        "at": ["2026-03-01T10:00:00+00:00", ""],
        "naive": ["2026-03-01T10:00:00", "2026-03-02T00:00:00"],
        "score": ["4.5", "4.0"],
        "epoch": ["1700000000", "1700000001"],
    }


def test_a_byte_order_mark_is_not_part_of_the_first_column(inbox):
    (inbox / "bom.csv").write_bytes("\ufeffuser,item\nu1,i1\n".encode())
    assert list(read_tenant_file("bom.csv", what="bom")[0].columns) == ["user", "item"]


def test_the_format_follows_the_extension_and_others_are_refused():
    assert file_format("s3://b/2026/Log.CSV.GZ") == ".csv.gz"
    for name in ("log.xlsx", "log.gz", "log.json", "log"):
        with pytest.raises(InputRefused, match="must end in one of .csv, .tsv, .csv.gz, .tsv.gz, .parquet"):
            file_format(name)


def test_a_path_outside_the_inbox_is_refused_with_a_clear_error(inbox, tmp_path):
    secret = tmp_path / "env.csv"  # e.g. the stack's own secrets file, next to the inbox
    secret.write_text("AIRFLOW_CONN_X,secret\n")
    with pytest.raises(
        InputRefused, match=r"resolves to .*env\.csv, outside the inbox .*inbox \(set PIPELINE_INBOX_DIR"
    ):
        read_tenant_file(str(secret), what="items")
    with pytest.raises(InputRefused, match="paths may not contain '..'"):
        read_tenant_file("../env.csv", what="items")
    with pytest.raises(InputRefused, match="paths may not contain '..'"):
        read_tenant_file(f"{inbox}/sub/../../env.csv", what="items")


def test_a_symlink_out_of_the_inbox_is_refused(inbox, tmp_path):
    (tmp_path / "outside.csv").write_text("user,item\nu1,i1\n")
    os.symlink(tmp_path / "outside.csv", inbox / "inside.csv")
    with pytest.raises(InputRefused, match="outside the inbox"):
        read_tenant_file("inside.csv", what="items")


def test_paths_inside_the_inbox_are_read_relative_absolute_or_as_file_uris(inbox):
    (inbox / "tenant").mkdir()
    (inbox / "tenant" / "log.csv").write_text("user,item\nu1,i1\n")
    for uri in ("tenant/log.csv", str(inbox / "tenant" / "log.csv"), f"file://{inbox}/tenant/log.csv"):
        assert read_tenant_file(uri, what="log")[0].to_dict("list") == {"user": ["u1"], "item": ["i1"]}
    with pytest.raises(FileNotFoundError, match="found nothing at 'tenant/nope.csv'"):
        read_tenant_file("tenant/nope.csv", what="log")


def test_other_schemes_are_refused(inbox):
    for uri in ("http://example.com/log.csv", "gs://bucket/log.csv", "s3a://bucket/log.csv"):
        with pytest.raises(InputRefused, match="expected a path inside the inbox or an s3://bucket/key URI"):
            read_tenant_file(uri, what="log")


def test_files_over_the_size_limit_are_refused_before_reading(inbox, monkeypatch):
    write_all(inbox)
    monkeypatch.setenv("PIPELINE_MAX_INPUT_BYTES", "40")
    with pytest.raises(
        InputRefused, match=r"is \d+ bytes, more than the input limit of 40 bytes \(PIPELINE_MAX_INPUT_BYTES\)"
    ):
        read_tenant_file("log.csv", what="log")


def test_a_gzip_that_inflates_past_the_limit_is_refused(inbox, monkeypatch):
    (inbox / "bomb.csv.gz").write_bytes(gzip.compress(b"user,item\n" + b"u,i\n" * 2_000_000))
    monkeypatch.setenv("PIPELINE_MAX_INPUT_BYTES", str(1024 * 1024))
    assert os.path.getsize(inbox / "bomb.csv.gz") < 1024 * 1024
    with pytest.raises(InputRefused, match="inflates to more than the input limit"):
        read_tenant_file("bomb.csv.gz", what="log")


def test_broken_gzip_and_parquet_say_so(inbox):
    (inbox / "broken.csv.gz").write_bytes(b"not gzip at all")
    (inbox / "broken.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        read_tenant_file("broken.csv.gz", what="log")
    with pytest.raises(ValueError, match="not a readable Parquet file"):
        read_tenant_file("broken.parquet", what="log")


def test_the_limit_setting_must_be_a_positive_number(inbox, monkeypatch):
    write_all(inbox)
    monkeypatch.setenv("PIPELINE_MAX_INPUT_BYTES", "1GB")
    with pytest.raises(ValueError, match="PIPELINE_MAX_INPUT_BYTES must be a whole number of bytes, got '1GB'"):
        read_tenant_file("log.csv", what="log")
