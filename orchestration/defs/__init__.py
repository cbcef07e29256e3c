"""The Dagster definitions, one module per domain (assembled by ``orchestration.definitions``).

- ``resources``: paths (landing, warehouse, report) and the dbt CLI; the ``stockturn_warehouse`` pool.
- ``landing``: the landing folder -> ``raw.*`` (one multi-asset around ``ml.ingest.loader.load_landing``).
- ``dbt``: every dbt model, seed and test (``@dbt_assets``, translator: keys by schema, groups by layer).
- ``planning``: ``demand_forecasting`` -> the four forecast tables (``ml.forecasting``), then
  ``replenishment_policy`` -> the three policy tables (``ml.policy``, with the planning seeds).
- ``checks``: the forecast checks (plain functions over the ``ml`` tables' contents).
- ``reports``: ``reports.turnover_report`` (``reports.build.build_report``).
- ``schedules``: jobs, the daily schedule and the landing-folder sensor.
"""
