"""Airflow's ``[core] hostname_callable`` for the stack's Celery workers.

Every worker of the local stack runs on one machine, so socket.getfqdn() would give their task instances one
hostname; each worker's own name (RECSYS_WORKER_HOSTNAME, e.g. worker1) tells them apart in the UI and in
``task_instance.hostname``.
"""

from __future__ import annotations

import os
import socket

WORKER_HOSTNAME_VAR = "RECSYS_WORKER_HOSTNAME"


def hostname() -> str:
    return os.environ.get(WORKER_HOSTNAME_VAR) or socket.getfqdn()
