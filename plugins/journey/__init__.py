"""The onboarding journey's stages, one module per stage, each with ``run`` and ``validate``.

The DAG's tasks only call these; a stage module owns its logic, the GX suite of the same name in
expectations/ proves its output, and tests/ has a test of the same name.
"""

STAGES: tuple[str, ...] = (
    "seed_data",
    "upload_to_minio",
    "feed_kafka",
    "train_model",
    "deploy_model",
    "query_recommendations",
    "audit",
)

# Fault drills: run after the journey only when the param ``fault_drills`` is set; they break shared
# platform components on purpose (plugins/journey/resilience.py).
DRILLS_STAGE = "resilience"
ALL_STAGES: tuple[str, ...] = (*STAGES, DRILLS_STAGE)

# A tenant's slug, as the DAG's params and the Journey UI's URLs accept it.
TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
