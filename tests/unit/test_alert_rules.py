"""The reviewed alert rules (include/observability/alerts.yml) through Prometheus's own checker.

`promtool check rules` validates syntax and templates; `promtool test rules` evaluates every alert against
hand-written series (alerts_test.yml): each fires when it should, with its labels and rendered annotations, and
stays quiet on healthy series. promtool comes with Debian's prometheus package (installed when root).
"""

from __future__ import annotations

import os
import subprocess

import pytest
import yaml

from include.config import project_root
from include.stack.monitoring import ALERT_RULES, promtool_binary

RULES = os.path.join(project_root(), ALERT_RULES)
CASES = os.path.join(os.path.dirname(RULES), "alerts_test.yml")


@pytest.fixture(scope="module")
def promtool() -> str:
    return promtool_binary()


def test_the_rules_pass_promtool_check(promtool):
    result = subprocess.run([promtool, "check", "rules", RULES], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 6 rules found" in result.stdout


def test_every_alert_fires_and_stays_quiet_as_its_cases_say(promtool):
    result = subprocess.run(
        [promtool, "test", "rules", os.path.basename(CASES)], capture_output=True, text=True, cwd=os.path.dirname(CASES)
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_case_that_fires_it():
    with open(RULES) as fh:
        alerts = {rule["alert"] for group in yaml.safe_load(fh)["groups"] for rule in group["rules"]}
    with open(CASES) as fh:
        fired = {
            case["alertname"]
            for test in yaml.safe_load(fh)["tests"]
            for case in test.get("alert_rule_test", [])
            if case["exp_alerts"]
        }
    assert alerts == fired, f"alerts without a firing case: {sorted(alerts - fired)}"


def test_a_broken_rule_is_refused(promtool, tmp_path):
    """The check is real: an expression that does not parse fails it, naming the rule file."""
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: Broken\n        expr: journey_last_run_success ==\n"
    )
    result = subprocess.run([promtool, "check", "rules", str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "broken.yml" in (result.stdout + result.stderr)
