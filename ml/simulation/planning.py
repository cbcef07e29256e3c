"""Building policy schedules without look-ahead, and the classical baseline policy.

A :class:`~ml.simulation.engine.PolicySchedule` is plain arrays per planning date. :func:`schedule_from_planner`
fills it by calling a planning function once per planning date with a :class:`PlanningContext` that holds only
the observations *before* that date (a read-only slice of the observation matrix), so a planner cannot look
ahead even by mistake. The observation matrix is the caller's choice: true demand (optimistic: uncensored) or
recorded sales.

The classical baseline (:func:`classical_planner`) is the textbook periodic-review policy with a normal
reorder point: mean and standard deviation of daily demand from (a trailing window of) history, lead time
from the measured lead-time distribution, ``s = mu (L + R) + z sigma_{L+R}`` with
``sigma_{L+R} = sqrt((L + R) sigma_d^2 + mu^2 sigma_L^2)`` [Chopra & Meindl, safety inventory chapter; Silver,
Pyke & Thomas ch. 6], order up to ``S = s + Q`` (Q = a number of days of mean demand, 0 = order up to s).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ml.policy.inventory_math import lead_time_demand_normal
from ml.simulation.engine import LeadTimeModel, PolicySchedule, Rule

__all__ = [
    "PlanParams",
    "PlanningContext",
    "classical_planner",
    "forecast_day",
    "month_start_days",
    "plan_days_every",
    "replan_days",
    "schedule_from_planner",
]

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class PlanningContext:
    """What a planner may see on a planning date.

    Attributes:
        day: simulation day the plan takes effect (index into the simulated period; 0 = first day).
        observed: (n_series, n_history + day) read-only: the history before the simulated period, then the
            simulated period's observations of days 0 .. day-1. Nothing from ``day`` on.
        n_history: number of history columns before the simulated period.
        lead_times: the measured lead-time distributions (without scenario windows: a planner does not know a
            disruption is coming).
        as_of: calendar date of ``day`` when the simulation start date is known, else None.
    """

    day: int
    observed: NDArray
    n_history: int
    lead_times: LeadTimeModel | None = None
    as_of: date | None = None


@dataclass(frozen=True)
class PlanParams:
    """One planning date's parameters, per series (scalars broadcast). See :class:`PolicySchedule`."""

    reorder_point: ArrayLike
    order_up_to: ArrayLike | None = None
    order_quantity: ArrayLike | None = None
    moq: ArrayLike = 0.0
    pack_size: ArrayLike = 1.0
    review_period: ArrayLike = 1
    #: DC series that order on their echelon position (see PolicySchedule.echelon_offset); NaN: installation
    echelon_offset: ArrayLike | None = None


Planner = Callable[[PlanningContext], PlanParams]


def plan_days_every(n_days: int, every: int) -> NDArray[np.int64]:
    """Planning days 0, every, 2 every, ... below n_days."""
    if every < 1:
        raise ValueError("every must be >= 1")
    return np.arange(0, n_days, every, dtype=np.int64)


def month_start_days(start: date, n_days: int) -> NDArray[np.int64]:
    """Day 0 and the day index of every first of a month in the simulated period (monthly re-planning)."""
    days = [0]
    d = start
    for t in range(1, n_days):
        d = start + timedelta(days=t)
        if d.day == 1:
            days.append(t)
    return np.array(days, dtype=np.int64)


def replan_days(start: date, n_days: int, every: int) -> NDArray[np.int64]:
    """The days a plan is made: every first of a month (a forecast, :func:`month_start_days`) and, with ``every``
    >= 1, every ``every`` days in between (a re-plan from the latest forecast, as the nightly plan does between the
    weekly forecasts). ``every`` = 0: the forecast days only."""
    months = month_start_days(start, n_days)
    if every < 1:
        return months
    return np.union1d(months, plan_days_every(n_days, every)).astype(np.int64)


def forecast_day(day: int, forecast_days: ArrayLike) -> int:
    """The latest forecast day at or before ``day`` (``forecast_days`` sorted, the first one 0)."""
    fd = np.asarray(forecast_days, dtype=np.int64)
    return int(fd[np.searchsorted(fd, int(day), side="right") - 1])


