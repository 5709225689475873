"""The stack's env file: shell ``export`` lines that the Makefile sources and tests load.

Besides the platform's RECSYS_* settings it carries Airflow's settings and the four Airflow
connections in JSON form, so DAGs reach the stack only through connections.
"""

from __future__ import annotations

import json
import os
import shlex
from urllib.parse import quote, urlsplit, urlunsplit

from include import config
from include.stack.credentials import StackSecrets, write_private
from include.stack.settings import AIRFLOW_DB, APP_DB, EXECUTORS, HISTORY_DB, HOST, StackSettings


def _pg_url(scheme: str, *, user: str, password: str, host: str, port: int, dbname: str) -> str:
    return f"{scheme}://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/{quote(dbname, safe='')}"


def app_dsn(settings: StackSettings, secrets: StackSecrets) -> str:
    host, port = settings.pg_endpoint()
    return _pg_url("postgresql", user=APP_DB, password=secrets.app_db_password, host=host, port=port, dbname=APP_DB)


def airflow_dsn(settings: StackSettings, secrets: StackSecrets) -> str:
    host, port = settings.pg_endpoint()
    return _pg_url(
        "postgresql", user=AIRFLOW_DB, password=secrets.airflow_db_password, host=host, port=port, dbname=AIRFLOW_DB
    )


def redis_url(settings: StackSettings, secrets: StackSecrets) -> str:
    """The response cache's Redis: REDIS_URL's, or the stack's own redis-server."""
    if settings.redis_url:
        return settings.redis_url
    return f"redis://:{quote(secrets.redis_password, safe='')}@{HOST}:{settings.port('redis')}/0"


# The Celery broker's Redis database: the cache's server, a database of its own (the cache uses 0).
BROKER_REDIS_DB = 1
# Longer than any task of the journey runs, so Redis never hands a task that is still running to a second
# worker; a worker that dies is caught sooner by the scheduler's heartbeat timeout (below), which retries it.
CELERY_VISIBILITY_TIMEOUT_S = 6 * 3600
# How long a task may go without a heartbeat before the scheduler fails it (to be retried): its worker is gone.
TASK_HEARTBEAT_TIMEOUT_S = 60


def celery_broker_url(settings: StackSettings, secrets: StackSecrets) -> str:
    parts = urlsplit(redis_url(settings, secrets))
    return urlunsplit(parts._replace(path=f"/{BROKER_REDIS_DB}"))


def celery_settings(settings: StackSettings, secrets: StackSecrets) -> dict[str, str]:
    """Airflow's Celery settings for a worker SIGKILLed mid-task: its task is retried once, elsewhere.

    acks_late: a message is acknowledged when its task ends, so one a dead worker held is not lost; prefetch 1:
    a worker reserves no task beyond those it runs, so a killed worker takes no queued task down with it.
    The task instance itself is failed by the scheduler after TASK_HEARTBEAT_TIMEOUT_S and retried (the
    journey's tasks have retries) by whichever worker is alive; a late redelivery of the old message is
    refused by Airflow, since that try is no longer queued. A task the dead worker had received but not
    started stays queued until the scheduler's task_queued_timeout (600 s, Airflow's default) requeues it.
    """
    result_backend = airflow_dsn(settings, secrets).replace("postgresql://", "db+postgresql://", 1)
    return {
        "AIRFLOW__CELERY__BROKER_URL": celery_broker_url(settings, secrets),
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",
        "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": str(CELERY_VISIBILITY_TIMEOUT_S),
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(TASK_HEARTBEAT_TIMEOUT_S),
    }


def history_dsn(settings: StackSettings, secrets: StackSecrets) -> str:
    host, port = settings.pg_endpoint()
    return _pg_url(
        "postgresql", user=HISTORY_DB, password=secrets.history_db_password, host=host, port=port, dbname=HISTORY_DB
    )


