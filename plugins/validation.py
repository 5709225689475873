"""Great Expectations validation of the onboarding journey's stages.

One suite per stage lives in ``expectations/<stage>.json`` (GX 1.x ExpectationSuite JSON). A stage
that produces several tables keeps one suite: every expectation's ``meta.batch`` names the table it
checks, and :func:`validate_stage` validates each table (a GX "batch") against its share of the suite.

Storage of results, and why there is no lock: each call to :func:`validate_stage` writes exactly one
file, ``<results_dir>/<stage>.json``, holding the stage summary and the GX result of every batch. It
is written to a temporary file in the same directory and renamed into place, so concurrent stages of
one run never touch the same file and a reader never sees half a file; a retry of the same stage
replaces its previous result (the latest attempt is the stage's result). :func:`build_data_docs`
later loads all stage files of a run into a throw-away in-memory GX context and renders one Data
Docs site. Validation itself uses one in-memory context per process, so no GX project files exist.

Parameters: values for ``{"$PARAMETER": name}`` references go to GX's own suite-parameter mechanism.
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
import tempfile
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUITES_DIR = Path(__file__).resolve().parent.parent / "expectations"

# Importing GX logs "Skipping registering function ..." at INFO for ~200 of its functions: 93% of a validate
# task's log. Only that logger is quietened; GX's warnings and errors still show.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

# Failure messages and XCom payloads stay small: long value lists are cut to this many items.
_MAX_LISTED_VALUES = 10
# kwargs GX adds or that are shown separately, so they are left out of the kwargs we report.
_HIDDEN_KWARGS = frozenset({"batch_id", "column", "column_A", "column_B", "column_list"})
# Position of an expectation within its batch, kept in meta so results can be matched back to the suite.
_POSITION = "position"
_RESULT_FORMAT = {"result_format": "SUMMARY", "partial_unexpected_count": 20}


class ValidationFailed(Exception):
    """A stage's data broke its suite; the message lists every failed expectation."""


@dataclass(frozen=True)
class StageValidation:
    suite: str
    success: bool
    evaluated: int
    unsuccessful: int
    failed_expectations: list[dict[str, Any]] = field(default_factory=list)
    duration_s: float = 0.0
    result_path: str = ""

    def to_dict(self) -> dict[str, Any]:
        return _plain(asdict(self))

    def raise_for_failure(self) -> None:
        if self.success:
            return
        lines = [
            f"GX suite {self.suite!r} failed: {self.unsuccessful} of {self.evaluated} expectations"
            f" unsuccessful (results: {self.result_path})"
        ]
        lines += [f"  - {describe_failure(failure)}" for failure in self.failed_expectations]
        raise ValidationFailed("\n".join(lines))


def load_suite(stage: str) -> dict[str, Any]:
    """The suite JSON of ``stage``, checked to name itself and to say which batch each expectation is for."""
    path = SUITES_DIR / f"{stage}.json"
    if not path.is_file():
        known = sorted(p.stem for p in SUITES_DIR.glob("*.json"))
        raise FileNotFoundError(f"no GX suite for stage {stage!r} at {path}; known stages: {', '.join(known)}")
    suite = json.loads(path.read_text())
    if suite.get("name") != stage:
        raise ValueError(f"suite {path} must be named {stage!r}, found name {suite.get('name')!r}")
    for i, expectation in enumerate(suite.get("expectations", [])):
        if not (expectation.get("meta") or {}).get("batch"):
            raise ValueError(f"suite {path}: expectation #{i} ({expectation.get('type')}) has no meta.batch")
    return suite


