"""python -m bench.plots [RESULTS_JSON]: PNG charts of a bench run next to its JSON (default: latest.json):
<name>-stages.png (median seconds per journey stage, min..max as error bars) and <name>-latency.png
(recommendation p50/p95/p99 and /health p95 by concurrency, with requests/s)."""

from __future__ import annotations

import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from bench import RESULTS_DIR  # noqa: E402


def _errors(stats: list[dict]) -> list[list[float]]:
    return [[s["median"] - s["min"] for s in stats], [s["max"] - s["median"] for s in stats]]


def stages_chart(results: dict, path: str) -> str | None:
    stages = (results["details"].get("journey") or results["details"].get("journey_10x") or {}).get("stages")
    if not stages:
        return None
    names, stats = list(stages), list(stages.values())
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.barh(names, [s["median"] for s in stats], xerr=_errors(stats), color="#4c72b0", capsize=3)
    ax.invert_yaxis()
    for y, s in enumerate(stats):
        ax.text(s["max"], y, f"  {s['median']:.2f} s", va="center", fontsize=8)
    ax.set_xlabel("seconds (median, bars: min..max)")
    ax.set_title(f"onboarding_journey stages, {results['scale']} scale, n={stats[0]['n']} ({results['timestamp']})")
    ax.margins(x=0.15)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def latency_chart(results: dict, path: str) -> str | None:
    by_c = (results["details"].get("serving") or {}).get("concurrency")
    if not by_c:
        return None
    levels = sorted(by_c, key=int)
    x = [int(c) for c in levels]
    fig, (lat, rps) = plt.subplots(1, 2, figsize=(11, 4))

    def plot(ax, stats: list[dict], style: str, label: str, **kwargs) -> None:
        ax.errorbar(x, [s["median"] for s in stats], yerr=_errors(stats), fmt=style, capsize=3, label=label, **kwargs)

    for metric, style in (("p50_ms", "o-"), ("p95_ms", "s-"), ("p99_ms", "^-")):
        plot(lat, [by_c[c]["recommend"][metric] for c in levels], style, f"recommend {metric[:3]}")
    plot(lat, [by_c[c]["health"]["p50_ms"] for c in levels], "x:", "/health p50 (ceiling)", color="grey")
    plot(lat, [by_c[c]["health"]["p95_ms"] for c in levels], "x--", "/health p95 (ceiling)", color="grey")
    # /health's tail is its dependency checks (every 1.5 s); a log axis keeps the recommend lines readable.
    lat.set_yscale("log")
    plot(rps, [by_c[c]["recommend"]["rps"] for c in levels], "o-", "recommend")
    plot(rps, [by_c[c]["health"]["rps"] for c in levels], "x--", "/health (ceiling)", color="grey")
    for ax, target, target_label, ylabel, title in (
        (
            lat,
            25,
            "p95 target 25 ms at 32",
            "latency ms (median of runs, bars: min..max)",
            "recommendation latency by concurrency",
        ),
        (
            rps,
            500,
            "target 500 req/s at 32",
            "requests/s (median of runs, bars: min..max)",
            "throughput by concurrency",
        ),
    ):
        ax.axhline(target, color="red", linewidth=0.8, linestyle=":", label=target_label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [str(c) for c in x])
        ax.set_xlabel("concurrent clients (wrk connections)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.legend(fontsize=8)
    fig.suptitle(f"recsys API over loopback ({results['timestamp']}, {results['machine']['cpus']} CPUs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    source = argv[0] if argv else os.path.join(RESULTS_DIR, "latest.json")
    with open(source) as fh:
        results = json.load(fh)
    stem = os.path.splitext(source)[0]
    written = [
        p for p in (stages_chart(results, f"{stem}-stages.png"), latency_chart(results, f"{stem}-latency.png")) if p
    ]
    if not written:
        print(f"{source} has neither journey stages nor serving results to plot", file=sys.stderr)
        return 1
    print("\n".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
