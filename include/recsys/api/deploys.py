"""The rows a deploy changes, inside the transaction the platform service (platform.py) opens for it.

A tenant has at most one live deployment, which takes its traffic, and any number of candidates
(``traffic_percent`` 0), loaded and answering only requests that pin their version. A model carries the
logical date its training data runs up to; ``refuse_older`` is what ``protect_newer_live`` checks so a
backfill of old days never downgrades production.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from include.recsys.api.errors import ApiError
from include.recsys.ml.serving import TenantModel

DEPLOYMENT_SQL = (
    "SELECT d.*, m.logical_date FROM deployments d"
    " JOIN model_versions m ON m.tenant_id = d.tenant_id AND m.version = d.version WHERE d.tenant_id = %s"
)


@dataclass(frozen=True)
class Deployed:
    """What one deploy did: the served model, its deployment row, and the live version it replaced."""

    tenant_id: str
    version: str
    role: str
    deployment_id: str
    reused: bool
    replaced: str | None
    logical_date: datetime | None
    traffic_percent: int
    model: TenantModel
    cache_dropped: int


def lock_tenant(cur, tenant_id: str) -> None:
    """Serialises deploys of one tenant across API processes, until the transaction ends."""
    cur.execute("SELECT id FROM tenants WHERE id = %s FOR UPDATE", (tenant_id,))


def registered_model(cur, tenant: dict, version: str) -> dict:
    cur.execute(
        "SELECT artifact_uri, logical_date FROM model_versions WHERE tenant_id = %s AND version = %s",
        (tenant["id"], version),
    )
    row = cur.fetchone()
    if row is None:
        raise ApiError(
            404, "model_not_found", f"tenant {tenant['slug']!r} has no registered model version {version[:100]!r}"
        )
    return row


def live_deployment(cur, tenant_id: str) -> dict | None:
    """The tenant's live deployment with its model's logical date, or None."""
    cur.execute(
        "SELECT d.id, d.version, d.traffic_percent, d.deployed_at, m.logical_date FROM deployments d"
        " JOIN model_versions m ON m.tenant_id = d.tenant_id AND m.version = d.version"
        " WHERE d.tenant_id = %s AND d.active AND d.role = 'live'",
        (tenant_id,),
    )
    return cur.fetchone()


def refuse_older(live: dict | None, *, version: str, logical_date: datetime | None) -> None:
    """409 when ``version`` would replace a live model that is newer, or whose age nobody knows."""
    if live is None or live["version"] == version:
        return
    live_date = live["logical_date"]
    about = {"live_version": live["version"], "live_logical_date": live_date.isoformat() if live_date else None}
    if live_date is None:
        raise ApiError(
            409,
            "live_model_undated",
            f"the live model {live['version']} has no logical date, so nobody can tell whether {version} is newer;"
            " it stays live (deploy without protect_newer_live to replace it anyway)",
            **about,
        )
    if logical_date is None or logical_date < live_date:
        mine = f"logical date {logical_date.isoformat()}" if logical_date else "no logical date"
        raise ApiError(
            409,
            "live_model_newer",
            f"the live model {live['version']} (logical date {live_date.isoformat()}) is newer than"
            f" {version} ({mine}); it stays live",
            **about,
        )


def refuse_candidate_of_live(live: dict | None, *, version: str, tenant_slug: str) -> None:
    if live is not None and live["version"] == version:
        raise ApiError(409, "version_is_live", f"{version} is the live model of tenant {tenant_slug!r} already")


def deploy_live(cur, *, tenant_id: str, version: str, traffic_percent: int, live: dict | None) -> tuple[str, bool]:
    """(deployment id, reused): the same version deployed again keeps its deployment row."""
    if live is not None and live["version"] == version:
        cur.execute("UPDATE deployments SET traffic_percent = %s WHERE id = %s", (traffic_percent, live["id"]))
        return live["id"], True
    if live is not None:
        cur.execute("UPDATE deployments SET active = false, ended_at = now() WHERE id = %s", (live["id"],))
    # A candidate of this version is promoted: it is served live now, not as a candidate as well.
    cur.execute(
        "UPDATE deployments SET active = false, ended_at = now()"
        " WHERE tenant_id = %s AND version = %s AND role = 'candidate' AND active",
        (tenant_id, version),
    )
    cur.execute(
        "UPDATE model_versions SET status = CASE WHEN version = %s THEN 'deployed' ELSE 'retired' END"
        " WHERE tenant_id = %s AND (version = %s OR status = 'deployed')",
        (version, tenant_id, version),
    )
    deployment_id = str(uuid.uuid4())
    cur.execute(
        "INSERT INTO deployments (id, tenant_id, version, traffic_percent, role) VALUES (%s, %s, %s, %s, 'live')",
        (deployment_id, tenant_id, version, traffic_percent),
    )
    return deployment_id, False


def deploy_candidate(cur, *, tenant_id: str, version: str) -> tuple[str, bool]:
    """(deployment id, reused): a version validated again as a candidate reuses its one candidate row."""
    cur.execute(
        "SELECT id FROM deployments WHERE tenant_id = %s AND version = %s AND role = 'candidate' FOR UPDATE",
        (tenant_id, version),
    )
    row = cur.fetchone()
    if row is not None:
        deployment_id, reused = row["id"], True
        cur.execute(
            "UPDATE deployments SET active = true, ended_at = NULL, deployed_at = now() WHERE id = %s", (deployment_id,)
        )
    else:
        deployment_id, reused = str(uuid.uuid4()), False
        cur.execute(
            "INSERT INTO deployments (id, tenant_id, version, traffic_percent, role)"
            " VALUES (%s, %s, %s, 0, 'candidate')",
            (deployment_id, tenant_id, version),
        )
    cur.execute(
        "UPDATE model_versions SET status = 'candidate' WHERE tenant_id = %s AND version = %s AND status <> 'deployed'",
        (tenant_id, version),
    )
    return deployment_id, reused


def end_candidate(cur, *, tenant: dict, deployment_id: str) -> tuple[dict, bool]:
    """(the deployment row as it is now, whether this call ended it); the live deployment is refused (409)."""
    cur.execute(f"{DEPLOYMENT_SQL} AND d.id = %s", (tenant["id"], deployment_id))
    row = cur.fetchone()
    if row is None:
        raise ApiError(
            404, "deployment_not_found", f"tenant {tenant['slug']!r} has no deployment {deployment_id[:100]!r}"
        )
    if row["role"] == "live" and row["active"]:
        raise ApiError(
            409,
            "live_deployment",
            f"{row['version']} is tenant {tenant['slug']!r}'s live model; deploy another version to replace it",
        )
    if not row["active"]:
        return row, False
    cur.execute(
        "UPDATE deployments SET active = false, ended_at = now() WHERE id = %s RETURNING ended_at", (row["id"],)
    )
    row = {**row, "active": False, "ended_at": cur.fetchone()["ended_at"]}
    cur.execute(
        "UPDATE model_versions SET status = 'registered' WHERE tenant_id = %s AND version = %s"
        " AND status = 'candidate'",
        (tenant["id"], row["version"]),
    )
    return row, True
