"""Every DAG parses fast, without import errors, and carries the metadata operators rely on."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from include.config import project_root

DAGS_DIR = os.path.join(project_root(), "dags")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS_DIR)


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert "onboarding_journey" in dagbag.dags


def test_every_dag_has_tags_owner_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        for t in dag.tasks:
            assert t.owner and t.owner != "airflow", f"{dag_id}.{t.task_id} has no owner"
            if not t.task_id.endswith("validate"):
                assert t.retries >= 1, f"{dag_id}.{t.task_id} is never retried"


def test_no_dag_has_a_start_date_that_would_turn_a_day_into_an_empty_success(dagbag):
    """Airflow creates no task for a logical date before a task's start_date and marks such a run successful."""
    for dag_id, dag in dagbag.dags.items():
        assert dag.start_date is None, dag_id
        assert [t.task_id for t in dag.tasks if t.start_date is not None] == [], dag_id


def test_a_failed_validation_is_final_and_only_a_lost_machine_is_retried(dagbag):
    from airflow.sdk.exceptions import AirflowFailException

    from plugins.validation import raise_for_validation

    validations = [t for d in dagbag.dags.values() for t in d.tasks if t.task_id.endswith(".validate")]
    assert validations
    assert all(t.retries == 1 for t in validations)

    # A failed suite raises the one exception Airflow fails at once, retries or not.
    class Failed:
        success = False

        def to_dict(self):
            return {"success": False}

        def message(self):
            return "GX suite 'seed_data' failed: 1 of 1 expectations unsuccessful"

    class Ti:
        def xcom_push(self, **_pushed):
            pass

    with pytest.raises(AirflowFailException):
        raise_for_validation(Failed(), ti=Ti())


def test_journey_stages_in_order(dagbag):
    from plugins.journey import ALL_STAGES

    dag = dagbag.dags["onboarding_journey"]
    for before, after in zip(ALL_STAGES, ALL_STAGES[1:], strict=False):
        assert f"{after}.run" in dag.get_task(f"{before}.validate").downstream_task_ids
    # Whatever happened upstream, the run cleans up after itself, then reports.
    assert dag.get_task("cleanup").upstream_task_ids - {"tenants"} == {f"{ALL_STAGES[-1]}.validate"}
    assert dag.get_task("report").upstream_task_ids - {"tenants"} == {"cleanup"}
    assert dag.get_task("cleanup").trigger_rule == dag.get_task("report").trigger_rule == "all_done"


def test_journey_params_are_described_for_the_trigger_form(dagbag):
    params = dagbag.dags["onboarding_journey"].params
    undescribed = [name for name in params if not params.get_param(name).description]
    assert undescribed == []


def test_journey_docs_render_their_paths(dagbag):
    """Markdown drops ``<stage>`` as an unknown HTML tag: the docs panel showed plugins/journey/.py."""
    doc = dagbag.dags["onboarding_journey"].doc_md
    assert "plugins/journey/{stage}.py" in doc and "<stage>" not in doc


def test_mapped_journey_tasks_are_named_by_tenant(dagbag):
    dag = dagbag.dags["onboarding_journey"]
    mapped = [t for t in dag.tasks if t.task_id != "tenants"]
    assert mapped and all(t.map_index_template == "{{ tenant }}" for t in mapped), [
        t.task_id for t in mapped if t.map_index_template != "{{ tenant }}"
    ]


def test_the_journey_timetable_is_registered_by_the_plugin_and_serializes(dagbag):
    """A custom timetable serializes only when a plugin registers it (plugins/journey_ui_plugin.py)."""
    from airflow.serialization.decoders import decode_timetable
    from airflow.serialization.encoders import encode_timetable

    from plugins.journey.timetable import ValidatedDayTimetable

    timetable = dagbag.dags["onboarding_journey"].timetable
    decoded = decode_timetable(encode_timetable(timetable))
    assert type(decoded) is ValidatedDayTimetable and decoded.summary == "0 0 * * *"


def test_dags_folder_parses_without_heavy_imports():
    """Parsing must not import pandas, GX, torch or the clients: the dag-processor re-parses files all day."""
    code = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"DagBag(dag_folder={DAGS_DIR!r})\n"
        "heavy = [m for m in ('pandas', 'great_expectations', 'torch', 'faiss', 'kafka', 'minio') if m in sys.modules]\n"
        "print(json.dumps({'heavy': heavy}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ)
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["heavy"] == [], f"parsing the dags folder imported {parsed['heavy']}"
