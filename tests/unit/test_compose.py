"""docker-compose.yml and the Dockerfiles agree with include/config.py and requirements.txt.

No Docker engine runs where the tests run, so the stack is checked by construction: the compose file
is parsed as YAML, `${VAR...}` placeholders are replaced with dummy values the way `docker compose`
would substitute real ones, and what the services would create or connect to is compared with the
single sources of truth.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from include.config import (
    BUCKETS,
    CONN_IDS,
    HISTORY_CONN_ID,
    KAFKA_CONN_ID,
    MINIO_CONN_ID,
    POSTGRES_CONN_ID,
    RECSYS_API_CONN_ID,
    TOPICS,
)

ROOT = Path(__file__).resolve().parents[2]

# What the DAGs reach (directly or through the platform) and the Airflow components that run them.
REQUIRED_SERVICES = (
    "postgres",
    "minio",
    "kafka",
    "redis",
    "recsys-api",
    "recsys-ingest",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
)
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
)
# Settings that are not secrets and so may have a default (`${VAR:-default}`), with that default.
DEFAULTED = {"AIRFLOW_EXECUTOR": "LocalExecutor"}
PLATFORM_SERVICES = ("recsys-migrate", "recsys-api", "recsys-ingest")
# What the platform image installs: everything in requirements.txt except the pipeline's own needs.
PLATFORM_PACKAGES = {
    "fastapi",
    "uvicorn[standard]",
    "psycopg2-binary",
    "kafka-python",
    "confluent-kafka",
    "msgspec",
    "minio",
    "faiss-cpu",
    "numpy",
    "pandas",
    "redis",
}
PLATFORM_SETTINGS = {
    "RECSYS_DATABASE_URL": "postgresql://app:dummy-app_db_password@postgres:5432/app",
    "RECSYS_S3_ENDPOINT": "minio:9000",
    "RECSYS_S3_ACCESS_KEY": "dummy-minio_root_user",
    "RECSYS_S3_SECRET_KEY": "dummy-minio_root_password",
    "RECSYS_S3_SECURE": "false",
    "RECSYS_KAFKA_BOOTSTRAP": "kafka:9092",
    "RECSYS_ADMIN_TOKEN": "dummy-recsys_admin_token",
    "RECSYS_REDIS_URL": "redis://:dummy-redis_password@redis:6379/0",
}
# The connections as Airflow will parse them; "dummy-<var>" marks a value taken from .env.
EXPECTED_CONNECTIONS: dict[str, dict[str, Any]] = {
    POSTGRES_CONN_ID: {
        "conn_type": "postgres",
        "host": "postgres",
        "port": 5432,
        "login": "app",
        "password": "dummy-app_db_password",
        "schema": "app",
    },
    MINIO_CONN_ID: {
        "conn_type": "generic",
        "host": "minio",
        "port": 9000,
        "login": "dummy-minio_root_user",
        "password": "dummy-minio_root_password",
        "extra": {"secure": False},
    },
    KAFKA_CONN_ID: {"conn_type": "generic", "extra": {"bootstrap_servers": "kafka:9092"}},
    RECSYS_API_CONN_ID: {
        "conn_type": "http",
        "host": "recsys-api",
        "port": 8000,
        "schema": "http",
        "password": "dummy-recsys_admin_token",
    },
    HISTORY_CONN_ID: {
        "conn_type": "postgres",
        "host": "postgres",
        "port": 5432,
        "login": "validation_history",
        "password": "dummy-history_db_password",
        "schema": "validation_history",
    },
}
# `$$` is compose's escape for a literal `$`; `${NAME}`, `${NAME:?msg}`, `${NAME:-default}` are substituted.
INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>\w+)(?P<modifier>:?[-?+][^}]*)?\}")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9._-]+(?:\[[A-Za-z0-9,._-]+\])?)==(?P<version>\S+)$")


def interpolate(value: str) -> str:
    """Substitute like `docker compose` does, with "dummy-<var>" standing in for every .env value."""
    return INTERPOLATION.sub(lambda m: f"dummy-{m['name'].lower()}" if m["name"] else "$", value)


def environment(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of compose's two forms (map or list) it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {key: interpolate(str(value)) for key, value in env.items()}


def script(service: dict[str, Any]) -> str:
    """The shell script a `sh -c` job runs, with `$$` unescaped and backslash continuations joined."""
    command = service["command"]
    text = command[-1] if isinstance(command, list) else command
    return interpolate(text).replace("\\\n", " ")


def strings(node: Any) -> list[str]:
    """All string keys and values in a parsed YAML document."""
    if isinstance(node, dict):
        return [text for key, value in node.items() for text in strings(key) + strings(value)]
    if isinstance(node, list):
        return [text for item in node for text in strings(item)]
    return [node] if isinstance(node, str) else []


def make_bucket_commands(services: dict[str, dict[str, Any]]) -> list[list[str]]:
    """The `mc mb` invocations of the minio-init job, each split into its arguments."""
    lines = script(services["minio-init"]).splitlines()
    return [shlex.split(line) for line in lines if line.strip().startswith("mc mb ")]


def is_one_shot(service: dict[str, Any]) -> bool:
    return service.get("restart") == "no"


def pins(tokens: list[str]) -> dict[str, str]:
    """The `name==version` pins among requirement lines or Dockerfile words, keyed by lower-case name."""
    found = {}
    for token in tokens:
        match = PIN.match(token.strip().strip("\"'"))
        if match:
            found[match["name"].lower()] = match["version"]
    return found


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return compose["services"]


@pytest.fixture(scope="module")
def placeholders(compose: dict[str, Any]) -> list[re.Match[str]]:
    """Every `${VAR...}` in the parsed file (so not in comments), anchors included."""
    return [m for text in strings(compose) for m in INTERPOLATION.finditer(text) if m["name"]]


@pytest.fixture(scope="module")
def requirement_pins() -> dict[str, str]:
    return pins((ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines())


@pytest.fixture(scope="module")
def recsys_dockerfile_pins() -> dict[str, str]:
    return pins((ROOT / "Dockerfile.recsys").read_text(encoding="utf-8").split())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    settings = [line.split("=", 1) for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return {name.strip(): value.strip() for name, value in settings}


def test_every_service_the_dags_need_is_declared(services):
    assert sorted(set(REQUIRED_SERVICES) - set(services)) == []


def test_every_long_running_service_has_a_healthcheck(services):
    long_running = [name for name, svc in services.items() if not is_one_shot(svc)]
    assert [name for name in long_running if not services[name].get("healthcheck", {}).get("test")] == []


def test_depends_on_names_only_declared_services(services):
    edges = {(name, dep) for name, svc in services.items() for dep in svc.get("depends_on", {})}
    assert {(name, dep) for name, dep in edges if dep not in services} == set()


def test_depends_on_waits_for_jobs_to_succeed_and_for_servers_to_be_healthy(services):
    wrong = {}
    for name, svc in services.items():
        depends_on = svc.get("depends_on", {})
        assert isinstance(depends_on, dict), f"{name}: depends_on must map services to conditions"
        for dep, spec in depends_on.items():
            job = is_one_shot(services.get(dep, {}))
            expected = "service_completed_successfully" if job else "service_healthy"
            if spec.get("condition") != expected:
                wrong[(name, dep)] = spec.get("condition")
    assert wrong == {}


def test_dependencies_have_no_cycle(services):
    # Kahn's algorithm: whatever cannot be ordered is on (or behind) a cycle.
    remaining = {name: set(svc.get("depends_on", {})) for name, svc in services.items()}
    while ready := [name for name, deps in remaining.items() if not deps]:
        for name in ready:
            del remaining[name]
        for deps in remaining.values():
            deps.difference_update(ready)
    assert remaining == {}


@pytest.mark.parametrize("name", AIRFLOW_SERVICES)
def test_airflow_connection_ids_are_exactly_config_conn_ids(services, name):
    prefix = "AIRFLOW_CONN_"
    ids = {key[len(prefix) :].lower() for key in environment(services[name]) if key.startswith(prefix)}
    assert ids == set(CONN_IDS)


@pytest.mark.parametrize("conn_id", CONN_IDS)
def test_airflow_connection_parses_as_json_with_the_expected_fields(services, conn_id):
    raw = environment(services["airflow-scheduler"])[f"AIRFLOW_CONN_{conn_id.upper()}"]
    assert json.loads(raw) == EXPECTED_CONNECTIONS[conn_id]


def test_airflow_components_share_the_work_volume_named_by_pipeline_work_dir(services):
    missing = []
    for name in AIRFLOW_SERVICES:
        work_dir = environment(services[name])["PIPELINE_WORK_DIR"]
        if not any(volume.split(":")[1] == work_dir for volume in services[name]["volumes"]):
            missing.append(name)
    assert missing == []


@pytest.mark.parametrize("name", PLATFORM_SERVICES)
def test_platform_services_get_the_platform_settings(services, name):
    env = environment(services[name])
    assert {key: env.get(key) for key in PLATFORM_SETTINGS} == PLATFORM_SETTINGS


def test_the_response_cache_is_a_password_protected_redis_the_platform_waits_for(services):
    redis = services["redis"]
    command = [interpolate(str(arg)) for arg in redis["command"]]
    assert command[command.index("--requirepass") + 1] == "dummy-redis_password"
    # A cache, not a store: nothing persisted, memory capped.
    assert command[command.index("--save") + 1] == "" and command[command.index("--appendonly") + 1] == "no"
    assert "--maxmemory" in command
    password = environment(services["recsys-api"])["RECSYS_REDIS_URL"].split("@")[0].split(":")[-1]
    assert password == "dummy-redis_password"
    for name in ("recsys-api", "recsys-ingest"):
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}


def test_minio_init_creates_exactly_the_config_buckets(services):
    targets = [arg for command in make_bucket_commands(services) for arg in command if "/" in arg]
    assert sorted(target.split("/", 1)[1] for target in targets) == sorted(BUCKETS)


def test_minio_init_is_idempotent(services):
    commands = make_bucket_commands(services)
    assert commands and all("--ignore-existing" in command for command in commands)


def test_kafka_init_creates_exactly_the_config_topics_with_their_partitions(services):
    calls = re.findall(r"^\s*create_topic\s+(\S+)\s+(\d+)\s*$", script(services["kafka-init"]), re.MULTILINE)
    created = sorted((name, int(partitions)) for name, partitions in calls)
    assert created == sorted((topic.name, topic.partitions) for topic in TOPICS)


def test_kafka_init_creates_topics_idempotently_from_its_arguments(services):
    create = script(services["kafka-init"])
    assert all(arg in create for arg in ("--create --if-not-exists", '--topic "$1"', '--partitions "$2"'))


def test_kafka_does_not_auto_create_topics(services):
    # Otherwise a misspelt topic would silently appear and "exactly 12 topics" would not hold.
    assert environment(services["kafka"])["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"


def test_images_are_pinned(services):
    def pinned(image: str) -> bool:
        tag = image.rpartition("/")[2].partition(":")[2]
        return "@sha256:" in image or (bool(tag) and tag != "latest")

    images = {name: svc.get("image", "") for name, svc in services.items()}
    assert {name: image for name, image in images.items() if not pinned(image)} == {}


def test_published_ports_bind_to_localhost_only(services):
    ports = [str(port) for svc in services.values() for port in svc.get("ports", [])]
    assert ports and [port for port in ports if not port.startswith("127.0.0.1:")] == []


def test_every_variable_is_required_so_no_secret_has_a_default(placeholders):
    optional = [
        m[0]
        for m in placeholders
        if not (m["modifier"] or "").startswith(":?") and m["modifier"] != f":-{DEFAULTED.get(m['name'])}"
    ]
    assert placeholders and optional == []


def test_env_example_documents_exactly_the_variables_the_compose_file_reads(placeholders, env_example):
    assert {m["name"] for m in placeholders} == set(env_example)


def test_env_example_ships_no_secret_values(env_example):
    # The MinIO user name is an identifier, not a secret; everything else must be filled in per install.
    filled = {name: value for name, value in env_example.items() if value and name != "MINIO_ROOT_USER"}
    assert filled == {}


def test_airflow_image_is_the_airflow_version_requirements_pin(requirement_pins):
    dockerfile = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"^FROM\s+apache/airflow:(\S+)-python3\.\d+\s*$", dockerfile, re.MULTILINE)
    assert base is not None and base[1] == requirement_pins["apache-airflow"]


def test_platform_image_installs_the_platform_packages(recsys_dockerfile_pins):
    assert set(recsys_dockerfile_pins) == PLATFORM_PACKAGES


def test_platform_image_pins_agree_with_requirements(recsys_dockerfile_pins, requirement_pins):
    disagreements = {
        name: (version, requirement_pins.get(name))
        for name, version in recsys_dockerfile_pins.items()
        if requirement_pins.get(name) != version
    }
    assert disagreements == {}


def test_the_airflow_image_carries_the_journey_plugin_and_its_offline_assets():
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "COPY --chown=airflow:root plugins/ /opt/airflow/plugins/" in dockerfile
    assert "RUN python -m plugins.journey.docs_assets" in dockerfile
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert not {"plugins", "plugins/", "plugins/.airflowignore", "plugins/journey_ui_plugin.py"} & set(ignored)


def test_report_links_point_at_the_published_airflow_ui(services):
    """Task logs, alerts and webhooks link /journey/... under [api] base_url: the UI an operator can open."""
    api = services["airflow-apiserver"]
    base_url = api["environment"]["AIRFLOW__API__BASE_URL"]
    published = [str(p) for p in api["ports"]]
    assert any(base_url == "http://" + port.rsplit(":", 1)[0] for port in published), (base_url, published)
    for name in AIRFLOW_SERVICES:
        assert services[name]["environment"]["AIRFLOW__API__BASE_URL"] == base_url, name


def test_prometheus_scrapes_the_platform_and_the_journey_with_the_token_and_loads_the_reviewed_rules(services):
    prometheus = services["prometheus"]
    config = yaml.safe_load((ROOT / "docker" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert {name: (job["metrics_path"], job["static_configs"][0]["targets"]) for name, job in jobs.items()} == {
        "recsys_api": ("/metrics", ["recsys-api:8000"]),
        "journey": ("/journey-metrics/metrics", ["airflow-apiserver:8080"]),
    }
    # The token file the entrypoint writes from METRICS_TOKEN is the one every job presents.
    command = " ".join(prometheus["command"])
    for job in jobs.values():
        assert job["authorization"]["credentials_file"] in command
    assert "$$METRICS_TOKEN" in command or "$METRICS_TOKEN" in command
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in prometheus["volumes"]}
    assert mounts[config["rule_files"][0]] == "./include/observability/alerts.yml"
    # Only Grafana, behind its login, is published; Prometheus has no login of its own there.
    assert "ports" not in prometheus and services["grafana"]["ports"] == ["127.0.0.1:3000:3000"]
    assert environment(services["grafana"])["GF_AUTH_ANONYMOUS_ENABLED"] == "false"


def test_scrape_tokens_reach_the_platform_and_the_journey(services):
    token = environment(services["prometheus"])["METRICS_TOKEN"]
    assert environment(services["recsys-api"])["RECSYS_METRICS_TOKEN"] == token
    assert environment(services["airflow-apiserver"])["JOURNEY_METRICS_TOKEN"] == token


def test_the_dashboard_charts_only_series_that_exist(services):
    """Every metric the provisioned dashboard queries is one the journey exporter or the platform writes."""
    from plugins.ui.metrics import families

    dashboard = json.loads((ROOT / "docker" / "grafana" / "dashboards" / "journey.json").read_text(encoding="utf-8"))
    queried = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"\b(journey_[a-z0-9_]+|recsys_[a-z0-9_]+)", target["expr"])
    }
    exported = {family.name for family in families([])} | {"recsys_health_check_up"}
    assert queried and queried - exported == set()
    assert {"journey_last_run_success", "journey_model_ndcg_at_10", "journey_stage_duration_seconds"} <= queried
    provisioning = ROOT / "docker" / "grafana" / "provisioning"
    source = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text(encoding="utf-8"))
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    assert {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]} == {"prometheus"}


def test_local_executor_is_the_default_and_one_variable_switches_every_airflow_service(services):
    executors = {name: services[name]["environment"]["AIRFLOW__CORE__EXECUTOR"] for name in AIRFLOW_SERVICES}
    assert set(executors.values()) == {"${AIRFLOW_EXECUTOR:-LocalExecutor}"}
    assert interpolate(executors["airflow-scheduler"]) == "dummy-airflow_executor"  # what .env sets wins
    assert INTERPOLATION.sub(lambda m: m["modifier"][2:] if m["name"] else "$", executors["airflow-worker"]) == (
        "LocalExecutor"
    )


def test_celery_broker_is_the_password_protected_redis_and_results_go_to_the_metadata_db(services):
    for name in AIRFLOW_SERVICES:
        env = environment(services[name])
        assert env["AIRFLOW__CELERY__BROKER_URL"] == "redis://:dummy-redis_password@redis:6379/1"
        assert env["AIRFLOW__CELERY__RESULT_BACKEND"] == (
            "db+" + env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].replace("+psycopg2", "")
        )
    # Database 1 is the broker's, 0 the response cache's: a queued task must never meet the cache's keys.
    assert PLATFORM_SETTINGS["RECSYS_REDIS_URL"].endswith("/0")
    command = services["redis"]["command"]
    assert command[command.index("--maxmemory-policy") + 1] == "volatile-lru"


def test_celery_settings_let_a_killed_worker_task_be_retried_elsewhere(services):
    env = environment(services["airflow-worker"])
    assert env["AIRFLOW__CELERY__TASK_ACKS_LATE"] == "True"
    assert env["AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER"] == "1"
    assert int(env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"]) <= 120
    # Above any task's run time (the journey's longest, training at platform scale, takes minutes).
    assert int(env["AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT"]) >= 3600


def test_the_worker_service_scales(services):
    worker = services["airflow-worker"]
    # `--scale airflow-worker=3` refuses a fixed container name or a published host port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == "celery worker"
    assert worker["profiles"] == ["celery"]
    assert worker["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert worker["depends_on"]["airflow-apiserver"] == {"condition": "service_healthy"}
    assert "inspect ping" in worker["healthcheck"]["test"][1]
    assert worker["volumes"] == services["airflow-scheduler"]["volumes"]  # the same work and log volumes


def test_the_airflow_image_installs_the_celery_provider(requirement_pins):
    assert {"apache-airflow-providers-celery", "celery"} <= set(requirement_pins)
