"""python -m include.stack up|down|status|env|restart NAME"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from include.recsys.migrate import MigrationError
from include.stack import credentials, lifecycle
from include.stack.bootstrap import BootstrapError
from include.stack.components import AIRFLOW_ADMIN, airflow_passwords_file
from include.stack.monitoring import PROMETHEUS_USER
from include.stack.postgres import PostgresError
from include.stack.settings import EXECUTORS, HOST, StackConfigError, StackSettings


def _print_status(settings: StackSettings) -> int:
    statuses = lifecycle.status(settings)
    for s in statuses:
        pid = "-" if s.pid is None else str(s.pid)
        line = f"{s.name:<22} {s.state:<11} {s.address:<21} pid {pid:<8}"
        print(f"{line} {s.detail}".rstrip())
    down = [s.name for s in statuses if not s.healthy]
    if down:
        print(f"not healthy: {', '.join(down)} (run `make up` to start what is down)", file=sys.stderr)
        return 1
    return 0


def _print_prometheus_login(settings: StackSettings) -> None:
    password = credentials.load_or_create(settings.secrets_file).prometheus_password
    print(f"Prometheus: http://{HOST}:{settings.port('prometheus')}  login: {PROMETHEUS_USER} / {password}")


def _print_airflow_login(settings: StackSettings) -> None:
    password = credentials.load_or_create(settings.secrets_file).airflow_admin_password
    print(f"Airflow UI and REST API: http://{HOST}:{settings.port('airflow')}")
    print(f"login: {AIRFLOW_ADMIN} / {password}  (kept in {airflow_passwords_file(settings)}, mode 600)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.stack", description="The no-Docker local stack.")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start what is not running, bootstrap, write the env file")
    up.add_argument("--skip-airflow-db", action="store_true", help="do not run `airflow db migrate`")
    up.add_argument(
        "--airflow", action="store_true", help="also start Airflow (api-server, scheduler, dag-processor, triggerer)"
    )
    up.add_argument(
        "--prometheus", action="store_true", help="also start Prometheus (scrapes the platform and the journey)"
    )
    up.add_argument(
        "--executor",
        choices=sorted(EXECUTORS),
        help="with --airflow: Airflow's executor, recorded for the stack (default local; celery adds two workers)",
    )
    sub.add_parser("down", help="stop what this stack started (data persists)")
    sub.add_parser("status", help="each component's address, pid and health; exit 1 if any is not healthy")
    sub.add_parser("env", help="write the env file and print its path (source it; it holds secrets)")
    restart = sub.add_parser("restart", help="stop and start one component")
    restart.add_argument("component")
    args = parser.parse_args(argv)
    try:
        settings = StackSettings.from_env()
        if args.command == "up":
            if args.executor and not args.airflow:
                parser.error("--executor needs --airflow")
            if args.airflow:
                settings = dataclasses.replace(settings, executor=args.executor or "local")
            lifecycle.up(
                settings, airflow_db=not args.skip_airflow_db, airflow=args.airflow, prometheus=args.prometheus
            )
            if args.airflow:
                _print_airflow_login(settings)
            if args.prometheus:
                _print_prometheus_login(settings)
        elif args.command == "down":
            lifecycle.down(settings)
        elif args.command == "status":
            return _print_status(settings)
        elif args.command == "env":
            print(lifecycle.write_env_file(settings))
        elif args.command == "restart":
            lifecycle.restart(settings, component=args.component)
    except (lifecycle.StackError, BootstrapError, MigrationError, PostgresError, StackConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
