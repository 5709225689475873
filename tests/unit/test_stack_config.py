from __future__ import annotations

import json
import os
import stat
import subprocess

import pytest

from include import config
from include.stack import credentials
from include.stack.env import build_env, load_env, parse_env, render_env, write_env
from include.stack.settings import BASE_PORTS, StackConfigError, StackSettings, parse_database_url


def _settings(tmp_path, **env: str) -> StackSettings:
    return StackSettings.from_env({"RECSYS_LOCAL_DIR": str(tmp_path), **env})


def test_default_ports_match_the_design(tmp_path):
    s = _settings(tmp_path)
    assert (s.port("postgres"), s.port("s3"), s.port("kafka"), s.port("api"), s.port("airflow")) == (
        15432,
        19000,
        19092,
        18000,
        18080,
    )
    assert s.local_dir == str(tmp_path)


def test_offset_moves_every_port_and_side_by_side_stacks_never_share_one(tmp_path):
    stacks = [_settings(tmp_path, RECSYS_PORT_OFFSET=str(offset)) for offset in (0, 100, 200, 300)]
    port_sets = [{s.port(name) for name in BASE_PORTS} for s in stacks]
    assert all(len(ports) == len(BASE_PORTS) for ports in port_sets), "two components of one stack share a port"
    for i, first in enumerate(port_sets):
        for second in port_sets[i + 1 :]:
            assert not first & second
    assert stacks[2].port("postgres") == 15632


def test_weed_admin_grpc_port_is_where_the_mini_worker_dials(tmp_path):
    s = _settings(tmp_path, RECSYS_PORT_OFFSET="100")
    assert s.port("weed_admin_grpc") == s.port("weed_admin") + 10000


@pytest.mark.parametrize("raw", ["abc", "-5", "60000"])
def test_bad_port_offset_is_rejected_with_the_value(tmp_path, raw):
    with pytest.raises(StackConfigError, match="RECSYS_PORT_OFFSET") as err:
        _settings(tmp_path, RECSYS_PORT_OFFSET=raw)
    assert raw in str(err.value)


def test_database_url_parsing():
    server = parse_database_url("postgres://admin:p%40ss%2Fword@db.internal:5433/maint")
    assert (server.host, server.port, server.user, server.password, server.dbname) == (
        "db.internal",
        5433,
        "admin",
        "p@ss/word",
        "maint",
    )
    defaults = parse_database_url("postgresql://admin@db")
    assert (defaults.port, defaults.password, defaults.dbname) == (5432, "", "postgres")
    assert "p@ss" not in repr(server)


@pytest.mark.parametrize(
    ("url", "message"),
    [("mysql://u:p@h/db", "postgres:// or postgresql://"), ("postgres:///db", "host and a user")],
)
def test_bad_database_url_says_what_was_expected(url, message):
    with pytest.raises(StackConfigError, match=message):
        parse_database_url(url)


def test_external_database_moves_every_dsn_and_connection(tmp_path):
    s = _settings(tmp_path, DATABASE_URL="postgres://root:pw@pg.example:6543/postgres")
    env = build_env(s, credentials.load_or_create(s.secrets_file))
    assert "@pg.example:6543/app" in env["RECSYS_DATABASE_URL"]
    assert "@pg.example:6543/airflow" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
    conn = json.loads(env["AIRFLOW_CONN_POSTGRES_APP"])
    assert (conn["host"], conn["port"], conn["schema"]) == ("pg.example", 6543, "app")


