"""The demand panel: every series x planning period as dense numpy arrays, read from the marts up to ``as_of``.

Series
    *Base* series are the product x selling-location pairs of ``marts.fct_sales_daily`` whose product is a stock
    product active on the as-of date (``product_type = 'stock'`` and not discontinued on or before ``as_of``;
    on the mart's own as-of date this is ``dim_product.is_active``) and which have a row on or before ``as_of``.
    *Aggregate* series exist for every location that replenishes others (``dim_location.replenished_from``
    points at it, directly or through intermediate locations): their demand is the sum of the customer demand of
    every base series below them in the network (plus their own customer sales), kept as a sparse 0/1 matrix
    ``agg`` (n_aggregate x n_base), so the aggregate follows whatever censoring correction the base series get.
    When a replenishing location also sells, its own customer series is a model input only: the output series
    for that product x location is the aggregate.

Grain
    ``native_grain`` is detected from the dates that carry sales lines: all on the first of a month -> month; all
    on one weekday (so at least 7 days apart) -> week; else day. The planning grain is the configured grain, never
    finer than the native one. Periods:

    - day: one period per day;
    - week: daily data -> 7-day periods ending on the as-of date; weekly data -> 7-day periods starting on the
      data's weekday (a weekly line is the period's total, the line's date labels the period);
    - month: calendar months. With daily data, a month is history only once complete: when the as-of date is
      not a month end, the current month is the first forecast period and ``x0`` (the fraction of it already
      elapsed) tells the lead-time sampler where "tomorrow" is.

Arrays (T history periods, F future periods after them)
    sales (n_base, T) float32: units sold (gross sales; returns are not negative demand); NaN before a series'
    first row. censored (n_base, T) bool: the period holds a stock-out day (``is_stockout_day``; null = unknown
    = not censored). stock_known (n_base,) bool: the series has stock records (some ``is_stockout_day`` not
    null): only then can a run without sales be judged a stock-out the book missed (``censoring``).
    price (n_all, T+F): list price (history from ``fct_sales_daily.list_price``; future from
    ``staging.stg_sales__prices`` rows effective after ``as_of`` - location price list, else the generic one -
    else carried forward). discount (n_all, T+F): promotion discount from ``intermediate.int_promotion_days``
    (history and planned), promo_start (n_all, T+F): day number of the earliest start of a promotion running in
    the period (``NO_PROMO`` when none), so a caller can keep only promotions known at an origin.

Promotion known horizon
    ``promotion_known_days``: how far ahead the export lists promotions, derived once per panel as (latest
    ``start_date`` of a promotion of the panel's series) - (the export's last sales day) in days, floored at 0 (0
    when no promotion starts after it: most ERPs export past promotions only). Measured from the export, not from
    ``as_of``, so a replay at a past date gets the listing lead the export shows, not the promotions listed later
    (no look-ahead). ``ForecastConfig.promotion_known_days = None`` uses it (an int forces a value;
    ``known_promotion_days``); the same horizon applies at backtest origins. Beyond
    it a promotion is *not known* (``ml.forecasting.gbm`` then uses the series' historical promotion intensity),
    within it a period without a listed promotion is *known to have none*. ``promotion_warnings`` says when the
    history has promotions the forecast period cannot see (logged as a WARNING by ``load_panel``).
"""

from __future__ import annotations

import calendar
import logging
from dataclasses import dataclass
from datetime import date, timedelta

import duckdb
import numpy as np
import polars as pl
from scipy import sparse

from ml.forecasting.arrays import nan0
from ml.forecasting.config import ForecastConfig
from ml.forecasting.signals import PanelSignals, load_signals
from ml.warehouse import read_frame

log = logging.getLogger("stockturn.forecasting")

NO_PROMO = np.iinfo(np.int32).max
PERIOD_DAYS = {"day": 1.0, "week": 7.0, "month": 365.25 / 12.0}
SEASON = {"day": 7, "week": 52, "month": 12}
_GRAIN_ORDER = {"day": 0, "week": 1, "month": 2}


