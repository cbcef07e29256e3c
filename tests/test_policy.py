"""Tests for ml.policy.run_policy and its parts, on crafted warehouses with hand-computable answers.

The lead-time demand here is written by hand per series (``make_ltd``), never by the production forecaster.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
import shutil
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
import pytest
from scipy import stats

from ml.policy import PolicyConfig, run_policy, set_proposal_status, write_policy_run
from ml.policy import inventory_math as im
from ml.policy.classify import classify_abc, classify_xyz, load_service_levels
from ml.policy.exceptions import EXCEPTION_SCHEMA
from ml.policy.proposals import PROPOSAL_SCHEMA
from ml.policy.run import POLICY_COLUMNS, forecast_near_term, forecast_rate_between
from tests.policy_helpers import create_marts, make_ltd, series_days

AS_OF = date(2025, 6, 30)
DAYS = 400
CSL_SEED = "abc_class,xyz_class,service_metric,target,note\n*,*,cycle_service_level,0.95,everything at 95%\n"
FILL_SEED = "abc_class,xyz_class,service_metric,target,note\n*,*,fill_rate,0.985,everything at 98.5% fill\n"
OVERRIDE_HEADER = "product_id,location_id,field,value,reason,author\n"


def _rng_poisson(mean: float, size: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).poisson(mean, size).astype(np.float64)


# ------------------------------------------------------------------------------------------------ the crafted company
PRODUCTS = [
    {"product_id": "PDET", "supplier_id": "SUP1", "min_order_qty": 0, "pack_size": 1, "nominal_lead_time_days": 5},
    {"product_id": "PPACK", "supplier_id": "SUP1", "min_order_qty": 50, "pack_size": 12, "nominal_lead_time_days": 7},
    {"product_id": "PCLS", "supplier_id": "SUP2", "min_order_qty": 1, "pack_size": 1, "nominal_lead_time_days": 6},
    {"product_id": "PDRIFT", "supplier_id": "SUP2", "min_order_qty": 1, "pack_size": 1, "nominal_lead_time_days": 5},
    {"product_id": "PLT", "supplier_id": "SUP2", "min_order_qty": 0, "pack_size": 1, "nominal_lead_time_days": 5},
    {"product_id": "PGHOST"}, {"product_id": "PEXC"}, {"product_id": "PSTOCK"}, {"product_id": "PEXCL"},
    {"product_id": "PNULL"}, {"product_id": "PNEG"}, {"product_id": "PNOCOST"}, {"product_id": "PFC"},
    {"product_id": "PDISC", "discontinued_date": AS_OF - timedelta(days=30)},
]
LOCATIONS = [
    {"location_id": "DC1", "location_type": "dc", "replenishment_source": "supplier"},
    {"location_id": "S1", "location_type": "store", "replenished_from": "DC1", "replenishment_source": "transfer"},
    {"location_id": "S2", "location_type": "store", "replenished_from": "DC1", "replenishment_source": "transfer"},
]


def _history() -> list[pl.DataFrame]:
    ghost = np.r_[np.full(DAYS - 40, 2.0), np.zeros(40)]
    alternating = np.tile([1.0, 3.0], DAYS // 2)
    return [
        series_days("PDET", "DC1", np.full(DAYS, 10.0), AS_OF, on_hand=500, unit_cost=2.0),
        series_days("PLT", "DC1", np.full(DAYS, 10.0), AS_OF, on_hand=500, unit_cost=2.0),
        series_days("PPACK", "DC1", np.ones(DAYS), AS_OF, on_hand=3, unit_cost=5.0),
        series_days("PPACK", "S1", np.ones(DAYS), AS_OF, on_hand=0, unit_cost=5.0),
        series_days("PCLS", "DC1", alternating, AS_OF, on_hand=400, unit_cost=1.0),
        series_days("PDRIFT", "DC1", np.ones(DAYS), AS_OF, on_hand=400, unit_cost=10.0),
        series_days("PGHOST", "S1", ghost, AS_OF, on_hand=15, unit_cost=4.0),
        series_days("PEXC", "S1", np.ones(DAYS), AS_OF, on_hand=1000, unit_cost=3.0),
        series_days("PSTOCK", "S1", _rng_poisson(5, DAYS, 1), AS_OF, on_hand=2, unit_cost=2.0),
        series_days("PEXCL", "S1", np.ones(DAYS), AS_OF, on_hand=0, unit_cost=2.0),
        series_days("PNULL", "S2", np.ones(DAYS), AS_OF, on_hand=None, unit_cost=2.0),
        series_days("PNEG", "S2", np.ones(DAYS), AS_OF, on_hand=-3, on_order=5, unit_cost=2.0),
        series_days("PNOCOST", "S2", np.ones(DAYS), AS_OF, on_hand=1, unit_cost=None),
        series_days("PFC", "S2", np.full(DAYS, 2.0), AS_OF, on_hand=30, unit_cost=2.0),
        series_days("PDISC", "S2", np.ones(DAYS), AS_OF, on_hand=0, unit_cost=2.0),
    ]


#: key -> (samples of the protection-interval demand, daily mean, lead time, review period)
def _ltd_spec() -> dict[tuple[str, str], tuple[np.ndarray, float, float, float]]:
    n = 400
    return {
        ("PDET", "DC1"): (np.full(n, 70.0), 10.0, 5.0, 2.0),
        ("PLT", "DC1"): (np.full(n, 70.0), 10.0, 5.0, 2.0),
        ("PPACK", "DC1"): (_rng_poisson(8, n, 2), 1.0, 7.0, 1.0),
        ("PPACK", "S1"): (_rng_poisson(3, n, 3), 1.0, 2.0, 1.0),
        ("PCLS", "DC1"): (_rng_poisson(14, n, 4), 2.0, 6.0, 1.0),
        ("PDRIFT", "DC1"): (_rng_poisson(30, n, 5), 5.0, 5.0, 1.0),
        ("PGHOST", "S1"): (_rng_poisson(6, n, 6), 2.0, 2.0, 1.0),
        ("PEXC", "S1"): (_rng_poisson(3, n, 7), 1.0, 2.0, 1.0),
        ("PSTOCK", "S1"): (_rng_poisson(15, n, 8), 5.0, 2.0, 1.0),
        ("PEXCL", "S1"): (_rng_poisson(3, n, 9), 1.0, 2.0, 1.0),
        ("PNULL", "S2"): (_rng_poisson(3, n, 10), 1.0, 2.0, 1.0),
        ("PNEG", "S2"): (_rng_poisson(3, n, 11), 1.0, 2.0, 1.0),
        ("PNOCOST", "S2"): (_rng_poisson(3, n, 12), 1.0, 2.0, 1.0),
        ("PFC", "S2"): (_rng_poisson(6, n, 13), 2.0, 2.0, 1.0),
        ("PDISC", "S2"): (_rng_poisson(3, n, 14), 1.0, 2.0, 1.0),
    }


def crafted_ltd(scale: dict[tuple[str, str], float] | None = None):
    spec = _ltd_spec()
    keys = list(spec)
    k = np.array([(scale or {}).get(key, 1.0) for key in keys])
    return make_ltd(keys, np.stack([spec[key][0] for key in keys]) * k[:, None],
                    daily_mean=np.array([spec[key][1] for key in keys]) * k,
                    lead_time=np.array([spec[key][2] for key in keys]),
                    review=np.array([spec[key][3] for key in keys]))


@pytest.fixture(scope="module")
def crafted_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("policy_crafted") / "crafted.duckdb"
    sales = pl.DataFrame({"date_day": [AS_OF - timedelta(days=3)], "product_id": ["PNOCOST"], "location_id": ["S2"],
                          "list_price": [10.0]})
    counts = [{"count_id": "C1", "count_date": AS_OF - timedelta(days=10), "product_id": "PGHOST",
               "location_id": "S1", "discrepancy_units": -6.0, "is_ghost_stock": True}]
    with duckdb.connect(str(path)) as con:
        create_marts(con, products=PRODUCTS, locations=LOCATIONS, inventory_daily=pl.concat(_history()),
                     sales_daily=sales, discrepancies=counts)
    return path


@pytest.fixture
def db(crafted_db: Path, tmp_path: Path) -> duckdb.DuckDBPyConnection:
    copy = tmp_path / "w.duckdb"
    shutil.copy(crafted_db, copy)
    con = duckdb.connect(str(copy))
    yield con
    con.close()


def seeds(tmp_path: Path, service_levels: str = CSL_SEED, overrides: str = OVERRIDE_HEADER) -> PolicyConfig:
    d = tmp_path / "seeds"
    d.mkdir(parents=True, exist_ok=True)
    (d / "service_levels.csv").write_text(service_levels)
    (d / "planner_overrides.csv").write_text(overrides)
    return PolicyConfig(seeds_dir=str(d))


def row(frame: pl.DataFrame, product: str, location: str) -> dict:
    rows = frame.filter((pl.col("product_id") == product) & (pl.col("location_id") == location)).to_dicts()
    assert len(rows) == 1, (product, location, len(rows))
    return rows[0]


# ------------------------------------------------------------------------------------------------ schemas
def test_frames_have_the_documented_schemas(db, tmp_path):
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    stamp = {"run_id": pl.String, "as_of_date": pl.Date, "model_version": pl.String}
    assert run.inventory_policy.schema == pl.Schema({**stamp, **POLICY_COLUMNS})
    assert run.purchase_proposals.schema == pl.Schema({**stamp, **PROPOSAL_SCHEMA})
    assert run.exceptions.schema == pl.Schema({**stamp, **EXCEPTION_SCHEMA})
    assert run.inventory_policy.height == len(_ltd_spec())
    assert run.inventory_policy.select("product_id", "location_id").rows() == list(_ltd_spec())  # LTD order kept
    assert run.inventory_policy["as_of_date"].unique().to_list() == [AS_OF]
    for key in ("inventory", "service", "proposals", "exceptions", "overrides", "timings_s", "classes"):
        assert key in run.summary


# ------------------------------------------------------------------------------------------------ composition
def test_deterministic_demand_and_lead_time_give_zero_safety_stock(db, tmp_path):
    """d = 10/day, L = 5, R = 2, no variability: r = d (L + R) = 70, SS = 0, for the model and the classical
    baseline (nominal lead time 5 = the mean). EOQ = sqrt(2 x 15 x 3650 / (0.25 x 2)) = 467.97 -> 468."""
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    r = row(run.inventory_policy, "PDET", "DC1")
    assert r["reorder_point"] == 70 and r["safety_stock"] == 0 and r["ltd_mean"] == 70
    assert r["eoq_units"] == pytest.approx(math.sqrt(2 * 15 * 3650 / 0.5))
    assert r["order_quantity"] == 468 and r["order_up_to_level"] == 70 + 468
    assert r["classical_reorder_point"] == 70 and r["classical_safety_stock"] == 0
    assert r["classical_lead_time_basis"] == "nominal" and r["classical_order_quantity"] == 468
    assert r["expected_cycle_service_level"] == 1 and r["expected_fill_rate"] == 1
    assert r["reorder_point_days_of_supply"] == pytest.approx(7.0) and r["safety_stock_days"] == 0
    assert r["expected_avg_inventory_value"] == pytest.approx(468 / 2 * 2.0)
    assert r["delta_expected_avg_inventory_value"] == 0 and r["delta_reorder_point"] == 0
    assert r["expected_turnover"] == pytest.approx(3650 / 234)
    assert r["needs_order"] is False  # position 500 > 70


def test_fill_rate_target_uses_the_exact_sample_fill_rate_with_a_csl_floor(db, tmp_path):
    """Fill rate 98.5% with Q = 468 on a constant demand of 70 over the protection interval, 50 of it before the
    order arrives, so 20 per review. The position at a review cycles through r + Q - 20 k, k = 0..23 (the
    undershoot chain: 480 >= Q orders again), each state 1/24 of the reviews; with S = r + Q only k = 23 runs
    short, by 70 + 460 - S. The periodic-review fill rate allows 0.015 x 20 = 0.3 units short per review: r = 55
    (S = 523) gives 7 / 24 = 0.29 (fill 0.9854), r = 54 gives 8 / 24 = 0.33. Below the mean (the stack-notes
    trap): the 0.80 cycle-service floor lifts it back to the 80% quantile, 70."""
    ltd = crafted_ltd()
    lead = ltd.lead_only().copy()
    det = ltd.keys.with_row_index("i").filter(pl.col("product_id") == "PDET")["i"][0]
    lead[det] = 50.0
    ltd = replace(ltd, lead_samples=lead)
    config = seeds(tmp_path, FILL_SEED)
    floored = row(run_policy(db, ltd, None, config, as_of=AS_OF).inventory_policy, "PDET", "DC1")
    assert floored["reorder_point"] == 70 and floored["reorder_point_basis"] == "fill_rate_csl_floor"
    bare = row(run_policy(db, ltd, None, replace(config, min_cycle_service_level=0.0),
                          as_of=AS_OF).inventory_policy, "PDET", "DC1")
    assert bare["reorder_point"] == 55 and bare["reorder_point_basis"] == "fill_rate"
    assert bare["safety_stock"] == -15
    assert bare["expected_fill_rate"] == pytest.approx(1 - 7 / 24 / 20, abs=2e-3)


def test_order_quantity_rounds_to_moq_and_pack_for_suppliers_and_units_for_stores(db, tmp_path):
    """PPACK, 1/day, cost 5: at the DC (K = 15) EOQ = sqrt(2 x 15 x 365 / 1.25) = 93.6, capped at 90 days = 90,
    rounded to MOQ 50 and packs of 12 -> 96; at a store (transfer, K = 4) EOQ = sqrt(2336) = 48.3 -> 49 units
    (pack 1, no MOQ). The DC's purchase order tops up its echelon position (its own and its empty store's, less
    the store's planned stock), so it is larger than one on its own position."""
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    dc, store = row(run.inventory_policy, "PPACK", "DC1"), row(run.inventory_policy, "PPACK", "S1")
    assert dc["eoq_units"] == pytest.approx(math.sqrt(2 * 15 * 365 / 1.25))
    assert (dc["order_quantity"], dc["min_order_qty"], dc["pack_size"]) == (96, 50, 12)
    assert (store["order_quantity"], store["min_order_qty"], store["pack_size"]) == (49, 0, 1)
    po, tr = row(run.purchase_proposals, "PPACK", "DC1"), row(run.purchase_proposals, "PPACK", "S1")
    # the DC orders on its echelon position: its own 3 plus its store's 0, less the store's planned r + Q / 2
    assert dc["inventory_position_units"] == 3 and dc["echelon_position_units"] == 3 + 0
    assert dc["echelon_store_target_units"] == store["reorder_point"] + store["order_quantity"] / 2
    assert dc["ordering_position_units"] == 3 - dc["echelon_store_target_units"]
    need = dc["order_up_to_level"] - dc["ordering_position_units"]
    assert po["quantity"] % 12 == 0 and po["quantity"] >= max(50, need) and po["quantity"] - need < 12
    assert "echelon position 3" in po["reason"]
    assert tr["quantity"] == store["order_up_to_level"] - 0
    assert store["ordering_position_units"] == store["inventory_position_units"] == 0
    assert store["echelon_store_target_units"] is None
    # on its own position (echelon_dc_ordering off) the DC orders up to S from its own 3
    own = run_policy(db, crafted_ltd(), None, replace(seeds(tmp_path), echelon_dc_ordering=False), as_of=AS_OF)
    dc_own, po_own = row(own.inventory_policy, "PPACK", "DC1"), row(own.purchase_proposals, "PPACK", "DC1")
    assert dc_own["ordering_position_units"] == 3 and dc_own["echelon_store_target_units"] is None
    need_own = dc_own["order_up_to_level"] - 3
    assert po_own["quantity"] % 12 == 0 and max(50, need_own) <= po_own["quantity"] < need_own + 12
    assert po_own["quantity"] < po["quantity"]
    # direct: the rounding rule on its own
    _, q = im.order_quantity(np.array([1.0, 0.0]), np.array([5.0, 5.0]), np.array([15.0, 15.0]),
                             annual_holding_rate=0.25, min_cover_days=1, max_cover_days=90,
                             moq=np.array([50.0, 50.0]), pack_size=np.array([12.0, 12.0]))
    assert q.tolist() == [96.0, 60.0]  # no demand: the smallest orderable quantity