def test_secrets_are_persisted_private_and_not_regenerated(tmp_path):
    path = str(tmp_path / "secrets.json")
    first = credentials.load_or_create(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert credentials.load_or_create(path) == first
    values = [getattr(first, name) for name in first.__dataclass_fields__]
    assert len(set(values)) == len(values) and all(len(v) >= 16 for v in values)
    assert "redacted" in repr(first) and first.s3_secret_key not in repr(first)


def test_a_secret_added_later_is_generated_without_touching_the_others(tmp_path):
    path = tmp_path / "secrets.json"
    first = credentials.load_or_create(str(path))
    stored = json.loads(path.read_text())
    del stored["admin_token"]
    path.write_text(json.dumps(stored))
    second = credentials.load_or_create(str(path))
    assert second.admin_token and second.admin_token != first.admin_token
    assert second.s3_secret_key == first.s3_secret_key


def test_env_file_has_every_setting_and_connection(tmp_path):
    s = _settings(tmp_path, RECSYS_PORT_OFFSET="200")
    secrets = credentials.load_or_create(s.secrets_file)
    env = write_env(s, secrets)
    assert stat.S_IMODE(os.stat(s.env_file).st_mode) == 0o600
    assert load_env(s.env_file) == env
    assert env["AIRFLOW_HOME"] == str(tmp_path / "airflow")
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://airflow:")
    assert env["AIRFLOW__CORE__DAGS_FOLDER"] == os.path.join(config.project_root(), "dags")
    assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert env["RECSYS_S3_ENDPOINT"] == "127.0.0.1:19200"
    assert env["RECSYS_KAFKA_BOOTSTRAP"] == "127.0.0.1:19292"
    assert env["RECSYS_API_URL"] == "http://127.0.0.1:18200"
    assert env["PIPELINE_WORK_DIR"] == str(tmp_path / "work")
    assert {f"AIRFLOW_CONN_{c.upper()}" for c in config.CONN_IDS} <= env.keys()
    minio = json.loads(env["AIRFLOW_CONN_MINIO_DEFAULT"])
    assert (minio["login"], minio["password"], minio["extra"]) == (
        secrets.s3_access_key,
        secrets.s3_secret_key,
        {"secure": False},
    )
    kafka = json.loads(env["AIRFLOW_CONN_KAFKA_DEFAULT"])
    assert kafka["extra"]["bootstrap_servers"] == env["RECSYS_KAFKA_BOOTSTRAP"]
    api = json.loads(env["AIRFLOW_CONN_RECSYS_API"])
    assert (api["conn_type"], api["port"], api["password"]) == ("http", 18200, secrets.admin_token)


AWKWARD = {
    "PLAIN": "value",
    "SPACES": "a b  c",
    "QUOTES": "it's \"quoted\" ''",
    "SHELLY": "$HOME `id` $(id) \\ ; & | * ?",
    "JSON": json.dumps({"password": "p'w\"$x", "extra": {"secure": False}}),
    "EMPTY": "",
}


def test_render_and_parse_round_trip_awkward_values():
    assert parse_env(render_env(AWKWARD)) == AWKWARD


def test_bash_sources_the_env_file_to_the_same_values(tmp_path):
    path = tmp_path / "env"
    path.write_text(render_env(AWKWARD))
    script = f"set -a; . {path}; set +a; " + "; ".join(f'printf "%s\\0" "${k}"' for k in AWKWARD)
    out = subprocess.run(["bash", "-c", script], check=True, capture_output=True, env={"PATH": os.environ["PATH"]})
    assert out.stdout.decode().split("\0")[:-1] == list(AWKWARD.values())


@pytest.mark.parametrize("bad", [{"A": "two\nlines"}, {"NOT-A-NAME": "x"}])
def test_render_refuses_what_sh_cannot_hold_on_one_line(bad):
    with pytest.raises(ValueError):
        render_env(bad)


def test_up_records_the_settings_and_later_commands_use_them_without_the_environment(tmp_path):
    started = _settings(tmp_path, RECSYS_PORT_OFFSET="700", PG_BIN_DIR="/opt/pg17/bin")
    started.record()
    assert stat.S_IMODE(os.stat(tmp_path / "stack.json").st_mode) == 0o600
    later = _settings(tmp_path)  # e.g. `make status` in a shell without the variables
    assert (later.port_offset, later.port("api"), later.pg_bin_dir) == (700, 18700, "/opt/pg17/bin")
    assert later.external_db is None
    assert _settings(tmp_path, RECSYS_PORT_OFFSET="700").port_offset == 700  # agreeing is fine


def test_a_conflicting_port_offset_is_an_error_naming_both_values(tmp_path):
    _settings(tmp_path, RECSYS_PORT_OFFSET="3600").record()
    with pytest.raises(StackConfigError) as err:
        _settings(tmp_path, RECSYS_PORT_OFFSET="0")
    message = str(err.value)
    assert "RECSYS_PORT_OFFSET=0" in message and "RECSYS_PORT_OFFSET=3600" in message
    assert str(tmp_path / "stack.json") in message and "RECSYS_LOCAL_DIR" in message


def test_a_stack_started_before_the_record_is_known_by_its_env_file(tmp_path):
    legacy = _settings(tmp_path, RECSYS_PORT_OFFSET="1800")
    write_env(legacy, credentials.load_or_create(legacy.secrets_file))
    assert not (tmp_path / "stack.json").exists()
    assert _settings(tmp_path).port_offset == 1800
    recorded = r"RECSYS_PORT_OFFSET=5400 .* RECSYS_PORT_OFFSET=1800 \(recorded in .*env\)"
    with pytest.raises(StackConfigError, match=recorded):
        _settings(tmp_path, RECSYS_PORT_OFFSET="5400")


def test_the_external_database_is_recorded_and_another_server_is_a_conflict(tmp_path):
    _settings(tmp_path, DATABASE_URL="postgres://root:pw@pg.example:6543/postgres").record()
    later = _settings(tmp_path)
    assert (later.external_db.host, later.external_db.port, later.external_db.password) == ("pg.example", 6543, "pw")
    rotated = _settings(tmp_path, DATABASE_URL="postgres://root:new-pw@pg.example:6543/postgres")
    assert rotated.external_db.password == "new-pw"  # same server, new password: not a conflict
    with pytest.raises(StackConfigError) as err:
        _settings(tmp_path, DATABASE_URL="postgres://root:pw@other.example:5432/postgres")
    assert "postgres://root@other.example:5432/postgres" in str(err.value)
    assert "postgres://root@pg.example:6543/postgres" in str(err.value)
    assert ":pw@" not in str(err.value)  # the server is named, its password never


def test_a_stack_with_its_own_postgres_refuses_an_external_one(tmp_path):
    _settings(tmp_path).record()
    with pytest.raises(StackConfigError, match="started with DATABASE_URL=its own PostgreSQL"):
        _settings(tmp_path, DATABASE_URL="postgres://root:pw@pg.example:6543/postgres")


def test_the_rate_limit_is_one_start_s_setting_and_is_not_recorded(tmp_path):
    _settings(tmp_path, RECSYS_RATE_LIMIT="100000000/1").record()
    assert "rate" not in (tmp_path / "stack.json").read_text()
    assert _settings(tmp_path).rate_limit == ""  # the keys' plans decide
