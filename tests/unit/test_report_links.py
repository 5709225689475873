"""The report's ``latest/<tenant>`` and ``newest`` links: atomic under concurrent writers, relative, and the
single ``latest`` link of earlier versions becomes the directory of per-tenant links."""

from __future__ import annotations

import multiprocessing
import os

from plugins.journey.report import LATEST_DIR, NEWEST_LINK, link_latest

WRITERS = 4
UPDATES = 3000
TENANTS = ("acme", "globex")


def _write_links(root: str, writer: int, errors) -> None:
    for n in range(UPDATES):
        tenant = TENANTS[n % len(TENANTS)]
        try:
            link_latest(report_dir=os.path.join(root, f"run-{writer}-{n % 7}", tenant), tenant=tenant, root=root)
        except OSError as exc:
            errors.put(f"writer {writer}, update {n}: {type(exc).__name__}: {exc}")


def _read_links(root: str, stop, errors) -> None:
    """Once a link exists it must never be missing: readers (the demo, an operator's shell) follow it any time."""
    links = [os.path.join(root, LATEST_DIR, tenant) for tenant in TENANTS] + [os.path.join(root, NEWEST_LINK)]
    reads = 0
    while not stop.is_set():
        for link in links:
            if not os.path.islink(link):
                errors.put(f"{link} missing after {reads} reads")
                return
            reads += 1


def test_concurrent_writers_never_fail_and_readers_never_see_a_missing_link(tmp_path):
    root = str(tmp_path)
    for writer in range(WRITERS):
        for n in range(7):
            for tenant in TENANTS:
                os.makedirs(os.path.join(root, f"run-{writer}-{n}", tenant))
    link_latest(report_dir=os.path.join(root, "run-0-0", "acme"), tenant="acme", root=root)
    link_latest(report_dir=os.path.join(root, "run-0-0", "globex"), tenant="globex", root=root)

    ctx = multiprocessing.get_context("fork")
    errors, stop = ctx.Queue(), ctx.Event()
    reader = ctx.Process(target=_read_links, args=(root, stop, errors))
    writers = [ctx.Process(target=_write_links, args=(root, w, errors)) for w in range(WRITERS)]
    reader.start()
    for process in writers:
        process.start()
    for process in writers:
        process.join(timeout=120)
    stop.set()
    reader.join(timeout=30)

    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == [], f"{len(found)} failures, e.g. {found[:3]}"
    assert [p.exitcode for p in writers] == [0] * WRITERS and reader.exitcode == 0
    for tenant in TENANTS:
        target = os.path.realpath(os.path.join(root, LATEST_DIR, tenant))
        assert os.path.basename(target) == tenant and os.path.isdir(target)
    assert os.path.isdir(os.path.realpath(os.path.join(root, NEWEST_LINK)))
    leftovers = [name for _, _, files in os.walk(root) for name in files if name.endswith(".tmp")]
    leftovers += [name for name in os.listdir(os.path.join(root, LATEST_DIR)) if name.endswith(".tmp")]
    assert leftovers == []


def test_links_are_relative_so_the_state_directory_can_move(tmp_path):
    report = tmp_path / "manual__2026-11-10T00_00_00_00_00" / "acme"
    report.mkdir(parents=True)
    link_latest(report_dir=str(report), tenant="acme", root=str(tmp_path))
    assert os.readlink(tmp_path / LATEST_DIR / "acme") == "../manual__2026-11-10T00_00_00_00_00/acme"
    assert os.readlink(tmp_path / NEWEST_LINK) == "manual__2026-11-10T00_00_00_00_00/acme"

    moved = tmp_path.parent / f"{tmp_path.name}-moved"
    os.rename(tmp_path, moved)
    assert (moved / LATEST_DIR / "acme").resolve() == (moved / "manual__2026-11-10T00_00_00_00_00" / "acme").resolve()


def test_the_old_single_latest_link_becomes_the_directory_of_tenant_links(tmp_path):
    old = tmp_path / "run-1" / "acme"
    old.mkdir(parents=True)
    os.symlink(old, tmp_path / LATEST_DIR)  # what earlier versions wrote
    new = tmp_path / "run-2" / "globex"
    new.mkdir(parents=True)
    link_latest(report_dir=str(new), tenant="globex", root=str(tmp_path))
    assert (tmp_path / LATEST_DIR).is_dir() and not (tmp_path / LATEST_DIR).is_symlink()
    assert sorted(os.listdir(tmp_path / LATEST_DIR)) == ["globex"]
    assert old.is_dir()  # only the link went, never a report
