"""python -m bench [--scale 1x|10x|100x] [--reps N] [--only PARTS] [--update-baseline]

Runs on the local stack whose env file is sourced (make bench does both), prints the table, writes
bench/results/<timestamp>.json and bench/results/latest.json (latest-10x.json and latest-100x.json for the
larger journeys), and flags figures more than 20 % worse than bench/baseline.json. Exit 1 only when the bench itself could not
run (e.g. a journey failed); a missed target or a regression is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from typing import Any

# The clients' INFO chatter (kafka connections, every SQL statement) would bury the table, so this process
# logs errors only; set before anything imports Airflow. The journeys run with the caller's environment.
JOURNEY_ENV = dict(os.environ)
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "ERROR"

from bench import BASELINE, RESULTS_DIR, journey, serving, stats, training, transfer  # noqa: E402
from bench.stats import Figure, Stat, Target  # noqa: E402

PARTS = ("journey", "transfer", "training", "serving")
SCALES = {
    "1x": {"n_users": 10_000, "n_items": 5_000, "n_interactions": 100_000},
    "10x": {"n_users": 100_000, "n_items": 20_000, "n_interactions": 1_000_000},
    # A step of the 100x graph takes ~10 s (2026-12-08): the default 30 s budget buys 3 steps, so the 100x tenant
    # gets the budget an operator would set for it (train_time_budget_s), what the 30 min leaves after the
    # other stages (~1,300 s measured).
    "100x": {"n_users": 1_000_000, "n_items": 200_000, "n_interactions": 10_000_000, "train_time_budget_s": 400},
}
# Beyond these the bench stops the journey and names the stage it was in (issue 13's 100x limits).
GUARDS = {"100x": {"wall_limit_s": 1800.0, "pss_limit_bytes": 12 * 2**30}}
LOGICAL_DATE = "2026-11-20"
# issue 13's targets. The journey's wall is `airflow dags test` with the stack already up.
JOURNEY_TARGET_S = {"1x": 45.0, "10x": 120.0, "100x": 1800.0}
PEAK_RSS_TARGET_GB = 4.0  # the journey's processes at 10x
PEAK_PSS_TARGET_GB = {"10x": 6.0, "100x": 12.0}  # the journey plus every platform process
GX_SHARE_TARGET_PCT = 10.0
STAGE_TARGET_S = {"10x": {"train_model": 40.0}}
LIFT_TARGET = 1.5  # the model's NDCG@10 over the popularity baseline's, in the same run
WRK_SECONDS = 4.0
P95_TARGET_MS, RPS_TARGET, TARGET_CONCURRENCY = 25.0, 500.0, 32
RATIO_TARGET = Target(">=", 0.8, on="ratio")
DRAIN_TARGET = Target(">=", 0.5, on="ratio")


def machine() -> dict[str, Any]:
    import psutil

    model = next(
        (ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")),
        platform.processor(),
    )
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def run_journeys(*, scale: str, reps: int, stamp: str, work_dir: str) -> tuple[list[Figure], dict[str, Any]]:
    runs, failures = [], []
    for rep in range(reps):
        tenant = f"bench-{scale}-{stamp}-{rep}"
        log(f"journey {rep + 1}/{reps} at {scale} scale, tenant {tenant}")
        run = journey.run_journey(
            tenant=tenant,
            logical_date=LOGICAL_DATE,
            params=SCALES[scale],
            log_dir=work_dir,
            env=JOURNEY_ENV,
            **GUARDS.get(scale, {}),
        )
        log(f"  {run.wall_s:.1f} s, peak RSS {run.peak_rss_bytes / 2**20:.0f} MB")
        if run.aborted:
            failures.append(f"journey for {tenant} stopped by the bench: {run.aborted}; log: {run.log_path}")
            log(f"  STOPPED: {failures[-1]}")
            raise RuntimeError(failures[-1])
        if not run.passed:
            failed = (run.report or {}).get("failed_stage")
            failures.append(f"journey for {tenant} failed at {failed} (exit {run.returncode}); log: {run.log_path}")
            log(f"  FAILED: {failures[-1]}")
            if run.report is None:
                raise RuntimeError(failures[-1])
            # A failed journey's report still says where the time went; its figures are kept.
        runs.append(run)
    suffix = "" if scale == "1x" else f" ({scale})"
    figures = [
        Figure(
            f"journey wall{suffix}",
            "s",
            Stat.of(r.wall_s for r in runs),
            False,
            target=Target("<=", JOURNEY_TARGET_S[scale]),
        ),
    ]
    stage_names = [s["name"] for s in runs[0].report["stages"]]
    stage_stats = {name: Stat.of(journey.stage_seconds(r.report)[name] for r in runs) for name in stage_names}
    stage_targets = STAGE_TARGET_S.get(scale, {})
    figures += [
        Figure(
            f"stage {name}{suffix}",
            "s",
            stat,
            False,
            target=Target("<=", stage_targets[name]) if name in stage_targets else None,
        )
        for name, stat in stage_stats.items()
    ]
    figures.append(
        Figure(
            f"journey peak RSS{suffix}",
            "MB",
            Stat.of(r.peak_rss_bytes / 2**20 for r in runs),
            False,
            target=Target("<=", PEAK_RSS_TARGET_GB * 1024) if scale == "10x" else None,
            note="airflow dags test and its children",
        )
    )
    figures.append(
        Figure(
            f"journey+platform peak PSS{suffix}",
            "GB",
            Stat.of(r.peak_total_pss_bytes / 2**30 for r in runs),
            False,
            target=Target("<=", PEAK_PSS_TARGET_GB[scale]) if scale in PEAK_PSS_TARGET_GB else None,
            note="PSS of the journey and every platform process, summed at the same instant",
        )
    )
    share = [
        100
        * journey.validation_seconds(r.report)
        / (sum(journey.stage_seconds(r.report).values()) + journey.validation_seconds(r.report))
        for r in runs
    ]
    figures.append(
        Figure(
            f"GX validation share{suffix}",
            "%",
            Stat.of(share),
            False,
            target=Target("<=", GX_SHARE_TARGET_PCT),
            note="GX seconds / (stage run seconds + GX seconds)",
        )
    )
    figures.append(
        Figure(
            f"GX validation share of wall{suffix}",
            "%",
            Stat.of(100 * journey.validation_seconds(r.report) / r.wall_s for r in runs),
            False,
        )
    )
    figures.append(
        Figure(
            "dags folder parse",
            "s",
            Stat.of(journey.dags_parse_seconds() for _ in range(max(reps, 3))),
            False,
            target=Target("<=", 2.0),
            note="DagBag of dags/ in a fresh interpreter, as the dag-processor parses it",
        )
    )
    model = [r.report["model"] for r in runs]
    # A journey that failed before training has no model figures (its failure is in ``failures``).
    trained = [m for m in model if (m or {}).get("ndcg_at_10") is not None]
    if trained:
        figures.append(
            Figure(
                f"journey NDCG@10{suffix}",
                "",
                Stat.of(m["ndcg_at_10"] for m in trained),
                True,
                target=Target(">=", 0.30),
            )
        )
        figures.append(
            Figure(
                f"journey lift over popularity{suffix}",
                "x",
                Stat.of(m["ndcg_at_10"] / max(m["popularity_ndcg_at_10"], 1e-9) for m in trained),
                True,
                target=Target(">=", LIFT_TARGET),
                note="NDCG@10 / the popularity baseline's NDCG@10 on the same split",
            )
        )
    details = {
        "failures": failures,
        "tenants": [r.tenant for r in runs],
        "stages": {name: stat.to_dict() for name, stat in stage_stats.items()},
        "platform_peak_rss_mb": [{k: round(v / 2**20) for k, v in r.platform_peak_rss_bytes.items()} for r in runs],
        "models": model,
        "recommendations": [r.report["recommendations"] for r in runs],
        "logs": [r.log_path for r in runs],
    }
    return figures, details


def run_transfer(*, reps: int, stamp: str, work_dir: str) -> tuple[list[Figure], dict[str, Any]]:
    samples = transfer.TransferSamples()
    log(f"object upload: MinioHook.put_file vs bare put_object, {reps} repetitions")
    transfer.upload(repetitions=reps, stamp=stamp, work_dir=work_dir, samples=samples)
    log(f"kafka feed (hook, bare kafka-python grid, librdkafka), then the worker draining it: {reps} repetitions")
    transfer.feed_and_drain(repetitions=reps, stamp=stamp, samples=samples)
    rate = {
        # name: (unit, samples, ceiling samples, target, note)
        "kafka feed (KafkaHook.produce)": (
            "msg/s",
            samples.kafka_hook_msgs_s,
            samples.kafka_bare_msgs_s,
            RATIO_TARGET,
            "worker stopped; ceiling: best of a grid of bare kafka-python settings",
        ),
        "object upload (MinioHook.put_file)": (
            "MB/s",
            samples.upload_hook_mb_s,
            samples.upload_bare_mb_s,
            RATIO_TARGET,
            "ceiling: bare minio put_object",
        ),
        "ingestion drain (worker, backlog)": (
            "rows/s",
            samples.drain_rows_s,
            samples.copy_rows_s,
            DRAIN_TARGET,
            "first to last landed row of a 100K backlog; ceiling: a bare COPY of the same rows into the table",
        ),
    }
    figures = [
        Figure(name, unit, Stat.of(values), True, ceiling=Stat.of(ceiling), target=target, note=note)
        for name, (unit, values, ceiling, target, note) in rate.items()
    ]
    figures.append(
        Figure(
            "kafka feed reference (librdkafka)",
            "msg/s",
            Stat.of(samples.kafka_librdkafka_msgs_s),
            True,
            note="the same messages through confluent-kafka, for the record: the pipeline produces with kafka-python",
        )
    )
    figures.append(
        Figure(
            "bare COPY into an empty copy of the table (reference)",
            "rows/s",
            Stat.of(samples.copy_empty_rows_s),
            True,
            note="the drain's rows without the table's bulk (its indexes, its foreign key), for the record",
        )
    )
    grid = {name: Stat.of(rates).to_dict() for name, rates in samples.kafka_grid_msgs_s.items()}
    return figures, {"messages": samples.messages, "upload_bytes": samples.upload_bytes, "kafka_producer_grid": grid}


def run_training(*, reps: int) -> tuple[list[Figure], dict[str, Any]]:
    log("training: learning curve to NDCG@10 >= 0.30, then a full default fit")
    samples = training.measure(repetitions=reps)
    figures = []
    if samples.seconds_to_target:
        figures.append(
            Figure(
                "train to NDCG@10 >= 0.30",
                "s",
                Stat.of(samples.seconds_to_target),
                False,
                target=Target("<=", 60.0),
                note=f"{samples.epochs_to_target} epochs",
            )
        )
    final = samples.final
    figures += [
        Figure("final NDCG@10", "", Stat.of([final["ndcg_at_10"]]), True, target=Target(">=", 0.30)),
        Figure("final Recall@10", "", Stat.of([final["recall_at_10"]]), True),
        Figure(
            "popularity NDCG@10",
            "",
            Stat.of([final["popularity_ndcg_at_10"]]),
            True,
            note="the baseline the model must beat",
        ),
        Figure("full fit train seconds", "s", Stat.of([final["train_seconds"]]), False),
    ]
    return figures, {"epochs_to_target": samples.epochs_to_target, "curve": samples.curve, "final": final}


def run_serving(*, tenant: str, reps: int, work_dir: str) -> tuple[list[Figure], dict[str, Any]]:
    from plugins.hooks.app_db import AppDbHook
    from plugins.hooks.recsys_api import RecsysApiHook

    tenant_id = RecsysApiHook().ensure_tenant(slug=tenant, name=tenant, email="bench@example.com")["tenant_id"]
    users = [
        r[0]
        for r in AppDbHook().get_records(
            "SELECT DISTINCT user_id FROM interactions WHERE tenant_id = %s ORDER BY user_id LIMIT 500",
            parameters=(tenant_id,),
        )
    ]
    log(
        f"serving: wrk at {serving.CONCURRENCY} connections, {reps} x {WRK_SECONDS:g} s each,"
        " API restarted without rate limit"
    )
    with serving.api_rate_limit():
        loads = serving.load_test(
            tenant_id=tenant_id, user_ids=users, repetitions=reps, seconds=WRK_SECONDS, work_dir=work_dir
        )
    figures, details = [], {"concurrency": {}}
    for c, per in loads.items():
        rec, health = per["recommend"], per["health"]
        for metric, unit in (("p50_ms", "ms"), ("p95_ms", "ms"), ("p99_ms", "ms")):
            target = Target("<=", P95_TARGET_MS) if metric == "p95_ms" and c == TARGET_CONCURRENCY else None
            figures.append(
                Figure(
                    f"recommend {metric[:3]} @{c}",
                    unit,
                    Stat.of(getattr(r, metric) for r in rec),
                    False,
                    ceiling=Stat.of(getattr(h, metric) for h in health),
                    target=target,
                )
            )
        figures.append(
            Figure(
                f"recommend req/s @{c}",
                "req/s",
                Stat.of(r.rps for r in rec),
                True,
                ceiling=Stat.of(h.rps for h in health),
                target=Target(">=", RPS_TARGET) if c == TARGET_CONCURRENCY else None,
            )
        )
        figures.append(
            Figure(
                f"recommend error rate @{c}",
                "%",
                Stat.of(100 * r.error_rate for r in rec),
                False,
                ceiling=None,
                target=Target("<=", 0.0),
            )
        )
        details["concurrency"][str(c)] = {
            side: {m: Stat.of(getattr(r, m) for r in runs).to_dict() for m in ("p50_ms", "p95_ms", "p99_ms", "rps")}
            for side, runs in (("recommend", rec), ("health", health))
        }
    log("serving: in-process FAISS search")
    searches = serving.faiss_search()
    for n_items, result in searches.items():
        figures.append(
            Figure(
                f"FAISS recommend p50 {n_items // 1000}K items",
                "ms",
                Stat.of([result["served_p50_ms"]]),
                False,
                ceiling=Stat.of([result["bare_p50_ms"]]),
                note="ceiling: bare IndexFlatIP.search",
            )
        )
    details["faiss"] = {str(k): v for k, v in searches.items()}
    return figures, details


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        choices=sorted(SCALES),
        default=os.environ.get("BENCH_SCALE") or "1x",
        help="1x: every figure; 10x / 100x: one onboarding journey at that scale (long; 100x stops at 30 min or 12 GB)",
    )
    parser.add_argument(
        "--reps", type=int, default=int(os.environ.get("BENCH_REPS") or 3), help="repetitions per figure"
    )
    parser.add_argument(
        "--only",
        default=os.environ.get("BENCH_ONLY") or ",".join(PARTS),
        help=f"comma-separated subset of {','.join(PARTS)} (default: BENCH_ONLY, else all)",
    )
    parser.add_argument("--update-baseline", action="store_true", help="also write the results to bench/baseline.json")
    args = parser.parse_args(argv)
    parts = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown or args.reps < 1:
        parser.error(f"--only takes {', '.join(PARTS)} (got {sorted(unknown)}), --reps >= 1 (got {args.reps})")

    if args.scale != "1x":
        args.reps = 1  # one 10x journey already takes minutes
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    work_dir = os.path.join(os.environ.get("RECSYS_LOCAL_DIR") or ".local", "bench", stamp)
    os.makedirs(work_dir, exist_ok=True)
    results: dict[str, Any] = {
        "timestamp": stamp,
        "scale": args.scale,
        "reps": args.reps,
        "machine": machine(),
        "details": {},
    }
    figures: list[Figure] = []
    started = time.perf_counter()
    try:
        if args.scale != "1x":
            found, results["details"][f"journey_{args.scale}"] = run_journeys(
                scale=args.scale, reps=args.reps, stamp=stamp, work_dir=work_dir
            )
            figures += found
        else:
            serving_tenant = None
            if "journey" in parts or "serving" in parts:
                found, results["details"]["journey"] = run_journeys(
                    scale="1x", reps=args.reps if "journey" in parts else 1, stamp=stamp, work_dir=work_dir
                )
                serving_tenant = results["details"]["journey"]["tenants"][-1]
                figures += found if "journey" in parts else []
            if "transfer" in parts:
                found, results["details"]["transfer"] = run_transfer(reps=args.reps, stamp=stamp, work_dir=work_dir)
                figures += found
            if "training" in parts:
                found, results["details"]["training"] = run_training(reps=args.reps)
                figures += found
            if "serving" in parts:
                found, results["details"]["serving"] = run_serving(
                    tenant=serving_tenant, reps=args.reps, work_dir=work_dir
                )
                figures += found
    except Exception as exc:  # the partial results are still worth keeping
        results["error"] = f"{type(exc).__name__}: {exc}"
        print(f"bench failed: {results['error']}", file=sys.stderr)
    failures = [f for part in results["details"].values() for f in part.get("failures", [])]
    if failures and "error" not in results:
        results["error"] = "; ".join(failures)

    results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    results["bench_seconds"] = round(time.perf_counter() - started, 1)
    results["figures"] = [f.to_dict() for f in figures]
    baseline = []
    if os.path.exists(BASELINE):
        with open(BASELINE) as fh:
            baseline = [Figure.from_dict(f) for f in json.load(fh)["figures"]]
    found_regressions = stats.regressions(figures, baseline)
    results["regressions"] = [r.__dict__ for r in found_regressions]

    os.makedirs(RESULTS_DIR, exist_ok=True)
    name = stamp if args.scale == "1x" else f"{stamp}-{args.scale}"
    path = os.path.join(RESULTS_DIR, f"{name}.json")
    with open(path, "w") as fh:
        json.dump(results, fh, indent=2)
    shutil.copyfile(
        path, os.path.join(RESULTS_DIR, "latest.json" if args.scale == "1x" else f"latest-{args.scale}.json")
    )
    if args.update_baseline and "error" not in results:
        shutil.copyfile(path, BASELINE)

    m = results["machine"]
    print()
    print(
        f"bench {stamp} at {args.scale} scale, {args.reps} repetitions, {results['bench_seconds']:.0f} s"
        f" on {m['cpus']} x {m['cpu_model']},"
        f" {m['memory_gb']} GB; load average {m['load_avg_start'][0]} -> {m['load_avg_end'][0]}"
    )
    print(stats.render_table(figures))
    if baseline:
        print()
        print(f"regression check against bench/baseline.json (> {stats.REGRESSION_TOLERANCE:.0%} worse):")
        print("\n".join(f"  {r.describe()}" for r in found_regressions) or "  none")
    print(f"\nresults: {path}")
    return 1 if "error" in results else 0


if __name__ == "__main__":
    sys.exit(main())
