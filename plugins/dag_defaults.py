"""default_args every DAG of the platform shares: one owner, exponential backoff, the failure alert."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from plugins.alerts import on_failure

OWNER = "recsys-platform"


def default_args(
    *, retries: int, retry_delay: timedelta, max_retry_delay: timedelta, execution_timeout: timedelta | None = None
) -> dict[str, Any]:
    args: dict[str, Any] = {
        "owner": OWNER,
        "retries": retries,
        "retry_delay": retry_delay,
        # A multiplier in Airflow 3.3 (True would mean 1.0, no growth): delay, 2x, 4x, ... up to the max.
        "retry_exponential_backoff": 2.0,
        "max_retry_delay": max_retry_delay,
        "on_failure_callback": on_failure,
    }
    if execution_timeout is not None:
        args["execution_timeout"] = execution_timeout
    return args
