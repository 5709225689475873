"""Secrets of a local stack: generated once, persisted mode 600 under the local dir, never printed.

They survive down/up because the servers' own state (Postgres roles, Tansu's objects in S3) was
created with them.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class StackSecrets:
    pg_superuser_password: str
    airflow_db_password: str
    app_db_password: str
    history_db_password: str
    s3_access_key: str
    s3_secret_key: str
    admin_token: str
    airflow_admin_password: str  # the Airflow UI/API login "admin" (SimpleAuthManager) of `make airflow`
    redis_password: str  # the stack's own redis-server (requirepass)
    # The bearer token Prometheus scrapes with: the platform's RECSYS_METRICS_TOKEN and the Journey app's
    # JOURNEY_METRICS_TOKEN (one scraper, one token).
    metrics_token: str
    prometheus_password: str  # the stack's Prometheus web login "prometheus" (`make prometheus`)

    def __repr__(self) -> str:
        return "StackSecrets(<redacted>)"


def _generate(name: str) -> str:
    if name == "s3_access_key":
        # S3 access key ids are conventionally upper-case alphanumerics.
        return "RECSYS" + secrets.token_hex(7).upper()
    return secrets.token_urlsafe(24)


def write_private(path: str, text: str) -> None:
    """Write atomically, readable by the owner only from the first byte on."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create(path: str) -> StackSecrets:
    """Existing values are kept; only names missing from the file are generated."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    # Two first-time starters must not each generate (and use) a different set.
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored: dict[str, str] = {}
        if os.path.exists(path):
            with open(path) as fh:
                stored = json.load(fh)
        names = [f.name for f in fields(StackSecrets)]
        missing = [n for n in names if not stored.get(n)]
        if missing:
            stored.update({n: _generate(n) for n in missing})
            write_private(path, json.dumps(stored, indent=2, sort_keys=True) + "\n")
    return StackSecrets(**{n: stored[n] for n in names})