def test_eoq_uses_the_items_ordering_cost_and_holding_rate_from_the_master(db, tmp_path):
    """dim_product's ordering_cost / annual_holding_rate (the product's, else its supplier's) replace the settings
    in EOQ = sqrt(2 K D / (h c)), for the recommended and the classical quantity alike; a store's transfer line
    keeps transfer_cost_per_line (4) but takes the item's holding rate.

    PDET at DC1 (10/day, cost 2), K = 20 (product), h = 0.4 (supplier): sqrt(2 x 20 x 3650 / (0.4 x 2)) = 427.2
    -> 428. PPACK (1/day, cost 5), K = 100 (supplier), h = 0.5 (product): at DC1 sqrt(2 x 100 x 365 / 2.5) = 170.9,
    capped at 90 days and rounded to MOQ 50 / pack 12 -> 96; at S1 (transfer, K = 4) sqrt(2 x 4 x 365 / 2.5) =
    34.2 -> 35. PCLS has neither: the settings (15, 0.25), basis 'default'."""
    db.execute("""update marts.dim_product set ordering_cost = 20, ordering_cost_basis = 'product',
                  annual_holding_rate = 0.4, holding_rate_basis = 'supplier' where product_id = 'PDET'""")
    db.execute("""update marts.dim_product set ordering_cost = 100, ordering_cost_basis = 'supplier',
                  annual_holding_rate = 0.5, holding_rate_basis = 'product' where product_id = 'PPACK'""")
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    det = row(run.inventory_policy, "PDET", "DC1")
    eoq = math.sqrt(2 * 20 * 3650 / (0.4 * 2.0))
    assert det["eoq_units"] == pytest.approx(eoq) and det["classical_eoq_units"] == pytest.approx(eoq)
    assert det["order_quantity"] == det["classical_order_quantity"] == math.ceil(eoq) == 428
    assert (det["ordering_cost"], det["ordering_cost_basis"], det["holding_rate"], det["holding_rate_basis"]) == (
        20, "product", 0.4, "supplier")
    dc, store = row(run.inventory_policy, "PPACK", "DC1"), row(run.inventory_policy, "PPACK", "S1")
    assert dc["eoq_units"] == pytest.approx(math.sqrt(2 * 100 * 365 / (0.5 * 5.0))) and dc["order_quantity"] == 96
    assert (dc["ordering_cost"], dc["ordering_cost_basis"], dc["holding_rate"], dc["holding_rate_basis"]) == (
        100, "supplier", 0.5, "product")
    assert store["eoq_units"] == pytest.approx(math.sqrt(2 * 4 * 365 / (0.5 * 5.0)))
    assert store["order_quantity"] == store["classical_order_quantity"] == 35
    assert (store["ordering_cost"], store["ordering_cost_basis"], store["holding_rate"]) == (4, "transfer", 0.5)
    cls = row(run.inventory_policy, "PCLS", "DC1")
    assert (cls["ordering_cost"], cls["ordering_cost_basis"], cls["holding_rate"], cls["holding_rate_basis"]) == (
        15, "default", 0.25, "default")
    # direct: a per-series holding-rate array gives what the scalar gives row by row
    args = (np.array([10.0, 1.0]), np.array([2.0, 5.0]), np.array([20.0, 100.0]))
    kw = {"min_cover_days": 1, "max_cover_days": 90, "moq": np.array([0.0, 50.0]), "pack_size": np.array([1.0, 12.0])}
    eoq_arr, q_arr = im.order_quantity(*args, annual_holding_rate=np.array([0.4, 0.5]), **kw)
    for i, rate in enumerate((0.4, 0.5)):
        eoq_one, q_one = im.order_quantity(*args, annual_holding_rate=rate, **kw)
        assert eoq_arr[i] == eoq_one[i] and q_arr[i] == q_one[i]
    assert q_arr.tolist() == [428.0, 96.0]