def build_env(settings: StackSettings, secrets: StackSecrets) -> dict[str, str]:
    pg_host, pg_port = settings.pg_endpoint()
    s3_port, kafka_port, api_port = settings.port("s3"), settings.port("kafka"), settings.port("api")
    connections = {
        config.POSTGRES_CONN_ID: {
            "conn_type": "postgres",
            "host": pg_host,
            "port": pg_port,
            "login": APP_DB,
            "password": secrets.app_db_password,
            "schema": APP_DB,
        },
        config.MINIO_CONN_ID: {
            "conn_type": "generic",
            "host": HOST,
            "port": s3_port,
            "login": secrets.s3_access_key,
            "password": secrets.s3_secret_key,
            "extra": {"secure": False},
        },
        config.KAFKA_CONN_ID: {"conn_type": "generic", "extra": {"bootstrap_servers": f"{HOST}:{kafka_port}"}},
        config.RECSYS_API_CONN_ID: {
            "conn_type": "http",
            "host": HOST,
            "port": api_port,
            "schema": "http",
            "password": secrets.admin_token,
        },
        config.HISTORY_CONN_ID: {
            "conn_type": "postgres",
            "host": pg_host,
            "port": pg_port,
            "login": HISTORY_DB,
            "password": secrets.history_db_password,
            "schema": HISTORY_DB,
        },
    }
    env = {
        "AIRFLOW_HOME": settings.path("airflow"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_dsn(settings, secrets).replace(
            "postgresql://", "postgresql+psycopg2://", 1
        ),
        "AIRFLOW__CORE__DAGS_FOLDER": os.path.join(settings.repo, "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": os.path.join(settings.repo, "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": EXECUTORS[settings.executor],
        # Airflow's api-server (`make airflow`) binds locally on the stack's port, and task runners
        # must be told where its execution API is once it is not on 8080.
        "AIRFLOW__API__HOST": HOST,
        "AIRFLOW__API__PORT": str(settings.port("airflow")),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://{HOST}:{settings.port('airflow')}/execution/",
        # Where operators reach the UI: task logs, alerts and the demo print report links under it.
        "AIRFLOW__API__BASE_URL": f"http://{HOST}:{settings.port('airflow')}",
        "PYTHONPATH": settings.repo,
        "RECSYS_LOCAL_DIR": settings.local_dir,
        "RECSYS_PORT_OFFSET": str(settings.port_offset),
        "RECSYS_DATABASE_URL": app_dsn(settings, secrets),
        "RECSYS_S3_ENDPOINT": f"{HOST}:{s3_port}",
        "RECSYS_S3_ACCESS_KEY": secrets.s3_access_key,
        "RECSYS_S3_SECRET_KEY": secrets.s3_secret_key,
        "RECSYS_S3_SECURE": "false",
        "RECSYS_KAFKA_BOOTSTRAP": f"{HOST}:{kafka_port}",
        "RECSYS_ADMIN_TOKEN": secrets.admin_token,
        "RECSYS_RATE_LIMIT": settings.rate_limit,
        "RECSYS_REDIS_URL": redis_url(settings, secrets),
        "RECSYS_API_URL": f"http://{HOST}:{api_port}",
        "PIPELINE_WORK_DIR": settings.path("work"),
        "RECSYS_METRICS_TOKEN": secrets.metrics_token,
        config.METRICS_TOKEN_ENV: secrets.metrics_token,
        "PROMETHEUS_URL": f"http://{HOST}:{settings.port('prometheus')}",
        **openlineage_env(settings),
    }
    if settings.executor == "celery":
        env.update(celery_settings(settings, secrets))
    env.update({f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections.items()})
    return env


def render_env(values: dict[str, str]) -> str:
    lines = ["# Written by `python -m include.stack up`; secrets inside, keep it mode 600."]
    for key, value in values.items():
        if not key.isidentifier():
            raise ValueError(f"env var names must be shell identifiers, got {key!r}")
        if "\n" in value or "\0" in value:
            raise ValueError(f"env var {key} must be one line without NUL bytes")
        lines.append(f"export {key}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"


def write_env(settings: StackSettings, secrets: StackSecrets) -> dict[str, str]:
    values = build_env(settings, secrets)
    write_private(settings.env_file, render_env(values))
    return values


def parse_env(text: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if not line.startswith("export ") or "=" not in line:
            raise ValueError(f"env file line {number}: expected `export NAME=value`, found {line[:40]!r}...")
        key, _, raw = line[len("export ") :].partition("=")
        # shlex undoes exactly the POSIX quoting render_env applied ('...'"'"'...').
        values[key] = "".join(shlex.split(raw)) if raw else ""
    return values


def load_env(path: str | None = None) -> dict[str, str]:
    """Read a stack's env file (default: the one under config.local_dir())."""
    path = path or os.path.join(config.local_dir(), "env")
    with open(path) as fh:
        return parse_env(fh.read())


# RECSYS_LINEAGE=file turns the provider on with the file transport; OPENLINEAGE_URL turns it on over HTTP.
LINEAGE_ENV = "RECSYS_LINEAGE"


def openlineage_env(settings: StackSettings, *, mode: str | None = None) -> dict[str, str]:
    """The OpenLineage provider's settings, the one place its transport is chosen: with OPENLINEAGE_URL set
    (e.g. Marquez's http://host:5000), over HTTP to that backend; with ``mode`` (default: RECSYS_LINEAGE)
    ``file``, to files under the stack's lineage/ directory (one JSON file per event, so concurrent tasks never
    interleave). Otherwise the provider is off.

    Off by default because it is not free here: the listener forks the task process for every event and the
    provider adds a child event per SQL statement (555 events for one small journey), which measured ~13 s of
    CPU per forked emitter under dag.test and more than doubled the test suite's time on two cores."""
    url = os.environ.get("OPENLINEAGE_URL")
    mode = (os.environ.get(LINEAGE_ENV, "") if mode is None else mode).strip().lower()
    if url:
        transport: dict[str, object] = {"type": "http", "url": url, "endpoint": "api/v1/lineage"}
        if os.environ.get("OPENLINEAGE_API_KEY"):
            transport["auth"] = {"type": "api_key", "apiKey": os.environ["OPENLINEAGE_API_KEY"]}
    elif mode == "file":
        # The file transport does not create its directory.
        os.makedirs(settings.path("lineage"), exist_ok=True)
        transport = {"type": "file", "log_file_path": os.path.join(settings.path("lineage"), "event"), "append": False}
    elif mode in ("", "off"):
        return {"AIRFLOW__OPENLINEAGE__DISABLED": "True"}
    else:
        raise ValueError(f"{LINEAGE_ENV} must be file or off (or set OPENLINEAGE_URL), got {mode!r}")
    return {
        "AIRFLOW__OPENLINEAGE__DISABLED": "False",
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(transport),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": os.environ.get("OPENLINEAGE_NAMESPACE", "recsys-journey"),
        "AIRFLOW__OPENLINEAGE__EXTRACTORS": "plugins.journey.lineage_extractor.JourneyExtractor",
        # The listener emits each event from a forked process and kills it after this many seconds (default 10):
        # on a loaded two-core machine a START event took longer and was lost.
        "AIRFLOW__OPENLINEAGE__EXECUTION_TIMEOUT": "60",
    }
