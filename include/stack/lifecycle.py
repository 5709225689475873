"""up / down / status / restart of a local stack; the CLI and the tests both call these."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from include import config
from include.recsys import migrate as app_migrate
from include.stack import bootstrap, components, credentials, monitoring, process
from include.stack.components import Component
from include.stack.env import airflow_dsn, app_dsn, history_dsn, write_env
from include.stack.settings import HOST, StackSettings


class StackError(RuntimeError):
    pass


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    address: str
    pid: int | None
    state: str  # running | down | off (optional, not started) | unhealthy | external | unreachable
    detail: str = ""

    @property
    def healthy(self) -> bool:
        return self.state in ("running", "external", "off")


@dataclass
class _Stack:
    settings: StackSettings
    env: dict[str, str]
    components: list[Component]
    secrets: credentials.StackSecrets


def _load(settings: StackSettings | None) -> _Stack:
    settings = settings or StackSettings.from_env()
    secrets = credentials.load_or_create(settings.secrets_file)
    env = write_env(settings, secrets)
    for sub in ("logs", "run", "work"):
        os.makedirs(settings.path(sub), exist_ok=True)
    return _Stack(settings, env, components.build(settings, secrets, env), secrets)


@contextmanager
def _exclusive(settings: StackSettings) -> Iterator[None]:
    """One up/down/restart at a time per stack, so two starters never spawn two postmasters."""
    os.makedirs(settings.path("run"), exist_ok=True)
    with open(settings.path("run", "stack.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# Tiers that `up` starts only when asked (`--airflow`, `--prometheus`; the Celery workers with `--airflow`
# under the celery executor) or named in ``only``; "off" rather than "down" in status when not running.
OPTIONAL_TIERS = (components.AIRFLOW_TIER, monitoring.MONITORING_TIER, components.CELERY_TIER)


def _select(
    stack: _Stack, only: Collection[str] | None, *, airflow: bool = True, prometheus: bool = True
) -> list[Component]:
    if only is None:
        celery = airflow and stack.settings.executor == "celery"
        skipped = {
            components.AIRFLOW_TIER: not airflow,
            monitoring.MONITORING_TIER: not prometheus,
            components.CELERY_TIER: not celery,
        }
        return [c for c in stack.components if not skipped.get(c.tier, False)]
    known = {c.name for c in stack.components}
    unknown = sorted(set(only) - known)
    if unknown:
        raise StackError(f"unknown component(s) {', '.join(unknown)}; this stack has {', '.join(sorted(known))}")
    return [c for c in stack.components if c.name in only]


def _port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return True
    return False


def _failure(stack: _Stack, component: Component, reason: str) -> StackError:
    log = stack.settings.log_file(component.name)
    return StackError(
        f"{component.name} failed to start on {component.address}: {reason}\n"
        f"log: {log}\n--- last lines of {os.path.basename(log)} ---\n{process.log_tail(log)}"
    )


def _wait_ready(stack: _Stack, component: Component, *, started: float) -> None:
    pid_file = stack.settings.pid_file(component.name)
    deadline = time.monotonic() + component.ready_timeout_s
    last_error = "no readiness check passed yet"
    while True:
        if not component.external and process.running_pid(pid_file) is None:
            raise _failure(stack, component, "the process exited")
        if time.monotonic() - started >= component.min_uptime_s:
            try:
                if component.probe is not None:
                    component.probe()
                return
            except Exception as exc:  # any probe failure means "not ready yet" until the deadline
                last_error = f"{type(exc).__name__}: {exc}"
        if time.monotonic() > deadline:
            raise _failure(stack, component, f"not ready after {component.ready_timeout_s:g} s ({last_error})")
        time.sleep(0.2)


def _ensure(stack: _Stack, component: Component) -> str:
    """Start the component unless it is running already; wait until it proves ready."""
    pid_file = stack.settings.pid_file(component.name)
    started = time.monotonic()
    if component.external:
        if component.before_start:
            component.before_start()
        action = "external"
    elif process.running_pid(pid_file) is not None:
        # Running already: it may have been up for min_uptime_s long ago, so do not wait again.
        started -= component.min_uptime_s
        action = "running"
    else:
        busy = [p for p in component.ports if _port_in_use(p)]
        if busy:
            raise StackError(
                f"{component.name} cannot start: port(s) {', '.join(map(str, busy))} on {HOST} are in use by a "
                f"process this stack did not start; stop it or choose another RECSYS_PORT_OFFSET"
            )
        if component.before_start:
            component.before_start()
        uid, gid = component.run_as or (None, None)
        process.spawn(
            component.argv(),
            pid_file=pid_file,
            log_file=stack.settings.log_file(component.name),
            env=component.env,
            cwd=stack.settings.repo,
            user=uid,
            group=gid,
        )
        action = "started"
    _wait_ready(stack, component, started=started)
    if component.after_ready:
        component.after_ready()
    return action


# The servers the bootstrap provisions (buckets, topics, databases); Redis, a cache, needs nothing from it.
BOOTSTRAPPED = frozenset({"postgres", "seaweedfs", "kafka"})


def _bootstrap(stack: _Stack, *, airflow_db: bool, log: Callable[[str], None]) -> dict[str, object]:
    env, settings = stack.env, stack.settings
    t0 = time.monotonic()
    done: dict[str, object] = {
        "buckets_created": bootstrap.ensure_buckets(
            env["RECSYS_S3_ENDPOINT"], access_key=env["RECSYS_S3_ACCESS_KEY"], secret_key=env["RECSYS_S3_SECRET_KEY"]
        ),
        "topics_created": bootstrap.ensure_topics(env["RECSYS_KAFKA_BOOTSTRAP"]),
        "app_migrations_applied": app_migrate.migrate(app_dsn(settings, stack.secrets)),
        # The pipeline's run history: its own database, its own migrations, the same runner.
        "history_migrations_applied": app_migrate.migrate(
            history_dsn(settings, stack.secrets), sql_dir=config.history_sql_dir()
        ),
    }
    if airflow_db:
        done["airflow_db_migrated"] = bootstrap.migrate_airflow_db(
            settings, env, airflow_dsn=airflow_dsn(settings, stack.secrets)
        )
    summary = ", ".join(f"{k}={v}" for k, v in done.items() if v) or "nothing to do"
    log(f"bootstrap: {summary} ({time.monotonic() - t0:.1f} s)")
    return done


def up(
    settings: StackSettings | None = None,
    *,
    only: Collection[str] | None = None,
    airflow_db: bool = True,
    airflow: bool = False,
    prometheus: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, object]:
    """Bring the stack (or ``only`` some components) up; running components are left alone.

    Airflow's services are part of the stack only with ``airflow``, Prometheus only with ``prometheus`` (or
    when named in ``only``). The
    bootstrap runs between the infrastructure and the processes that use it whenever the servers it
    provisions (BOOTSTRAPPED) are all part of this call. Returns what each step did.
    """
    stack = _load(settings)
    selected = _select(stack, only, airflow=airflow, prometheus=prometheus)
    with_bootstrap = BOOTSTRAPPED <= {c.name for c in selected}
    report: dict[str, object] = {}
    with _exclusive(stack.settings):
        stack.settings.record()
        for component in selected:
            if component.tier != "infra" and with_bootstrap and "bootstrap" not in report:
                report["bootstrap"] = _bootstrap(stack, airflow_db=airflow_db, log=log)
            t0 = time.monotonic()
            report[component.name] = _ensure(stack, component)
            log(f"{component.name}: {report[component.name]} at {component.address} ({time.monotonic() - t0:.1f} s)")
        if with_bootstrap and "bootstrap" not in report:
            report["bootstrap"] = _bootstrap(stack, airflow_db=airflow_db, log=log)
    log(f"env file: {stack.settings.env_file}")
    return report


Log = Callable[[str], None]


def down(settings: StackSettings | None = None, *, only: Collection[str] | None = None, log: Log = print) -> list[str]:
    """Stop the processes this stack started, in reverse start order; data stays on disk."""
    stack = _load(settings)
    # Every component, the Celery workers too whichever executor is recorded now: down stops all it started.
    selected = stack.components if only is None else _select(stack, only)
    stopped = []
    with _exclusive(stack.settings):
        for component in reversed(selected):
            if component.external:
                continue
            t0 = time.monotonic()
            if process.stop(stack.settings.pid_file(component.name), sig=component.stop_signal):
                stopped.append(component.name)
                log(f"{component.name}: stopped ({time.monotonic() - t0:.1f} s)")
    return stopped


def status(settings: StackSettings | None = None) -> list[ComponentStatus]:
    stack = _load(settings)
    result = []
    for component in stack.components:
        pid = None if component.external else process.running_pid(stack.settings.pid_file(component.name))
        if not component.external and pid is None:
            state = "off" if component.tier in OPTIONAL_TIERS else "down"
            result.append(ComponentStatus(component.name, component.address, None, state))
            continue
        try:
            if component.probe is not None:
                component.probe()
        except Exception as exc:  # reported, not raised: status shows every component
            bad = "unreachable" if component.external else "unhealthy"
            result.append(ComponentStatus(component.name, component.address, pid, bad, f"{type(exc).__name__}: {exc}"))
            continue
        result.append(ComponentStatus(component.name, component.address, pid, "external" if pid is None else "running"))
    return result


def write_env_file(settings: StackSettings | None = None) -> str:
    return _load(settings).settings.env_file


def restart(settings: StackSettings | None = None, *, component: str, log: Log = print) -> None:
    down(settings, only=[component], log=log)
    up(settings, only=[component], log=log)
