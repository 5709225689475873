"""resilience: fault drills on the real stack, each reconciled afterwards (param ``fault_drills``, off by default).

Each drill breaks one platform component for real (include/stack/faults.py: processes stopped or SIGKILLed,
the app database blocked), keeps working through it, restores it, and records what was broken, for how
long, how many operations had to be retried, and the reconciliation: events expected vs landed, missing,
duplicated, and named checks. The suites in expectations/resilience/ then proves nothing was lost.

Drills use their own tenant (``<tenant>-drills``) and their own sources, so the journey's own data is not
touched; the database and cache drills need a served model and so use the journey's tenant read-only. They run only
against a local stack started by `make up` (a drill pointed at a real deployment is refused), and they
break shared components: run them with one tenant, not beside other runs.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

import pandas as pd

from include.config import INTERACTIONS_TOPIC, RAW_BUCKET
from plugins.journey.run import JourneyRun

DRILL_EVENTS = 20_000
DRILL_USERS, DRILL_ITEMS = 300, 100
OUTAGE_S = 3.0
RECOVERY_TIMEOUT_S = 60.0
PAUSE_EVERY, PAUSE_S = 1_000, 0.05  # paces the broker drill's feed so the outage lands in the middle of it
# The worker drill's feed is paced slower: a worker that lands a whole batch per transaction must still be
# mid-feed when it is killed, however fast it lands.
KILL_PAUSE_S = 0.25


def drill_tenant(run: JourneyRun) -> str:
    return f"{run.tenant}-drills"[:63]


def _source(run: JourneyRun, drill: str) -> str:
    return f"{run.run_key}-drill-{drill}"


def _wait_for(check: Callable[[], bool], *, timeout_s: float, what: str) -> float:
    start = time.monotonic()
    while not check():
        if time.monotonic() - start > timeout_s:
            raise TimeoutError(f"{what} not within {timeout_s:g}s")
        time.sleep(0.25)
    return time.monotonic() - start


def outcome(drill: str, check: str, ok: bool, detail: str = "") -> dict[str, str]:
    return {"drill": drill, "check": check, "outcome": f"{drill}.{check}: {'ok' if ok else 'FAILED ' + detail}"}


def _reconcile(
    *, tenant_id: str, source: str, since: datetime, expected: pd.Series, timeout_s: float
) -> dict[str, int]:
    """Only rows written since the drill began count: a rerun re-sends the same event ids (upserted, never
    duplicated), and rows an earlier attempt landed must not hide what this attempt's fault lost."""
    from plugins.hooks.app_db import AppDbHook
    from plugins.journey.feed_kafka import wait_for_landing

    wait_for_landing(tenant_id=tenant_id, source=source, expected=len(expected), timeout_s=timeout_s, since=since)
    return reconciliation(expected, AppDbHook().landed(tenant_id=tenant_id, source=source, since=since))


def reconciliation(expected: pd.Series, landed: pd.DataFrame) -> dict[str, int]:
    """Events expected against the rows landed: how many landed, which expected ids are missing, how many
    ids landed twice (ids compared as text, whatever type the database hands back)."""
    ids = set(landed["event_id"].astype(str))
    return {
        "expected": len(expected),
        "landed": len(landed),
        "missing": len(set(expected.astype(str)) - ids),
        "duplicates": int(landed["event_id"].astype(str).duplicated().sum()),
    }


def _paced(messages: Iterable[tuple[bytes, bytes]], *, pause_s: float = PAUSE_S) -> Iterator[tuple[bytes, bytes]]:
    for i, message in enumerate(messages):
        if i and i % PAUSE_EVERY == 0:
            time.sleep(pause_s)
        yield message


