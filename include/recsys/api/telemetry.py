"""Prometheus metrics in the text exposition format, kept in process (no client library needed)."""

from __future__ import annotations

import os
import threading
from bisect import bisect_left
from collections import defaultdict

LATENCY_BUCKETS_S: tuple[float, ...] = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


def resident_memory_bytes() -> int | None:
    """This process's current RSS (Linux /proc), the standard process_resident_memory_bytes; None elsewhere."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(**labels: str) -> str:
    return "{" + ",".join(f'{name}="{_escape(str(value))}"' for name, value in labels.items()) + "}"


class Telemetry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        # (method, route, status) -> [count, sum of seconds, per-bucket counts (non-cumulative)]
        self._requests: dict[tuple[str, str, str], list] = defaultdict(
            lambda: [0, 0.0, [0] * (len(LATENCY_BUCKETS_S) + 1)]
        )

    def observe(self, *, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            entry = self._requests[(method, route, str(status))]
            entry[0] += 1
            entry[1] += seconds
            entry[2][bisect_left(LATENCY_BUCKETS_S, seconds)] += 1

    def render(
        self,
        *,
        model_versions: dict[str, str],
        cache: dict[str, int] | None = None,
        health: dict[str, bool] | None = None,
    ) -> str:
        """``cache``: the response cache's lookups by result (hit, miss, error, bypass); None without a cache.
        ``health``: each dependency check of /health, ok or not (what the "platform degraded" alert reads)."""
        with self._lock:
            snapshot = {key: (count, total, list(buckets)) for key, (count, total, buckets) in self._requests.items()}
        lines = [
            "# HELP recsys_http_requests_total HTTP requests by method, route template and status.",
            "# TYPE recsys_http_requests_total counter",
        ]
        for (method, route, status), (count, _total, _buckets) in sorted(snapshot.items()):
            lines.append(f"recsys_http_requests_total{_labels(method=method, route=route, status=status)} {count}")
        lines += [
            "# HELP recsys_http_request_duration_seconds Request latency by method, route template and status.",
            "# TYPE recsys_http_request_duration_seconds histogram",
        ]
        for (method, route, status), (count, total, buckets) in sorted(snapshot.items()):
            cumulative = 0
            for bound, in_bucket in zip((*LATENCY_BUCKETS_S, float("inf")), buckets, strict=True):
                cumulative += in_bucket
                le = "+Inf" if bound == float("inf") else repr(bound)
                labels = _labels(method=method, route=route, status=status, le=le)
                lines.append(f"recsys_http_request_duration_seconds_bucket{labels} {cumulative}")
            labels = _labels(method=method, route=route, status=status)
            lines.append(f"recsys_http_request_duration_seconds_sum{labels} {total:.6f}")
            lines.append(f"recsys_http_request_duration_seconds_count{labels} {count}")
        lines += [
            "# HELP recsys_model_info The model version this process serves per tenant (value is always 1).",
            "# TYPE recsys_model_info gauge",
        ]
        for tenant_id, version in sorted(model_versions.items()):
            lines.append(f"recsys_model_info{_labels(tenant_id=tenant_id, version=version)} 1")
        rss = resident_memory_bytes()
        if rss is not None:
            # What the load stage's soak samples: memory that keeps growing under constant load is a leak.
            lines += [
                "# HELP process_resident_memory_bytes Resident memory size in bytes.",
                "# TYPE process_resident_memory_bytes gauge",
                f"process_resident_memory_bytes {rss}",
            ]
        if cache is not None:
            lines += [
                "# HELP recsys_cache_requests_total Response cache lookups by result: hit, miss, error (Redis failed),"
                " bypass (skipped after a failure).",
                "# TYPE recsys_cache_requests_total counter",
            ]
            lines += [f"recsys_cache_requests_total{_labels(result=result)} {n}" for result, n in cache.items()]
            lookups = sum(cache.values())
            lines += [
                "# HELP recsys_cache_hit_ratio Hits over all lookups since the process started.",
                "# TYPE recsys_cache_hit_ratio gauge",
                f"recsys_cache_hit_ratio {cache['hit'] / lookups if lookups else 0.0:.6f}",
            ]
        if health is not None:
            lines += [
                "# HELP recsys_health_check_up 1 if the /health check of a dependency passes, 0 if it fails.",
                "# TYPE recsys_health_check_up gauge",
            ]
            lines += [f"recsys_health_check_up{_labels(check=name)} {int(ok)}" for name, ok in sorted(health.items())]
        return "\n".join(lines) + "\n"