def test_classical_baseline_matches_the_textbook_formula_by_hand(db, tmp_path):
    """PCLS: daily usage alternating 1, 3 over a 364-day window: mean 2, sample sd sqrt(364/363). Nominal lead time
    6 + review 1 = 7 days: mu_L = 14, sigma_L = sqrt(7 x 364/363) = 2.6494, r = ceil(14 + 1.64485 x 2.6494) =
    ceil(18.358) = 19, SS = 5. EOQ = sqrt(2 x 15 x 730 / 0.25) = 296 > 90 days -> 180."""
    config = replace(seeds(tmp_path), history_window_days=364)
    r = row(run_policy(db, crafted_ltd(), None, config, as_of=AS_OF).inventory_policy, "PCLS", "DC1")
    sigma = math.sqrt(7 * 364 / 363)
    assert r["daily_demand_hist_mean"] == pytest.approx(2.0) and r["history_days"] == 364
    assert r["daily_demand_hist_std"] == pytest.approx(math.sqrt(364 / 363))
    assert r["classical_ltd_mean"] == pytest.approx(14.0) and r["classical_ltd_std"] == pytest.approx(sigma)
    assert r["classical_safety_factor"] == pytest.approx(stats.norm.ppf(0.95))
    assert 14 + stats.norm.ppf(0.95) * sigma == pytest.approx(18.358, abs=1e-3)
    assert r["classical_reorder_point"] == 19 and r["classical_safety_stock"] == pytest.approx(5.0)
    assert r["classical_order_quantity"] == 180 and r["classical_order_up_to_level"] == 199
    assert r["classical_expected_avg_inventory_value"] == pytest.approx((5 + 90) * 1.0)
    assert r["delta_safety_stock_units"] == pytest.approx(r["safety_stock"] - 5.0)


def test_classical_fill_rate_reorder_point_chopra_meindl_11_4():
    """Chopra & Meindl Exercise 11-4 (inventory_known_answers.md): D = 250/week, sd 150/week, L = 2 weeks,
    Q = 1000: sigma_L = 212.13; ROP 600 (SS 100) gives CSL 0.68 and fill rate 0.956. Per day: mean 250/7, sd
    150/sqrt 7, over 14 days. A 95.6% fill-rate target needs SS just under 100 -> r = 600 in whole units; a CSL
    target of Phi(100/212.13) gives r = 600 too."""
    csl = stats.norm.cdf(100 / (150 * math.sqrt(2)))
    cl = im.classical_policy(np.array([250 / 7] * 2), np.array([150 / math.sqrt(7)] * 2), np.array([14.0] * 2),
                             is_fill_rate=np.array([True, False]), target=np.array([0.956, csl]),
                             q=np.array([1000.0, 1000.0]))
    assert cl.ltd_mean == pytest.approx([500, 500]) and cl.ltd_std == pytest.approx([212.132] * 2, abs=1e-3)
    assert cl.reorder_point.tolist() == [600.0, 600.0]
    assert cl.safety_factor[0] == pytest.approx(0.469, abs=2e-3)  # just under 100 / 212.13 = 0.4714


def test_abc_xyz_assignment_on_a_crafted_set():
    """Per location, sorted by consumption value: an item is A while the share before it is < 80%, B < 95%."""
    frame = pl.DataFrame({
        "location_id": ["L1"] * 5 + ["L2"] * 2,
        "product_id": ["a", "b", "c", "d", "e", "f", "g"],
        "annual_consumption_value": [30.0, 50.0, 10.0, 6.0, 4.0, 0.0, 1.0],
    })
    config = PolicyConfig()
    assert classify_abc(frame, config).to_list() == ["A", "A", "B", "B", "C", "C", "A"]
    # global: totals 101; sorted b 50, a 30 (share before 0.495), c (0.792), d (0.891), e (0.950), g, f
    assert classify_abc(frame, replace(config, abc_scope="global")).to_list() == ["A", "A", "A", "B", "C", "C", "C"]
    xyz = classify_xyz(np.array([0.3, 0.5, 0.7, 1.0, 1.5, np.nan, 0.2]), np.array([52, 52, 52, 52, 52, 52, 5]),
                       np.array([1.0, 1, 1, 1, 1, 0, 1]), config)
    assert xyz.tolist() == ["X", "X", "Y", "Y", "Z", "Z", "Z"]


