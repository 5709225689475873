"""ReportStore: the journey's reports as the reports bucket holds them, read through ``minio_default``.

plugins/journey/report.py writes every run's report.json and Data Docs to
``<REPORTS_BUCKET>/<tenant>/<run key>/<run id as a path segment>/``; the Journey UI plugin reads them back
here, so it shows the same thing on the local stack and in docker-compose (where the Data Docs exist only in
the bucket). Every key it reads is built from validated parts (plugins/ui/paths.py) under one run's prefix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from include.config import MINIO_CONN_ID, QUARANTINE_BUCKET, REPORTS_BUCKET, safe_name
from plugins.journey.history import PLOTS_DIR
from plugins.journey.report import DATA_DOCS_DIR, REPORT_FILE


class ReportNotFound(LookupError):
    """No such run, tenant or file in the reports bucket."""


@dataclass(frozen=True)
class StoredReport:
    tenant: str
    run_key: str
    run_segment: str  # the run id as report.py writes it into keys (safe_name)
    written: datetime | None

    @property
    def prefix(self) -> str:
        return f"{self.tenant}/{self.run_key}/{self.run_segment}/"


class ReportStore:
    """Reads reports, Data Docs and quarantine objects; never writes."""

    def __init__(self, *, minio_conn_id: str = MINIO_CONN_ID) -> None:
        self.minio_conn_id = minio_conn_id

    @cached_property
    def minio(self) -> Any:
        from plugins.hooks.minio import MinioHook

        return MinioHook(minio_conn_id=self.minio_conn_id)

    def _reports(self, *, prefix: str = "") -> list[StoredReport]:
        found = []
        for obj in self.minio.client.list_objects(REPORTS_BUCKET, prefix=prefix, recursive=True):
            parts = obj.object_name.split("/")
            # Only a run's own report.json; data docs files and anything else in the bucket are not runs.
            if len(parts) == 4 and parts[3] == REPORT_FILE:
                found.append(StoredReport(parts[0], parts[1], parts[2], obj.last_modified))
        return sorted(found, key=lambda r: r.written or datetime.min, reverse=True)

    def recent(self, *, limit: int = 50, tenant: str | None = None) -> list[dict[str, Any]]:
        """The newest reports first (every tenant's, or one tenant's), each as report.json holds it."""
        return [self._load(stored) for stored in self._reports(prefix=f"{tenant}/" if tenant else "")[:limit]]

    def tenants_of(self, run_id: str) -> list[str]:
        segment = safe_name(run_id)
        return sorted({r.tenant for r in self._reports() if r.run_segment == segment})

    def find(self, run_id: str, tenant: str) -> StoredReport:
        segment = safe_name(run_id)
        for stored in self._reports(prefix=f"{tenant}/"):
            if stored.run_segment == segment:
                return stored
        raise ReportNotFound(f"no report of tenant {tenant!r} for run {run_id!r} in s3://{REPORTS_BUCKET}/")

    def report(self, run_id: str, tenant: str) -> dict[str, Any]:
        return self._load(self.find(run_id, tenant))

    def data_docs(self, run_id: str, tenant: str, path: str) -> bytes:
        """A file of the run's Data Docs site; ``path`` is relative to it and already validated."""
        return self._read(REPORTS_BUCKET, f"{self.find(run_id, tenant).prefix}{DATA_DOCS_DIR}/{path}")

    def quarantine(self, key: str) -> bytes:
        """A quarantine object the run's report names (its key comes from report.json, never from the URL)."""
        return self._read(QUARANTINE_BUCKET, key)

    def history_plots(self, tenant: str) -> list[str]:
        """The PNGs of the tenant's run history (``history/`` beside its newest report that has one), or []."""
        return [name for name, _ in self._history(tenant)]

    def history_plot(self, tenant: str, name: str) -> bytes:
        for found, key in self._history(tenant):
            if found == name:
                return self._read(REPORTS_BUCKET, key)
        raise ReportNotFound(f"tenant {tenant!r} has no history plot {name!r}")

    def _history(self, tenant: str) -> list[tuple[str, str]]:
        for stored in self._reports(prefix=f"{tenant}/"):
            prefix = f"{stored.prefix}{PLOTS_DIR}/"
            plots = [
                (obj.object_name[len(prefix) :], obj.object_name)
                for obj in self.minio.client.list_objects(REPORTS_BUCKET, prefix=prefix)
                if obj.object_name.endswith(".png")
            ]
            if plots:
                return sorted(plots)
        return []

    def _load(self, stored: StoredReport) -> dict[str, Any]:
        report = json.loads(self._read(REPORTS_BUCKET, stored.prefix + REPORT_FILE))
        report["written"] = stored.written.isoformat() if stored.written else None
        return report

    def _read(self, bucket: str, key: str) -> bytes:
        from minio.error import S3Error

        try:
            return self.minio.read_back(bucket=bucket, key=key).data
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchBucket", "NoSuchObject"):
                raise ReportNotFound(f"s3://{bucket}/{key} does not exist") from None
            raise