def object_store_down_during_upload(run, faults, ctx) -> tuple[dict, list[dict]]:
    """Uploads fail cleanly (a transient error, so the task retries) while S3 is down, and the API's /health
    says 503 naming storage; once S3 is back, /health recovers, the same upload completes with the same
    checksum, registers the catalog, and leaves no partial object."""
    from include.checksums import sha256_bytes
    from plugins.hooks.minio import MinioHook
    from plugins.journey.tasks import is_transient

    drill, minio = "object_store_down_during_upload", MinioHook()
    body = ctx["data"].items.to_csv(index=False).encode()
    key = f"{drill_tenant(run)}/{run.run_key}/drills/items.csv"
    from plugins.hooks.recsys_api import RecsysApiHook

    api = RecsysApiHook(run_key=run.run_key)
    attempts, error, health_named = 0, None, False
    stopped = time.monotonic()
    faults.stop("seaweedfs")
    try:
        attempts += 1
        minio.put_bytes(bucket=RAW_BUCKET, key=key, data=body, content_type="text/csv")
    except Exception as exc:  # the point of the drill: which error, and how fast
        error = exc
    finally:
        failed_after = time.monotonic() - stopped
        try:
            _wait_for(
                lambda: "storage" in api.health()[1].get("failing", []), timeout_s=15, what="/health naming storage"
            )
            health_named = True
        except TimeoutError:
            pass
        faults.start("seaweedfs")
        faults.start("kafka")  # Tansu keeps its log on this S3: bring it back too if the outage took it down
    outage = time.monotonic() - stopped
    recovered = _wait_for(lambda: api.health()[0] == 200, timeout_s=RECOVERY_TIMEOUT_S, what="/health back to 200")
    attempts += 1
    stored = minio.put_bytes(bucket=RAW_BUCKET, key=key, data=body, content_type="text/csv")
    back = minio.read_back(bucket=RAW_BUCKET, key=key)
    listed = sorted(o.object_name for o in minio.client.list_objects(RAW_BUCKET, prefix=key.rsplit("/", 1)[0] + "/"))
    api.register_upload(
        ctx["tenant_id"],
        kind="items",
        bucket=RAW_BUCKET,
        object_key=key,
        rows=len(ctx["data"].items),
        sha256=stored.sha256,
        source=f"{run.run_key}-drill-catalog",
    )
    record = {
        "drill": drill,
        "broken": "seaweedfs (S3)",
        "outage_s": round(outage, 2),
        "retried": attempts - 1,
        "expected": 1,
        "landed": int(back.sha256 == sha256_bytes(body)),
        "missing": 0,
        "duplicates": 0,
        "error": f"{type(error).__name__}: {error}"[:300] if error else None,
        "failed_after_s": round(failed_after, 2),
        "health_recovered_in_s": round(recovered, 2),
    }
    checks = [
        outcome(drill, "health_names_storage", health_named, "/health never named storage while S3 was down"),
        outcome(drill, "upload_failed_while_down", error is not None, "the upload succeeded with S3 stopped"),
        outcome(
            drill, "failure_is_transient", error is not None and is_transient(error), f"{error!r} would not be retried"
        ),
        outcome(
            drill, "same_checksum_after", back.sha256 == back.metadata_sha256 == sha256_bytes(body), "checksum differs"
        ),
        outcome(drill, "no_partial_objects", listed == [key], f"objects under the prefix: {listed}"),
    ]
    return record, checks


