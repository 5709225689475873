# Airflow image for the onboarding-journey pipeline: the official image plus this project's pinned
# dependencies and code. Used by every airflow-* service in docker-compose.yml.
FROM apache/airflow:3.3.2-python3.11

# The official image installs Python packages as the airflow user; pip as root would break it.
USER airflow

# requirements.txt pins apache-airflow itself, so this cannot silently up- or downgrade Airflow.
# torch's PyPI wheel drags in CUDA (gigabytes); the CPU index serves the same version as +cpu,
# which pip prefers as the higher local version.
COPY --chown=airflow:root requirements.txt /opt/airflow/requirements.txt
RUN pip install --no-cache-dir \
      --extra-index-url https://download.pytorch.org/whl/cpu \
      -r /opt/airflow/requirements.txt

COPY --chown=airflow:root dags/ /opt/airflow/dags/
COPY --chown=airflow:root plugins/ /opt/airflow/plugins/
COPY --chown=airflow:root include/ /opt/airflow/include/
COPY --chown=airflow:root expectations/ /opt/airflow/expectations/

# DAGs and plugins import include.* (and plugins.*) as packages rooted at the Airflow home.
ENV PYTHONPATH=/opt/airflow

# GX Data Docs' CSS and JS (pinned, sha512-checked, from the npm registry), so reports render air-gapped.
RUN python -m plugins.journey.docs_assets

# Created here, owned by airflow, so the named volumes mounted on them inherit that ownership.
RUN mkdir -p /opt/airflow/work/lineage /opt/airflow/auth