@dataclass
class Panel:
    """Dense demand history of every series at the planning grain (see the module docstring)."""

    keys: pl.DataFrame  # one row per series (base first, then aggregates): product_id, location_id, ...
    n_base: int
    agg: sparse.csr_matrix  # (n_aggregate, n_base) 0/1
    grain: str
    native_grain: str
    as_of: date
    first_day: date  # day number 0
    period_start: np.ndarray  # (T + F,) datetime64[D]
    period_len: np.ndarray  # (T + F,) days per period
    n_hist: int
    sales: np.ndarray  # (n_base, T) float32
    censored: np.ndarray  # (n_base, T) bool
    first: np.ndarray  # (n_all,) first history period with data
    price: np.ndarray  # (n_all, T + F) float32
    discount: np.ndarray  # (n_all, T + F) float32
    promo_start: np.ndarray  # (n_all, T + F) int32 day numbers
    static: dict[str, np.ndarray]  # integer-coded static features, (n_all,) each
    x0: float = 0.0  # elapsed fraction of the first forecast period at as_of
    promotion_known_days: int = 0  # how far ahead of as_of the export lists promotions (module docstring)
    signals: PanelSignals | None = None  # external signals and events (ml.forecasting.signals)
    signal_use: dict[str, np.ndarray] | None = None  # group -> (n_all,) series whose forecasts use it (gating)
    stock_known: np.ndarray | None = None  # (n_base,) the series has stock records (None: none has)

    @property
    def period_start_day(self) -> np.ndarray:
        """First day of every period as a day number (days since ``first_day``)."""
        return (self.period_start.astype("datetime64[D]") - np.datetime64(self.first_day, "D")).astype(np.int64)

    @property
    def n_series(self) -> int:
        return self.keys.height

    @property
    def season(self) -> int:
        return SEASON[self.grain]

    @property
    def days_per_period(self) -> float:
        return PERIOD_DAYS[self.grain]

    def periods(self, days: float) -> int:
        """Number of periods covering ``days`` days."""
        return max(1, int(np.ceil(days / self.days_per_period - 1e-9)))

    def aggregate(self, base: np.ndarray) -> np.ndarray:
        """Stack base-series rows with the aggregate rows built from them: (n_base, k) -> (n_all, k)."""
        if self.agg.shape[0] == 0:
            return base
        filled = nan0(base)
        agg = np.asarray(self.agg @ filled, dtype=base.dtype)
        # an aggregate starts when its first child starts
        if np.isnan(base).any():
            has = np.asarray(self.agg @ (~np.isnan(base)).astype(np.float32)) > 0
            agg[~has] = np.nan
        return np.vstack([base, agg])

    def subset_products(self, max_series: int, seed: int) -> Panel:
        """A panel of a deterministic random sample of products with every series of each (so aggregates keep
        all their children), about ``max_series`` series; the panel itself when it is small enough."""
        if self.n_series <= max_series:
            return self
        products = np.unique(self.keys["product_id"].to_numpy().astype(str))
        per_product = self.n_series / len(products)
        n_keep = max(1, min(len(products), int(max_series / per_product)))
        rng = np.random.default_rng(np.random.SeedSequence([seed, 6]))
        keep_products = set(rng.choice(products, size=n_keep, replace=False).tolist())
        keep = np.isin(self.keys["product_id"].to_numpy().astype(str), list(keep_products))
        base = np.flatnonzero(keep[: self.n_base])
        agg_rows = np.flatnonzero(keep[self.n_base :])
        rows = np.concatenate([base, self.n_base + agg_rows])
        return Panel(
            keys=self.keys[rows], n_base=len(base), agg=self.agg[agg_rows][:, base].tocsr(), grain=self.grain,
            native_grain=self.native_grain, as_of=self.as_of, first_day=self.first_day,
            period_start=self.period_start, period_len=self.period_len, n_hist=self.n_hist,
            sales=self.sales[base], censored=self.censored[base], first=self.first[rows], price=self.price[rows],
            discount=self.discount[rows], promo_start=self.promo_start[rows],
            static={k: v[rows] for k, v in self.static.items()}, x0=self.x0,
            promotion_known_days=self.promotion_known_days,
            signals=None if self.signals is None else self.signals.subset(base),
            signal_use=None if self.signal_use is None else {k: v[rows] for k, v in self.signal_use.items()},
            stock_known=None if self.stock_known is None else self.stock_known[base],
        )

    def has_promotion_history(self) -> bool:
        """Whether any series had a promotion (discount > 0) in a history period."""
        return bool((self.discount[:, : self.n_hist] > 0).any())