def test_abc_xyz_from_the_warehouse(db, tmp_path):
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    p = run.inventory_policy
    # DC1 consumption at cost per year: PDET = PLT = 7300, PDRIFT 3650, PPACK 1825, PCLS ~730 (of ~20805);
    # shares before each: 0, 0.35, 0.70 (A), 0.88 (B), 0.96 (C)
    dc = {r["product_id"]: r["abc_class"] for r in p.filter(pl.col("location_id") == "DC1").to_dicts()}
    assert dc == {"PDET": "A", "PLT": "A", "PDRIFT": "A", "PPACK": "B", "PCLS": "C"}
    assert row(p, "PDET", "DC1")["xyz_class"] == "X"  # constant weeks: CV 0
    assert row(p, "PGHOST", "S1")["weekly_demand_cv"] > 0


def test_service_levels_seed_wildcards_and_validation(db, tmp_path):
    config = seeds(tmp_path, "abc_class,xyz_class,service_metric,target,note\n"
                             "A,X,fr,0.99,\n*,Z,csl,90%,\n*,*,cycle_service_level,0.95,\n")
    sl = {(r["abc_class"], r["xyz_class"]): (r["service_metric"], r["service_target"])
          for r in load_service_levels(db, config).to_dicts()}
    assert sl[("A", "X")] == ("fill_rate", 0.99) and sl[("B", "Z")] == ("cycle_service_level", 0.90)
    assert sl[("B", "Y")] == ("cycle_service_level", 0.95) and len(sl) == 9
    bad = seeds(tmp_path / "bad", "abc_class,xyz_class,service_metric,target,note\nA,X,speed,0.99,\n")
    with pytest.raises(ValueError, match="service_metric"):
        load_service_levels(db, bad)


def test_service_levels_table_is_preferred_and_the_csv_fallback_is_logged(db, tmp_path, caplog):
    config = seeds(tmp_path)  # CSV says 95%
    with caplog.at_level(logging.WARNING, logger="stockturn.policy"):
        load_service_levels(db, config)
    assert "reading" in caplog.text and "service_levels.csv" in caplog.text
    db.execute("create schema planning")
    db.execute("create table planning.service_levels as select 'A' as abc_class, 'X' as xyz_class, "
               "'cycle_service_level' as service_metric, 0.9 as target, 'table' as note")
    sl = load_service_levels(db, config)
    assert sl.filter(pl.col("abc_class") == "A", pl.col("xyz_class") == "X")["service_target"].item() == 0.9
    assert sl.filter(pl.col("abc_class") == "B")["service_target_source"].unique().to_list() == ["default"]


# ------------------------------------------------------------------------------------------------ positions, costs
def test_positions_negative_book_null_on_hand_costs_and_discontinued(db, tmp_path):
    p = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF).inventory_policy
    neg = row(p, "PNEG", "S2")
    assert neg["inventory_position_units"] == 5 and neg["position_basis"] == "negative_book_as_zero"
    null = row(p, "PNULL", "S2")
    assert null["inventory_position_units"] is None and null["position_basis"] == "unavailable"
    assert null["is_orderable"] is False and null["not_orderable_reason"] == "position_unavailable"
    nocost = row(p, "PNOCOST", "S2")
    assert nocost["unit_cost_basis"] == "list_price_less_margin" and nocost["unit_cost"] == pytest.approx(6.5)
    assert nocost["unit_price"] == 10.0
    assert row(p, "PDISC", "S2")["not_orderable_reason"] == "discontinued"
    assert row(p, "PDISC", "S2")["needs_order"] is False


def test_forecast_frame_daily_and_weekly_rows(db):
    keys = pl.DataFrame({"product_id": ["A", "B"], "location_id": ["L", "L"]}).with_row_index("_i")
    daily = pl.DataFrame({"product_id": "A", "location_id": "L",
                          "date": pl.date_range(AS_OF - timedelta(days=5), AS_OF + timedelta(days=40), eager=True)}
                         ).with_columns(forecast_mean=pl.when(pl.col("date") > AS_OF).then(3.0).otherwise(99.0))
    weekly = pl.DataFrame({"product_id": "B", "location_id": "L",
                           "period": [AS_OF + timedelta(days=7 * k) for k in range(1, 6)], "mean": 70.0})
    monthly = pl.DataFrame({"product_id": ["A", "A"], "location_id": ["L", "L"],
                            "period_start": [date(2025, 7, 1), date(2025, 8, 1)],
                            "period_end": [date(2025, 7, 31), date(2025, 8, 31)], "forecast": [310.0, 620.0]})
    config = PolicyConfig()
    assert forecast_near_term(monthly, keys, AS_OF, config)["forecast_daily_near"].to_list() == [10.0]
    got = forecast_near_term(daily, keys, AS_OF, config)
    assert got["forecast_daily_near"].to_list() == [3.0]  # only days after as_of, within 28 days
    got = forecast_near_term(weekly, keys, AS_OF, config)
    assert got["forecast_daily_near"].to_list() == [10.0] and got["_i"].to_list() == [1]
    with pytest.raises(ValueError, match="date column"):
        forecast_near_term(pl.DataFrame({"product_id": ["A"], "location_id": ["L"], "x": [1]}), keys, AS_OF, config)


def test_forecast_rate_between_weighs_rows_by_their_overlap_with_the_window():
    keys = pl.DataFrame({"product_id": ["A", "B", "C"], "location_id": ["L", "L", "L"]}).with_row_index("_i")
    daily = pl.DataFrame({"product_id": "A", "location_id": "L",
                          "date": pl.date_range(AS_OF + timedelta(days=1), AS_OF + timedelta(days=60), eager=True)}
                         ).with_columns(forecast_mean=pl.when(pl.col("date") <= AS_OF + timedelta(days=20))
                                        .then(9.0).otherwise(1.0))
    monthly = pl.DataFrame({"product_id": ["B", "B"], "location_id": ["L", "L"],
                            "period_start": [AS_OF + timedelta(days=1), AS_OF + timedelta(days=31)],
                            "period_end": [AS_OF + timedelta(days=30), AS_OF + timedelta(days=60)],
                            "forecast": [300.0, 600.0]})
    frame = pl.concat([daily.rename({"date": "period_start", "forecast_mean": "forecast"}).with_columns(
        pl.col("period_start").alias("period_end")), monthly], how="diagonal")
    config = PolicyConfig()
    got = forecast_rate_between(frame, keys, AS_OF, config, np.array([15.0, 20.0, 5.0]), np.array([10.0, 20.0, 10.0]))
    # A: days 16-25 = 5 days at 9 and 5 at 1; B: days 21-40 = 10 days at 10/day and 10 at 20/day; C: no forecast
    assert got[0] == pytest.approx(5.0) and got[1] == pytest.approx(15.0) and np.isnan(got[2])
    # a window mostly beyond the horizon (a lead time longer than the forecast) has no rate
    beyond = forecast_rate_between(frame, keys, AS_OF, config, np.array([55.0, 50.0, 0.0]), np.array([20.0] * 3))
    assert np.isnan(beyond[0]) and beyond[1] == pytest.approx(20.0)  # B: days 51-60 of 51-70, exactly half


