from __future__ import annotations

import json
import os
import sys
import time

from include.stack import process


def _spawn(tmp_path, code: str) -> tuple[int, str]:
    pid_file = str(tmp_path / "run" / "p.pid")
    pid = process.spawn(
        [sys.executable, "-c", code],
        pid_file=pid_file,
        log_file=str(tmp_path / "logs" / "p.log"),
        env=dict(os.environ),
        cwd=str(tmp_path),
    )
    return pid, pid_file


def test_spawned_process_is_tracked_and_stopped_with_its_group(tmp_path):
    # The child starts a grandchild in the same group; stopping the group must take both.
    code = (
        "import subprocess, sys, time;"
        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']);"
        "time.sleep(60)"
    )
    pid, pid_file = _spawn(tmp_path, code)
    assert process.running_pid(pid_file) == pid
    time.sleep(0.3)
    assert process.stop(pid_file, grace_s=2) is True
    assert process.running_pid(pid_file) is None and not os.path.exists(pid_file)
    assert not process._group_alive(pid), "the grandchild outlived stop()"


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path):
    code = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)"
    pid, pid_file = _spawn(tmp_path, code)
    time.sleep(0.3)
    started = time.monotonic()
    assert process.stop(pid_file, grace_s=0.5) is True
    assert 0.4 < time.monotonic() - started < 5
    assert process.running_pid(pid_file) is None
    assert "up" in process.log_tail(str(tmp_path / "logs" / "p.log"))


def test_a_recycled_pid_is_not_mistaken_for_ours(tmp_path):
    pid_file = tmp_path / "stale.pid"
    # Our own pid is alive, but its start time differs from the recorded one.
    pid_file.write_text(json.dumps({"pid": os.getpid(), "start_time": "1", "argv0": "postgres"}))
    assert process.running_pid(str(pid_file)) is None
    assert process.stop(str(pid_file)) is False


def test_a_dead_child_reads_as_not_running(tmp_path):
    pid, pid_file = _spawn(tmp_path, "raise SystemExit(3)")
    deadline = time.monotonic() + 5
    while process.running_pid(pid_file) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.running_pid(pid_file) is None
