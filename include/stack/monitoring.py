"""The stack's Prometheus (`make prometheus`): Debian's server scraping the platform and the journey.

It scrapes the platform API's ``/metrics`` and the Journey app's ``/journey-metrics/metrics`` (Airflow's
api-server, when `make airflow` runs) with the stack's metrics token, and evaluates the reviewed alert rules
of include/observability/alerts.yml. Its own web UI and HTTP API need the login ``prometheus`` with the stack's
``prometheus_password`` (a bcrypt hash in its web config): every web surface of the stack is authenticated.
"""

from __future__ import annotations

import json
import os

from include.stack import debian, probes
from include.stack.credentials import StackSecrets, write_private
from include.stack.settings import HOST, StackSettings

MONITORING_TIER = "monitoring"
PROMETHEUS_USER = "prometheus"
ALERT_RULES = os.path.join("include", "observability", "alerts.yml")
# Short, so a test sees a run's series within seconds; the rules' `for:` windows are minutes anyway.
SCRAPE_INTERVAL = "5s"
JOURNEY_METRICS_PATH = "/journey-metrics/metrics"


def prometheus_binary() -> str:
    return debian.binary("prometheus", package="prometheus", otherwise="or leave Prometheus out of the stack")


def promtool_binary() -> str:
    """Prometheus's rule checker, from the same Debian package (tests/unit/test_alert_rules.py)."""
    return debian.binary("promtool", package="prometheus", otherwise="to check the alert rules")


def scrape_config(settings: StackSettings, *, token_file: str) -> dict:
    """prometheus.yml as a dict (JSON is YAML, so no YAML writer is needed)."""
    auth = {"authorization": {"type": "Bearer", "credentials_file": token_file}}
    return {
        "global": {"scrape_interval": SCRAPE_INTERVAL, "evaluation_interval": SCRAPE_INTERVAL},
        "rule_files": [os.path.join(settings.repo, ALERT_RULES)],
        "scrape_configs": [
            {
                "job_name": "recsys_api",
                "metrics_path": "/metrics",
                **auth,
                "static_configs": [{"targets": [f"{HOST}:{settings.port('api')}"]}],
            },
            {
                "job_name": "journey",
                "metrics_path": JOURNEY_METRICS_PATH,
                **auth,
                "static_configs": [{"targets": [f"{HOST}:{settings.port('airflow')}"]}],
            },
        ],
    }


def prometheus(settings: StackSettings, secrets: StackSecrets, base_env: dict[str, str]):
    from include.stack.components import Component

    port = settings.port("prometheus")
    home = settings.path("prometheus")
    config_file = os.path.join(home, "prometheus.yml")
    web_file = os.path.join(home, "web.yml")
    token_file = os.path.join(home, "scrape-token")
    url = f"http://{HOST}:{port}"

    def prepare() -> None:
        import bcrypt

        os.makedirs(os.path.join(home, "data"), exist_ok=True)
        # Secrets in mode-600 files, never on the command line where `ps` shows them.
        write_private(token_file, secrets.metrics_token)
        hashed = bcrypt.hashpw(secrets.prometheus_password.encode(), bcrypt.gensalt(rounds=10)).decode()
        write_private(web_file, json.dumps({"basic_auth_users": {PROMETHEUS_USER: hashed}}))
        write_private(config_file, json.dumps(scrape_config(settings, token_file=token_file), indent=2))

    return Component(
        name="prometheus",
        address=f"{HOST}:{port}",
        probe=lambda: probes.probe_http(f"{url}/-/ready", auth=(PROMETHEUS_USER, secrets.prometheus_password)),
        tier=MONITORING_TIER,
        argv=lambda: [
            prometheus_binary(),
            f"--config.file={config_file}",
            f"--web.config.file={web_file}",
            f"--storage.tsdb.path={os.path.join(home, 'data')}",
            f"--web.listen-address={HOST}:{port}",
        ],
        env=base_env,
        ports=(port,),
        before_start=prepare,
    )
