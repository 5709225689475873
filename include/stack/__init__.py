"""The no-Docker local stack: Postgres, SeaweedFS (S3), Tansu (Kafka) and the reference platform.

Real servers from wheels, run as ordinary processes on 127.0.0.1 with offset ports, their state under
one local directory, so several isolated stacks can run side by side (RECSYS_LOCAL_DIR,
RECSYS_PORT_OFFSET). Entry points: ``python -m include.stack up|down|status|env|restart NAME`` and
``include.stack.lifecycle``.
"""