# ------------------------------------------------------------------------------------------------- loading


def mart_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The mart's as-of date: the last day of ``fct_sales_daily``."""
    (value,) = con.execute("select max(date_day) from marts.fct_sales_daily").fetchall()[0]
    if value is None:
        raise ValueError("marts.fct_sales_daily is empty: nothing to forecast")
    return value


def _base_series(con: duckdb.DuckDBPyConnection, as_of: date) -> pl.DataFrame:
    return read_frame(
        con,
        """
        with pairs as (
            select product_id, location_id, min(date_day) as first_date
            from marts.fct_sales_daily
            where date_day <= ?
            group by all
        )
        select pairs.product_id, pairs.location_id, pairs.first_date,
               p.category, p.supplier_id, l.location_type
        from pairs
        join marts.dim_product as p using (product_id)
        join marts.dim_location as l using (location_id)
        where p.product_type = 'stock' and coalesce(p.discontinued_date > ?, true)
        order by pairs.location_id, pairs.product_id
        """,
        [as_of, as_of],
    )


def _network(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    rows = con.execute("select location_id, replenished_from from marts.dim_location order by all").fetchall()
    return {loc: parent for loc, parent in rows}


def _ancestors(parents: dict[str, str | None]) -> dict[str, list[str]]:
    """location -> every location above it in the replenishment network (cycle-safe)."""
    out: dict[str, list[str]] = {}
    for loc in parents:
        chain: list[str] = []
        cur = parents.get(loc)
        while cur is not None and cur not in chain and cur != loc:
            chain.append(cur)
            cur = parents.get(cur)
        out[loc] = chain
    return out


def detect_native_grain(con: duckdb.DuckDBPyConnection, as_of: date) -> str:
    """'month' when every sales line is dated the 1st, 'week' when all fall on one weekday, else 'day'.

    Needs at least three distinct sales dates to call a coarser grain.
    """
    n_dates, n_weekdays, n_not_first = con.execute(
        """
        select count(distinct date_day), count(distinct isodow(date_day)),
               count(distinct date_day) filter (where day(date_day) <> 1)
        from marts.fct_sales_daily
        where date_day <= ? and units_sold > 0
        """,
        [as_of],
    ).fetchall()[0]
    if n_dates is None or n_dates < 3:
        return "day"
    if n_not_first == 0:
        return "month"
    if n_weekdays == 1:
        return "week"
    return "day"


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.year * 12 + d.month - 1 + months, 12)
    return date(y, m + 1, 1)


def _month_end(d: date) -> date:
    return date(d.year, d.month, calendar.monthrange(d.year, d.month)[1])


@dataclass(frozen=True)
class _Calendar:
    start: np.ndarray  # (T + F,) datetime64[D]
    length: np.ndarray  # (T + F,) int days
    n_hist: int
    x0: float


def _calendar(grain: str, native: str, first: date, as_of: date, n_future: int) -> _Calendar:
    if grain == "day":
        n_hist = (as_of - first).days + 1
        start = np.datetime64(first, "D") + np.arange(n_hist + n_future)
        return _Calendar(start, np.ones(n_hist + n_future, dtype=np.int64), n_hist, 0.0)
    if grain == "week":
        if native == "week":
            anchor = first  # first sales line falls on the data's weekday (see detection)
            n_hist = (as_of - anchor).days // 7 + 1
        else:
            n_hist = (as_of - first).days + 1
            n_hist = n_hist // 7
            anchor = as_of - timedelta(days=7 * n_hist - 1)
        n_hist = max(n_hist, 1)
        start = np.datetime64(anchor, "D") + 7 * np.arange(n_hist + n_future)
        return _Calendar(start, np.full(n_hist + n_future, 7, dtype=np.int64), n_hist, 0.0)
    # month
    m0 = date(first.year, first.month, 1)
    if native != "month" and first.day != 1:
        m0 = _add_months(m0, 1)
    last_complete = date(as_of.year, as_of.month, 1) if native == "month" or as_of == _month_end(as_of) else (
        _add_months(date(as_of.year, as_of.month, 1), -1))
    n_hist = max((last_complete.year - m0.year) * 12 + last_complete.month - m0.month + 1, 1)
    starts = [_add_months(m0, k) for k in range(n_hist + n_future)]
    lengths = [calendar.monthrange(s.year, s.month)[1] for s in starts]
    x0 = 0.0
    if native != "month" and as_of != _month_end(as_of):
        x0 = as_of.day / lengths[n_hist]
    return _Calendar(np.array(starts, dtype="datetime64[D]"), np.array(lengths, dtype=np.int64), n_hist, x0)