def test_order_quantity_is_sized_on_the_demand_after_the_order_arrives(db, tmp_path):
    """PDET (DC1, lead time 5, 10 a day on the horizon mean): the season ends on day 5, so an order landing on
    day 5 serves nothing and the quantity is the smallest orderable; PLT (same terms) starts selling 30 a day
    after day 5, so its order is sized on 30 a day. "horizon_mean" keeps the old rule."""
    days = pl.date_range(AS_OF + timedelta(days=1), AS_OF + timedelta(days=91), eager=True)
    t = np.arange(1, 92)
    frame = pl.concat([
        pl.DataFrame({"product_id": "PDET", "location_id": "DC1", "date": days,
                      "forecast_mean": np.where(t <= 5, 10.0, 0.0)}),
        pl.DataFrame({"product_id": "PLT", "location_id": "DC1", "date": days,
                      "forecast_mean": np.where(t <= 5, 0.0, 30.0)}),
    ])
    config = seeds(tmp_path)
    after = run_policy(db, crafted_ltd(), frame, config, as_of=AS_OF).inventory_policy
    flat = run_policy(db, crafted_ltd(), frame, dataclasses.replace(config, order_quantity_demand="horizon_mean"),
                      as_of=AS_OF).inventory_policy
    ended, starts = row(after, "PDET", "DC1"), row(after, "PLT", "DC1")
    assert ended["order_demand_basis"] == "after_arrival" and ended["order_demand_daily"] == 0.0
    assert ended["order_quantity"] == 1.0
    assert starts["order_demand_daily"] == pytest.approx(30.0)
    eoq30 = math.sqrt(2 * 15 * 30 * 365 / (0.25 * 2.0))
    assert starts["eoq_units"] == pytest.approx(eoq30) and starts["order_quantity"] == math.ceil(eoq30)
    for key in (("PDET", "DC1"), ("PLT", "DC1")):
        old = row(flat, *key)
        assert old["order_demand_basis"] == "horizon_mean" and old["order_demand_daily"] == pytest.approx(10.0)
    # series without forecast rows fall back to the horizon mean
    assert row(after, "PPACK", "DC1")["order_demand_basis"] == "horizon_mean"


# ------------------------------------------------------------------------------------------------ proposals
def test_proposals_types_ids_and_reasons(db, tmp_path):
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    props = run.purchase_proposals
    po, tr = row(props, "PPACK", "DC1"), row(props, "PPACK", "S1")
    assert (po["proposal_type"], po["supplier_id"], po["source_location_id"]) == ("purchase_order", "SUP1", None)
    assert (tr["proposal_type"], tr["supplier_id"], tr["source_location_id"]) == ("transfer", None, "DC1")
    assert po["proposal_id"] == hashlib.sha256(f"PPACK|DC1|{AS_OF.isoformat()}".encode()).hexdigest()[:16]
    assert po["expected_arrival_date"] == AS_OF + timedelta(days=7) and tr["expected_arrival_date"] == AS_OF + \
        timedelta(days=2)
    assert po["value"] == pytest.approx(po["quantity"] * 5.0) and po["status"] == "proposed"
    dc = row(run.inventory_policy, "PPACK", "DC1")
    assert po["reason"].startswith(
        f"echelon position 3 (own 3 + its stores' 0) less the stores' planned {dc['echelon_store_target_units']:g} = "
        f"{dc['ordering_position_units']:g} <= reorder point {po['reorder_point']:g}; order {po['quantity']:g}")
    assert tr["reason"].startswith(f"position 0 <= reorder point {tr['reorder_point']:g}")
    assert "packs of 12" in po["reason"] and "covers" in po["reason"]
    assert tr["days_covered"] == pytest.approx(tr["quantity"] / 1.0)
    assert "DC1 has only 3 on hand" in tr["reason"]  # the store asks for more than the DC holds
    # every proposal: the position its rule reads (a DC's echelon position less its stores' planned stock) at or
    # below the reorder point, orderable, quantity reaches the order-up-to level
    joined = props.join(run.inventory_policy, on=["product_id", "location_id"], suffix="_p")
    assert (joined["ordering_position_units"] <= joined["reorder_point"]).all()
    assert (joined["quantity"] + joined["ordering_position_units"] >= joined["order_up_to_level"] - 1e-9).all()
    assert not set(props["product_id"]) & {"PDISC", "PNULL", "PDET"}
    # proposal ids are deterministic: a re-run gives the same ids
    again = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    assert sorted(again.purchase_proposals["proposal_id"]) == sorted(props["proposal_id"])
    assert again.run_info.run_id == run.run_info.run_id


def test_decisions_are_audited_and_survive_reruns(db, tmp_path):
    config = seeds(tmp_path)
    run = run_policy(db, crafted_ltd(), None, config, as_of=AS_OF)
    write_policy_run(db, run)
    pid = row(run.purchase_proposals, "PPACK", "DC1")["proposal_id"]
    with pytest.raises(ValueError, match="status"):
        set_proposal_status(db, pid, "maybe", "ann")
    with pytest.raises(ValueError, match="reason"):
        set_proposal_status(db, pid, "rejected", "ann")
    with pytest.raises(ValueError, match="unknown proposal"):
        set_proposal_status(db, "nope", "approved", "ann")
    set_proposal_status(db, pid, "rejected", "ann", "supplier on holiday")
    set_proposal_status(db, pid, "approved", "bob", "holiday over")
    shown = db.execute("select status, status_author from ml.purchase_proposals where proposal_id = ?",
                       [pid]).fetchall()
    assert shown == [("approved", "bob")]
    rerun = run_policy(db, crafted_ltd(), None, config, as_of=AS_OF)
    p = row(rerun.purchase_proposals, "PPACK", "DC1")
    assert (p["status"], p["status_author"], p["status_reason"]) == ("approved", "bob", "holiday over")
    write_policy_run(db, rerun)  # replaces the three tables, never the decisions
    log = db.execute("select decision_seq, status, author from ml.proposal_decisions order by 1").fetchall()
    assert log == [(1, "rejected", "ann"), (2, "approved", "bob")]
    # a different quantity voids the approval
    changed = run_policy(db, crafted_ltd({("PPACK", "DC1"): 3.0}), None, config, as_of=AS_OF)
    p = row(changed.purchase_proposals, "PPACK", "DC1")
    assert p["status"] == "proposed" and "quantity changed" in p["status_reason"]
    assert changed.summary["proposals"]["by_status"] == {"proposed": changed.purchase_proposals.height}


# ------------------------------------------------------------------------------------------------ overrides
def test_planner_overrides_are_applied_with_an_audit_trail_and_problems_reported(db, tmp_path):
    overrides = OVERRIDE_HEADER + "\n".join([
        "PDET,DC1,reorder_point,80,promotion build-up,alice",
        "PPACK,*,service_target,fill_rate:0.9,lower service on a slow line,bob",
        "PPACK,S1,order_quantity,30,shelf space,bob",
        "PPACK,DC1,min_order_qty,100,new supplier terms,carol",
        "PLT,DC1,lead_time_days,14,supplier moved to sea freight,dave",
        "PEXCL,S1,exclude,true,being delisted,erin",
        "PCLS,DC1,order_quantity,10,first try,frank",
        "PCLS,DC1,order_quantity,20,second thoughts,frank",
        "PUNKNOWN,DC1,order_quantity,10,typo,gina",
        "PDET,DC1,colour,blue,?,gina",
        "PDET,DC1,order_quantity,-5,oops,gina",
        "PDET,S9,reorder_point,3,wrong store,gina",
        "PDET,DC1,pack_size,6,,",
    ]) + "\n"
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path, overrides=overrides), as_of=AS_OF)
    p = run.inventory_policy
    det = row(p, "PDET", "DC1")
    assert (det["reorder_point"], det["reorder_point_before_override"], det["reorder_point_basis"]) == (80, 70,
                                                                                                       "override")
    assert det["safety_stock"] == 10 and det["overridden_fields"] == "reorder_point"
    assert det["override_reasons"] == "reorder_point: promotion build-up" and det["override_authors"] == "alice"
    for loc in ("DC1", "S1"):
        pk = row(p, "PPACK", loc)
        assert (pk["service_metric"], pk["service_target"], pk["service_target_source"]) == ("fill_rate", 0.9,
                                                                                            "override")
    store = row(p, "PPACK", "S1")
    assert store["order_quantity"] == 30 and store["order_quantity_before_override"] == 49
    assert store["overridden_fields"] == "order_quantity,service_target"
    assert row(p, "PPACK", "DC1")["min_order_qty"] == 100 and row(p, "PPACK", "DC1")["order_quantity"] == 108
    # deterministic 70 over L + R - 1 = 6 days, stretched to 14 + 2 - 1 = 15 days: r = 175
    lt = row(p, "PLT", "DC1")
    assert (lt["lead_time_days"], lt["lead_time_source"], lt["reorder_point"]) == (14, "override", 175)
    assert (lt["classical_lead_time_days"], lt["classical_reorder_point"]) == (14, 160)
    assert row(p, "PCLS", "DC1")["order_quantity"] == 20  # the last row wins
    excl = row(p, "PEXCL", "S1")
    assert excl["is_excluded"] is True and excl["not_orderable_reason"] == "excluded_by_planner"
    assert "PEXCL" not in run.purchase_proposals["product_id"].to_list()
    assert "PEXCL" not in run.exceptions["product_id"].to_list()
    issues = run.exceptions.filter(pl.col("exception_type") == "override_issue")
    text = " | ".join(issues["reason"].to_list())
    assert issues.height == 6 and issues["money_at_stake"].is_null().all()
    for expected in ("unknown product 'PUNKNOWN'", "unknown field 'colour'", "order_quantity must be > 0",
                     "not planned at S9", "superseded by row 8", "no author"):
        assert expected in text, expected
    assert issues["rank"].min() > run.exceptions.filter(pl.col("money_at_stake").is_not_null())["rank"].max()
    assert run.summary["overrides"]["applied"] == 8 and run.summary["overrides"]["issues"] == 6


