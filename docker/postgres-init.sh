#!/usr/bin/env bash
# Run by the postgres image on the first start of an empty data volume (/docker-entrypoint-initdb.d).
# Creates the Airflow metadata database, the platform's app database and the pipeline's run history
# (validation_history), each owned by its own login role, so none of them ever holds the superuser password.
#
# No `set -u`: the image sources non-executable init scripts into its own shell.
set -eo pipefail

: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD must be set}"
: "${APP_DB_PASSWORD:?APP_DB_PASSWORD must be set}"
: "${HISTORY_DB_PASSWORD:?HISTORY_DB_PASSWORD must be set}"

# Passwords travel as psql variables and are quoted by psql (:'var'), never spliced into SQL text.
psql --no-psqlrc --set ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  --set airflow_password="$AIRFLOW_DB_PASSWORD" \
  --set app_password="$APP_DB_PASSWORD" \
  --set history_password="$HISTORY_DB_PASSWORD" <<'SQL'
CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow;
CREATE ROLE app LOGIN PASSWORD :'app_password';
CREATE DATABASE app OWNER app;
CREATE ROLE validation_history LOGIN PASSWORD :'history_password';
CREATE DATABASE validation_history OWNER validation_history;
SQL
