"""Great Expectations validation of the onboarding journey's stages and the ops DAGs' checks.

Each table a stage checks (a GX "batch") has its own suite, ``expectations/<stage>/<batch>.json`` (GX 1.x
ExpectationSuite JSON named ``<stage>.<batch>``). :func:`validate_stage` runs one
``ValidationDefinition`` per batch in a GX context whose suite and validation-results stores live in the
run's results directory, so the run's results are GX's own files and :func:`build_data_docs` is
``context.build_data_docs()`` over those stores.

Stores and concurrency: stages of one run validate in separate processes; every store key is per suite
(``<stage>.<batch>``), so two stages never write the same file. A retry removes its suite's earlier
results before storing its own: the latest attempt is the stage's result.

Parameters: values for ``{"$PARAMETER": name}`` references go to GX's own expectation-parameter mechanism.
Timestamps may be passed as ``pandas.Timestamp``/``datetime`` or as ISO-8601 strings with a timezone
(GX parses the strings into datetimes before comparing). Tuples, sets and arrays become lists, and
a single value given for a ``value_set`` becomes a set of one (the audit suite's ``tenant_id``).

``import great_expectations`` takes seconds, and DAG files import this module at parse time, so GX
is only imported inside the functions that need it.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
import math
import os
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUITES_DIR = Path(__file__).resolve().parent.parent / "expectations"
# The XCom key under which a validate task pushes its StageValidation.to_dict() (the report and alerts read it).
VALIDATION_KEY = "validation"

# Importing GX logs "Skipping registering function ..." at INFO for ~200 of its functions: 93% of a validate
# task's log. Only that logger is quietened; GX's warnings and errors still show.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

# Failure messages and XCom payloads stay small: long value lists are cut to this many items.
_MAX_LISTED_VALUES = 10
# kwargs GX adds or that are shown separately, so they are left out of the kwargs we report.
_HIDDEN_KWARGS = frozenset({"batch_id", "column", "column_A", "column_B", "column_list"})
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}
# Where, under a run's results directory, GX's stores keep their files.
_SUITES_SUBDIR = "expectations"
_RESULTS_SUBDIR = "validations"


class ValidationFailed(Exception):
    """A stage's data broke its suite; the message lists every failed expectation."""


@dataclass(frozen=True)
class StageValidation:
    """One stage's outcome over all its batches. ``to_dict()`` is what goes to XCom; ``results`` holds GX's own
    ExpectationSuiteValidationResult per batch for callers in the same process (not serialised)."""

    suite: str
    success: bool
    evaluated: int
    unsuccessful: int
    failed_expectations: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    result_path: str = ""
    results: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return _plain({k: v for k, v in asdict(self).items() if k != "results"})

    def message(self) -> str:
        """The failure message: a headline, then one line per failed expectation."""
        lines = [
            f"GX suite {self.suite!r} failed: {self.unsuccessful} of {self.evaluated} expectations"
            f" unsuccessful (results: {self.result_path})"
        ]
        lines += [f"  - {describe_failure(failure)}" for failure in self.failed_expectations]
        return "\n".join(lines)

    def raise_for_failure(self) -> None:
        if not self.success:
            raise ValidationFailed(self.message())


def raise_for_validation(
    result: StageValidation, *, ti: Any, rejected_rows: list[str] | None = None, footer: str = ""
) -> dict[str, Any]:
    """Every validate task's ending: push ``result.to_dict()`` to XCom under VALIDATION_KEY (the report and the
    failure alert read it there) and, if an expectation failed, fail the task without retries: data that
    fails its expectations will fail them again. ``rejected_rows`` (a line per table, from
    plugins.journey.rejections.describe) go into that XCom and right under the message's headline, so a message
    cut to an alert's length still carries them; ``footer`` ends it (the journey's report link)."""
    from airflow.sdk.exceptions import AirflowFailException

    from plugins.journey.rejections import failure_text

    summary = {**result.to_dict(), "rejected_rows": list(rejected_rows or [])}
    ti.xcom_push(key=VALIDATION_KEY, value=summary)
    if not result.success:
        notes = failure_text(summary["rejected_rows"])
        raise AirflowFailException(failure_message(result.message(), notes) + (f"\n{footer}" if footer else ""))
    return summary


def failure_message(validation_failure: str, notes: str) -> str:
    """A failed suite's message with ``notes`` right under its headline."""
    headline, _, expectations = validation_failure.partition("\n")
    return "\n".join(filter(None, [headline, notes, expectations]))