# ------------------------------------------------------------------------------------------------ exceptions
def test_exceptions_flag_the_crafted_cases_and_rank_by_money(db, tmp_path):
    forecast = pl.DataFrame({"product_id": "PFC", "location_id": "S2",
                             "date": pl.date_range(AS_OF + timedelta(days=1), AS_OF + timedelta(days=28),
                                                   eager=True), "forecast_mean": 10.0})
    run = run_policy(db, crafted_ltd(), forecast, seeds(tmp_path), as_of=AS_OF)
    ex = run.exceptions
    kinds = {(r["exception_type"], r["product_id"], r["location_id"]) for r in ex.to_dicts()}
    assert ("stockout_risk", "PSTOCK", "S1") in kinds
    assert ("excess_stock", "PEXC", "S1") in kinds
    assert ("ghost_stock", "PGHOST", "S1") in kinds
    assert ("forecast_vs_actual", "PFC", "S2") in kinds
    assert ("position_unavailable", "PNULL", "S2") in kinds
    assert ("policy_change_vs_classical", "PDRIFT", "DC1") in kinds
    assert not any(k[1] == "PDET" for k in kinds)
    ghost = row(ex.filter(pl.col("exception_type") == "ghost_stock"), "PGHOST", "S1")
    assert "nothing sold or shipped for 40 days in stock" in ghost["reason"] and "found ghost stock" in ghost["reason"]
    assert ghost["money_at_stake"] == pytest.approx(15 * 4.0 + 2.0 * 2.0 * (4.0 / 0.65 - 4.0))
    excess = row(ex.filter(pl.col("exception_type") == "excess_stock"), "PEXC", "S1")
    oul = row(run.inventory_policy, "PEXC", "S1")["order_up_to_level"]
    assert excess["money_at_stake"] == pytest.approx((1000 - max(oul, 180)) * 3.0)
    assert excess["metric_value"] == pytest.approx(1000.0) and "lasts 1000 days" in excess["reason"]
    fc = row(ex.filter(pl.col("exception_type") == "forecast_vs_actual"), "PFC", "S2")
    assert fc["metric_value"] == pytest.approx(5.0) and fc["money_at_stake"] == pytest.approx(8 * 3 * 2.0)
    stock = row(ex.filter(pl.col("exception_type") == "stockout_risk"), "PSTOCK", "S1")
    assert stock["metric_value"] > 0.9 and stock["proposal_id"] is not None
    assert ex["rank"].to_list() == list(range(1, ex.height + 1))
    money = ex["money_at_stake"].drop_nulls().to_list()
    assert money == sorted(money, reverse=True)
    assert ex["exception_id"].n_unique() == ex.height


def test_policy_change_vs_previous_run(db, tmp_path):
    config = seeds(tmp_path)
    write_policy_run(db, run_policy(db, crafted_ltd(), None, config, as_of=AS_OF))
    tripled = run_policy(db, crafted_ltd({("PDET", "DC1"): 3.0}), None, config, as_of=AS_OF)
    prev = tripled.exceptions.filter(pl.col("exception_type") == "policy_change_vs_previous")
    assert prev["product_id"].to_list() == ["PDET"]  # 210 vs 70: changed by 2/3 of the larger (> 50%)
    assert "reorder point 210 vs 70 in the run of 2025-06-30" in prev["reason"].item()
    assert prev["money_at_stake"].item() == pytest.approx(140 * 2.0)
    # a previous run from after as_of is look-ahead: ignored
    earlier = run_policy(db, crafted_ltd({("PDET", "DC1"): 3.0}), None, config, as_of=AS_OF - timedelta(days=1))
    assert earlier.exceptions.filter(pl.col("exception_type") == "policy_change_vs_previous").height == 0


# ------------------------------------------------------------------------------------------------ no look-ahead
def test_no_look_ahead(db, tmp_path):
    """A run at a past date equals the run on a warehouse cut at that date."""
    config = seeds(tmp_path)
    past = AS_OF - timedelta(days=20)
    full = run_policy(db, crafted_ltd(), None, config, as_of=past)
    db.execute("delete from marts.fct_inventory_daily where date_day > ?", [past])
    db.execute("delete from marts.fct_inventory_discrepancies where count_date > ?", [past])
    cut = run_policy(db, crafted_ltd(), None, config, as_of=past)
    assert cut.inventory_policy.equals(full.inventory_policy)
    assert cut.purchase_proposals.equals(full.purchase_proposals)
    assert cut.exceptions.equals(full.exceptions)
    with pytest.raises(ValueError, match="after the last day"):
        run_policy(db, crafted_ltd(), None, config, as_of=AS_OF + timedelta(days=1))


# ------------------------------------------------------------------------------------------------ config
def test_config_from_dict_round_trip_and_validation():
    config = PolicyConfig.from_dict({"annual_holding_rate": 0.3, "abc_scope": "global"})
    assert config.annual_holding_rate == 0.3 and PolicyConfig.from_dict(config.to_dict()) == config
    assert PolicyConfig.from_dict(None) == PolicyConfig()
    with pytest.raises(ValueError, match="unknown PolicyConfig keys"):
        PolicyConfig.from_dict({"holding_rate": 0.3})
    with pytest.raises(ValueError, match="abc_a_share"):
        PolicyConfig(abc_a_share=0.97)


