"""The browser tier: Debian's Chromium driven by Playwright (PyPI) through ``executable_path``, against the local
stack's Airflow api-server (the ``make airflow`` component, started here if it is not running).

Playwright's own browser download cannot work on these machines, so Chromium comes from Debian: installed here
with apt-get when it is missing and we are root, else the tier fails saying how to install it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from include import config

CHROMIUM_PACKAGE = "chromium"
SCREENSHOTS_DIR = os.path.join(config.local_dir(), "ui-screenshots")
API_SERVER = "airflow-api-server"


def _chromium() -> str:
    found = shutil.which("chromium")
    if found:
        return found
    if os.geteuid() != 0:
        pytest.fail(
            f"Chromium not found: install Debian's {CHROMIUM_PACKAGE} package (apt-get install {CHROMIUM_PACKAGE})",
            pytrace=False,
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", CHROMIUM_PACKAGE], check=True, env=env)
    found = shutil.which("chromium")
    if not found:
        pytest.fail(f"apt-get installed {CHROMIUM_PACKAGE} but no chromium is on PATH", pytrace=False)
    return found


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    executable = _chromium()
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root, which CI here is.
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="session")
def airflow_ui(stack_env) -> dict[str, str]:
    """The api-server's base URL and the admin login; the api-server is started (and stopped) here if need be."""
    from include.stack import lifecycle
    from include.stack.components import AIRFLOW_ADMIN, airflow_passwords_file
    from include.stack.settings import HOST, StackSettings

    started = [s.name for s in lifecycle.status() if s.name == API_SERVER and s.pid is None]
    lifecycle.up(only=started)
    settings = StackSettings.from_env()
    with open(airflow_passwords_file(settings)) as fh:
        password = json.load(fh)[AIRFLOW_ADMIN]
    try:
        yield {"base": f"http://{HOST}:{settings.port('airflow')}", "username": AIRFLOW_ADMIN, "password": password}
    finally:
        lifecycle.down(only=started)


@pytest.fixture(scope="session")
def screenshots() -> str:
    os.makedirs(SCREENSHOTS_DIR, exist_ok=True)
    return SCREENSHOTS_DIR
