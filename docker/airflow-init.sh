#!/usr/bin/env bash
# One-shot setup run by the airflow-init service before any other Airflow component starts:
# migrates the metadata database and writes the simple auth manager's password file, so the admin
# password is the one from .env rather than a random one printed to the API server's log.
set -euo pipefail

airflow db migrate
# The pipeline's run history: its own database, versioned migrations under include/sql/validation_history/.
python -m include.recsys.migrate --sql-dir /opt/airflow/include/sql/validation_history --dsn-env HISTORY_DATABASE_URL

# Written with json.dump so any character in the password stays valid JSON; readable by the
# airflow user only, since the simple auth manager stores passwords in plain text.
umask 077
python - <<'PY'
import json
import os

path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
with open(path, "w", encoding="utf-8") as file:
    json.dump({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}, file)
PY
echo "airflow-init: metadata and history databases migrated, admin password set"