def schedule_from_planner(
    plan_days: ArrayLike,
    observed: ArrayLike,
    planner: Planner,
    *,
    n_history: int,
    lead_times: LeadTimeModel | None = None,
    start: date | None = None,
    rule: Rule = "s_S",
    review_offset: ArrayLike | None = None,
    name: str = "",
) -> PolicySchedule:
    """Call ``planner`` at each planning date with only the data before that date; stack its answers.

    ``observed`` is (n_series, n_history + n_days) (history, then the simulated period), or just the history
    when the planner is static (a single planning day 0).
    """
    obs = np.asarray(observed)
    if obs.ndim != 2:
        raise ValueError("observed must be (n_series, n_history + n_days)")
    days = np.asarray(plan_days, dtype=np.int64)
    visible_lt = None
    if lead_times is not None:
        visible_lt = LeadTimeModel(lead_times.pmf, lead_times.group, lead_times.group_names)
    fields: dict[str, list[FloatArray]] = {k: [] for k in ("reorder_point", "order_up_to", "order_quantity", "moq",
                                                           "pack_size", "review_period", "echelon_offset")}
    n = obs.shape[0]
    for day in days:
        cut = n_history + int(day)
        if cut > obs.shape[1]:
            raise ValueError(f"planning day {day} needs {cut} observed columns, got {obs.shape[1]}")
        view = obs[:, :cut]
        view = view.view()
        view.flags.writeable = False
        ctx = PlanningContext(int(day), view, n_history, visible_lt,
                              None if start is None else start + timedelta(days=int(day)))
        p = planner(ctx)
        for k in fields:
            v = getattr(p, k)
            fields[k].append(None if v is None else np.broadcast_to(np.asarray(v, dtype=np.float64), (n,)).copy())

    def stack(k: str) -> FloatArray | None:
        vals = fields[k]
        if any(v is None for v in vals):
            if not all(v is None for v in vals):
                raise ValueError(f"planner returned {k} on some planning dates only")
            return None
        return np.stack(vals)

    return PolicySchedule(days, stack("reorder_point"), order_up_to=stack("order_up_to"),
                          order_quantity=stack("order_quantity"), moq=stack("moq"), pack_size=stack("pack_size"),
                          review_period=stack("review_period"), review_offset=review_offset, rule=rule, name=name,
                          echelon_offset=stack("echelon_offset"))


def classical_planner(
    z: float | ArrayLike,
    *,
    lead_time_mean: ArrayLike,
    lead_time_sd: ArrayLike = 0.0,
    review_period: ArrayLike = 1,
    window_days: int | None = 365,
    order_quantity_days: ArrayLike = 0.0,
    moq: ArrayLike = 0.0,
    pack_size: ArrayLike = 1.0,
    whole_units: bool = True,
) -> Planner:
    """The classical baseline: a normal reorder point from the trailing history, re-made at each planning date.

    At a planning date: mu, sigma = mean and standard deviation (ddof 1) of daily demand over the last
    ``window_days`` observed days (all observed days if None); protection interval P = lead_time_mean +
    review_period; ``s = mu P + z sqrt(P sigma^2 + mu^2 lead_time_sd^2)``; ``S = s + order_quantity_days * mu``.
    With ``whole_units`` both are rounded up to whole units. ``z`` (the safety factor, Phi^-1 of the cycle
    service target) is the knob :mod:`ml.simulation.matching` scans.
    """

    def plan(ctx: PlanningContext) -> PlanParams:
        obs = ctx.observed
        if window_days is not None:
            obs = obs[:, -window_days:]
        if obs.shape[1] < 2:
            raise ValueError("the classical planner needs at least two observed days")
        mu = obs.mean(axis=1)
        sd = obs.std(axis=1, ddof=1)
        period = np.asarray(lead_time_mean, dtype=np.float64) + np.asarray(review_period, dtype=np.float64)
        mean_p, sigma_p = lead_time_demand_normal(mu, sd, period, lead_time_sd)
        s = np.asarray(mean_p) + np.asarray(z, dtype=np.float64) * np.asarray(sigma_p)
        big = s + np.asarray(order_quantity_days, dtype=np.float64) * mu
        if whole_units:
            s, big = np.ceil(s - 1e-9), np.ceil(big - 1e-9)
        s = np.maximum(s, 0.0)
        big = np.maximum(big, s)
        return PlanParams(reorder_point=s, order_up_to=big, moq=moq, pack_size=pack_size,
                          review_period=review_period)

    return plan
