"""The onboarding journey, run for real through ``airflow dags test`` (as `make demo` does), timed from the
outside and from its own report.json, with the peak RSS of its process tree and of the platform's processes."""

from __future__ import annotations

import contextlib
import glob
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

from include.config import reports_root

RSS_POLL_S = 0.25
# PSS costs ~0.1 s a poll (smaps of every process; the API maps torch and faiss), so it is read less often.
PSS_EVERY_POLLS = 8
# Components of the stack whose memory the journey drives (their pid files are the stack's).
PLATFORM_COMPONENTS = ("recsys-api", "recsys-ingest", "postgres", "seaweedfs", "kafka")
GUARD_POLL_S = 1.0
STARTING_TASK = "[DAG TEST] starting task_id="


@dataclass
class JourneyRun:
    tenant: str
    returncode: int
    wall_s: float
    peak_rss_bytes: int  # the airflow process and its children, summed per poll
    peak_total_pss_bytes: int  # the journey and the platform's processes together, at one instant
    platform_peak_rss_bytes: dict[str, int] = field(default_factory=dict)
    report: dict[str, Any] | None = None
    log_path: str = ""
    aborted: str | None = None  # why the bench stopped the journey (a wall or memory guard), naming the stage

    @property
    def passed(self) -> bool:
        return self.returncode == 0 and bool(self.report and self.report["success"])


def _tree(proc: psutil.Process) -> list[psutil.Process]:
    return [proc, *proc.children(recursive=True)]


def _memory(procs: list[psutil.Process], field: str) -> int:
    """RSS or PSS summed over processes. PSS splits shared pages (Postgres's shared buffers, say) between
    the processes that map them, so it sums across processes without double counting."""
    total = 0
    for p in procs:
        try:
            total += getattr(p.memory_full_info() if field == "pss" else p.memory_info(), field)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def _platform_pids() -> dict[str, int]:
    from include.stack.process import running_pid
    from include.stack.settings import StackSettings

    settings = StackSettings.from_env()
    pids = {name: running_pid(settings.pid_file(name)) for name in PLATFORM_COMPONENTS}
    return {name: pid for name, pid in pids.items() if pid is not None}


class RssPoller:
    """Polls process trees in a thread: ``peaks`` holds each tree's highest summed RSS, ``peak_total_pss``
    the highest PSS of all trees together at one instant (every 2 s: the memory the run really held)."""

    def __init__(self, roots: dict[str, int]) -> None:
        self.roots = {name: psutil.Process(pid) for name, pid in roots.items() if psutil.pid_exists(pid)}
        self.peaks = dict.fromkeys(self.roots, 0)
        self.peak_total_pss = 0
        self.peak_pss_by_tree: dict[str, int] = {}  # each tree's PSS at the instant of peak_total_pss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        polls = 0
        while not self._stop.is_set():
            trees = {}
            for name, proc in self.roots.items():
                try:
                    trees[name] = _tree(proc)
                except psutil.NoSuchProcess:
                    continue
                self.peaks[name] = max(self.peaks[name], _memory(trees[name], "rss"))
            if polls % PSS_EVERY_POLLS == 0:
                by_tree = {name: _memory(tree, "pss") for name, tree in trees.items()}
                if sum(by_tree.values()) > self.peak_total_pss:
                    self.peak_total_pss, self.peak_pss_by_tree = sum(by_tree.values()), by_tree
            polls += 1
            self._stop.wait(RSS_POLL_S)

    def __enter__(self) -> RssPoller:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


def find_report(tenant: str, *, since: float) -> dict[str, Any] | None:
    """The newest report.json written for ``tenant`` after ``since`` (reports sit at <reports>/<run>/ or
    <reports>/<run>/<tenant>/)."""
    root = reports_root()
    candidates = glob.glob(os.path.join(root, "*", "report.json")) + glob.glob(
        os.path.join(root, "*", "*", "report.json")
    )
    newest = None
    for path in candidates:
        mtime = os.path.getmtime(path)
        if mtime < since or (newest and mtime <= newest[0]):
            continue
        with open(path) as fh:
            report = json.load(fh)
        if report.get("tenant") == tenant:
            newest = (mtime, report)
    return newest[1] if newest else None


def finished_stages(log_path: str) -> list[str]:
    """The journey's own progress lines so far ("stage seed_data (tenant): success in 303.0 s; GX suite ..."),
    each cut at its first ";"."""
    with open(log_path, errors="replace") as fh:
        return [line.split(";", 1)[0].strip() for line in fh if line.startswith("stage ") and " in " in line]


