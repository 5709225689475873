"""Root conftest: the local stack's env for integration tests, and a fixture that insists it is up.

The env file is loaded at import time, before any test module imports airflow, because Airflow
reads AIRFLOW_HOME and its database URL once at import. Variables already set in the environment
win, so a caller can still point a run elsewhere.
"""

from __future__ import annotations

import os

import pytest

from include import config
from include.stack.env import load_env

STACK_ENV_FILE = os.path.join(config.local_dir(), "env")

if os.path.exists(STACK_ENV_FILE):
    for _key, _value in load_env(STACK_ENV_FILE).items():
        os.environ.setdefault(_key, _value)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the stack is an integration test: those under tests/integration, and any other
    (the DAG and UI tests) that asks for ``stack_env``, so ``-m "not integration"`` runs without servers."""
    integration_dir = os.path.join(os.path.dirname(__file__), "integration") + os.sep
    for item in items:
        if str(item.path).startswith(integration_dir) or "stack_env" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def stack_env() -> dict[str, str]:
    """The running default stack's env (connections, RECSYS_*); fails clearly if it is not up."""
    if not os.path.exists(STACK_ENV_FILE):
        pytest.fail(f"local stack not running: run make up (no env file at {STACK_ENV_FILE})", pytrace=False)
    from include.stack import lifecycle
    from include.stack.settings import StackConfigError

    try:
        statuses = lifecycle.status()
    except StackConfigError as exc:  # e.g. a RECSYS_PORT_OFFSET that is not the running stack's
        pytest.fail(f"local stack settings: {exc}", pytrace=False)
    unhealthy = [s for s in statuses if not s.healthy]
    if unhealthy:
        details = "; ".join(f"{s.name} is {s.state} {s.detail}".strip() for s in unhealthy)
        pytest.fail(f"local stack not running: run make up ({details})", pytrace=False)
    return load_env(STACK_ENV_FILE)