# ------------------------------------------------------------------------------------------------ guards (issue 8)
def test_guards_cap_an_exploding_distribution_and_raise_a_ranked_exception(db, tmp_path):
    """A lumpy part whose forecast distribution explodes (the failure seen on real spare parts: an LTD standard
    deviation ~60x the classical one): its own history (the empirical samples) and the classical formula both say a
    buffer of a few units. The buffer falls back to the larger reference, the forecast level is kept, and a
    safety_stock_guard exception carries the stock removed at cost. Series without an explosion are untouched."""
    base = crafted_ltd()
    keys = base.keys.rows()
    i = keys.index(("PCLS", "DC1"))
    samples = base.samples.copy()
    rng = np.random.default_rng(0)
    samples[i] = rng.lognormal(np.log(14.0) - 2.0, 2.0, samples.shape[1])  # mean 14, sd ~100 (Poisson(14): 3.7)
    guarded = replace(base, samples=samples, empirical_samples=base.samples.copy())
    # the crafted references carry no store order lots (real ones do: a DC's recorded shipments are its stores'
    # lots), so the DC rows are planned on their customers' units here, as the references are
    cfg = replace(seeds(tmp_path), dc_demand_in_store_lots=False)
    run = run_policy(db, guarded, None, cfg, as_of=AS_OF)
    r = row(run.inventory_policy, "PCLS", "DC1")
    ss_before = r["reorder_point_before_guard"] - r["ltd_mean"]
    assert r["is_safety_stock_guarded"] and r["reorder_point_basis"] == "safety_stock_guard"
    assert ss_before > cfg.guard_factor * r["guard_reference_safety_stock"] + 1
    assert r["guard_reference_safety_stock"] == pytest.approx(max(r["classical_safety_stock"],
                                                                  r["empirical_safety_stock"]))
    assert r["reorder_point"] == math.ceil(r["ltd_mean"] + r["guard_reference_safety_stock"] - 1e-9)
    ex = run.exceptions.filter(pl.col("exception_type") == "safety_stock_guard")
    assert ex["product_id"].to_list() == ["PCLS"]
    assert ex["money_at_stake"][0] == pytest.approx((r["reorder_point_before_guard"] - r["reorder_point"]) * 1.0)
    assert run.summary["guards"]["safety_stock_guard"] == 1
    # the same plan without the explosion is not touched by the guard
    calm = run_policy(db, replace(base, empirical_samples=base.samples.copy()), None, cfg, as_of=AS_OF)
    assert calm.inventory_policy["is_safety_stock_guarded"].sum() == 0


def test_a_reorder_point_far_above_both_references_is_never_silent(db, tmp_path):
    """A forecast level far above the history (a launch or an error) with the usual spread: the buffer is in
    line, the reorder point is not; it is kept (the level may be right) but raises reorder_point_above_references."""
    base = crafted_ltd()
    i = base.keys.rows().index(("PCLS", "DC1"))
    samples = base.samples.copy()
    samples[i] = samples[i] + 56.0  # the level x5, the spread unchanged
    # the crafted references carry no store order lots (see the test above): the DC rows are planned on units here
    run = run_policy(db, replace(base, samples=samples, empirical_samples=base.samples.copy()), None,
                     replace(seeds(tmp_path), dc_demand_in_store_lots=False), as_of=AS_OF)
    r = row(run.inventory_policy, "PCLS", "DC1")
    assert r["reorder_point"] > 2 * r["guard_reference_reorder_point"] + 1
    assert r["is_above_references"] and not r["is_safety_stock_guarded"]
    ex = run.exceptions.filter(pl.col("exception_type") == "reorder_point_above_references")
    assert ex["product_id"].to_list() == ["PCLS"] and ex["money_at_stake"][0] > 0


def _without_first_series():
    """The crafted draws without their first series (PDET at DC1, 10 units a day): as a plan made after its
    forecast sees a product that began to sell at a location since."""
    base = crafted_ltd()
    gone = base.keys.rows()[0]
    keep = [k for k in base.keys.rows() if k != gone]
    idx = [base.keys.rows().index(k) for k in keep]
    return base, gone, make_ltd(keep, base.samples[idx], daily_mean=base.daily_demand_mean[idx],
                                lead_time=base.lead_time_mean_days[idx], review=base.review_period_days[idx])


def _with_lead_time_tables(con: duckdb.DuckDBPyConnection) -> None:
    """The procurement and logistics tables the lead times are read from, empty (lead times then come from the
    product master's nominal lead time, as forecasting reads them)."""
    con.execute("create schema if not exists staging")
    con.execute("create table marts.dim_supplier (supplier_id varchar, nominal_lead_time_days integer)")
    con.execute("""create table marts.fct_purchase_receipts (product_id varchar, supplier_id varchar, po_id varchar,
                   po_line integer, received_date date, lead_time_days integer, quantity_received double)""")
    con.execute("""create table staging.stg_logistics__transfers (from_location_id varchar, to_location_id varchar,
                   received_date date, ordered_date date)""")


def test_a_location_selling_without_a_series_gets_a_no_forecast_exception(db, tmp_path):
    """With the cold start off: a product-location that sells but has no series is named with its location and
    the recent sales at cost, ranked by that money, not silently missing from the plan; a plan whose series cover
    every selling product-location raises nothing of the kind."""
    base, gone, ltd = _without_first_series()
    window = PolicyConfig().forecast_window_days
    (units, value) = db.execute(
        """select sum(coalesce(units_sold, 0) + coalesce(transfers_out_units, 0)),
                  sum((coalesce(units_sold, 0) + coalesce(transfers_out_units, 0)) * coalesce(unit_cost, 0))
           from marts.fct_inventory_daily where product_id = ? and location_id = ?
             and date_day <= ? and date_day > ?::date - ?::integer""",
        [gone[0], gone[1], AS_OF, AS_OF, window]).fetchone()
    assert units > 0  # the crafted series sells in the window
    run = run_policy(db, ltd, None, replace(seeds(tmp_path), plan_cold_start=False), as_of=AS_OF)
    assert gone not in run.inventory_policy.select("product_id", "location_id").rows()
    ex = run.exceptions.filter((pl.col("exception_type") == "no_forecast") & pl.col("location_id").is_not_null())
    assert ex.select("product_id", "location_id").rows() == [gone]
    assert ex["metric_value"][0] == pytest.approx(units)
    assert ex["money_at_stake"][0] == pytest.approx(value)
    assert "no forecast at this location" in ex["reason"][0] and "no reorder point" in ex["reason"][0]
    assert run.summary["locations_without_forecast"] == 1
    full = run_policy(db, base, None, seeds(tmp_path), as_of=AS_OF)
    assert full.exceptions.filter(pl.col("location_id").is_not_null()
                                  & (pl.col("exception_type") == "no_forecast")).height == 0
    assert full.summary["locations_without_forecast"] == 0


def test_a_location_selling_without_a_series_is_planned_on_its_own_usage(db, tmp_path):
    """The cold start (default): the product-location is planned on its own usage since its first sale and its
    own lead time (here the master's nominal 5 days, no receipts yet): 10 units a day every day gives draws of
    exactly 10 x (L + R - 1) units, a reorder point at that demand, the order demand basis says how, and the
    exception says it is planned. A warehouse without the lead-time tables leaves it unplanned, named."""
    from ml.forecasting import ForecastConfig
    from ml.forecasting.cold_start import COLD_START_BASIS

    _, gone, ltd = _without_first_series()
    unplanned = run_policy(db, ltd, None, seeds(tmp_path), as_of=AS_OF)  # no procurement or logistics tables
    assert gone not in unplanned.inventory_policy.select("product_id", "location_id").rows()
    _with_lead_time_tables(db)
    run = run_policy(db, ltd, None, seeds(tmp_path), as_of=AS_OF)
    p = run.inventory_policy.filter((pl.col("product_id") == gone[0]) & (pl.col("location_id") == gone[1]))
    assert p.height == 1
    r = p.row(0, named=True)
    review = ForecastConfig().review_period_supplier_days
    assert (r["lead_time_days"], r["lead_time_source"], r["review_period_days"]) == (5.0, "nominal", review)
    assert r["ltd_mean"] == pytest.approx(10.0 * (5.0 + review - 1.0))
    assert r["reorder_point"] >= r["ltd_mean"] and r["order_demand_basis"] == COLD_START_BASIS
    assert r["daily_demand_forecast"] == pytest.approx(10.0)
    ex = run.exceptions.filter((pl.col("exception_type") == "no_forecast") & pl.col("location_id").is_not_null())
    assert ex.select("product_id", "location_id").rows() == [gone] and "planned on its own usage" in ex["reason"][0]
    assert (run.inventory_policy["order_demand_basis"] == COLD_START_BASIS).sum() == 1


