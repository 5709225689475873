"""Processes the stack starts: spawn with a pidfile, check, stop by pid and process group.

A pidfile records the pid and the kernel's start time of that process, so a recycled pid is never
mistaken for ours and ``down`` never signals a process this stack did not start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

DEFAULT_GRACE_S = 10.0
KILL_WAIT_S = 5.0


def _proc_stat(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may contain spaces and parentheses; fields resume after the last ')'.
    return raw[raw.rindex(")") + 2 :].split()


def _start_time(pid: int) -> str | None:
    stat = _proc_stat(pid)
    return stat[19] if stat else None


def _running(pid: int) -> bool:
    stat = _proc_stat(pid)
    if stat is None:
        return False
    if stat[0] == "Z":
        # Reap our own zombie children (tests start and kill components in-process).
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def spawn(
    argv: Sequence[str],
    *,
    pid_file: str,
    log_file: str,
    env: Mapping[str, str],
    cwd: str,
    user: int | None = None,
    group: int | None = None,
) -> int:
    """Start ``argv`` in its own session (so its process group can be stopped as a whole)."""
    os.makedirs(os.path.dirname(pid_file), exist_ok=True)
    os.makedirs(os.path.dirname(log_file), exist_ok=True)
    with open(log_file, "ab") as log:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        log.write(f"\n=== {stamp} starting: {argv[0]} ===\n".encode())
        log.flush()
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(env),
            cwd=cwd,
            start_new_session=True,
            user=user,
            group=group,
            extra_groups=[] if user is not None else None,
        )
    record = {"pid": proc.pid, "start_time": _start_time(proc.pid), "argv0": os.path.basename(argv[0])}
    with open(pid_file, "w") as fh:
        json.dump(record, fh)
    return proc.pid


def running_pid(pid_file: str) -> int | None:
    """The pid recorded in ``pid_file`` if that very process is still running, else None."""
    try:
        with open(pid_file) as fh:
            record = json.load(fh)
    except (FileNotFoundError, ValueError):
        return None
    pid = int(record["pid"])
    if not _running(pid) or _start_time(pid) != record.get("start_time"):
        return None
    return pid


def _group_alive(pgid: int) -> bool:
    """Whether a live (non-zombie) process is left in the group.

    killpg(pgid, 0) would also count zombies, which linger until init reaps them (~2 s here).
    """
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _proc_stat(int(entry))
        if stat and stat[2] == str(pgid) and stat[0] != "Z":
            return True
    return False


def stop(pid_file: str, *, sig: int = signal.SIGTERM, grace_s: float = DEFAULT_GRACE_S) -> bool:
    """Stop the recorded process: ``sig`` to it, then SIGKILL to its group after the grace period.

    Returns True if a running process was stopped. The pidfile is removed either way.
    """
    pid = running_pid(pid_file)
    stopped = False
    if pid is not None:
        # We started it with start_new_session, so its group id is its pid.
        pgid = pid
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + grace_s
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _group_alive(pgid):
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        # Wait for the kernel to finish the kills, so ports and data dirs are free for a restart.
        deadline = time.monotonic() + KILL_WAIT_S
        while (_running(pid) or _group_alive(pgid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        stopped = True
    try:
        os.remove(pid_file)
    except FileNotFoundError:
        pass
    return stopped


def log_tail(path: str, *, lines: int = 30) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(text.splitlines()[-lines:])
