"""Inventory simulation: replay demand day by day under a policy and measure service, stock and cost.

- :mod:`ml.simulation.engine`: :func:`simulate` and its inputs (:class:`PolicySchedule`, :class:`LeadTimeModel`,
  :class:`InitialState`, :class:`CostParams`, :class:`ForcedOrders`) and :class:`SimulationResult`.
- :mod:`ml.simulation.network`: :func:`~ml.simulation.network.simulate_network`, the two-echelon (supplier -> DC ->
  stores) replay with fair-share allocation at a short DC; one :class:`SimulationResult` per echelon.
- :mod:`ml.simulation.planning`: schedules re-made at planning dates without look-ahead; the classical baseline.
- :mod:`ml.simulation.kpis`: KPIs per product-location and rolled up.
- :mod:`ml.simulation.scenarios`: stress scenarios and :func:`run_scenarios`.
- :mod:`ml.simulation.matching`: policy vs baseline at matched service, with a bootstrap interval.
- :mod:`ml.simulation.demo_truth`: inputs from the demo company's hidden truth (evaluation only).
- :mod:`ml.simulation.stockturn_planner`: stockturn's forecasting + policy re-run at each planning date.
- :mod:`ml.simulation.backtest`: the policy backtest study (issue 5), scenarios by name, ``ml.policy_backtest``.
"""

from ml.simulation.engine import (
    CostParams,
    ForcedOrders,
    InitialState,
    LeadTimeModel,
    PolicySchedule,
    SimulationResult,
    simulate,
)

__all__ = ["CostParams", "ForcedOrders", "InitialState", "LeadTimeModel", "PolicySchedule", "SimulationResult",
           "simulate"]
