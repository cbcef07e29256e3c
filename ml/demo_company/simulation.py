"""The replenishment process that turns true demand into recorded sales, stock movements and stock-outs.

State per store x product series: PHYSICAL stock (what is on the shelf) and BOOK stock (what the system
believes). Sales = min(true demand, physical); every documented movement (receipt, transfer, sale, return,
count) changes both, undocumented events (theft, damage, miscounted deliveries) change only the physical stock,
so the book drifts away from the shelf until a cycle count resets it. Replenishment decisions see only the book.

One day, in order:
 1. DC01 books in purchase-order receipts due today (possibly partial, short or late against the promise).
 2. DC01 ships yesterday's store transfer requests from what it physically has (shortages are rationed).
 3. Stores book in transfers arriving today (transit 0-2 days after shipping).
 4. Customer returns come back to the shelf (restocked to physical and book).
 5. Customers buy: sales = min(demand, physical); the rest is lost.
 6. Shrinkage and unrecorded gains change the physical stock only.
 7. Cycle counts (close of business): the book is reset to the counted physical quantity.
 8. Month ends: the book quantity is snapshotted.
 9. Stores on a review day order up to a level from a trailing mean of their (censored) sales.
10. DC01 reviews every product continuously: (s, Q) on book + on order - committed requests.

The loop runs over days and is vectorised across series; pipelines are ring buffers indexed by arrival day.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np
from tqdm import tqdm

from ml.demo_company.catalog import NO_DAY, Catalog
from ml.demo_company.config import DemoConfig
from ml.demo_company.demand import DemandModel
from ml.demo_company.pricing import PriceBook


@dataclass
class Chunk:
    """Everything recorded for one calendar quarter of the history (days first_day..last_day)."""

    label: str  # e.g. "2023q1"
    first_day: int
    last_day: int
    # sales lines (genuine) and returns (units > 0), sorted by day
    sale_day: np.ndarray
    sale_series: np.ndarray
    sale_qty: np.ndarray
    sale_price: np.ndarray
    sale_cost: np.ndarray
    ret_day: np.ndarray
    ret_series: np.ndarray
    ret_qty: np.ndarray
    ret_price: np.ndarray
    ret_cost: np.ndarray
    # transfers shipped in the quarter; received -1 = still in transit at the end of the history
    tr_ordered: np.ndarray
    tr_shipped: np.ndarray
    tr_received: np.ndarray
    tr_series: np.ndarray
    tr_qty: np.ndarray
    # ground truth, shape (n_days, n_series)
    demand: np.ndarray
    sold: np.ndarray
    physical: np.ndarray
    book: np.ndarray
    expected: np.ndarray


@dataclass
class SimulationResult:
    # purchase-order lines (one per DC order of a product), in order of placement
    po_day: np.ndarray
    po_product: np.ndarray
    po_qty: np.ndarray
    po_unit_cost: np.ndarray
    po_promised: np.ndarray
    po_status: np.ndarray  # 'open' | 'closed' | 'cancelled' at the end of the history
    # receipts booked within the history
    rc_line: np.ndarray  # index into the po_* arrays
    rc_day: np.ndarray
    rc_qty: np.ndarray
    # cycle counts; location index 0 = DC01, 1.. = stores
    cc_day: np.ndarray
    cc_loc: np.ndarray
    cc_product: np.ndarray
    cc_book: np.ndarray
    cc_counted: np.ndarray
    # book snapshots (opening day -1 and month ends)
    sn_day: np.ndarray
    sn_loc: np.ndarray
    sn_product: np.ndarray
    sn_qty: np.ndarray
    stats: dict[str, float] = field(default_factory=dict)


def quarter_label(cfg: DemoConfig, day: int) -> str:
    d = cfg.start + timedelta(days=day)
    return f"{d.year}q{(d.month - 1) // 3 + 1}"


def quarter_bounds(cfg: DemoConfig) -> list[tuple[str, int, int]]:
    """(label, first day, last day) of each calendar quarter touched by the history."""
    out: list[tuple[str, int, int]] = []
    first = 0
    for t in range(1, cfg.days + 1):
        if t == cfg.days or quarter_label(cfg, t) != quarter_label(cfg, first):
            out.append((quarter_label(cfg, first), first, t - 1))
            first = t
    return out


class _Lists:
    """Per-day arrays gathered until a chunk (or the run) ends."""

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names
        self.data: dict[str, list[np.ndarray]] = {n: [] for n in names}

    def add(self, **arrays: np.ndarray) -> None:
        for name, arr in arrays.items():
            self.data[name].append(arr)

    def take(self, dtypes: dict[str, type] | None = None) -> dict[str, np.ndarray]:
        out = {}
        for name in self.names:
            parts = self.data[name]
            dtype = (dtypes or {}).get(name, np.int64)
            out[name] = np.concatenate(parts) if parts else np.zeros(0, dtype=dtype)
            self.data[name] = []
        return out


def simulate(
    cfg: DemoConfig,
    cat: Catalog,
    book_prices: PriceBook,
    demand: DemandModel,
    rngs: dict[str, np.random.Generator],
    on_chunk: Callable[[Chunk], None],
    progress: bool = True,
) -> SimulationResult:
    n_p, n_st = cat.n_products, cat.n_stores
    ns = n_p * n_st
    T = cfg.days
    prod_of, store_of = demand.prod_of, demand.store_of
    r_plan, r_lead, r_tr = rngs["planning"], rngs["lead_times"], rngs["transfers"]
    r_ret, r_shr, r_cnt, r_noise = rngs["returns"], rngs["shrink"], rngs["counts"], rngs["demand_noise"]

    launch, disc = cat.launch, cat.discontinued

    # ------------------------------------------------------------------ planners' parameters
    overcover = r_plan.lognormal(0.0, cfg.overcover_sigma, ns)
    big = r_plan.random(ns) < cfg.overcover_share
    overcover = np.where(big, overcover * r_plan.uniform(*cfg.overcover_factor, ns), overcover)
    safety_s = r_plan.uniform(*cfg.store_safety_days, ns)
    period_st = cat.store_review_period
    lead_s = (1.0 + cat.store_transit + cfg.transfer_extra_day_share)[store_of]
    review_s = period_st[store_of].astype(np.float64)
    case_s = cat.store_case[prod_of]
    store_start = (launch - 3)[prod_of]
    store_stop = disc[prod_of]

    suppliers = cfg.suppliers
    sup_mean = np.array([s.mean_lead_days for s in suppliers])
    overseas = sup_mean[cat.supplier] > 20
    dc_safety = np.where(
        overseas, r_plan.uniform(*cfg.dc_safety_days_overseas, n_p), r_plan.uniform(*cfg.dc_safety_days_domestic, n_p)
    )
    dc_cover = r_plan.uniform(*cfg.dc_cover_days, n_p)
    quoted = cat.nominal_lead
    po_start = launch - quoted - 14
    po_stop = np.where(disc < NO_DAY, disc - quoted - r_plan.integers(0, 31, n_p), NO_DAY)
    sup_shift = np.array([s.shift_days for s in suppliers])[cat.supplier]
    sup_shape = np.array([s.gamma_shape for s in suppliers])[cat.supplier]
    sup_scale = np.array([s.gamma_scale for s in suppliers])[cat.supplier]

    # planners' demand estimates: for the opening (from the first weeks) and for launches (optimistic, noisy)
    W, W2 = cfg.store_forecast_window, cfg.dc_forecast_window
    price_now = book_prices.list_price.values_at(0, n_p, cat.price0)
    no_disc = np.zeros(ns)
    opening_mean = np.mean([demand.mean(t, price_now, no_disc) for t in range(min(W, T))], axis=0)
    opening_est = opening_mean * r_plan.lognormal(0.0, cfg.planner_forecast_sigma, ns)
    launch_level = np.clip(launch, 0, T - 1)
    launch_est = np.empty(ns)
    for t0 in np.unique(launch_level):
        m = (launch_level == t0)[prod_of]
        launch_est[m] = demand.plateau(int(t0))[m]
    launch_est *= r_plan.lognormal(0.1, cfg.launch_forecast_sigma, ns)
    launch_est_p = np.bincount(prod_of, launch_est, n_p)

    # count schedule: faster movers more often, staggered
    rank = np.argsort(np.argsort(demand.static)) / max(ns - 1, 1)
    fast_i, mid_i, slow_i = cfg.count_interval_days
    interval_s = np.where(rank > 2 / 3, fast_i, np.where(rank > 1 / 3, mid_i, slow_i))
    phase_s = r_cnt.integers(0, interval_s)
    dc_interval = mid_i
    phase_dc = r_cnt.integers(0, dc_interval, n_p)

    shrink_factor = np.array([c.shrink_factor for c in cfg.categories])[cat.category]
    shrink_share = cfg.shrink_share * shrink_factor[prod_of]
    p_shrink = cfg.shrink_rate * shrink_factor[prod_of]
    return_rate = np.array([c.return_rate for c in cfg.categories])[cat.category][prod_of]

    # ------------------------------------------------------------------ state
    def order_up_to(f: np.ndarray) -> np.ndarray:
        target = f * (review_s + lead_s + safety_s) * overcover + cfg.store_z * np.sqrt(f * (review_s + lead_s))
        return np.maximum(np.ceil(target), case_s)

    live0 = (launch < 0)[prod_of]
    phys = np.where(live0, np.round(order_up_to(opening_est) * r_plan.uniform(0.3, 1.0, ns)), 0).astype(np.int64)
    book = phys.copy()
    sales_ring = np.tile(np.where(live0, opening_est, 0.0), (W, 1))
    sales_sum = sales_ring.sum(axis=0)
    req_ring = np.tile(np.bincount(prod_of, np.where(live0, opening_est, 0.0), n_p), (W2, 1))
    req_sum = req_ring.sum(axis=0)

    r0 = req_sum / W2
    q0 = np.maximum(cat.min_order_qty, r0 * dc_cover)
    dc0 = r0 * (quoted + dc_safety) + r_plan.uniform(0.0, 1.0, n_p) * q0
    dc_phys = np.where(launch < 0, np.round(dc0), 0).astype(np.int64)
    dc_book = dc_phys.copy()

    transit_h = 4
    transit_ring = np.zeros((transit_h, ns), dtype=np.int64)
    in_transit = np.zeros(ns, dtype=np.int64)
    pending = np.zeros(ns, dtype=np.int64)
    ret_h = cfg.return_delay_days[1] + 1
    ret_ring = np.zeros((ret_h, ns), dtype=np.int64)
    po_h = cfg.max_lead_days + 2 * cfg.partial_gap_days[1] + 40
    po_ring = np.zeros((po_h, n_p), dtype=np.int64)
    oo_ring = np.zeros((po_h, n_p), dtype=np.int64)
    on_order = np.zeros(n_p, dtype=np.int64)

    list_price = book_prices.list_price.values_at(0, n_p, cat.price0)
    cost = book_prices.cost.values_at(0, n_p, cat.cost0)
    discount = book_prices.promo.values_at(0, ns)
    price_bounds = book_prices.list_price.day_bounds(T)
    cost_bounds = book_prices.cost.day_bounds(T)
    promo_bounds = book_prices.promo.day_bounds(T)

    # ------------------------------------------------------------------ records
    sales = _Lists(("day", "series", "qty", "price", "cost"))
    rets = _Lists(("day", "series", "qty", "price", "cost"))
    trs = _Lists(("ordered", "shipped", "received", "series", "qty"))
    pos = _Lists(("day", "product", "qty", "unit_cost", "promised", "cancel_day", "last_day"))
    rcs = _Lists(("line", "day", "qty"))
    ccs = _Lists(("day", "loc", "product", "book", "counted"))
    sns = _Lists(("day", "loc", "product", "qty"))
    n_lines = 0
    float_cols = {"price": np.float64, "cost": np.float64, "unit_cost": np.float64}

    loc_of_series = store_of + 1
    dc_loc = np.zeros(n_p, dtype=np.int64)
    all_products = np.arange(n_p)

    def snapshot(t: int) -> None:
        nonzero = (dc_book != 0) | (np.bincount(prod_of, book != 0, n_p) > 0)
        keep_p = (launch <= t) | nonzero
        keep_s = keep_p[prod_of]
        sns.add(
            day=np.full(int(keep_p.sum()) * (n_st + 1), t, dtype=np.int64),
            loc=np.concatenate([dc_loc[keep_p], loc_of_series[keep_s]]),
            product=np.concatenate([all_products[keep_p], prod_of[keep_s]]),
            qty=np.concatenate([dc_book[keep_p], book[keep_s]]),
        )

    snapshot(-1)
    month_end = np.array([(cfg.start + timedelta(days=t + 1)).day == 1 for t in range(T)])
    gamma_k = demand.k

    stats = {"demand_units": 0.0, "sold_units": 0.0, "oos_series_days": 0.0, "active_series_days": 0.0}
    chunks = quarter_bounds(cfg)
    chunk_i = 0
    label, c_first, c_last = chunks[0]

    def new_truth(n_days: int) -> dict[str, np.ndarray]:
        return {
            "demand": np.empty((n_days, ns), dtype=np.int32),
            "sold": np.empty((n_days, ns), dtype=np.int32),
            "physical": np.empty((n_days, ns), dtype=np.int32),
            "book": np.empty((n_days, ns), dtype=np.int32),
            "expected": np.empty((n_days, ns), dtype=np.float32),
        }

    truth = new_truth(c_last - c_first + 1)

    for t in tqdm(range(T), disable=not progress, desc="Simulating days", unit="day", leave=False):
        # 0. list prices, standard costs and promotions in force today
        if t > 0:
            book_prices.list_price.apply(list_price, price_bounds, t)
            book_prices.cost.apply(cost, cost_bounds, t)
            book_prices.promo.apply(discount, promo_bounds, t)

        # 1. DC receipts
        slot = t % po_h
        arrived = po_ring[slot]
        if arrived.any():
            dc_phys += arrived
            dc_book += arrived
        on_order -= oo_ring[slot]
        po_ring[slot] = 0
        oo_ring[slot] = 0

        # 2. DC ships yesterday's requests
        if pending.any():
            req_p = np.bincount(prod_of, pending, n_p)
            avail = np.maximum(dc_phys, 0)
            ratio = np.where(req_p > 0, np.minimum(1.0, avail / np.maximum(req_p, 1)), 0.0)
            ship = np.floor(pending * ratio[prod_of]).astype(np.int64)
            shipped_p = np.bincount(prod_of, ship, n_p).astype(np.int64)
            dc_phys -= shipped_p
            dc_book -= shipped_p
            transit_st = cat.store_transit + (r_tr.random(n_st) < cfg.transfer_extra_day_share)
            idx = np.flatnonzero(ship)
            arrival = t + transit_st[store_of[idx]]
            transit_ring[arrival % transit_h, idx] += ship[idx]
            in_transit[idx] += ship[idx]
            trs.add(
                ordered=np.full(len(idx), t - 1, dtype=np.int64),
                shipped=np.full(len(idx), t, dtype=np.int64),
                received=np.where(arrival < T, arrival, -1),
                series=idx,
                qty=ship[idx],
            )
            pending[:] = 0

        # 3. store receipts (a few deliveries are physically one unit off the transfer document)
        tslot = t % transit_h
        incoming = transit_ring[tslot]
        phys += incoming
        book += incoming
        in_transit -= incoming
        delivered = np.flatnonzero(incoming)
        if len(delivered):
            off = delivered[r_shr.random(len(delivered)) < cfg.delivery_error_share]
            phys[off] = np.maximum(phys[off] + r_shr.choice(np.array([-1, 1]), len(off)), 0)
        transit_ring[tslot] = 0

        # 4. returns
        rslot = t % ret_h
        ridx = np.flatnonzero(ret_ring[rslot])
        if len(ridx):
            rq = ret_ring[rslot, ridx]
            phys[ridx] += rq
            book[ridx] += rq
            rets.add(
                day=np.full(len(ridx), t, dtype=np.int64),
                series=ridx,
                qty=rq,
                price=list_price[prod_of[ridx]],
                cost=cost[prod_of[ridx]],
            )
            ret_ring[rslot] = 0

        # 5. demand and sales
        mu = demand.mean(t, list_price, discount)
        dem = DemandModel.draw(mu, gamma_k, r_noise)
        sold = np.minimum(dem, np.maximum(phys, 0))
        phys -= sold
        book -= sold
        sidx = np.flatnonzero(sold)
        eff_price = np.round(list_price[prod_of[sidx]] * (1.0 - discount[sidx]), 2)
        sales.add(
            day=np.full(len(sidx), t, dtype=np.int64),
            series=sidx,
            qty=sold[sidx],
            price=eff_price,
            cost=cost[prod_of[sidx]],
        )
        n_back = r_ret.binomial(sold[sidx], return_rate[sidx])
        back = n_back > 0
        if back.any():
            delay = r_ret.integers(cfg.return_delay_days[0], cfg.return_delay_days[1] + 1, int(back.sum()))
            ret_ring[(t + delay) % ret_h, sidx[back]] += n_back[back]

        # 6. shrinkage (theft, damage: physical only, roughly in proportion to throughput) and unrecorded gains
        lost_units = np.minimum(r_shr.poisson(shrink_share * mu + p_shrink), phys)
        phys -= np.maximum(lost_units, 0)
        live_p = (t >= launch) & (t <= disc)
        gain = (r_shr.random(ns) < cfg.gain_rate) & live_p[prod_of]
        phys[gain] += 1
        dc_loss = (r_shr.random(n_p) < cfg.dc_shrink_rate) & (dc_phys > 0)
        if dc_loss.any():
            dc_phys[dc_loss] -= np.minimum(r_shr.integers(1, 4, int(dc_loss.sum())), dc_phys[dc_loss])

        # 7. cycle counts at close of business
        exists_s = (t >= store_start) & ((t <= store_stop) | (book != 0) | (phys != 0))
        counted = (((t + phase_s) % interval_s) == 0) & exists_s
        if counted.any():
            cidx = np.flatnonzero(counted)
            ccs.add(
                day=np.full(len(cidx), t, dtype=np.int64),
                loc=loc_of_series[cidx],
                product=prod_of[cidx],
                book=book[cidx].copy(),
                counted=phys[cidx].copy(),
            )
            book[cidx] = phys[cidx]
        dc_counted = (((t + phase_dc) % dc_interval) == 0) & (t >= po_start) & ((t <= disc) | (dc_book != 0))
        if dc_counted.any():
            cidx = np.flatnonzero(dc_counted)
            ccs.add(
                day=np.full(len(cidx), t, dtype=np.int64),
                loc=dc_loc[cidx],
                product=cidx,
                book=dc_book[cidx].copy(),
                counted=dc_phys[cidx].copy(),
            )
            dc_book[cidx] = dc_phys[cidx]

        # 8. truth and snapshots
        row = t - c_first
        truth["demand"][row] = dem
        truth["sold"][row] = sold
        truth["physical"][row] = phys
        truth["book"][row] = book
        truth["expected"][row] = mu
        active = live_p[prod_of]
        stats["demand_units"] += float(dem.sum())
        stats["sold_units"] += float(sold.sum())
        stats["active_series_days"] += float(active.sum())
        stats["oos_series_days"] += float((active & (phys <= 0)).sum())
        if month_end[t]:
            snapshot(t)

        # 9. store review: order up to a level from the trailing mean of sales
        ring_slot = t % W
        sales_sum += sold - sales_ring[ring_slot]
        sales_ring[ring_slot] = sold
        f = np.maximum(sales_sum, 0.0) / W
        fresh = (t < (launch + W)[prod_of]) & (t >= store_start)
        f = np.where(fresh, np.maximum(f, launch_est), f)
        reviewing = (((t + cat.store_review_phase) % period_st) == 0)[store_of]
        orderable = reviewing & (t >= store_start) & (t < store_stop)
        need = order_up_to(f) - (book + in_transit)
        pending = np.where(orderable & (need > 0), np.ceil(need / case_s) * case_s, 0).astype(np.int64)

        # 10. DC review: continuous (s, Q) on the inventory position
        req_p = np.bincount(prod_of, pending, n_p)
        dslot = t % W2
        req_sum += req_p - req_ring[dslot]
        req_ring[dslot] = req_p
        r = np.maximum(req_sum, 0.0) / W2
        r = np.where((t >= po_start) & (t < launch + W2), np.maximum(r, launch_est_p), r)
        position = dc_book + on_order - req_p
        rop = r * (quoted + dc_safety)
        trigger = (t >= po_start) & (t < po_stop) & (position <= rop)
        if trigger.any():
            idx = np.flatnonzero(trigger)
            q = np.maximum(cat.min_order_qty[idx], r[idx] * dc_cover[idx]) + np.maximum(rop[idx] - position[idx], 0)
            pack = cat.pack_size[idx]
            q = (np.ceil(q / pack) * pack).astype(np.int64)
            n = len(idx)
            lead = np.rint(sup_shift[idx] + r_lead.gamma(sup_shape[idx], sup_scale[idx]))
            lead = np.clip(lead, 1, cfg.max_lead_days).astype(np.int64)
            u = r_lead.random(n)
            cancel = u < cfg.cancel_share
            short = (u >= cfg.cancel_share) & (u < cfg.cancel_share + cfg.short_ship_share)
            fill = r_lead.uniform(*cfg.short_ship_fill, n)
            total = np.where(short, np.maximum(np.floor(q * fill), 1), q).astype(np.int64)
            total = np.where(cancel, 0, total)
            n_parts = np.where(r_lead.random(n) < cfg.partial_receipt_share, r_lead.integers(2, 4, n), 1)
            n_parts = np.where(cancel, 0, np.minimum(n_parts, total))
            frac = r_lead.random((n, 3)) + 0.2
            used = np.arange(3)[None, :] < n_parts[:, None]
            frac = np.where(used, frac, 0.0)
            cum = np.cumsum(frac, axis=1) / np.maximum(frac.sum(axis=1, keepdims=True), 1e-12)
            extra = np.maximum(total - n_parts, 0)
            cum_q = np.floor(extra[:, None] * cum).astype(np.int64)
            cum_q = np.where(np.arange(3)[None, :] >= (n_parts - 1)[:, None], extra[:, None], cum_q)
            parts = np.diff(np.concatenate([np.zeros((n, 1), dtype=np.int64), cum_q], axis=1), axis=1) + 1
            parts = np.where(used, parts, 0)
            gaps = r_lead.integers(cfg.partial_gap_days[0], cfg.partial_gap_days[1] + 1, (n, 3))
            gaps[:, 0] = 0
            part_day = t + lead[:, None] + np.cumsum(gaps, axis=1)
            last_used = np.maximum(n_parts - 1, 0)
            for j in range(3):
                m = used[:, j]
                release = parts[:, j] + np.where(last_used == j, q - total, 0)
                po_ring[part_day[m, j] % po_h, idx[m]] += parts[m, j]
                oo_ring[part_day[m, j] % po_h, idx[m]] += release[m]
            cancel_day = t + r_lead.integers(5, 31, n)
            oo_ring[cancel_day[cancel] % po_h, idx[cancel]] += q[cancel]
            on_order[idx] += q
            final_day = np.where(cancel, cancel_day, part_day[np.arange(n), last_used])
            unit_cost = np.round(cost[idx] * (1.0 + r_lead.normal(0.0, cfg.po_cost_noise, n)), 2)
            line_ids = n_lines + np.arange(n)
            pos.add(
                day=np.full(n, t, dtype=np.int64),
                product=idx,
                qty=q,
                unit_cost=np.maximum(unit_cost, 0.01),
                promised=t + quoted[idx],
                cancel_day=np.where(cancel, cancel_day, -1),
                last_day=final_day,
            )
            rl, rj = np.nonzero(used)
            rcs.add(line=line_ids[rl], day=part_day[rl, rj], qty=parts[rl, rj])
            n_lines += n

        # end of a quarter: hand the chunk to the writer and free it
        if t == c_last:
            s = sales.take(float_cols)
            rr = rets.take(float_cols)
            tt = trs.take()
            on_chunk(
                Chunk(
                    label=label,
                    first_day=c_first,
                    last_day=c_last,
                    sale_day=s["day"],
                    sale_series=s["series"],
                    sale_qty=s["qty"],
                    sale_price=s["price"],
                    sale_cost=s["cost"],
                    ret_day=rr["day"],
                    ret_series=rr["series"],
                    ret_qty=rr["qty"],
                    ret_price=rr["price"],
                    ret_cost=rr["cost"],
                    tr_ordered=tt["ordered"],
                    tr_shipped=tt["shipped"],
                    tr_received=tt["received"],
                    tr_series=tt["series"],
                    tr_qty=tt["qty"],
                    **truth,
                )
            )
            chunk_i += 1
            if chunk_i < len(chunks):
                label, c_first, c_last = chunks[chunk_i]
                truth = new_truth(c_last - c_first + 1)

    po = pos.take(float_cols)
    rc = rcs.take()
    cc = ccs.take()
    sn = sns.take()
    status = np.where(
        po["cancel_day"] >= 0,
        np.where(po["cancel_day"] < T, "cancelled", "open"),
        np.where(po["last_day"] < T, "closed", "open"),
    )
    in_history = rc["day"] < T
    stats["ghost_series_end"] = float(((book > 0) & (phys <= 0)).sum())
    return SimulationResult(
        po_day=po["day"],
        po_product=po["product"],
        po_qty=po["qty"],
        po_unit_cost=po["unit_cost"],
        po_promised=po["promised"],
        po_status=status,
        rc_line=rc["line"][in_history],
        rc_day=rc["day"][in_history],
        rc_qty=rc["qty"][in_history],
        cc_day=cc["day"],
        cc_loc=cc["loc"],
        cc_product=cc["product"],
        cc_book=cc["book"],
        cc_counted=cc["counted"],
        sn_day=sn["day"],
        sn_loc=sn["loc"],
        sn_product=sn["product"],
        sn_qty=sn["qty"],
        stats=stats,
    )
