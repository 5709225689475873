"""Platform resources, connection ids and settings, declared once.

Everything that creates, checks or counts buckets and topics (the stack's bootstrap, the
platform_health DAG, docker-compose's init job, tests) reads them from here, so "exactly 5 buckets
and 12 topics" has one source of truth.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

# Object store buckets (MinIO in production, SeaweedFS locally).
RAW_BUCKET = "recsys-raw"  # tenant uploads, keyed tenant/<run key>/<file>
QUARANTINE_BUCKET = "recsys-quarantine"  # rows that broke the contract, with a reason per row
MODELS_BUCKET = "recsys-models"  # model artifacts, keyed tenant/<version>/
REPORTS_BUCKET = "recsys-reports"  # per-run report.json and GX Data Docs
EXPORTS_BUCKET = "recsys-exports"  # audit exports, alerts and other operator-facing files
BUCKETS: tuple[str, ...] = (RAW_BUCKET, QUARANTINE_BUCKET, MODELS_BUCKET, REPORTS_BUCKET, EXPORTS_BUCKET)


@dataclass(frozen=True)
class Topic:
    name: str
    partitions: int = 1


# Kafka topics. Interactions are keyed by user_id, so their partition count bounds ingestion
# parallelism while keeping per-user order.
INTERACTIONS_TOPIC = "user_interactions"
DEAD_LETTER_TOPIC = "user_interactions.dlq"
TOPICS: tuple[Topic, ...] = (
    Topic(INTERACTIONS_TOPIC, partitions=3),
    Topic(DEAD_LETTER_TOPIC),
    Topic("item_catalog"),
    Topic("user_profiles"),
    Topic("data_uploads"),
    Topic("training_requests"),
    Topic("training_events"),
    Topic("model_deployments"),
    Topic("recommendation_events"),
    Topic("feedback_events"),
    Topic("tenant_events"),
    Topic("audit_events"),
)
TOPIC_NAMES: tuple[str, ...] = tuple(t.name for t in TOPICS)

# Consumer group of the platform's ingestion worker (lag is measured against it).
INGEST_GROUP = "recsys-ingest"

# Tenants whose whole onboarding journey runs every day (onboarding_journey's schedule) and in every
# backfill. Each one is a map index of the journey's mapped task group: adding a name here fans the
# daily run out over one more tenant, in parallel, with no DAG change.
CANARY_TENANTS: tuple[str, ...] = ("canary",)

# Days the pipeline's own output files are kept (reports, work directories, quarantine objects, alerts;
# locally and in the buckets) before the daily file_retention DAG removes them.
RETENTION_DAYS = 30

# Seconds a training run may take before it stops with what it has (a run's train_time_budget_s overrides it).
# At the platform's scale early stopping ends a fit well inside it (a full default fit: ~7 s); it binds at
# 10x (1M interactions). In the 10x journey of 2026-12-07 (quiet machine, 244 ms a step): 30 s bought 113 steps,
# NDCG@10 0.339 and a popularity bias 2.21x item-kNN's (gate 3.0), train_model 38.5 s of wall; 50 s bought
# 205 steps and NDCG@10 0.334 in 58.5 s. Earlier, with 3x slower steps, 25 s (67 steps) had failed the bias
# gate at 3.13x: on a loaded machine a budget buys fewer steps. The same default as
# TrainConfig.time_budget_seconds, which in-process fits (bench, tests) use.
TRAIN_TIME_BUDGET_SECONDS = float(os.environ.get("RECSYS_TRAIN_TIME_BUDGET_SECONDS", "30"))

# Airflow connection ids; the local stack and docker-compose both define exactly these.
POSTGRES_CONN_ID = "postgres_app"
MINIO_CONN_ID = "minio_default"
KAFKA_CONN_ID = "kafka_default"
RECSYS_API_CONN_ID = "recsys_api"
# The pipeline's own database: one row per run, tenant and logical date (plugins/hooks/history.py). Never the
# platform's app DB (the pipeline may validate a deployment it does not own) nor Airflow's metadata tables.
HISTORY_CONN_ID = "validation_history"
CONN_IDS: tuple[str, ...] = (POSTGRES_CONN_ID, MINIO_CONN_ID, KAFKA_CONN_ID, RECSYS_API_CONN_ID, HISTORY_CONN_ID)

# Consumers on Tansu must use these, or a group join waits ~23 s (measured).
CONSUMER_SESSION_TIMEOUT_MS = 6000
CONSUMER_HEARTBEAT_MS = 2000


# The bearer token a Prometheus scraper presents to the Journey app's /journey-metrics (plugins/ui/metrics.py);
# unset, only an Airflow login may read the metrics. The platform's own /metrics has RECSYS_METRICS_TOKEN.
METRICS_TOKEN_ENV = "JOURNEY_METRICS_TOKEN"


def project_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def history_sql_dir() -> str:
    """The history database's versioned migrations (include/recsys/migrate.py runs them, as it runs include/sql/'s)."""
    return os.path.join(project_root(), "include", "sql", "validation_history")


def local_dir() -> str:
    """Where local state lives (data dirs, logs, reports); git-ignored."""
    return os.environ.get("RECSYS_LOCAL_DIR") or os.path.join(project_root(), ".local")


def work_root() -> str:
    return os.environ.get("PIPELINE_WORK_DIR") or os.path.join(local_dir(), "work")


def reports_root() -> str:
    return os.environ.get("PIPELINE_REPORTS_DIR") or os.path.join(local_dir(), "reports")


def safe_name(value: str) -> str:
    """A run id as a path segment: Airflow run ids contain ':' and '+'."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", value)
