"""Running onboarding_journey with dag.test and reading its report: shared by the DAG tests of the journey."""

from __future__ import annotations

import json
import os
from datetime import datetime


def load_journey():
    """A freshly parsed DAG: dag.test on a DAG object that already ran carries the last run's conf."""
    from airflow.dag_processing.dagbag import DagBag

    from include.config import project_root

    bag = DagBag(dag_folder=os.path.join(project_root(), "dags", "onboarding_journey.py"))
    assert bag.import_errors == {}
    return bag.dags["onboarding_journey"]


def run_journey(*, logical_date: datetime, **conf):
    """(dag_run, the tenant's report.json) of one run of the journey for ``conf["tenant"]``."""
    from plugins.journey.run import reports_root, safe_name

    dag_run = load_journey().test(logical_date=logical_date, run_conf=conf)
    with open(os.path.join(reports_root(), safe_name(dag_run.run_id), conf["tenant"], "report.json")) as fh:
        return dag_run, json.load(fh)
