"""The Journey UI: each run's report, its GX Data Docs and the tenants' history inside the Airflow UI.

``plugins/journey_ui_plugin.py`` registers :func:`plugins.ui.app.create_app` with Airflow's plugin manager;
everything else lives in this package so that the plugin loader imports one file only.
"""