def load_suite(stage: str) -> dict[str, dict[str, Any]]:
    """The suites of ``stage`` by batch, read from ``expectations/<stage>/<batch>.json``; each must be named
    ``<stage>.<batch>``."""
    folder = SUITES_DIR / stage
    paths = sorted(folder.glob("*.json"))
    if not paths:
        known = sorted(p.name for p in SUITES_DIR.iterdir() if p.is_dir())
        raise FileNotFoundError(
            f"no GX suite for stage {stage!r} at {folder}/<batch>.json; known stages: {', '.join(known)}"
        )
    suites = {}
    for path in paths:
        suite = json.loads(path.read_text())
        if suite.get("name") != _gx_suite_name(stage, path.stem):
            raise ValueError(
                f"suite {path} must be named {_gx_suite_name(stage, path.stem)!r}, found name {suite.get('name')!r}"
            )
        suites[path.stem] = suite
    return suites


def validate_stage(
    stage: str,
    batches: Mapping[str, Any],
    *,
    parameters: Mapping[str, Any] | None = None,
    results_dir: str | os.PathLike[str],
    run_name: str,
) -> StageValidation:
    """Validate every batch of ``stage`` against its suite; GX stores each result under ``results_dir``.

    ``batches`` maps batch names (the stage's suite files) to pandas DataFrames. Every batch the stage has a
    suite for must be given and no other; every ``$PARAMETER`` the suites use must be in ``parameters``.
    Batches are validated, and failures listed, in the order given. Call ``raise_for_failure()`` to fail.
    """
    import pandas as pd
    from great_expectations.core.run_identifier import RunIdentifier

    started = time.perf_counter()
    suites = load_suite(stage)
    _check_batches(stage, expected=list(suites), given=batches)
    for name, frame in batches.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"stage {stage!r}: batch {name!r} must be a pandas DataFrame, got {type(frame).__name__}")
    every_expectation = [e for suite in suites.values() for e in suite["expectations"]]
    set_names = _parameter_names(every_expectation, kwarg="value_set")
    params = {name: _parameter_value(value, is_set=name in set_names) for name, value in (parameters or {}).items()}
    _check_parameters(stage, needed=_parameter_names(every_expectation), given=params)

    context = _context(str(Path(results_dir).resolve()))
    run_id = RunIdentifier(run_name=run_name, run_time=dt.datetime.now(dt.UTC))
    results: dict[str, Any] = {}
    failures: list[dict[str, Any]] = []
    evaluated = unsuccessful = 0
    for batch_name, frame in batches.items():
        expectations = suites[batch_name]["expectations"]
        definition = _validation_definition(context, stage, batch_name, expectations, params)
        _forget_results(context, definition.suite.name)
        result = definition.run(
            batch_parameters={"dataframe": frame},
            expectation_parameters=dict(params),
            result_format=_RESULT_FORMAT,
            run_id=run_id,
        )
        results[batch_name] = result
        # GX reports in its own order; the ids GX gave the suite's expectations line results up with the file.
        order = {expectation.id: i for i, expectation in enumerate(definition.suite.expectations)}
        outcomes = sorted(result.results, key=lambda outcome: order[outcome.expectation_config.id])
        evaluated += len(outcomes)
        for expectation, outcome in zip(expectations, outcomes, strict=True):
            if not outcome.success:
                unsuccessful += 1
                failures.append(_failure(batch_name, expectation, outcome, params))
    _release_batches(context, stage)

    return StageValidation(
        suite=stage,
        success=unsuccessful == 0,
        evaluated=evaluated,
        unsuccessful=unsuccessful,
        failed_expectations=failures,
        duration_s=round(time.perf_counter() - started, 3),
        result_path=str(Path(results_dir).resolve() / _RESULTS_SUBDIR / stage),
        results=results,
    )


def _release_batches(context: Any, stage: str) -> None:
    """Drop the batches GX's execution engine keeps of every DataFrame it validated. The cached context (and
    its datasources) outlive the validation, so under `airflow dags test` a 100x seed_data's 10M-row frames
    stayed alive through every later task: ~4.5 GB of the journey's 6.6 GB during the feed."""
    batches = context.data_sources.get(stage).get_execution_engine().batch_manager
    batches.reset_batch_cache()
    batches.batch_data_cache.clear()  # GX 1.x's reset_batch_cache leaves the data itself cached


def observed_values(validation: StageValidation, *, batch: str) -> list[dict[str, Any]]:
    """GX's observed value of every expectation of one batch (a KL divergence, a row count): reported as GX
    computed it, not recomputed. Only for a StageValidation of this process (GX's result objects)."""
    return [
        {
            "type": outcome.expectation_config.type,
            "column": outcome.expectation_config.kwargs.get("column"),
            "observed_value": _plain((outcome.result or {}).get("observed_value")),
            "success": outcome.success,
        }
        for outcome in validation.results[batch].results
    ]


