"""The OpenLineage provider's custom extractor for the journey's TaskFlow tasks (``[openlineage] extractors``).

Its own module because it subclasses the provider's BaseExtractor: DAG files import plugins.journey.lineage at
parse time, and only the provider's listener needs this class.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage

from plugins.journey.lineage import recorded


class JourneyExtractor(BaseExtractor):
    """What the task body recorded (plugins.journey.lineage); an empty lineage for tasks that record none."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["_PythonDecoratedOperator"]

    def _execute_extraction(self) -> OperatorLineage | None:
        return None  # on start nothing has been read yet

    def extract_on_complete(self, task_instance: Any) -> OperatorLineage | None:
        return recorded(task_instance)

    def extract_on_failure(self, task_instance: Any) -> OperatorLineage | None:
        return recorded(task_instance)
