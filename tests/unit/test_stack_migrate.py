from __future__ import annotations

import hashlib

import pytest

from include.recsys.migrate import MigrationError, default_sql_dir, discover


def test_migrations_are_ordered_by_version_with_their_checksums(tmp_path):
    (tmp_path / "0010_later.sql").write_text("SELECT 10;")
    (tmp_path / "0002_first.sql").write_text("SELECT 2;")
    (tmp_path / "README.md").write_text("not a migration")
    found = discover(str(tmp_path))
    assert [(m.version, m.name) for m in found] == [(2, "0002_first.sql"), (10, "0010_later.sql")]
    assert found[0].checksum == hashlib.sha256(b"SELECT 2;").hexdigest()


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"1_short.sql": ""}, "must look like 0001_name.sql"),
        ({"0001_a.sql": "", "0001_b.sql": ""}, "share version 0001"),
    ],
)
def test_badly_named_or_duplicate_migrations_are_refused(tmp_path, files, message):
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    with pytest.raises(MigrationError, match=message):
        discover(str(tmp_path))


def test_the_repository_migrations_are_well_formed():
    assert discover(default_sql_dir()), "include/sql holds no migrations"