def validate_stage(
    stage: str,
    batches: Mapping[str, Any],
    *,
    parameters: Mapping[str, Any] | None = None,
    results_dir: str | os.PathLike[str],
    run_name: str,
) -> StageValidation:
    """Validate every batch of ``stage`` against the stage's suite and store the result.

    ``batches`` maps batch names (the suite's ``meta.batch`` values) to pandas DataFrames. Every batch
    the suite names must be given and no other; every ``$PARAMETER`` the suite uses must be in
    ``parameters``. Returns the merged result; call ``raise_for_failure()`` to fail the task.
    """
    import pandas as pd

    started = time.perf_counter()
    suite = load_suite(stage)
    by_batch = _expectations_by_batch(suite)
    _check_batches(stage, expected=list(by_batch), given=batches)
    for name, frame in batches.items():
        if not isinstance(frame, pd.DataFrame):
            raise TypeError(f"stage {stage!r}: batch {name!r} must be a pandas DataFrame, got {type(frame).__name__}")
    set_names = _parameter_names(suite, kwarg="value_set")
    params = {name: _parameter_value(value, is_set=name in set_names) for name, value in (parameters or {}).items()}
    _check_parameters(stage, needed=_parameter_names(suite), given=params)

    run_time = dt.datetime.now(dt.UTC)
    gx_results: dict[str, dict[str, Any]] = {}
    failures: list[dict[str, Any]] = []
    evaluated = unsuccessful = 0
    for batch_name, expectations in by_batch.items():
        result = _validate_batch(stage, batch_name, batches[batch_name], expectations, params, run_name, run_time)
        gx_results[batch_name] = result
        evaluated += len(result["results"])
        for expectation, outcome in zip(expectations, result["results"], strict=True):
            if not outcome["success"]:
                unsuccessful += 1
                failures.append(_failure(batch_name, expectation, outcome, params))

    result_path = Path(results_dir) / f"{stage}.json"
    validation = StageValidation(
        suite=stage,
        success=unsuccessful == 0,
        evaluated=evaluated,
        unsuccessful=unsuccessful,
        failed_expectations=failures,
        duration_s=round(time.perf_counter() - started, 3),
        result_path=str(result_path),
    )
    _write_atomically(
        result_path,
        {
            "stage": stage,
            "run_name": run_name,
            "run_time": run_time.isoformat(),
            "summary": validation.to_dict(),
            "results": gx_results,
        },
    )
    return validation


def observed_values(result_path: str | os.PathLike[str], *, batch: str) -> list[dict[str, Any]]:
    """GX's observed value of every expectation of one batch, as stored by :func:`validate_stage` (a KL
    divergence, a row count): reported as GX computed it, not recomputed."""
    stored = json.loads(Path(result_path).read_text())
    found = []
    for outcome in stored["results"][batch]["results"]:
        config = outcome["expectation_config"]
        found.append(
            {
                "type": config["type"],
                "column": config["kwargs"].get("column"),
                "observed_value": (outcome.get("result") or {}).get("observed_value"),
                "success": outcome["success"],
            }
        )
    return found


def build_data_docs(results_dir: str | os.PathLike[str], out_dir: str | os.PathLike[str]) -> str:
    """Render every stage result stored in ``results_dir`` into one Data Docs site; returns index.html's path."""
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    # Only files named after a stage with a suite are results; anything else in the directory is not ours.
    stage_files = sorted(p for p in Path(results_dir).glob("*.json") if (SUITES_DIR / p.name).is_file())
    if not stage_files:
        raise FileNotFoundError(f"no stage results (<stage>.json) in {results_dir}; run validate_stage first")
    context = _docs_context(Path(out_dir).resolve())
    store = context.validation_results_store
    for stage_file in stage_files:
        stored = json.loads(stage_file.read_text())
        run_id = RunIdentifier(run_name=stored["run_name"], run_time=stored["run_time"])
        by_batch = _expectations_by_batch(load_suite(stored["stage"]))
        for batch_name, gx_result in stored["results"].items():
            suite_name = _gx_suite_name(stored["stage"], batch_name)
            # The suite as it was evaluated: GX's renderers chart a parameter's value (a KL divergence's
            # partition_object), not the {"$PARAMETER": ...} reference in the suite file.
            evaluated = [_as_evaluated(e, o) for e, o in zip(by_batch[batch_name], gx_result["results"], strict=True)]
            context.suites.add(ExpectationSuite(name=suite_name, expectations=_configs(evaluated)))
            key = ValidationResultIdentifier(
                expectation_suite_identifier=ExpectationSuiteIdentifier(name=suite_name),
                run_id=run_id,
                batch_identifier=gx_result["meta"]["batch_id"],
            )
            store.set(key, store.deserialize(gx_result))
    context.build_data_docs()
    from plugins.journey.docs_assets import bundle

    # GX's pages load their CSS and JS from CDNs; bundled, the site renders air-gapped and through the Journey UI.
    bundle(out_dir)
    return str(Path(out_dir).resolve() / "index.html")


def _as_evaluated(expectation: Mapping[str, Any], outcome: Mapping[str, Any]) -> dict[str, Any]:
    """The suite's expectation with structured parameters (a KL divergence's partition_object) replaced by the
    value GX evaluated, which its renderers chart; other parameters stay references, as the suite file has them."""
    evaluated = outcome["expectation_config"]["kwargs"]
    kwargs = {
        key: evaluated[key] if _is_parameter(value) and isinstance(evaluated.get(key), Mapping) else value
        for key, value in expectation.get("kwargs", {}).items()
    }
    return {**expectation, "kwargs": kwargs}


