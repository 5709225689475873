"""The onboarding journey's stages, one module per stage, each with ``run`` and ``validate``.

The DAG's tasks only call these; a stage module owns its logic, the GX suite of the same name in
expectations/ proves its output, and tests/unit/journey/test_<stage>.py tests its pure logic without servers
(tests/unit/journey/test_stage_layout.py holds every stage to all three).
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

# Optional stages, run after the journey only when asked for: the k6 load test (param ``load_test``,
# plugins/journey/load_test.py) and the fault drills (param ``fault_drills``), which break shared platform
# components on purpose (plugins/journey/resilience.py). Each skips itself when not asked for, and a skipped
# one does not skip the next.
LOAD_STAGE = "load_test"
DRILLS_STAGE = "resilience"
OPTIONAL_STAGES: tuple[str, ...] = (LOAD_STAGE, DRILLS_STAGE)
ALL_STAGES: tuple[str, ...] = (*STAGES, *OPTIONAL_STAGES)

# A tenant's slug, as the DAG's params and the Journey UI's URLs accept it.
TENANT_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
