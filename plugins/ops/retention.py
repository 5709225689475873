"""file_retention: the pipeline's own output files older than the retention window are removed, locally and in
the buckets, so a daily journey per tenant (~5 MB locally and again in the reports bucket) does not fill the
disks.

What goes, by kind (one task each, so a failure names the store):

- ``reports``: run reports and Data Docs, ``<reports>/...`` locally and the reports bucket;
- ``work_dirs``: the journey's work directories, ``<work>/<tenant>/<run key>/``;
- ``quarantine``: quarantined rows in the quarantine bucket;
- ``alerts``: failure alerts, ``<local>/alerts/`` and ``alerts/`` in the exports bucket.

What stays: the platform's own data (raw uploads, models, the app database and its append-only audit log)
and Airflow's metadata. A file's age is when it was last written (a local file's mtime, an object's
Last-Modified), so a re-run's rewritten report counts as new. Whole files go; directories left empty go
too, and so do ``latest`` links whose report went.

Why deletion by this DAG rather than bucket lifecycle rules: SeaweedFS (the local object store) accepts a
lifecycle configuration, but applies it as a TTL to objects written afterwards, not to what is stored, and
MinIO enforces it on its own scanner's schedule; one job with one cutoff keeps the local copies and the
bucket copies of a report going together, on any S3 server.

``tenants`` narrows everything to those tenants' reports, work directories and quarantine objects (the
ops DAGs' reports and the alerts are not a tenant's and are then left alone).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from include.config import EXPORTS_BUCKET, QUARANTINE_BUCKET, REPORTS_BUCKET, local_dir, reports_root, work_root

ALERTS_PREFIX = "alerts/"


@dataclass
class Pruned:
    files: int = 0
    bytes: int = 0
    kept: int = 0
    dirs: int = 0
    links: int = 0


def prune_tree(root: str, *, before: datetime, include: Callable[[tuple[str, ...]], bool] | None = None) -> Pruned:
    """Remove the regular files under ``root`` last modified before ``before``, then the directories this left
    empty and the symlinks left dangling; with ``include``, only files and links whose path parts relative to
    ``root`` pass it. ``root`` itself stays."""
    cutoff = before.timestamp()
    pruned = Pruned()
    if not os.path.isdir(root):
        return pruned
    # Only directories something was removed from may go: a new run's directory, still empty, is being written.
    emptied: set[str] = set()
    for dirpath, _, filenames in os.walk(root, topdown=False):
        for name in filenames:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or (include and not include(Path(os.path.relpath(path, root)).parts)):
                continue
            try:
                stat = os.stat(path)
            except FileNotFoundError:  # removed meanwhile (a retry, another pruner)
                continue
            if stat.st_mtime >= cutoff:
                pruned.kept += 1
                continue
            os.remove(path)
            pruned.files += 1
            pruned.bytes += stat.st_size
            emptied.add(dirpath)
        if dirpath != root and dirpath in emptied:
            try:
                os.rmdir(dirpath)
            except OSError:  # not empty: newer files, or a writer got there first
                continue
            pruned.dirs += 1
            emptied.add(os.path.dirname(dirpath))
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            if include and not include(Path(os.path.relpath(path, root)).parts):
                continue
            if os.path.islink(path) and not os.path.exists(path):
                os.remove(path)
                pruned.links += 1
    return pruned


def _under_tenants(tenants: list[str] | None, *, depth: int) -> Callable[[tuple[str, ...]], bool] | None:
    """Whether a path's part at ``depth`` names one of ``tenants`` (every path when no tenants are named)."""
    if not tenants:
        return None
    wanted = frozenset(tenants)
    return lambda parts: len(parts) > depth and parts[depth] in wanted


def prune_reports(*, before: datetime, tenants: list[str] | None) -> dict[str, object]:
    """Journey reports live at ``<run id>/<tenant>/`` and are linked from ``latest/<tenant>``; the ops DAGs'
    at ``<dag id>/<run id>/`` (no tenant's)."""
    from plugins.hooks.minio import MinioHook

    local = prune_tree(reports_root(), before=before, include=_under_tenants(tenants, depth=1))
    bucket = _prune_bucket(MinioHook(), REPORTS_BUCKET, _prefixes(tenants), before=before)
    return {"local": asdict(local), "bucket": bucket}


def prune_work_dirs(*, before: datetime, tenants: list[str] | None) -> dict[str, object]:
    local = prune_tree(work_root(), before=before, include=_under_tenants(tenants, depth=0))
    return {"local": asdict(local)}


def prune_quarantine(*, before: datetime, tenants: list[str] | None) -> dict[str, object]:
    from plugins.hooks.minio import MinioHook

    return {"bucket": _prune_bucket(MinioHook(), QUARANTINE_BUCKET, _prefixes(tenants), before=before)}


def prune_alerts(*, before: datetime, tenants: list[str] | None) -> dict[str, object]:
    from plugins.hooks.minio import MinioHook

    if tenants:
        return {"skipped": "alerts belong to no tenant: they are pruned only when no tenants are named"}
    local = prune_tree(os.path.join(local_dir(), "alerts"), before=before)
    bucket = _prune_bucket(MinioHook(), EXPORTS_BUCKET, [ALERTS_PREFIX], before=before)
    return {"local": asdict(local), "bucket": bucket}


PRUNERS = {
    "reports": prune_reports,
    "work_dirs": prune_work_dirs,
    "quarantine": prune_quarantine,
    "alerts": prune_alerts,
}


def _prefixes(tenants: list[str] | None) -> list[str]:
    # Objects are keyed "<tenant>/<run key>/...": the trailing slash keeps "acme" from matching "acme-eu".
    return [f"{tenant}/" for tenant in tenants] if tenants else [""]


def _prune_bucket(minio, bucket: str, prefixes: list[str], *, before: datetime) -> dict[str, int]:
    removed = size = kept = 0
    for prefix in prefixes:
        n, b, k = minio.delete_older_than(bucket=bucket, prefix=prefix, before=before)
        removed, size, kept = removed + n, size + b, kept + k
    return {"objects": removed, "bytes": size, "kept": kept}
