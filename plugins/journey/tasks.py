"""The bodies of the journey's tasks: run a stage, validate a stage, with the bookkeeping the report needs.

Each stage module exposes ``run(run, done) -> summary`` and ``validate(run, done) -> StageValidation`` where
``done`` maps earlier stages (and, for validate, the stage itself) to their run summaries, pulled from XCom, and
may expose ``rejected_rows(done) -> list[str]``, the rejected rows (a line per table) its failed suite reports.
Failures are pushed to XCom under ``failure`` so the report can say what broke even though a failed task has
no return value. Only transient errors are retried; bad input and failed expectations fail at once.

Each run summary carries ``attempt_started_at``, the platform database's clock when that attempt began: the
audit stage counts the platform actions of each stage's latest attempt from it, so a re-run reports the same
counts rather than every attempt's together (the audit log itself is append-only and keeps them all).
"""

from __future__ import annotations

import contextlib
import gc
import re
import socket
import time
from types import ModuleType
from typing import Any

from plugins.journey import (
    ALL_STAGES,
    OPTIONAL_STAGES,
    audit,
    deploy_model,
    feed_kafka,
    lineage,
    load_test,
    query_recommendations,
    resilience,
    seed_data,
    train_model,
    upload_to_minio,
)
from plugins.journey.pages import report_url
from plugins.journey.run import JourneyRun

# Each stage name to the module that runs and validates it (plugins/journey/<stage>.py).
STAGE_MODULES: dict[str, ModuleType] = {
    "seed_data": seed_data,
    "upload_to_minio": upload_to_minio,
    "feed_kafka": feed_kafka,
    "train_model": train_model,
    "deploy_model": deploy_model,
    "query_recommendations": query_recommendations,
    "audit": audit,
    "load_test": load_test,
    "resilience": resilience,
}
if tuple(STAGE_MODULES) != ALL_STAGES:
    raise ImportError(f"STAGE_MODULES lists {tuple(STAGE_MODULES)}; plugins.journey.ALL_STAGES is {ALL_STAGES}")

FAILURE_KEY = "failure"
# Each stage's last task prints one line in this shape when it ends; `make demo` shows just these lines.
PROGRESS = re.compile(
    r"^stage (?P<stage>\S+) \((?P<tenant>\S+)\): (?P<status>\w+) in (?P<seconds>[\d.]+) s"
    r"(?:; GX suite '[^']+': (?P<evaluated>\d+) evaluated, (?P<unsuccessful>\d+) unsuccessful)?(?:; (?P<rest>.*))?$"
)


def progress_line(*, stage: str, tenant: str, status: str, seconds: float, rest: str) -> str:
    return f"stage {stage} ({tenant}): {status} in {seconds:.2f} s; {rest}"


def is_transient(exc: BaseException) -> bool:
    """Worth a retry: the other side was unreachable or overloaded, not wrong."""
    import requests
    from kafka.errors import KafkaError
    from psycopg2 import OperationalError
    from urllib3.exceptions import HTTPError as Urllib3Error

    from plugins.hooks.recsys_api import RecsysApiError

    if isinstance(exc, RecsysApiError):
        return exc.status >= 500 or exc.status == 429
    return isinstance(
        exc,
        (
            ConnectionError,
            TimeoutError,
            socket.timeout,
            requests.ConnectionError,
            requests.Timeout,
            KafkaError,
            OperationalError,
            Urllib3Error,
        ),
    )


def pull(ti: Any, task_id: str, *, key: str = "return_value") -> Any:
    """An XCom of this tenant's own chain: without map_indexes Airflow 3 returns every map index's value."""
    return ti.xcom_pull(task_ids=task_id, key=key, map_indexes=ti.map_index)


def task_states(ti: Any) -> dict[str, str]:
    """The state of each task of this tenant's chain in this run ("seed_data.run" -> "success"), so the report
    pulls only the XComs that exist: the task SDK logs an error for every XCom asked for and not found."""
    found = ti.get_task_states(dag_id=ti.dag_id, map_index=ti.map_index, run_ids=[ti.run_id]).get(ti.run_id, {})
    suffix = f"_{ti.map_index}"
    return {task_id.removesuffix(suffix) if ti.map_index >= 0 else task_id: state for task_id, state in found.items()}


def summaries(ti: Any, *, through: str) -> dict[str, Any]:
    """Run summaries of every stage up to and including ``through``; an optional stage's only if it ran (asking
    for a skipped one's XCom would log an error)."""
    names = ALL_STAGES[: ALL_STAGES.index(through) + 1]
    optional = [name for name in names if name in OPTIONAL_STAGES]
    states = task_states(ti) if optional else {}
    return {
        name: pull(ti, f"{name}.run") if name not in optional or states.get(f"{name}.run") == "success" else None
        for name in names
    }