def test_a_part_listed_all_along_that_sells_once_is_not_read_as_a_launch(db, tmp_path):
    """The cold start counts from the product-location's first day in the mart: a part listed for 100 days that
    sold one unit yesterday is planned at 1/100 a day, not at a launch's 1/14."""
    _with_lead_time_tables(db)
    once = series_days("PSTOCK", "S2", np.r_[np.zeros(99), 1.0], AS_OF, on_hand=3, unit_cost=2.0)
    launch = series_days("PEXC", "S2", [0.0, 1.0], AS_OF, on_hand=np.array([0.0, 4.0]), unit_cost=3.0)
    for frame in (once, launch):
        db.register("__rows", frame.to_arrow())
        db.execute("insert into marts.fct_inventory_daily by name select * from __rows")
        db.unregister("__rows")
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    assert row(run.inventory_policy, "PSTOCK", "S2")["daily_demand_forecast"] == pytest.approx(1.0 / 100.0)
    assert row(run.inventory_policy, "PEXC", "S2")["daily_demand_forecast"] == pytest.approx(1.0 / 14.0)


def test_a_series_the_forecast_saw_silent_is_planned_once_it_sells(db, tmp_path):
    """A series whose forecast saw no demand (all draws zero: a product stocked before its launch) that sold
    after the forecast was made is planned on its own usage at the re-plan (PFC at S2: 2 units a day since the
    forecast); planned on the forecast's own day, the forecast stands (nothing new is known). A series forecast
    to zero that sold before the forecast (an intermittent part between orders) keeps its forecast's zero plan
    when it sells again."""
    from ml.forecasting.cold_start import COLD_START_BASIS

    _with_lead_time_tables(db)
    made = AS_OF - timedelta(days=7)
    db.execute("""update marts.fct_inventory_daily set units_sold = 0
                  where product_id = 'PFC' and location_id = 'S2' and date_day <= ?""", [made])
    db.execute("update marts.dim_product set launch_date = ? where product_id = 'PFC'", [made])  # launched then
    intermittent = crafted_ltd()
    j = intermittent.keys.rows().index(("PSTOCK", "S1"))
    s_int = intermittent.samples.copy()
    s_int[j] = 0.0
    kept = run_policy(db, replace(intermittent, samples=s_int), None, seeds(tmp_path), as_of=AS_OF,
                      forecast_as_of=made)
    assert row(kept.inventory_policy, "PSTOCK", "S1")["order_demand_basis"] != COLD_START_BASIS
    base = crafted_ltd()
    i = base.keys.rows().index(("PFC", "S2"))
    samples, daily = base.samples.copy(), base.daily_demand_mean.copy()
    samples[i], daily[i] = 0.0, 0.0
    silent = replace(base, samples=samples, daily_demand_mean=daily)
    same_day = row(run_policy(db, silent, None, seeds(tmp_path), as_of=AS_OF).inventory_policy, "PFC", "S2")
    assert same_day["reorder_point"] == 0 and same_day["order_demand_basis"] != COLD_START_BASIS
    # the forecast the draws came from, zero for PFC at S2 after the day it was made
    zero = pl.DataFrame({"product_id": "PFC", "location_id": "S2",
                         "date": [AS_OF + timedelta(days=d) for d in range(-6, 120)], "forecast": 0.0})
    later = run_policy(db, silent, zero, seeds(tmp_path), as_of=AS_OF, forecast_as_of=made)
    r = row(later.inventory_policy, "PFC", "S2")
    assert r["order_demand_basis"] == COLD_START_BASIS
    assert r["daily_demand_forecast"] == pytest.approx(2.0 * 7 / 14) and r["reorder_point"] >= 1.0  # 14 days min
    assert r["order_demand_daily"] == pytest.approx(1.0) and r["order_quantity"] > 1  # not sized on the zero
    assert (later.inventory_policy["order_demand_basis"] == COLD_START_BASIS).sum() == 1


def test_a_launch_is_planned_from_its_listing_or_launch_date_on_at_least_two_weeks(db, tmp_path):
    """A product on a store's shelf for 20 days that sold 6 units a day for the last three: its rate counts from
    its first day in the mart (18 units over 23 days). With the product's launch date three days ago in the master,
    the days on the shelf before it are no evidence, and three launch days are not read as a rate either: 18
    units over the cold start's minimum of 14 days."""
    _with_lead_time_tables(db)
    launch = series_days("PFC", "S1", np.r_[np.zeros(20), 6.0, 6.0, 6.0], AS_OF, on_hand=5, unit_cost=2.0)
    db.register("__launch", launch.to_arrow())
    db.execute("insert into marts.fct_inventory_daily by name select * from __launch")
    db.unregister("__launch")
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    r = row(run.inventory_policy, "PFC", "S1")
    assert r["daily_demand_forecast"] == pytest.approx(18.0 / 23.0)
    assert r["lead_time_source"] == "default"  # no transfers recorded into S1 yet: forecasting's default
    assert r["reorder_point"] > 0
    db.execute("update marts.dim_product set launch_date = ?::date - 2 where product_id = 'PFC'", [AS_OF])
    launched = row(run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF).inventory_policy, "PFC", "S1")
    assert launched["daily_demand_forecast"] == pytest.approx(18.0 / 14.0)


def test_a_product_without_sales_gets_a_no_forecast_exception(db, tmp_path):
    """An active stock product with no series (never sold) is named, not silently missing from the plan."""
    db.execute("delete from marts.fct_inventory_daily where product_id = 'PEXC'")  # never sold, anywhere
    base = crafted_ltd()
    keep = [k for k in base.keys.rows() if k[0] != "PEXC"]
    idx = [base.keys.rows().index(k) for k in keep]
    ltd = make_ltd(keep, base.samples[idx], daily_mean=base.daily_demand_mean[idx],
                   lead_time=base.lead_time_mean_days[idx], review=base.review_period_days[idx])
    run = run_policy(db, ltd, None, seeds(tmp_path), as_of=AS_OF)
    ex = run.exceptions.filter(pl.col("exception_type") == "no_forecast")
    assert ex["product_id"].to_list() == ["PEXC"]  # PDISC is discontinued: not expected to be planned
    assert "no sales" in ex["reason"][0]
    assert run.summary["products_without_forecast"] == 1


def test_an_empty_dc_reads_the_lower_of_its_own_and_its_echelon_position():
    """``echelon.ordering_position``: the echelon reading (echelon position less the stores' planned stock) decides
    while the DC has anything of its own; with nothing on hand or on order (own position <= 0) the lower of the two,
    so stores holding more than planned cannot keep an empty DC from ordering."""
    from ml.policy.echelon import ordering_position

    own = np.array([25.0, 0.0, 0.0, -4.0, 3.0])
    reading = np.array([60.0, 80.0, -10.0, 111.5, -28.5])
    assert ordering_position(own, reading).tolist() == [60.0, 0.0, -10.0, -4.0, -28.5]


def test_an_empty_dc_orders_though_its_store_holds_more_than_planned(db, tmp_path):
    """PPACK: the DC has nothing on hand or on order, its store S1 holds 500 (far above its planned r + Q/2). The
    echelon reading says the echelon is stocked, but the DC orders on its own position and its proposal says why."""
    db.execute("update marts.fct_inventory_daily set on_hand_units = 0, on_order_units = 0, in_transit_units = 0 "
               "where product_id = 'PPACK' and location_id = 'DC1'")
    db.execute("update marts.fct_inventory_daily set on_hand_units = 500, in_transit_units = 0 "
               "where product_id = 'PPACK' and location_id = 'S1'")
    run = run_policy(db, crafted_ltd(), None, seeds(tmp_path), as_of=AS_OF)
    dc = row(run.inventory_policy, "PPACK", "DC1")
    reading = dc["echelon_position_units"] - dc["echelon_store_target_units"]
    assert dc["inventory_position_units"] == 0 and reading > dc["reorder_point"]  # pure echelon would wait
    assert dc["ordering_position_units"] == 0 and dc["needs_order"]
    po = row(run.purchase_proposals, "PPACK", "DC1")
    assert po["ordering_position_units"] == 0
    assert po["reason"].startswith(f"position 0 <= reorder point {dc['reorder_point']:g}: the DC has nothing on hand "
                                   f"or on order, so its stores' stock (echelon position 500 less their planned "
                                   f"{dc['echelon_store_target_units']:g} = {reading:g}) cannot hold its order back")
    assert "PPACK" not in run.purchase_proposals.filter(pl.col("location_id") == "S1")["product_id"].to_list()
