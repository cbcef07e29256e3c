"""The report's sections, one module each, in page order: its SQL, its Altair charts and its text and tables.

- :mod:`~reports.sections.turnover`: inventory turnover and days inventory outstanding
- :mod:`~reports.sections.inventory_value`: inventory value at cost and GMROI
- :mod:`~reports.sections.days_of_supply`: days of supply, backward- and forward-looking
- :mod:`~reports.sections.service`: stock-outs, fill rate and lost sales
- :mod:`~reports.sections.forecast_quality`: the forecast backtest
- :mod:`~reports.sections.recommendations`: the recommended policy against the classical one, with
  :mod:`~reports.sections.safeguards`, :mod:`~reports.sections.proposals`,
  :mod:`~reports.sections.planner_exceptions` and :mod:`~reports.sections.planner_decisions`
- :mod:`~reports.sections.policy_backtest`: stockturn against the classical policy, replayed
- :mod:`~reports.sections.ghost_stock`: ghost stock and count discrepancies
- :mod:`~reports.sections.data_quality`: what was loaded
- :mod:`~reports.sections.kpis`: the KPI tiles at the top of the page

Each section module has ``build(report) -> Section``; :mod:`~reports.sections.common` holds what they share. Every
query takes an open (read-only) connection, aggregates inside DuckDB and returns a polars frame of at most a few
hundred rows (lists of items are cut to their top rows by money) or a small dict. Column names of the planning
tables follow the dbt documentation of the planning marts (dbt_project/models/marts/planning/_planning__models.yml)
and the ml.forecasting / ml.policy module docstrings.
"""
