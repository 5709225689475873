"""Local retention (plugins/ops/retention.py): files written before the cutoff go, newer ones stay, directories
emptied by it go (a fresh empty one stays), links left dangling go; a tenant scope touches only that tenant."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

from plugins.ops.retention import prune_tree

NOW = datetime(2026, 12, 1, tzinfo=UTC)
CUTOFF = NOW - timedelta(days=30)


def _file(path, *, age_days: float, size: int = 10) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    stamp = (NOW - timedelta(days=age_days)).timestamp()
    os.utime(path, (stamp, stamp))


def test_old_files_go_new_ones_stay_and_emptied_directories_and_dangling_links_go(tmp_path):
    _file(tmp_path / "run-old" / "acme" / "report.json", age_days=40, size=100)
    _file(tmp_path / "run-old" / "acme" / "data_docs" / "index.html", age_days=31, size=50)
    _file(tmp_path / "run-mixed" / "acme" / "gx" / "seed_data.json", age_days=35)
    _file(tmp_path / "run-mixed" / "acme" / "report.json", age_days=2)
    (tmp_path / "run-new-empty" / "acme").mkdir(parents=True)  # a run that is writing right now
    (tmp_path / "latest").mkdir()
    os.symlink("../run-old/acme", tmp_path / "latest" / "acme")
    os.symlink("run-mixed/acme", tmp_path / "newest")

    pruned = prune_tree(str(tmp_path), before=CUTOFF)

    assert (pruned.files, pruned.bytes, pruned.kept, pruned.links) == (3, 160, 1, 1)
    assert not (tmp_path / "run-old").exists()
    assert sorted(os.listdir(tmp_path / "run-mixed" / "acme")) == ["report.json"]
    assert (tmp_path / "run-new-empty" / "acme").is_dir()
    assert not os.path.lexists(tmp_path / "latest" / "acme")
    assert (tmp_path / "latest").is_dir() and os.readlink(tmp_path / "newest") == "run-mixed/acme"
    assert tmp_path.is_dir()


def test_a_tenant_scope_leaves_every_other_tenant_and_the_ops_reports_alone(tmp_path):
    _file(tmp_path / "run-1" / "acme" / "report.json", age_days=40)
    _file(tmp_path / "run-1" / "globex" / "report.json", age_days=40)
    _file(tmp_path / "platform_health" / "scheduled__2026-10-01" / "gx" / "kafka.json", age_days=60)

    pruned = prune_tree(str(tmp_path), before=CUTOFF, include=lambda parts: len(parts) > 1 and parts[1] == "acme")

    assert pruned.files == 1
    assert not (tmp_path / "run-1" / "acme").exists()
    assert (tmp_path / "run-1" / "globex" / "report.json").exists()
    assert (tmp_path / "platform_health" / "scheduled__2026-10-01" / "gx" / "kafka.json").exists()


def test_a_missing_root_is_nothing_to_do(tmp_path):
    assert prune_tree(str(tmp_path / "never-written"), before=CUTOFF).files == 0


def test_a_tenant_scope_removes_only_that_tenant_s_dangling_links(tmp_path):
    (tmp_path / "latest").mkdir()
    os.symlink("../gone/acme", tmp_path / "latest" / "acme")
    os.symlink("../gone/globex", tmp_path / "latest" / "globex")
    os.symlink("gone/acme", tmp_path / "newest")

    pruned = prune_tree(str(tmp_path), before=CUTOFF, include=lambda parts: len(parts) > 1 and parts[1] == "acme")

    assert pruned.links == 1 and not os.path.lexists(tmp_path / "latest" / "acme")
    assert os.path.islink(tmp_path / "latest" / "globex") and os.path.islink(tmp_path / "newest")
