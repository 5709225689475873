"""OpenLineage data-quality facets from a stage's GX results.

GX 1.x has no OpenLineage emitter (the OpenLineage GX action is pinned to pre-1.0 GX), so this maps the
ExpectationSuiteValidationResult of each batch that :func:`plugins.validation.validate_stage` returns onto
the two facets the OpenLineage spec defines for it: ``DataQualityAssertionsDatasetFacet`` (one assertion per expectation: its
type, column, success, observed value and, for column-map expectations, GX's unexpected count) and
``DataQualityMetricsDatasetFacet`` (row count, null and distinct counts, only where the suite computed
them: nothing here is recomputed from the data).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plugins.validation import StageValidation

# Expectations whose observed value is the batch's row count.
_ROW_COUNT_TYPES = frozenset({"expect_table_row_count_to_be_between", "expect_table_row_count_to_equal"})
# ... a column's distinct count.
_DISTINCT_TYPES = frozenset({"expect_column_unique_value_count_to_be_between"})
# ... a column's null count (GX's unexpected_count of a not-null check).
_NULL_TYPES = frozenset({"expect_column_values_to_not_be_null"})


@dataclass
class BatchQuality:
    """What one batch's GX result says, in OpenLineage's terms."""

    assertions: list[dict[str, Any]] = field(default_factory=list)
    row_count: int | None = None
    null_counts: dict[str, int] = field(default_factory=dict)
    distinct_counts: dict[str, int] = field(default_factory=dict)

    def merge(self, other: BatchQuality) -> None:
        """Add another batch's results checked on the same dataset."""
        self.assertions += other.assertions
        self.row_count = self.row_count if self.row_count is not None else other.row_count
        self.null_counts.update(other.null_counts)
        self.distinct_counts.update(other.distinct_counts)

    def dataset(self, *, namespace: str, name: str) -> Any:
        """The validated dataset carrying both facets."""
        from openlineage.client.event_v2 import InputDataset
        from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
        from openlineage.client.facet_v2 import data_quality_metrics_dataset as dqm

        columns = sorted(set(self.null_counts) | set(self.distinct_counts))
        metrics = dqm.DataQualityMetricsDatasetFacet(
            rowCount=self.row_count,
            columnMetrics={
                column: dqm.ColumnMetrics(
                    nullCount=self.null_counts.get(column), distinctCount=self.distinct_counts.get(column)
                )
                for column in columns
            },
        )
        assertions = dqa.DataQualityAssertionsDatasetFacet(
            assertions=[dqa.Assertion(**assertion) for assertion in self.assertions]
        )
        # The validate task reads what it checks, so the dataset is one of its inputs.
        return InputDataset(
            namespace=namespace, name=name, facets={"dataQualityAssertions": assertions, "dataQualityMetrics": metrics}
        )


def batch_quality(validation: StageValidation) -> dict[str, BatchQuality]:
    """Each batch of a stage's validation (GX's own result objects, this process's) to its assertions and metrics."""
    if validation.evaluated and not validation.results:
        raise ValueError(
            f"validation of {validation.suite!r} carries no GX results: only the validating process has them"
        )
    return {name: _quality(name, result.to_json_dict()) for name, result in validation.results.items()}


def _quality(batch: str, result: Mapping[str, Any]) -> BatchQuality:
    quality = BatchQuality()
    for outcome in result.get("results", []):
        config = outcome["expectation_config"]
        kind, kwargs = config["type"], config.get("kwargs") or {}
        column = kwargs.get("column")
        observed = outcome.get("result") or {}
        value = observed.get("observed_value")
        assertion: dict[str, Any] = {
            "assertion": kind,
            "success": bool(outcome["success"]),
            "severity": "error",  # any unsuccessful expectation fails the stage
            "name": f"{batch}.{kind}" + (f".{column}" if column is not None else ""),
            "params": {"batch": batch},
        }
        if column is not None:
            assertion["column"] = str(column)
        if value is not None:
            assertion["actual"] = _shown(value)
        # The spec's Assertion has no failures field: GX's count of failing rows goes in params.
        if isinstance(observed.get("unexpected_count"), int):
            assertion["params"]["failures"] = observed["unexpected_count"]
            assertion["params"]["element_count"] = observed.get("element_count")
        quality.assertions.append(assertion)
        if kind in _ROW_COUNT_TYPES and isinstance(value, int):
            quality.row_count = value
        elif isinstance(observed.get("element_count"), int) and quality.row_count is None:
            quality.row_count = observed["element_count"]
        if kind in _DISTINCT_TYPES and column is not None and isinstance(value, int):
            quality.distinct_counts[str(column)] = value
        if kind in _NULL_TYPES and column is not None and isinstance(observed.get("unexpected_count"), int):
            quality.null_counts[str(column)] = observed["unexpected_count"]
        elif column is not None and isinstance(observed.get("missing_count"), int):
            quality.null_counts.setdefault(str(column), observed["missing_count"])
    return quality


def _shown(value: Any) -> str:
    """An observed value as the spec's string: JSON, cut so a partition object stays small."""
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= 500 else text[:497] + "..."
