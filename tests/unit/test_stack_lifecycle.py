from __future__ import annotations

import json
import os
import stat

import pytest

from include.stack import components, credentials, lifecycle
from include.stack.components import Component
from include.stack.settings import StackSettings


def _stack(tmp_path, component: Component) -> lifecycle._Stack:
    settings = StackSettings.from_env({"RECSYS_LOCAL_DIR": str(tmp_path), "RECSYS_PORT_OFFSET": "900"})
    return lifecycle._Stack(settings, {}, [component], credentials.load_or_create(settings.secrets_file))


def _refused() -> None:
    raise ConnectionRefusedError("nothing listens yet")


def test_a_component_that_dies_is_reported_with_its_port_log_and_log_tail(tmp_path):
    component = Component(
        name="broken",
        address="127.0.0.1:20999",
        probe=_refused,
        argv=lambda: ["sh", "-c", "echo 'FATAL: could not bind 127.0.0.1:20999' >&2; exit 3"],
        env=dict(os.environ),
        ready_timeout_s=5,
    )
    stack = _stack(tmp_path, component)
    with pytest.raises(lifecycle.StackError) as err:
        lifecycle._ensure(stack, component)
    message = str(err.value)
    assert "broken failed to start on 127.0.0.1:20999: the process exited" in message
    assert str(tmp_path / "logs" / "broken.log") in message
    assert "FATAL: could not bind" in message


def test_a_component_that_never_gets_ready_times_out_with_the_last_probe_error(tmp_path):
    def probe() -> None:
        raise ConnectionRefusedError("nothing listens on 20998")

    component = Component(
        name="silent",
        address="127.0.0.1:20998",
        probe=probe,
        argv=lambda: ["sleep", "30"],
        env=dict(os.environ),
        ready_timeout_s=0.5,
    )
    stack = _stack(tmp_path, component)
    try:
        with pytest.raises(lifecycle.StackError, match="not ready after 0.5 s .*nothing listens on 20998"):
            lifecycle._ensure(stack, component)
    finally:
        lifecycle.process.stop(stack.settings.pid_file("silent"), grace_s=1)


def test_unknown_component_names_are_refused_with_the_known_ones(tmp_path):
    settings = StackSettings.from_env({"RECSYS_LOCAL_DIR": str(tmp_path), "RECSYS_PORT_OFFSET": "900"})
    with pytest.raises(lifecycle.StackError, match="unknown component.*kafka, postgres"):
        lifecycle.down(settings, only=["kafak"], log=lambda _: None)


def test_airflow_runs_only_when_asked_and_reads_off_not_down_until_then(tmp_path):
    settings = StackSettings.from_env({"RECSYS_LOCAL_DIR": str(tmp_path), "RECSYS_PORT_OFFSET": "900"})
    stack = lifecycle._load(settings)
    airflow = [c.name for c in stack.components if c.tier == components.AIRFLOW_TIER]
    assert airflow == ["airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"]
    assert not {c.name for c in lifecycle._select(stack, None, airflow=False)} & set(airflow)
    assert set(airflow) <= {c.name for c in lifecycle._select(stack, None, airflow=True)}
    states = {s.name: s for s in lifecycle.status(settings)}
    assert all(states[name].state == "off" and states[name].healthy for name in airflow)
    assert states["postgres"].state == "down" and not states["postgres"].healthy


def test_the_airflow_login_is_the_stacks_secret_in_a_private_file(tmp_path):
    settings = StackSettings.from_env({"RECSYS_LOCAL_DIR": str(tmp_path), "RECSYS_PORT_OFFSET": "900"})
    stack = lifecycle._load(settings)
    [api_server] = [c for c in stack.components if c.name == "airflow-api-server"]
    api_server.before_start()
    path = components.airflow_passwords_file(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    with open(path) as fh:
        assert json.load(fh) == {components.AIRFLOW_ADMIN: stack.secrets.airflow_admin_password}
    assert api_server.env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"] == path
    assert api_server.env["AIRFLOW__CORE__PARALLELISM"] == "4"