def _period_index_sql(grain: str, native: str, first: date, cal: _Calendar) -> str:
    """SQL expression mapping column date_day to its period number (may fall outside [0, T + F))."""
    anchor = str(cal.start[0])
    if grain == "day":
        return f"(date_day - date '{anchor}')"
    if grain == "week":
        return f"floor((date_day - date '{anchor}') / 7)::bigint"
    return f"((year(date_day) - {int(anchor[:4])}) * 12 + month(date_day) - {int(anchor[5:7])})"


def _dense(idx: np.ndarray, per: np.ndarray, values: np.ndarray, shape: tuple[int, int], fill: float,
           dtype: type = np.float32) -> np.ndarray:
    out = np.full(shape, fill, dtype=dtype)
    ok = (per >= 0) & (per < shape[1])
    out[idx[ok], per[ok]] = values[ok]
    return out


def load_panel(con: duckdb.DuckDBPyConnection, config: ForecastConfig, as_of: date) -> Panel:
    """Read the demand history up to ``as_of`` (inclusive) and the exogenous calendar after it."""
    base = _base_series(con, as_of)
    if base.height == 0:
        raise ValueError(f"no active stock product has sales history on or before {as_of}")
    native = detect_native_grain(con, as_of)
    grain = config.grain if config.grain != "auto" else native
    if _GRAIN_ORDER[grain] < _GRAIN_ORDER[native]:
        log.warning("configured grain %s is finer than the data's %s grain: planning at %s", grain, native, native)
        grain = native
    first = base["first_date"].min()
    if native != "day":
        # a coarse series starts at its first sales line, not at the first fct_sales_daily row
        (first_line,) = con.execute(
            "select min(date_day) from marts.fct_sales_daily where date_day <= ? and units_sold > 0", [as_of]
        ).fetchall()[0]
        first = first_line or first
    n_future = int(np.ceil((config.max_horizon_days + 31) / PERIOD_DAYS[grain])) + 1
    cal = _calendar(grain, native, first, as_of, n_future)
    n_hist = cal.n_hist
    n_total = n_hist + n_future
    per_sql = _period_index_sql(grain, native, first, cal)

    # ---- network: aggregate series for every location that replenishes others
    parents = _network(con)
    ancestors = _ancestors(parents)
    replenishing = {p for p in parents.values() if p is not None}
    base = base.with_row_index("base_idx")
    links = [(loc, anc) for loc, ancs in ancestors.items() for anc in ancs]
    links += [(loc, loc) for loc in replenishing]  # a replenishing location's own customer sales
    link_frame = pl.DataFrame(links, schema={"location_id": pl.String, "agg_location_id": pl.String}, orient="row")
    pairs = base.select("base_idx", "product_id", "location_id").join(link_frame, on="location_id",
                                                                       maintain_order="left")
    loc_types = dict(con.execute("select location_id, location_type from marts.dim_location").fetchall())
    agg_keys = (
        pairs.group_by("product_id", "agg_location_id")
        .agg(pl.len().alias("children"))
        .sort("agg_location_id", "product_id")
        .rename({"agg_location_id": "location_id"})
        .join(base.select("product_id", "category", "supplier_id").unique("product_id", keep="first",
                                                                          maintain_order=True),
              on="product_id", maintain_order="left")
        .with_columns(pl.col("location_id").replace_strict(loc_types, default="dc").alias("location_type"))
        .with_row_index("agg_idx")
    )
    pairs = pairs.join(  # row order is irrelevant here: pairs only fill the sparse matrix
        agg_keys.select("agg_idx", "product_id", pl.col("location_id").alias("agg_location_id")),
        on=["product_id", "agg_location_id"],
    )
    agg = sparse.csr_matrix(
        (np.ones(pairs.height, dtype=np.float32), (pairs["agg_idx"].to_numpy(), pairs["base_idx"].to_numpy())),
        shape=(agg_keys.height, base.height),
    )
    agg.sort_indices()  # a fixed summation order: identical floats run after run
    keys = pl.concat(
        [
            base.select(
                "product_id", "location_id", "location_type", "category", "supplier_id",
                pl.lit(False).alias("is_aggregate"),
                (~pl.col("location_id").is_in(list(replenishing))).alias("is_output"),
            ),
            agg_keys.select(
                "product_id", "location_id", "location_type", "category", "supplier_id",
                pl.lit(True).alias("is_aggregate"), pl.lit(True).alias("is_output"),
            ),
        ]
    )
    n_base, n_all = base.height, keys.height

    # ---- sales and stock-outs at the planning grain
    con.register("__fc_series", base.select("base_idx", "product_id", "location_id").to_arrow())
    try:
        # one pass over the fact table: units, stock-out flag and list price per series and period (at day grain
        # the rows are already one per period: no aggregation, which costs more than the scan at M5 size)
        if grain == "day":
            select = ("f.units_sold::float as units, coalesce(f.is_stockout_day, false) as so, "
                      "f.list_price::float as price, f.is_stockout_day is not null as known")
            group = ""
        else:
            select = ("sum(f.units_sold)::float as units, bool_or(coalesce(f.is_stockout_day, false)) as so, "
                      "avg(f.list_price)::float as price, bool_or(f.is_stockout_day is not null) as known")
            group = "group by all"
        res = con.execute(
            f"""
            select s.base_idx::int32 as i, {per_sql}::int32 as p, {select}
            from marts.fct_sales_daily as f
            join __fc_series as s using (product_id, location_id)
            where f.date_day <= ? and f.date_day >= ?
            {group}
            """,
            [as_of, str(cal.start[0])],
        ).fetchnumpy()
        idx, per = res["i"].astype(np.int64), res["p"].astype(np.int64)
        ok = (per >= 0) & (per < n_hist)
        idx, per = idx[ok], per[ok]
        sales = np.full((n_base, n_hist), np.nan, dtype=np.float32)
        sales[idx, per] = np.asarray(res["units"], dtype=np.float32)[ok]
        censored = np.zeros((n_base, n_hist), dtype=bool)
        censored[idx, per] = np.asarray(res["so"], dtype=bool)[ok]
        stock_known = np.bincount(idx, weights=np.asarray(res["known"], dtype=bool)[ok], minlength=n_base) > 0
        price = np.full((n_base, n_total), np.nan, dtype=np.float32)
        price_vals = res["price"]
        if np.ma.isMaskedArray(price_vals):
            price_vals = price_vals.filled(np.nan)
        price[idx, per] = np.asarray(price_vals, dtype=np.float32)[ok]
        del res, idx, per, ok, price_vals
        first_per = np.where(np.isnan(sales).all(axis=1), n_hist - 1, np.argmax(~np.isnan(sales), axis=1))
        # inside a series' span a missing row means no activity that day: zero demand
        span = np.arange(n_hist)[None, :] >= first_per[:, None]
        sales[span & np.isnan(sales)] = 0.0
        del span

        future_end = str(cal.start[-1] + cal.length[-1])
        res = con.execute(
            f"""
            with changes as (
                select s.base_idx, pr.valid_from as date_day, pr.list_price,
                       (pr.location_id is not null) as is_local,
                       max((pr.location_id is not null)::int) over (partition by s.base_idx) as has_local
                from staging.stg_sales__prices as pr
                join __fc_series as s
                    on pr.product_id = s.product_id and (pr.location_id is null or pr.location_id = s.location_id)
                where pr.list_price is not null
            )
            select base_idx::int32 as i, {per_sql}::int32 as p, (date_day - ?::date)::int32 as d,
                   list_price::float as price
            from changes
            where is_local::int = has_local and date_day > ? and date_day < ?
            order by i, date_day
            """,
            [str(cal.start[0]), as_of, future_end],
        ).fetchnumpy()
        price = _future_prices(price, n_hist, res)

        # ---- promotions (history and planned): discount and the start day of the promotion
        res = con.execute(
            f"""
            select s.base_idx::int32 as i, {per_sql}::int32 as p,
                   avg(coalesce(pd.discount_pct, 0))::float as disc,
                   min(pr.start_date - ?::date)::int32 as start_day, count(*)::int32 as n_days
            from intermediate.int_promotion_days as pd
            join __fc_series as s using (product_id, location_id)
            left join staging.stg_sales__promotions as pr using (promotion_id)
            where pd.date_day >= ? and pd.date_day < ?
            group by all
            """,
            [str(cal.start[0]), str(cal.start[0]), future_end],
        ).fetchnumpy()
        # how far ahead the export lists promotions (of these series): the latest start after the export's own
        # last sales day. Measured from the export, not from as_of: a replay at a past as-of date must not read
        # promotions the export lists a year later as planned (that would be look-ahead), so it gets the same
        # listing lead the export shows today.
        export_day = mart_as_of(con)
        (latest_start,) = con.execute(
            """
            select max(pr.start_date)
            from intermediate.int_promotion_days as pd
            join __fc_series as s using (product_id, location_id)
            join staging.stg_sales__promotions as pr using (promotion_id)
            where pd.date_day > ? and pr.start_date > ?
            """,
            [export_day, export_day],
        ).fetchall()[0]
    finally:
        con.unregister("__fc_series")
    pi, pp = res["i"].astype(np.int64), res["p"].astype(np.int64)
    plen = cal.length[np.clip(pp, 0, n_total - 1)]
    # average discount over the period's days (days without a promotion count as 0)
    discount = _dense(pi, pp, np.asarray(res["disc"], np.float64) * res["n_days"] / plen, (n_base, n_total), 0.0)
    start_day = np.asarray(res["start_day"], dtype=np.int64)
    promo_start = _dense(pi, pp, np.where(start_day < 0, 0, start_day), (n_base, n_total), NO_PROMO, dtype=np.int32)

    # ---- aggregate series: exogenous = mean over children, history = sum of children
    first_all = first_per
    if agg.shape[0]:
        weights = sparse.diags(1.0 / np.maximum(np.asarray(agg.sum(axis=1)).ravel(), 1.0)) @ agg
        price_f = nan0(price)
        has_price = (~np.isnan(price)).astype(np.float32)
        num, den = np.asarray(agg @ price_f), np.asarray(agg @ has_price)
        with np.errstate(invalid="ignore", divide="ignore"):
            agg_price = np.where(den > 0, num / np.maximum(den, 1), np.nan).astype(np.float32)
        price = np.vstack([price, agg_price])
        discount = np.vstack([discount, np.asarray(weights @ discount, dtype=np.float32)])
        agg_start = np.full((agg.shape[0], n_total), NO_PROMO, dtype=np.int32)
        coo = agg.tocoo()
        np.minimum.at(agg_start, coo.row, promo_start[coo.col])  # earliest start among the children
        promo_start = np.vstack([promo_start, agg_start])
        child_first = np.full(agg.shape[0], n_hist - 1, dtype=np.int64)
        np.minimum.at(child_first, coo.row, first_per[coo.col])
        first_all = np.concatenate([first_per, child_first])

    static = _static_codes(keys)
    log.info("panel: %s base + %s aggregate series x %s %s periods (native grain %s), as of %s",
             f"{n_base:,}", f"{n_all - n_base:,}", f"{n_hist:,}", grain, native, as_of)
    panel = Panel(
        keys=keys, n_base=n_base, agg=agg, grain=grain, native_grain=native, as_of=as_of,
        first_day=cal.start[0].astype(object), period_start=cal.start, period_len=cal.length, n_hist=n_hist,
        sales=sales, censored=censored, first=first_all.astype(np.int64), price=price.astype(np.float32),
        discount=discount.astype(np.float32), promo_start=promo_start, static=static, x0=cal.x0,
        promotion_known_days=0 if latest_start is None else max((latest_start - export_day).days, 0),
        stock_known=stock_known,
    )
    n_days = int(panel.period_start_day[-1] + panel.period_len[-1])
    panel.signals = load_signals(con, keys[:n_base], panel.first_day, n_days, as_of)
    log.info("promotions are listed %s days ahead of the export's last sales day (derived promotion known "
             "horizon)", panel.promotion_known_days)
    for message in promotion_warnings(panel, config):
        log.warning("%s", message)
    return panel


