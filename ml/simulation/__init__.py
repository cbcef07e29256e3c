"""Inventory simulation: replay demand day by day under a policy and measure service, stock and cost.

- :mod:`ml.simulation.engine`: :func:`simulate` and its inputs (:class:`PolicySchedule`, :class:`LeadTimeModel`,
  :class:`InitialState`, :class:`CostParams`) and :class:`SimulationResult`.
- :mod:`ml.simulation.planning`: schedules re-made at planning dates without look-ahead; the classical baseline.
- :mod:`ml.simulation.kpis`: KPIs per product-location and rolled up.
- :mod:`ml.simulation.scenarios`: stress scenarios and :func:`run_scenarios`.
- :mod:`ml.simulation.matching`: policy vs baseline at matched service, with a bootstrap interval.
"""

from ml.simulation.engine import (
    CostParams,
    InitialState,
    LeadTimeModel,
    PolicySchedule,
    SimulationResult,
    simulate,
)

__all__ = ["CostParams", "InitialState", "LeadTimeModel", "PolicySchedule", "SimulationResult", "simulate"]
