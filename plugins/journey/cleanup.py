"""cleanup: a run removes what it made on the platform for its own use, whatever happened upstream.

- its API keys (query_recommendations' sample and probe keys, the fault drills' keys) are revoked: they answer
  401 from now on;
- its candidate deployment, if deploy_model validated the version as one, is ended (unloaded; the row stays
  and a re-run of the day reuses it);
- the tenant its isolation probes aimed at is deleted.

Everything is found on the platform by tenant and run key, not through XCom, so a run that failed half-way
is cleaned up as well, and running cleanup twice changes nothing the second time.
"""

from __future__ import annotations

from typing import Any

from plugins.journey.query_recommendations import probe_tenant_slug, revoke_run_keys
from plugins.journey.run import JourneyRun


def run(journey: JourneyRun) -> dict[str, Any]:
    from plugins.hooks.recsys_api import RecsysApiHook

    api = RecsysApiHook(run_key=journey.run_key)
    summary: dict[str, Any] = {"api_keys_revoked": 0, "candidates_ended": 0, "probe_tenant_deleted": False}
    tenant = api.tenant(journey.tenant)
    if tenant is not None:
        tenant_id = tenant["tenant_id"]
        summary["api_keys_revoked"] = len(revoke_run_keys(api, tenant_id=tenant_id, run=journey))
        mine = [
            d for d in api.deployments(tenant_id) if d["role"] == "candidate" and d["version"] == journey.model_version
        ]
        for deployment in mine:
            api.end_deployment(tenant_id, deployment["deployment_id"])
        summary["candidates_ended"] = len(mine)
    if journey.params.get("fault_drills"):
        from plugins.journey.resilience import drill_tenant

        drills = api.tenant(drill_tenant(journey))
        if drills is not None:
            summary["api_keys_revoked"] += len(revoke_run_keys(api, tenant_id=drills["tenant_id"], run=journey))
    probe = api.tenant(probe_tenant_slug(tenant=journey.tenant, run_key=journey.run_key))
    if probe is not None:
        api.delete_tenant(probe["tenant_id"])
        summary["probe_tenant_deleted"] = True
    return summary


def run_for_context(context: Any, *, tenant: str) -> dict[str, Any]:
    summary = run(JourneyRun.from_context(context, tenant=tenant))
    probe = "deleted" if summary["probe_tenant_deleted"] else "absent"
    print(
        f"cleanup of {tenant}: {summary['api_keys_revoked']} API key(s) revoked, {summary['candidates_ended']}"
        f" candidate deployment(s) ended, isolation-probe tenant {probe}"
    )
    return summary