def known_promotion_days(panel: Panel, config: ForecastConfig) -> int:
    """Days after an origin within which promotions are known: ``config.promotion_known_days`` when set (an
    int forces it), else the panel's derived ``promotion_known_days`` (how far ahead the export lists them)."""
    if config.promotion_known_days is None:
        return max(int(panel.promotion_known_days), 0)
    return max(int(config.promotion_known_days), 0)


def promotion_warnings(panel: Panel, config: ForecastConfig) -> list[str]:
    """Human-readable warnings about promotions the model sees in training but not (fully) for the forecast
    period; empty when there is nothing to say (no promotion in the history, or promotions listed far enough).

    - history has promotions but none is listed after ``as_of`` (known horizon 0): every forecast period
      carries the series' historical promotion intensity instead of a planned discount;
    - promotions are listed, but less far ahead than ``horizon_days``: later periods carry the intensity;
    - a forced ``promotion_known_days`` longer than the export lists: periods in between are read as "known: no
      promotion" although nothing is listed for them (the bias this setting can cause).

    Prices are not warned about: a price stays in force until changed, so carrying the last known price forward
    (``price_known_days``) is the right reading of a price list with past changes only.
    """
    if not panel.has_promotion_history():
        return []
    listed = max(int(panel.promotion_known_days), 0)
    known = known_promotion_days(panel, config)
    out: list[str] = []
    if listed == 0:
        out.append(
            f"promotions are in the history but none is listed for the forecast period: no promotion in the data "
            f"starts after the as-of date {panel.as_of}, so the forecast assumes each series' historical promotion "
            f"intensity (its mean discount over the last year) beyond the promotions already running. Export "
            f"planned promotions (start_date after the as-of date) to forecast them."
        )
    elif listed < config.horizon_days:
        out.append(
            f"promotions are listed only {listed} days ahead of the as-of date {panel.as_of}, less than the "
            f"{config.horizon_days}-day forecast horizon: later periods assume each series' historical promotion "
            f"intensity instead of planned promotions."
        )
    if config.promotion_known_days is not None and known > listed:
        out.append(
            f"promotion_known_days={known} is forced but the data lists promotions only {listed} days ahead of "
            f"the as-of date {panel.as_of}: periods in between are treated as known to have no promotion, "
            f"which biases the forecast low if promotions do happen; leave promotion_known_days unset to derive it."
        )
    return out


