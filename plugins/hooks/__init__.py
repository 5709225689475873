"""Hooks: the pipeline's only way to reach the platform's public surfaces, configured by Airflow connections."""