def running_stage(log_path: str) -> str:
    """The task `airflow dags test` started last, from its log ("[DAG TEST] starting task_id=...")."""
    stage = "(before the first task)"
    with open(log_path, errors="replace") as fh:
        for line in fh:
            if STARTING_TASK in line:
                stage = line.split(STARTING_TASK, 1)[1].split()[0]
    return stage


def _kill_tree(proc: subprocess.Popen) -> None:
    try:
        tree = _tree(psutil.Process(proc.pid))
    except psutil.NoSuchProcess:
        return
    for p in reversed(tree):
        try:
            p.kill()
        except psutil.NoSuchProcess:
            continue
    proc.wait()


def run_journey(
    *,
    tenant: str,
    logical_date: str,
    params: dict[str, Any],
    log_dir: str,
    env: dict[str, str],
    wall_limit_s: float | None = None,
    pss_limit_bytes: int | None = None,
) -> JourneyRun:
    """One whole onboarding_journey for a fresh tenant; Airflow's log goes to a file, not the table. Past
    ``wall_limit_s``, or once the journey and platform together hold more than ``pss_limit_bytes``, the journey
    is killed and ``aborted`` says which limit and which stage was running."""
    conf = json.dumps({"tenant": tenant, **params})
    airflow = os.path.join(os.path.dirname(sys.executable), "airflow")
    os.makedirs(log_dir, exist_ok=True)
    log_path = os.path.join(log_dir, f"journey-{tenant}.log")
    since = time.time() - 1
    with open(log_path, "w") as log:
        start = time.perf_counter()
        proc = subprocess.Popen(
            [airflow, "dags", "test", "onboarding_journey", logical_date, "-c", conf],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )
        aborted = None
        with RssPoller({"journey": proc.pid, **_platform_pids()}) as poller:
            while (returncode := proc.poll()) is None:
                elapsed = time.perf_counter() - start
                if wall_limit_s is not None and elapsed > wall_limit_s:
                    aborted = f"wall {elapsed:.0f} s over the {wall_limit_s:.0f} s limit"
                elif pss_limit_bytes is not None and poller.peak_total_pss > pss_limit_bytes:
                    held = ", ".join(
                        f"{name} {pss / 2**30:.1f}"
                        for name, pss in sorted(poller.peak_pss_by_tree.items(), key=lambda kv: -kv[1])
                    )
                    aborted = (
                        f"journey + platform PSS {poller.peak_total_pss / 2**30:.1f} GB over the"
                        f" {pss_limit_bytes / 2**30:.0f} GB limit (GB: {held})"
                    )
                if aborted:
                    log.flush()
                    # Where it stopped, and what the stages before it took: the stage that holds it back, and why.
                    done = "; ".join(finished_stages(log_path)) or "no stage finished"
                    aborted += f" in stage {running_stage(log_path)} (before it: {done})"
                    _kill_tree(proc)
                    returncode = proc.returncode
                    break
                # wait(), not sleep(): the wall is read when the journey ends, not at the next poll.
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=GUARD_POLL_S)
        wall = time.perf_counter() - start
    peaks = dict(poller.peaks)
    return JourneyRun(
        tenant=tenant,
        returncode=returncode,
        wall_s=wall,
        peak_rss_bytes=peaks.pop("journey", 0),
        peak_total_pss_bytes=poller.peak_total_pss,
        platform_peak_rss_bytes=peaks,
        report=find_report(tenant, since=since),
        log_path=log_path,
        aborted=aborted,
    )


def stage_seconds(report: dict[str, Any]) -> dict[str, float]:
    """Each stage's run-task seconds, from report.json (the figures `make demo` prints)."""
    return {s["name"]: s["duration_s"] or 0.0 for s in report["stages"]}


def validation_seconds(report: dict[str, Any]) -> float:
    return sum(((s.get("validation") or {}).get("duration_s") or 0.0) for s in report["stages"])


def dags_parse_seconds() -> float:
    """Wall seconds for a fresh interpreter to parse the dags folder into a DagBag, as the dag-processor does all
    day (interpreter and Airflow start-up excluded)."""
    from include.config import project_root

    code = (
        "import sys, time\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        "start = time.perf_counter()\n"
        f"bag = DagBag(dag_folder={os.path.join(project_root(), 'dags')!r})\n"
        "assert not bag.import_errors, bag.import_errors\n"
        "print(time.perf_counter() - start)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])