class UnknownConfKeys(ValueError):
    """A run's conf names keys the DAG has no param for."""


def check_conf(conf: Any, *, valid: Any) -> None:
    """Refuse conf keys that are not params: Airflow passes them through silently, so ``n_user`` would run with
    the default ``n_users`` its author meant to override."""
    unknown = sorted(set(conf or {}) - set(valid))
    if unknown:
        raise UnknownConfKeys(f"unknown conf keys: {', '.join(unknown)}; valid keys: {', '.join(sorted(valid))}")


def settle_heap() -> None:
    """Collect what earlier tasks left behind, then freeze every object still alive out of the collector's reach.

    By the journey's last tasks a process holds ~1.2M long-lived objects (Airflow, GX, pandas, torch and their
    modules), and every full collection walks them all: 15 of them took 4.0 s of a 45 s default-scale journey
    under `airflow dags test`, and the interpreter's last collection at exit 3 more. Frozen objects are never
    walked again; what a task allocates afterwards is collected as usual, and the next call collects it first,
    so nothing a task drops is kept. Airflow's executors freeze the same way before they fork (gc.freeze).
    """
    gc.collect()
    gc.freeze()
    release_free_memory()


def release_free_memory() -> None:
    """Hand the memory earlier tasks freed back to the OS. Under `airflow dags test` every task runs in one
    process, and both Arrow's memory pool (mimalloc) and glibc's heap keep freed memory for reuse. (The 6.4 GB
    a 100x journey held through its feed was mostly still referenced, by GX: see validation._release_batches.)
    A few ms; without glibc (musl) only Arrow's pool is released."""
    import ctypes
    import sys

    if (pyarrow := sys.modules.get("pyarrow")) is not None:  # never imported just to release
        pyarrow.default_memory_pool().release_unused()
    with contextlib.suppress(AttributeError, OSError):
        ctypes.CDLL(None).malloc_trim(0)


def run_stage(stage: str, context: Any, *, tenant: str) -> dict[str, Any]:
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from plugins.hooks.app_db import AppDbHook

    settle_heap()
    module = STAGE_MODULES[stage]
    journey = JourneyRun.from_context(context, tenant=tenant)
    ti = context["ti"]
    done = summaries(ti, through=ALL_STAGES[ALL_STAGES.index(stage) - 1]) if stage != ALL_STAGES[0] else {}
    start = time.monotonic()
    try:
        attempt_started_at = AppDbHook().now().isoformat()
        summary = module.run(journey, done)
    except AirflowSkipException:
        raise  # a stage that was not asked for (the fault drills): not a failure
    except Exception as exc:
        lineage.record_run(stage, context, run=journey, done=done)
        error = f"{type(exc).__name__}: {exc}"
        seconds = round(time.monotonic() - start, 3)
        ti.xcom_push(key=FAILURE_KEY, value={"error": error[:4000], "duration_s": seconds})
        if is_transient(exc):
            raise
        print(
            progress_line(
                stage=stage, tenant=tenant, status="failed", seconds=seconds, rest=error.splitlines()[0][:300]
            )
        )
        raise AirflowFailException(f"{stage} failed (not retried: not a transient error): {error}") from exc
    lineage.record_run(stage, context, run=journey, done={**done, stage: summary})
    return {**summary, "attempt_started_at": attempt_started_at, "duration_s": round(time.monotonic() - start, 3)}


def validate_stage(stage: str, context: Any, *, tenant: str) -> dict[str, Any]:
    from plugins.validation import raise_for_validation

    settle_heap()
    module = STAGE_MODULES[stage]
    journey = JourneyRun.from_context(context, tenant=tenant)
    ti = context["ti"]
    done = summaries(ti, through=stage)
    result = module.validate(journey, done)
    # The log ends with what the suite proved and where the run's report page is (the report task writes it).
    print(
        progress_line(
            stage=stage,
            tenant=tenant,
            status="success" if result.success else "failed",
            seconds=float((done.get(stage) or {}).get("duration_s") or 0) + result.duration_s,
            rest=f"GX suite {result.suite!r}: {result.evaluated} evaluated, {result.unsuccessful} unsuccessful;"
            f" report: {report_url(journey.run_id, tenant)}",
        )
    )
    lineage.record_validation(stage, context, run=journey, done=done, validation=result)
    # A stage may say more about why its data failed (seed_data: the rejected rows, counted by reason).
    rejected = module.rejected_rows(done) if not result.success and hasattr(module, "rejected_rows") else []
    return raise_for_validation(
        result, ti=ti, rejected_rows=rejected, footer=f"report: {report_url(journey.run_id, tenant)}"
    )