def _future_prices(price: np.ndarray, n_hist: int, changes: dict[str, np.ndarray]) -> np.ndarray:
    """Carry the last history price forward over the future periods, applying the price-list changes."""
    out = price
    hist = out[:, :n_hist]
    valid = ~np.isnan(hist)
    last_idx = np.where(valid.any(axis=1), n_hist - 1 - np.argmax(valid[:, ::-1], axis=1), -1)
    last = np.where(last_idx >= 0, hist[np.arange(len(hist)), np.maximum(last_idx, 0)], np.nan)
    fut = np.full((out.shape[0], out.shape[1] - n_hist), np.nan, dtype=np.float32)
    i, p, v = changes["i"].astype(np.int64), changes["p"].astype(np.int64) - n_hist, np.asarray(changes["price"])
    ok = (p >= 0) & (p < fut.shape[1])
    # the last change within a period wins (rows are ordered by date)
    fut[i[ok], p[ok]] = v[ok]
    fut[:, 0] = np.where(np.isnan(fut[:, 0]), last, fut[:, 0])
    fut = forward_fill(fut)
    out[:, n_hist:] = fut
    return out


def forward_fill(a: np.ndarray) -> np.ndarray:
    """Forward-fill NaNs along axis 1 (vectorised)."""
    mask = np.isnan(a)
    idx = np.where(~mask, np.arange(a.shape[1])[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    return a[np.arange(a.shape[0])[:, None], idx]


def _static_codes(keys: pl.DataFrame) -> dict[str, np.ndarray]:
    """Integer codes (sorted-value order, deterministic) of the static features; never polars categoricals."""
    out: dict[str, np.ndarray] = {}
    for col, name in (("category", "category_code"), ("location_id", "location_code"),
                      ("location_type", "location_type_code")):
        values = keys[col].fill_null("").to_numpy()
        uniq = np.unique(values)
        out[name] = np.searchsorted(uniq, values).astype(np.int32)
    return out