def broker_down_during_feed(run, faults, ctx) -> tuple[dict, list[dict]]:
    """The producer buffers and retries while the broker is down; every event lands exactly once."""
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.kafka import KafkaHook, ProduceResult
    from plugins.journey.feed_kafka import messages

    drill = "broker_down_during_feed"
    events = ctx["data"].interactions.iloc[: DRILL_EVENTS // 2]
    source, since = _source(run, drill), AppDbHook().now()
    progress = ProduceResult()
    feeder = threading.Thread(
        target=KafkaHook().produce,
        args=(INTERACTIONS_TOPIC, _paced(messages(events, tenant=drill_tenant(run), source=source))),
        kwargs={"result": progress},
    )
    feeder.start()
    _wait_for(lambda: progress.acked > 0, timeout_s=30, what="first acknowledged event")
    stopped = time.monotonic()
    faults.stop("kafka")
    in_flight = progress.produced - progress.acked
    time.sleep(OUTAGE_S)
    faults.start("kafka")
    outage = time.monotonic() - stopped
    feeder.join()
    counts = _reconcile(
        tenant_id=ctx["tenant_id"],
        source=source,
        since=since,
        expected=events["event_id"],
        timeout_s=RECOVERY_TIMEOUT_S,
    )
    record = {
        "drill": drill,
        "broken": "kafka broker",
        "outage_s": round(outage, 2),
        "retried": in_flight,
        "acked": progress.acked,
        "failed_sends": progress.failed,
        **counts,
    }
    checks = [outcome(drill, "every_send_acked", progress.failed == 0, "; ".join(progress.errors))]
    return record, checks


def worker_killed_mid_batch(run, faults, ctx) -> tuple[dict, list[dict]]:
    """SIGKILL the ingestion worker while it lands a feed; restarted, it neither loses nor duplicates."""
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.kafka import KafkaHook, ProduceResult
    from plugins.journey.feed_kafka import messages

    drill = "worker_killed_mid_batch"
    events = ctx["data"].interactions.iloc[DRILL_EVENTS // 2 :]
    db = AppDbHook()
    source, since = _source(run, drill), db.now()
    sent = ProduceResult()
    paced = _paced(messages(events, tenant=drill_tenant(run), source=source), pause_s=KILL_PAUSE_S)
    feeder = threading.Thread(target=KafkaHook().produce, args=(INTERACTIONS_TOPIC, paced), kwargs={"result": sent})
    feeder.start()
    landed_now = lambda: db.count_landed(tenant_id=ctx["tenant_id"], source=source, since=since)  # noqa: E731
    _wait_for(lambda: landed_now() > 0, timeout_s=RECOVERY_TIMEOUT_S, what="first landed event")
    killed = time.monotonic()
    pid = faults.kill("recsys-ingest")
    landed_at_kill = landed_now()
    faults.start("recsys-ingest")
    outage = time.monotonic() - killed
    feeder.join()
    counts = _reconcile(
        tenant_id=ctx["tenant_id"],
        source=source,
        since=since,
        expected=events["event_id"],
        timeout_s=RECOVERY_TIMEOUT_S,
    )
    record = {
        "drill": drill,
        "broken": f"recsys-ingest (pid {pid}, SIGKILL)",
        "outage_s": round(outage, 2),
        "retried": counts["expected"] - landed_at_kill,
        "landed_at_kill": landed_at_kill,
        **counts,
    }
    checks = [
        outcome(drill, "every_send_acked", sent.failed == 0, "; ".join(sent.errors)),
        outcome(drill, "killed_mid_feed", landed_at_kill < counts["expected"], "the feed had landed before the kill"),
    ]
    return record, checks


def database_down_for_api(run, faults, ctx) -> tuple[dict, list[dict]]:
    """With its database gone, the API says so on /health, keeps serving the loaded model, refuses writes
    with a clear 503, and recovers by itself once the database is back."""
    from plugins.hooks.recsys_api import RecsysApiHook
    from plugins.journey.query_recommendations import RECOMMEND_PATH

    drill, api = "database_down_for_api", RecsysApiHook(run_key=run.run_key)
    tenant_id, user_id = ctx["journey_tenant_id"], ctx["journey_user_id"]
    api_key, _ = api.create_api_key(tenant_id, name=f"drill {run.run_key}")
    body = {"user_id": user_id, "count": 10}
    warm = api.call_as_tenant(
        "POST", RECOMMEND_PATH, api_key=api_key, json=body
    )  # caches the key, as live traffic does
    statuses, write_status, write_code, named = [], None, None, False
    started = time.monotonic()
    with faults.app_database_down():
        try:
            _wait_for(
                lambda: "database" in api.health()[1].get("failing", []),
                timeout_s=15,
                what="/health naming the database",
            )
            named = True
        except TimeoutError:
            pass
        for _ in range(20):
            statuses.append(api.call_as_tenant("POST", RECOMMEND_PATH, api_key=api_key, json=body).status_code)
        write = api.admin_request("POST", f"/api/admin/tenants/{tenant_id}/apikeys", json={"name": "during outage"})
        write_status, write_code = write.status_code, (write.json() if write.content else {}).get("code")
    outage = time.monotonic() - started
    recovered_in = _wait_for(lambda: api.health()[0] == 200, timeout_s=RECOVERY_TIMEOUT_S, what="/health back to 200")
    after = api.call_as_tenant("POST", RECOMMEND_PATH, api_key=api_key, json=body).status_code
    record = {
        "drill": drill,
        "broken": "app database (connections refused)",
        "outage_s": round(outage, 2),
        "retried": 0,
        "expected": len(statuses),
        "landed": statuses.count(200),
        "missing": 0,
        "duplicates": 0,
        "recovered_in_s": round(recovered_in, 2),
    }
    checks = [
        outcome(drill, "warm_request_served", warm.status_code == 200, f"status {warm.status_code}"),
        outcome(drill, "health_names_database", named, "/health never named the database"),
        outcome(
            drill, "served_during_outage", statuses.count(200) == len(statuses), f"statuses {sorted(set(statuses))}"
        ),
        outcome(
            drill,
            "writes_refused_with_503",
            write_status == 503 and write_code == "database_unavailable",
            f"write answered {write_status} {write_code}",
        ),
        outcome(drill, "served_after_recovery", after == 200, f"status {after}"),
    ]
    return record, checks


def api_down(run, faults, ctx) -> tuple[dict, list[dict]]:
    """A stopped API is reported as such (naming where it was called); restarted, it serves again, and a
    tenant with no deployed model gets popular items flagged as a fallback."""
    from plugins.hooks.recsys_api import RecsysApiHook
    from plugins.journey.query_recommendations import RECOMMEND_PATH

    drill, api = "api_down", RecsysApiHook(run_key=run.run_key)
    started = time.monotonic()
    error = None
    with faults.stopped("recsys-api"):
        try:
            api.health()
        except Exception as exc:  # the point of the drill: what a caller sees
            error = f"{type(exc).__name__}: {exc}"
    outage = time.monotonic() - started
    _wait_for(lambda: api.health()[0] == 200, timeout_s=RECOVERY_TIMEOUT_S, what="/health after restart")
    api_key, _ = api.create_api_key(ctx["tenant_id"], name=f"drill fallback {run.run_key}")
    user_id = str(ctx["data"].interactions["user_id"].iloc[0])
    cold = api.call_as_tenant("POST", RECOMMEND_PATH, api_key=api_key, json={"user_id": user_id, "count": 5})
    answer = cold.json() if cold.status_code == 200 else {}
    record = {
        "drill": drill,
        "broken": "recsys-api",
        "outage_s": round(outage, 2),
        "retried": 0,
        "expected": 1,
        "landed": int(cold.status_code == 200),
        "missing": 0,
        "duplicates": 0,
        "error": (error or "")[:300],
    }
    checks = [
        outcome(
            drill,
            "outage_reported",
            error is not None and f"unreachable at {api.base_url}" in error,
            f"error was {error!r}",
        ),
        outcome(
            drill,
            "fallback_flagged",
            answer.get("fallback") is True and len(answer.get("items", [])) > 0,
            f"status {cold.status_code}, body {str(answer)[:200]}",
        ),
    ]
    return record, checks


CACHE_LOAD_S, CACHE_LOAD_VUS, CACHE_THINK_S = 24.0, 10, 0.1
CACHE_OUTAGE_S = 6.0


def cache_down(run, faults, ctx) -> tuple[dict, list[dict]]:
    """Redis stopped under k6 load: every request is still answered 200 (slower, computed per request), /health
    says the cache is degraded with HTTP 200 (not the platform down), and once Redis is back the cache answers
    again (a repeated request is a hit)."""
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.recsys_api import RecsysApiHook
    from plugins.journey import k6
    from plugins.journey.load_test import load_users
    from plugins.journey.query_recommendations import RECOMMEND_PATH

    drill, api = "cache_down", RecsysApiHook(run_key=run.run_key)
    tenant_id = ctx["journey_tenant_id"]
    api_key, _ = api.create_api_key(tenant_id, name=f"drill cache {run.run_key}")
    users = load_users(AppDbHook().landed(tenant_id=tenant_id), size=200)
    load_outcome: dict[str, Any] = {}

    def load() -> None:
        try:
            load_outcome["summary"] = k6.run(
                base_url=api.base_url,
                api_key=api_key,
                users=users,
                categories=[],
                think_s=CACHE_THINK_S,
                count=10,
                profile=k6.Profile(vus=CACHE_LOAD_VUS, duration_s=CACHE_LOAD_S),
                work_dir=os.path.join(run.work_dir, "drills"),
                name=drill,
            )
        except Exception as exc:  # reported as the drill's failure below, not lost in the thread
            load_outcome["error"] = f"{type(exc).__name__}: {exc}"

    loader = threading.Thread(target=load, name="cache-drill-load")
    loader.start()
    time.sleep(CACHE_LOAD_S / 4)  # the cache is warm and answering when it goes
    stopped = time.monotonic()
    faults.stop("redis")
    degraded: dict[str, Any] = {}
    try:

        def says_degraded() -> bool:
            status, body = api.health()
            degraded.update(status=status, body=body)
            return "cache" in (body.get("degraded") or []) or "cache" in (body.get("failing") or [])

        _wait_for(says_degraded, timeout_s=15, what="/health naming the cache")
        time.sleep(max(0.0, CACHE_OUTAGE_S - (time.monotonic() - stopped)))
    except TimeoutError:
        pass
    finally:
        faults.start("redis")
    outage = time.monotonic() - stopped
    recovered_in = _wait_for(
        lambda: api.health()[1].get("status") == "healthy",
        timeout_s=RECOVERY_TIMEOUT_S,
        what="/health healthy with the cache back",
    )
    loader.join()
    body = {"user_id": users[0], "count": 10}
    repeated = [api.call_as_tenant("POST", RECOMMEND_PATH, api_key=api_key, json=body) for _ in range(3)]
    summary = load_outcome.get("summary") or {"requests": 0, "errors": 0, "errors_by_status": {}}
    served = summary["requests"] - summary["errors"]
    record = {
        "drill": drill,
        "broken": "redis (response cache)",
        "outage_s": round(outage, 2),
        "retried": 0,
        "expected": summary["requests"],
        "landed": served,
        "missing": summary["errors"],
        "duplicates": 0,
        "p95_ms": summary.get("p95_ms"),
        "cache_hit_rate": summary.get("cache_hit_rate"),
        "health_during": degraded.get("status"),
        "recovered_in_s": round(recovered_in, 2),
    }
    checks = [
        outcome(
            drill,
            "load_ran",
            "summary" in load_outcome and summary["requests"] > 0,
            load_outcome.get("error", "no requests"),
        ),
        outcome(
            drill,
            "no_request_lost",
            summary["requests"] > 0 and summary["errors"] == 0,
            f"{summary['errors']} of {summary['requests']} failed: {summary['errors_by_status']}",
        ),
        outcome(
            drill,
            "health_degraded_not_down",
            degraded.get("status") == 200 and "cache" in (degraded.get("body") or {}).get("degraded", []),
            f"/health answered {degraded.get('status')} {str(degraded.get('body'))[:200]}",
        ),
        outcome(
            drill,
            "hit_rate_recovers",
            [r.status_code for r in repeated] == [200] * 3 and repeated[-1].headers.get("X-Cache") == "hit",
            f"after recovery: {[(r.status_code, r.headers.get('X-Cache')) for r in repeated]}",
        ),
    ]
    return record, checks


Drill = Callable[[JourneyRun, Any, dict[str, Any]], tuple[dict, list[dict]]]
# The drills in the order they run: each breaks one component and returns (its record, its checks).
DRILLS: dict[str, Drill] = {
    "object_store_down_during_upload": object_store_down_during_upload,
    "broker_down_during_feed": broker_down_during_feed,
    "worker_killed_mid_batch": worker_killed_mid_batch,
    "database_down_for_api": database_down_for_api,
    "api_down": api_down,
    "cache_down": cache_down,
}


def context(run: JourneyRun, *, journey_tenant_id: str | None) -> dict[str, Any]:
    """What the drills share: the drills tenant and its data, and the journey's served tenant (if any)."""
    from include.recsys.datagen import generate
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.recsys_api import RecsysApiHook

    slug = drill_tenant(run)
    tenant = RecsysApiHook(run_key=run.run_key).ensure_tenant(slug=slug, name=slug, email=f"ops@{slug}.example.com")
    ctx: dict[str, Any] = {
        "tenant_id": tenant["tenant_id"],
        "data": generate(
            tenant=slug,
            interval_start=run.window_start,
            interval_end=run.window_end,
            seed=int(run.params["seed"]) + 7919,
            n_users=DRILL_USERS,
            n_items=DRILL_ITEMS,
            n_interactions=DRILL_EVENTS,
        ),
    }
    if journey_tenant_id is not None:
        landed = AppDbHook().landed(tenant_id=journey_tenant_id, source=run.run_key)
        ctx.update(journey_tenant_id=journey_tenant_id, journey_user_id=str(landed["user_id"].iloc[0]))
    return ctx


def run(journey: JourneyRun, done: dict[str, Any]) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowSkipException

    if not journey.params.get("fault_drills"):
        raise AirflowSkipException("fault drills not requested (param fault_drills)")
    from include.stack.faults import LocalStackFaults

    ctx = context(journey, journey_tenant_id=done["seed_data"]["tenant_id"])
    faults = LocalStackFaults()
    drills, checks = [], []
    for drill in DRILLS.values():
        record, outcomes = drill(journey, faults, ctx)
        drills.append(record)
        checks.extend(outcomes)
    return {"drills": drills, "checks": checks}


def frames(summary: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The suite's batches: each drill's reconciliation (the columns the suite checks) and its named checks."""
    return {
        "drills": pd.DataFrame(summary["drills"])[
            ["drill", "broken", "outage_s", "expected", "landed", "missing", "duplicates"]
        ],
        "checks": pd.DataFrame(summary["checks"]),
    }


def validate(run: JourneyRun, done: dict[str, Any]):
    from plugins.validation import validate_stage

    return validate_stage(
        "resilience", frames(done["resilience"]), parameters={}, results_dir=run.gx_dir, run_name=run.run_id
    )