def _expectations_by_batch(suite: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    by_batch: dict[str, list[dict[str, Any]]] = {}
    for expectation in suite["expectations"]:
        by_batch.setdefault(expectation["meta"]["batch"], []).append(expectation)
    return by_batch


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


def _parameter_names(suite: Mapping[str, Any], *, kwarg: str | None = None) -> list[str]:
    """Names of the ``$PARAMETER``s the suite uses (only those given for ``kwarg`` if set)."""
    names: list[str] = []
    for expectation in suite["expectations"]:
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


def _configs(expectations: list[dict[str, Any]]) -> list[Any]:
    from great_expectations.expectations.expectation_configuration import ExpectationConfiguration

    return [
        ExpectationConfiguration(type=e["type"], kwargs=e.get("kwargs", {}), meta={**e.get("meta", {}), _POSITION: i})
        for i, e in enumerate(expectations)
    ]


@functools.cache
def _validation_context() -> Any:
    """One in-memory GX context per process: creating one is cheap, but datasources accumulate on it."""
    return _ephemeral_context(data_docs_sites={})


def _docs_context(out_dir: Path) -> Any:
    site = {
        "class_name": "SiteBuilder",
        "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(out_dir)},
        "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
    }
    return _ephemeral_context(data_docs_sites={"run": site})


def _ephemeral_context(*, data_docs_sites: dict[str, Any]) -> Any:
    # There is no internet here, and tqdm bars would flood the task logs.
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(),
        data_docs_sites=data_docs_sites,
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
    )
    return gx.get_context(mode="ephemeral", project_config=config)


def _batch_definition(stage: str, batch: str) -> Any:
    context = _validation_context()
    try:
        datasource = context.data_sources.get(stage)
    except KeyError:
        datasource = context.data_sources.add_pandas(stage)
    try:
        asset = datasource.get_asset(batch)
    except LookupError:
        asset = datasource.add_dataframe_asset(batch)
    try:
        return asset.get_batch_definition("whole")
    except KeyError:
        return asset.add_batch_definition_whole_dataframe("whole")


def _validate_batch(
    stage: str,
    batch_name: str,
    frame: Any,
    expectations: list[dict[str, Any]],
    params: Mapping[str, Any],
    run_name: str,
    run_time: dt.datetime,
) -> dict[str, Any]:
    from great_expectations.core.expectation_suite import ExpectationSuite
    from great_expectations.core.run_identifier import RunIdentifier

    suite = ExpectationSuite(name=_gx_suite_name(stage, batch_name), expectations=_configs(expectations))
    batch = _batch_definition(stage, batch_name).get_batch(batch_parameters={"dataframe": frame})
    result = batch.validate(suite, expectation_parameters=dict(params), result_format=_RESULT_FORMAT)
    # Data Docs file results by run and batch; a checkpoint run would have set the first two.
    result.meta["run_id"] = RunIdentifier(run_name=run_name, run_time=run_time)
    result.meta["validation_time"] = run_time
    result.meta["batch_id"] = batch.id
    as_json = result.to_json_dict()
    # GX returns results in its own order; the position we put in meta lines them up with the suite.
    by_position = {outcome["expectation_config"]["meta"][_POSITION]: outcome for outcome in as_json["results"]}
    return as_json | {"results": [by_position[i] for i in range(len(expectations))]}


def _failure(
    batch: str, expectation: Mapping[str, Any], outcome: Mapping[str, Any], params: Mapping[str, Any]
) -> dict[str, Any]:
    kwargs = expectation.get("kwargs", {})
    result = outcome.get("result") or {}
    return _plain(
        {
            "batch": batch,
            "expectation_type": expectation["type"],
            "column": _column_of(kwargs),
            "kwargs": {k: _shown_kwarg(v, params) for k, v in kwargs.items() if k not in _HIDDEN_KWARGS},
            "observed_value": _shorten(result.get("observed_value")),
            "unexpected_count": result.get("unexpected_count"),
            "unexpected_percent": result.get("unexpected_percent"),
            "partial_unexpected_list": _shorten(result.get("partial_unexpected_list")),
            # Set-containment expectations report what is missing instead of what is unexpected.
            "partial_missing_list": _shorten(result.get("partial_missing_list")),
            "exception": _exception_message(outcome.get("exception_info")),
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


def _write_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    """Write to a hidden temporary file next to ``path``, then rename it over ``path`` (atomic on POSIX)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp", delete=False) as tmp:
        try:
            json.dump(payload, tmp, default=str)
        except BaseException:
            os.unlink(tmp.name)
            raise
    # NamedTemporaryFile creates 0600; results are read by report tasks and operators too.
    os.chmod(tmp.name, 0o644)
    os.replace(tmp.name, path)