def build_data_docs(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> str:
    """Render the suites and results GX stored in ``results_dir`` into one Data Docs site; returns index.html."""
    root = Path(results_dir).resolve()
    if not any((root / _RESULTS_SUBDIR).rglob("*.json")):
        raise FileNotFoundError(f"no stage results in {root / _RESULTS_SUBDIR}; run validate_stage first")
    out = Path(out_dir).resolve()
    _context(str(root), docs_dir=str(out)).build_data_docs()
    from plugins.journey.docs_assets import bundle

    # GX's pages load their CSS and JS from CDNs; bundled, the site renders air-gapped and through the Journey UI.
    bundle(out)
    return str(out / "index.html")


@functools.cache
def _context(results_dir: str, *, docs_dir: str | None = None) -> Any:
    """A GX context whose suite and validation-results stores are files under ``results_dir``; datasources
    and validation definitions stay in memory (they hold only DataFrame handles). Cached per directory:
    datasources accumulate on a context, and a test process validates many runs."""
    # There is no internet here, and tqdm bars would flood the task logs.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    defaults = InMemoryStoreBackendDefaults()
    for store, subdir in (
        (defaults.expectations_store_name, _SUITES_SUBDIR),
        (defaults.validation_results_store_name, _RESULTS_SUBDIR),
    ):
        defaults.stores[store]["store_backend"] = {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": os.path.join(results_dir, subdir),
        }
    sites = {}
    if docs_dir is not None:
        sites["run"] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": docs_dir},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(
        store_backend_defaults=defaults,
        data_docs_sites=sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _validation_definition(
    context: Any, stage: str, batch: str, expectations: list[dict[str, Any]], params: Mapping[str, Any]
) -> Any:
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.validation_definition import ValidationDefinition
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    name = _gx_suite_name(stage, batch)
    configs = [
        ExpectationConfiguration(
            type=e["type"], kwargs=_inline_structured(e.get("kwargs", {}), params), meta=e.get("meta")
        )
        for e in expectations
    ]
    suite = context.suites.add_or_update(ExpectationSuite(name=name, expectations=configs))
    try:
        datasource = context.data_sources.get(stage)
    except KeyError:
        datasource = context.data_sources.add_pandas(stage)
    try:
        asset = datasource.get_asset(batch)
    except LookupError:
        asset = datasource.add_dataframe_asset(batch)
    try:
        batch_definition = asset.get_batch_definition("whole")
    except KeyError:
        batch_definition = asset.add_batch_definition_whole_dataframe("whole")
    return context.validation_definitions.add_or_update(
        ValidationDefinition(name=name, data=batch_definition, suite=suite)
    )


def _inline_structured(kwargs: Mapping[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``kwargs`` with structured parameters (a KL divergence's partition_object) replaced by their value: the
    stored suite is what Data Docs' suite page renders, and GX charts a partition_object, not a reference.
    Scalar parameters stay references, as the suite file has them."""
    return {
        key: params[value["$PARAMETER"]]
        if _is_parameter(value) and isinstance(params.get(value["$PARAMETER"]), Mapping)
        else value
        for key, value in kwargs.items()
    }


def _forget_results(context: Any, suite_name: str) -> None:
    # GX keys results by run time, so a retry would add a second result; the latest attempt is the stage's.
    store = context.validation_results_store
    for key in store.list_keys():
        if key.expectation_suite_identifier.name == suite_name:
            store.remove_key(key)


def _check_batches(stage: str, *, expected: list[str], given: Mapping[str, Any]) -> None:
    missing = [name for name in expected if name not in given]
    unknown = [name for name in given if name not in expected]
    if not (missing or unknown):
        return
    problems = []
    if missing:
        problems.append(f"missing: {', '.join(missing)}")
    if unknown:
        problems.append(f"unknown: {', '.join(unknown)}")
    raise ValueError(
        f"stage {stage!r} validates batches {', '.join(expected)}; {'; '.join(problems)}"
        f" (given: {', '.join(given) or 'none'})"
    )


def _parameter_names(expectations: list[dict[str, Any]], *, kwarg: str | None = None) -> list[str]:
    """Names of the ``$PARAMETER``s the expectations use (only those given for ``kwarg`` if set)."""
    names: list[str] = []
    for expectation in expectations:
        for key, value in expectation.get("kwargs", {}).items():
            if _is_parameter(value) and value["$PARAMETER"] not in names and kwarg in (None, key):
                names.append(value["$PARAMETER"])
    return names


def _check_parameters(stage: str, *, needed: list[str], given: Mapping[str, Any]) -> None:
    missing = [name for name in needed if name not in given]
    if missing:
        raise ValueError(
            f"stage {stage!r} needs parameters {', '.join(needed)}; missing: {', '.join(missing)}"
            f" (given: {', '.join(given) or 'none'})"
        )


def _is_parameter(value: Any) -> bool:
    return isinstance(value, dict) and "$PARAMETER" in value


def _parameter_value(value: Any, *, is_set: bool) -> Any:
    # GX's value_set and friends want lists; callers naturally hold tuples (contracts), sets or arrays.
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) > 0:
        return value.tolist()
    # A single value used as a set ("every row's tenant_id is the run's tenant") is the set of one.
    if is_set and isinstance(value, (str, int, float)):
        return [value]
    return value


def _gx_suite_name(stage: str, batch: str) -> str:
    return f"{stage}.{batch}"


# What of GX's result a failure carries (set-containment expectations report what is missing, not unexpected).
_REPORTED_RESULT_KEYS = (
    "observed_value",
    "unexpected_count",
    "unexpected_percent",
    "partial_unexpected_list",
    "partial_missing_list",
)


def _failure(batch: str, expectation: Mapping[str, Any], outcome: Any, params: Mapping[str, Any]) -> dict[str, Any]:
    """One failed expectation for logs, XCom and alerts: GX's ``describe_dict()`` with the batch and column added,
    parameters shown by name and value (the suite file's references, which GX has already substituted)."""
    described = outcome.describe_dict()
    result = described.get("result") or {}
    kwargs = expectation.get("kwargs", {})
    return _plain(
        {
            "batch": batch,
            "expectation_type": described["expectation_type"],
            "column": _column_of(kwargs),
            "kwargs": {k: _shown_kwarg(v, params) for k, v in kwargs.items() if k not in _HIDDEN_KWARGS},
            **{key: _shorten(result.get(key)) for key in _REPORTED_RESULT_KEYS},
            # describe_dict() keeps only a top-level exception; GX files a metric's under the metric's name.
            "exception": _exception_message(outcome.exception_info),
        }
    )


def _column_of(kwargs: Mapping[str, Any]) -> str | None:
    if "column" in kwargs:
        return kwargs["column"]
    if "column_A" in kwargs:
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    return None


def _shown_kwarg(value: Any, params: Mapping[str, Any]) -> Any:
    """A kwarg as an operator should read it: parameters by name and value, long lists counted."""
    if _is_parameter(value):
        name = value["$PARAMETER"]
        resolved = params.get(name)
        if isinstance(resolved, list) and len(resolved) > _MAX_LISTED_VALUES:
            return f"${name} ({len(resolved)} values)"
        return f"${name}={_plain(resolved)}"
    if isinstance(value, dict) and "type" in value:
        return _condition_text(value)
    return _shorten(value)


def _condition_text(condition: Mapping[str, Any]) -> str:
    """A row condition (GX's JSON form) written the way the suite author would say it."""
    kind = condition["type"]
    if kind == "pass_through":
        return condition["pass_through_filter"]
    if kind == "comparison":
        return f"{condition['column']['name']} {condition['operator']} {condition['parameter']!r}"
    if kind == "nullity":
        return f"{condition['column']['name']} IS {'NULL' if condition['is_null'] else 'NOT NULL'}"
    return json.dumps(condition)


def _shorten(value: Any) -> Any:
    if isinstance(value, list) and len(value) > _MAX_LISTED_VALUES:
        return [*value[:_MAX_LISTED_VALUES], f"... {len(value) - _MAX_LISTED_VALUES} more"]
    return value


def _exception_message(info: Any) -> str | None:
    # GX reports a raised exception either flat or keyed by the metric that raised it.
    if not isinstance(info, Mapping):
        return None
    if "raised_exception" in info:
        message = info.get("exception_message") if info["raised_exception"] else None
        return message.removeprefix("Error: ") if message else None
    messages = [_exception_message(nested) for nested in info.values()]
    return "; ".join(dict.fromkeys(m for m in messages if m)) or None


def describe_failure(failure: Mapping[str, Any]) -> str:
    where = failure["batch"] + (f"[{failure['column']}]" if failure.get("column") else "")
    kwargs = ", ".join(f"{k}={v}" for k, v in failure.get("kwargs", {}).items())
    head = f"{where}: {failure['expectation_type']}({kwargs})"
    if failure.get("exception"):
        return f"{head}: error: {failure['exception']}"
    if failure.get("unexpected_count") is not None:
        percent = failure.get("unexpected_percent")
        share = f" ({percent:.3g}%)" if isinstance(percent, (int, float)) else ""
        return f"{head}: {failure['unexpected_count']} unexpected{share}, e.g. {failure.get('partial_unexpected_list')}"
    if failure.get("partial_missing_list"):
        return f"{head}: missing {failure['partial_missing_list']}"
    return f"{head}: observed {failure.get('observed_value')!r}"


def _plain(value: Any) -> Any:
    """``value`` with numpy/pandas/datetime leaves turned into JSON types (non-finite floats as strings)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    # numpy's float64 subclasses float; float() drops the type so reprs read "0.21", not "np.float64(0.21)".
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return _plain(value.item())
    if hasattr(value, "tolist"):
        return _plain(value.tolist())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
