"""OpenLineage for the journey: each stage's input and output datasets, and its GX results as data-quality facets.

The journey's tasks are TaskFlow ``@task`` functions, so the OpenLineage provider sees each as a
``_PythonDecoratedOperator`` that has no lineage methods. The task body records what it read and wrote
(:func:`record_run`, :func:`record_validation`) and :class:`JourneyExtractor`, registered as the provider's
custom extractor for that class (``[openlineage] extractors``, set by the stack's env), hands it to the
provider's listener, which runs in the same task process after the body (success or failure), so nothing is
pulled back from XCom.

Dataset names follow the OpenLineage naming spec, resolved from the pipeline's connections, so a lineage
backend joins them with what other tools emit for the same objects: ``s3://<bucket>`` + key, ``kafka://<host:port>``
+ topic, ``postgres://<host:port>`` + ``<db>.public.<table>``, ``file://<host>`` + path for the stage's
local files, and the platform's HTTP endpoints as ``http://<host:port>`` + path.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from include.config import (
    INTERACTIONS_TOPIC,
    KAFKA_CONN_ID,
    POSTGRES_CONN_ID,
    QUARANTINE_BUCKET,
    RAW_BUCKET,
    RECSYS_API_CONN_ID,
)
from plugins.journey.run import JourneyRun
from plugins.journey.tables import TABLES

# What the task bodies of this process recorded, by (run_id, task_id, map_index): the extractor runs in the same
# task process right after the body, so a module-level map is enough (one task instance per process).
_RECORDED: dict[tuple[str, str, int], Any] = {}
log = logging.getLogger(__name__)


def _connection(conn_id: str) -> Any:
    from airflow.sdk.bases.hook import BaseHook

    return BaseHook.get_connection(conn_id)


def _dataset(namespace: str, name: str, facets: Mapping[str, Any] | None = None) -> Any:
    from openlineage.client.event_v2 import Dataset

    return Dataset(namespace=namespace, name=name, facets=dict(facets or {}))


def s3_object(bucket: str, key: str) -> Any:
    return _dataset(f"s3://{bucket}", key)


def s3_uri(uri: str) -> Any:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise ValueError(f"expected an s3://bucket/key artifact URI, found {uri!r}")
    return s3_object(parsed.netloc, parsed.path.lstrip("/"))


def local_file(path: str) -> Any:
    return _dataset(f"file://{socket.gethostname()}", path)


def postgres_table(table: str) -> Any:
    conn = _connection(POSTGRES_CONN_ID)
    return _dataset(f"postgres://{conn.host}:{conn.port}", f"{conn.schema}.public.{table}")


def kafka_topic(topic: str) -> Any:
    conn = _connection(KAFKA_CONN_ID)
    servers = conn.extra_dejson.get("bootstrap_servers") or f"{conn.host}:{conn.port}"
    first = servers[0] if isinstance(servers, list) else str(servers).split(",")[0]
    return _dataset(f"kafka://{first.strip()}", topic)


def api_endpoint(path: str) -> Any:
    conn = _connection(RECSYS_API_CONN_ID)
    return _dataset(f"{conn.schema or 'http'}://{conn.host}:{conn.port}", path)


def stage_datasets(stage: str, run: JourneyRun, done: Mapping[str, Any]) -> tuple[list[Any], list[Any]]:
    """The datasets ``stage`` read and wrote, from its own and earlier stages' run summaries."""
    from plugins.journey.seed_data import clean_path

    summary = done.get(stage) or {}
    raw = (done.get("upload_to_minio") or {}).get("objects") or {}
    clean = [local_file(clean_path(run, name)) for name in TABLES]
    if stage == "seed_data":
        quarantined = [
            s3_object(QUARANTINE_BUCKET, found["key"]) for found in (summary.get("quarantined") or {}).values()
        ]
        return [], clean + quarantined
    if stage == "upload_to_minio":
        return clean, [s3_object(RAW_BUCKET, found["key"]) for found in raw.values()]
    if stage == "feed_kafka":
        source = [s3_object(RAW_BUCKET, raw["interactions"]["key"])] if "interactions" in raw else []
        return source, [kafka_topic(INTERACTIONS_TOPIC), postgres_table("interactions")]
    if stage == "train_model":
        artifact = [s3_uri(summary["artifact_uri"])] if summary.get("artifact_uri") else []
        return [postgres_table("interactions"), postgres_table("catalog_items")], artifact + [
            postgres_table("model_versions")
        ]
    trained = (done.get("train_model") or {}).get("artifact_uri")
    if stage == "deploy_model":
        return ([s3_uri(trained)] if trained else []), [postgres_table("deployments")]
    if stage == "query_recommendations":
        return [postgres_table("deployments")], [api_endpoint("/api/v1/recommendations")]
    if stage == "audit":
        return [postgres_table("audit_log")], []
    # load_test, resilience: they exercise the platform's serving endpoint.
    return [api_endpoint("/api/v1/recommendations")], []


# Which dataset a suite batch checks: the stage's output of that table, else its first output (or input, for a
# stage with no outputs).
def _validated(stage: str, batch: str, inputs: list[Any], outputs: list[Any]) -> Any:
    if stage in ("seed_data", "upload_to_minio") and batch in TABLES:
        return outputs[TABLES.index(batch)]
    if stage == "upload_to_minio" and outputs:
        return outputs[TABLES.index("interactions")] if len(outputs) == len(TABLES) else outputs[0]
    if stage == "feed_kafka" and batch == "counts" and outputs:
        return outputs[0]  # sent vs landed: the topic's accounting
    if stage == "feed_kafka" and len(outputs) > 1:
        return outputs[1]
    return (outputs or inputs)[0]


def _key(context: Any) -> tuple[str, str, int]:
    ti = context["ti"]
    return (ti.run_id, ti.task_id, ti.map_index)


def record_run(stage: str, context: Any, *, run: JourneyRun, done: Mapping[str, Any]) -> None:
    """A stage's run task read ``inputs`` and wrote ``outputs``; its summary is in ``done[stage]`` (absent when it failed)."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    try:
        inputs, outputs = stage_datasets(stage, run, done)
    except Exception:
        # Lineage describes the run; a connection it cannot resolve must not fail the stage itself.
        log.exception("OpenLineage: could not name the datasets of stage %s", stage)
        return
    _RECORDED[_key(context)] = OperatorLineage(inputs=inputs, outputs=outputs)


def record_validation(stage: str, context: Any, *, run: JourneyRun, done: Mapping[str, Any], validation: Any) -> None:
    """A stage's validate task checked its datasets: each gets its batches' GX results as quality facets. They
    are the task's inputs: it reads them and writes nothing."""
    from airflow.providers.openlineage.extractors import OperatorLineage

    from plugins.quality_facets import BatchQuality, batch_quality

    try:
        inputs, outputs = stage_datasets(stage, run, done)
        checked: dict[tuple[str, str], BatchQuality] = {}
        for batch, quality in batch_quality(validation).items():
            dataset = _validated(stage, batch, inputs, outputs)
            checked.setdefault((dataset.namespace, dataset.name), BatchQuality()).merge(quality)
        validated = [quality.dataset(namespace=ns, name=name) for (ns, name), quality in checked.items()]
    except Exception:
        # As in record_run: the suite's verdict stands whether or not its lineage could be described.
        log.exception("OpenLineage: could not describe the validation of stage %s", stage)
        return
    _RECORDED[_key(context)] = OperatorLineage(inputs=validated, outputs=[])


def recorded(task_instance: Any) -> Any:
    return _RECORDED.get((task_instance.run_id, task_instance.task_id, task_instance.map_index))
