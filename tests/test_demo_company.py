"""The demo-company generator: determinism, the landing contract, defects, censoring and stock conservation."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest

from ml.demo_company import GenerationSummary, generate
from ml.ingest.contract import ENTITIES, entity
from ml.settings import truth_dir_for

SMALL = {"skus": 20, "stores": 2, "days": 120, "seed": 7, "progress": False}
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


# ---------------------------------------------------------------------- fixtures and helpers
@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    return generate(tmp_path_factory.mktemp("a") / "landing", **SMALL)


@pytest.fixture(scope="module")
def plausible(tmp_path_factory: pytest.TempPathFactory) -> GenerationSummary:
    """A somewhat larger company (a year, more products) for statistical plausibility checks."""
    return generate(tmp_path_factory.mktemp("p") / "landing", skus=60, stores=3, days=365, seed=11, progress=False)


def files_of(root: Path, name: str) -> list[Path]:
    e = entity(name)
    pattern = re.compile(rf"^{e.name}(_\d{{4}}q[1-4])?\.(csv|parquet)$")
    return sorted(p for p in (root / e.system).glob("*") if pattern.match(p.name))


def read(root: Path, name: str, with_file: bool = False) -> pl.DataFrame:
    """All parts of an entity as text columns (like the loader), optionally with file and 1-based row number."""
    frames = []
    for f in files_of(root, name):
        if f.suffix == ".csv":
            df = pl.read_csv(f, infer_schema=False)
        else:
            df = pl.read_parquet(f).with_columns(pl.all().cast(pl.String))
        if with_file:
            rel = f.relative_to(root).as_posix()
            df = df.with_columns(file=pl.lit(rel), row=pl.int_range(1, df.height + 1, dtype=pl.Int64))
        frames.append(df)
    return pl.concat(frames)


def clean(root: Path, name: str, defects: pl.DataFrame) -> pl.DataFrame:
    """An entity without the rows listed in the truth folder's defects.csv."""
    df = read(root, name, with_file=True)
    bad = defects.select("file", "row")
    return df.join(bad, on=["file", "row"], how="anti").drop("file", "row")


def defects_of(summary: GenerationSummary) -> pl.DataFrame:
    return pl.read_csv(summary.truth_dir / "defects.csv")


def all_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------- determinism and layout
def test_same_seed_gives_identical_bytes(small: GenerationSummary, tmp_path: Path) -> None:
    again = generate(tmp_path / "landing", **SMALL)
    assert all_files(small.out_dir) == all_files(again.out_dir)
    assert all_files(small.truth_dir) == all_files(again.truth_dir)


def test_different_seed_gives_different_data(small: GenerationSummary, tmp_path: Path) -> None:
    other = generate(tmp_path / "landing", **{**SMALL, "seed": 8})
    a, b = all_files(small.out_dir), all_files(other.out_dir)
    assert a["sales/sales_lines_2023q1.csv"] != b["sales/sales_lines_2023q1.csv"]
    assert a["master/products.csv"] != b["master/products.csv"]


def test_every_contract_entity_is_written_with_the_contract_columns(small: GenerationSummary) -> None:
    for e in ENTITIES:
        files = files_of(small.out_dir, e.name)
        assert files, f"{e.path} not written"
        for f in files:
            header = f.read_text().splitlines()[0].split(",")
            assert header == [c.name for c in e.columns], f
    assert sorted(p.name for p in small.out_dir.iterdir()) == sorted({e.system for e in ENTITIES})
    # rows in the summary match the files
    for rel, n in small.rows.items():
        assert pl.read_csv(small.out_dir / rel, infer_schema=False).height == n, rel


def test_large_entities_are_written_in_quarterly_parts(small: GenerationSummary) -> None:
    for name in ("sales_lines", "cogs_ledger", "transfers"):
        assert [f.name.split(".")[0][-6:] for f in files_of(small.out_dir, name)] == ["2023q1", "2023q2"]


def test_no_truth_in_the_landing_folder(small: GenerationSummary) -> None:
    assert small.truth_dir == truth_dir_for(small.out_dir)
    assert small.out_dir not in small.truth_dir.parents
    truth_columns = {"demand", "lost_sales", "physical_on_hand_close", "book_on_hand_close", "expected_demand"}
    for f in small.out_dir.rglob("*"):
        assert f.suffix in ("", ".csv"), f
        if f.is_file():
            assert not truth_columns & set(f.read_text().splitlines()[0].split(",")), f
    for name in ("true_demand.parquet", "lead_times.parquet", "defects.csv", "generator_config.json", "README.md"):
        assert (small.truth_dir / name).is_file(), name
    config = json.loads((small.truth_dir / "generator_config.json").read_text())
    assert config["seed"] == SMALL["seed"] and config["skus"] == SMALL["skus"]


def test_truth_folder_inside_the_landing_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must not be inside"):
        generate(tmp_path / "landing", truth_dir=tmp_path / "landing" / "truth", **SMALL)


def test_rerun_removes_its_stale_files_and_keeps_user_files(tmp_path: Path) -> None:
    out = tmp_path / "landing"
    generate(out, **{**SMALL, "days": 200})
    assert (out / "sales" / "sales_lines_2023q3.csv").exists()
    (out / "sales" / "notes.txt").write_text("mine")
    (out / "sales" / "sales_lines_backup.csv").write_text("mine")
    summary = generate(out, **{**SMALL, "days": 100, "fmt": "parquet"})
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names == set(summary.rows) | {"sales/notes.txt", "sales/sales_lines_backup.csv"}


def test_summary_format(small: GenerationSummary) -> None:
    text = small.format()
    assert "2023-01-02 .. 2023-05-01" in text
    assert f"{small.total_rows:,}" in text and "," in f"{small.total_rows:,}"
    assert "sales/sales_lines" in text and "duplicate_line" in text
    assert small.products == 20 and small.locations == 3 and small.series == 40
    assert small.first_day == date(2023, 1, 2) and small.days == 120


# ---------------------------------------------------------------------- defects
def test_injected_defects_are_present_and_counted(small: GenerationSummary) -> None:
    root, defects = small.out_dir, defects_of(small)
    assert dict(defects.group_by("kind").len().iter_rows()) == small.defects
    assert set(small.defects) == {
        "duplicate_line", "unknown_product", "invalid_date", "negative_quantity_not_return",
        "unknown_purchase_order", "unknown_location", "invalid_number",
    }  # fmt: skip
    sales = read(root, "sales_lines", with_file=True)
    products = set(read(root, "products")["product_id"])
    data_cols = [c.name for c in entity("sales_lines").columns]
    flagged = sales.join(defects, on=["file", "row"], how="inner")
    for rec in flagged.iter_rows(named=True):
        kind = rec["kind"]
        if kind == "duplicate_line":
            earlier = sales.filter((pl.col("file") == rec["file"]) & (pl.col("row") < rec["row"]))
            assert tuple(rec[c] for c in data_cols) in set(earlier.select(data_cols).rows())
        elif kind == "unknown_product":
            assert rec["product_id"] not in products
        elif kind == "invalid_date":
            y, m, d = (rec["sold_at"].split("-") + ["", ""])[:3] if DATE_RE.match(rec["sold_at"]) else ("x", "", "")
            with pytest.raises(ValueError):
                date(int(y), int(m), int(d))
        elif kind == "negative_quantity_not_return":
            assert float(rec["quantity"]) < 0 and rec["line_type"] == "sale"
    assert flagged.height == sum(v for k, v in small.defects.items() if k in {
        "duplicate_line", "unknown_product", "invalid_date", "negative_quantity_not_return"})  # fmt: skip

    # without the flagged rows the sales are clean: no duplicates, known products, ISO dates, positive sales
    genuine = clean(root, "sales_lines", defects)
    assert genuine.height == genuine.unique().height
    assert set(genuine["product_id"]) <= products
    assert genuine["sold_at"].str.contains(r"^\d{4}-\d{2}-\d{2}$").all()
    assert genuine.filter(pl.col("line_type") == "sale")["quantity"].cast(pl.Int64).min() > 0

    pol = read(root, "purchase_order_lines").select("po_id", "po_line")
    bad_rc = read(root, "receipts", with_file=True).join(defects, on=["file", "row"])
    assert bad_rc.height == 1 and bad_rc.join(pol, on=["po_id", "po_line"]).height == 0
    assert clean(root, "receipts", defects).join(pol, on=["po_id", "po_line"], how="anti").height == 0
    locations = set(read(root, "locations")["location_id"])
    bad_cc = read(root, "cycle_counts", with_file=True).join(defects, on=["file", "row"])
    assert bad_cc.height == 1 and bad_cc["location_id"][0] not in locations
    bad_cost = read(root, "standard_costs", with_file=True).join(defects, on=["file", "row"])
    assert bad_cost.height == 1 and bad_cost["unit_cost"].cast(pl.Float64, strict=False).is_null().all()
    assert clean(root, "standard_costs", defects)["unit_cost"].cast(pl.Float64, strict=False).is_not_null().all()


# ---------------------------------------------------------------------- the simulated process
def test_sales_never_exceed_demand_or_stock_and_match_the_files(small: GenerationSummary) -> None:
    truth = pl.read_parquet(small.truth_dir / "true_demand.parquet")
    assert truth.height == small.series * small.days
    assert (truth["sold"] <= truth["demand"]).all()
    assert (truth["lost_sales"] == truth["demand"] - truth["sold"]).all()
    assert (truth["physical_on_hand_close"] >= 0).all()
    # a lost sale means the shelf was emptied (one unit may turn up after closing: an unrecorded gain)
    assert (truth.filter(pl.col("lost_sales") > 0)["physical_on_hand_close"] <= 1).all()

    sales = clean(small.out_dir, "sales_lines", defects_of(small)).filter(pl.col("line_type") == "sale")
    recorded = sales.group_by(
        date=pl.col("sold_at").str.to_date(), product_id="product_id", location_id="location_id"
    ).agg(pl.col("quantity").cast(pl.Int64).sum())
    both = truth.filter(pl.col("sold") > 0).join(recorded, on=["date", "product_id", "location_id"], how="full")
    assert (both["sold"].cast(pl.Int64) == both["quantity"]).all()


def test_stock_outs_censor_demand(small: GenerationSummary) -> None:
    truth = pl.read_parquet(small.truth_dir / "true_demand.parquet")
    assert truth["lost_sales"].sum() > 0
    assert truth.filter(pl.col("lost_sales") > 0).select("product_id", "location_id").unique().height >= 2
    ghost = truth.filter((pl.col("book_on_hand_close") > 0) & (pl.col("physical_on_hand_close") == 0))
    assert ghost.height > 0  # ghost stock exists


def movements(root: Path, defects: pl.DataFrame) -> pl.DataFrame:
    """Every documented book movement as (date, product_id, location_id, delta)."""
    key = ["date", "product_id", "location_id", "delta"]
    rc = clean(root, "receipts", defects).join(
        read(root, "purchase_order_lines").select("po_id", "po_line", "product_id", "location_id"),
        on=["po_id", "po_line"],
    )
    tr = read(root, "transfers")
    sl = clean(root, "sales_lines", defects)
    cc = clean(root, "cycle_counts", defects)
    qty = pl.col("quantity").cast(pl.Int64)
    parts = [
        rc.select(pl.col("received_date").alias("date"), "product_id", "location_id",
                  pl.col("quantity_received").cast(pl.Int64).alias("delta")),
        tr.select(pl.col("shipped_date").alias("date"), "product_id",
                  pl.col("from_location_id").alias("location_id"), (-qty).alias("delta")),
        tr.filter(pl.col("received_date").is_not_null()).select(
            pl.col("received_date").alias("date"), "product_id", pl.col("to_location_id").alias("location_id"),
            qty.alias("delta")),
        sl.select(pl.col("sold_at").alias("date"), "product_id", "location_id",
                  pl.when(pl.col("line_type") == "return").then(qty.abs()).otherwise(-qty).alias("delta")),
        cc.select(pl.col("count_date").alias("date"), "product_id", "location_id",
                  (pl.col("counted_qty").cast(pl.Int64) - pl.col("book_qty").cast(pl.Int64)).alias("delta")),
    ]  # fmt: skip
    return pl.concat([p.select(key) for p in parts]).with_columns(pl.col("date").str.to_date())


def test_book_stock_is_conserved_between_snapshots(small: GenerationSummary) -> None:
    """opening book + receipts + transfers in - transfers out - sales + returns + count adjustments = snapshot."""
    root, defects = small.out_dir, defects_of(small)
    snaps = read(root, "stock_snapshots").with_columns(
        pl.col("snapshot_date").str.to_date(), pl.col("on_hand_qty").cast(pl.Int64)
    )
    dates = sorted(snaps["snapshot_date"].unique())
    assert len(dates) >= 4  # opening + month ends
    assert dates[0] == small.first_day - timedelta(days=1)  # the opening snapshot
    keys = snaps.select("product_id", "location_id").unique()
    grid = keys.join(pl.DataFrame({"snapshot_date": dates}), how="cross")
    book = grid.join(snaps, on=["snapshot_date", "product_id", "location_id"], how="left").with_columns(
        pl.col("on_hand_qty").fill_null(0)
    )
    moves = movements(root, defects)
    assert moves.join(keys, on=["product_id", "location_id"], how="anti").height == 0
    opening = book.filter(pl.col("snapshot_date") == dates[0]).select("product_id", "location_id", "on_hand_qty")
    cumulative = (
        grid.join(moves, on=["product_id", "location_id"], how="left")
        .filter(pl.col("date").is_null() | (pl.col("date") <= pl.col("snapshot_date")))
        .group_by("snapshot_date", "product_id", "location_id")
        .agg(pl.col("delta").sum())
    )
    check = (
        book.join(cumulative, on=["snapshot_date", "product_id", "location_id"], how="left")
        .join(opening.rename({"on_hand_qty": "opening"}), on=["product_id", "location_id"])
        .with_columns(expected=pl.col("opening") + pl.col("delta").fill_null(0))
    )
    wrong = check.filter(pl.col("expected") != pl.col("on_hand_qty"))
    assert wrong.height == 0, wrong.head()
    assert "DC01" in set(check["location_id"])


# ---------------------------------------------------------------------- parquet
def test_parquet_output_matches_the_contract(tmp_path: Path, small: GenerationSummary) -> None:
    summary = generate(tmp_path / "landing", **{**SMALL, "fmt": "parquet"})
    assert {k.rsplit(".", 1)[0]: v for k, v in summary.rows.items()} == {
        k.rsplit(".", 1)[0]: v for k, v in small.rows.items()
    }
    for e in ENTITIES:
        files = files_of(summary.out_dir, e.name)
        assert files and all(f.suffix == ".parquet" for f in files)
        df = pl.read_parquet(files[0])
        assert df.columns == [c.name for c in e.columns]
        for c in e.columns:
            if c.type == "date":
                assert df.schema[c.name] == pl.String, (e.name, c.name)
    sales = pl.read_parquet(files_of(summary.out_dir, "sales_lines")[0])
    csv = pl.read_csv(files_of(small.out_dir, "sales_lines")[0], infer_schema=False)
    assert sales.with_columns(pl.all().cast(pl.String)).equals(csv)
    assert defects_of(summary)["row"].to_list() == defects_of(small)["row"].to_list()
    again = generate(tmp_path / "again", **{**SMALL, "fmt": "parquet"})
    assert all_files(summary.out_dir) == all_files(again.out_dir)


# ---------------------------------------------------------------------- plausibility (loose, robust bounds)
def test_plausible_service_level_and_intermittency(plausible: GenerationSummary) -> None:
    truth = pl.read_parquet(plausible.truth_dir / "true_demand.parquet")
    params = pl.read_parquet(plausible.truth_dir / "product_params.parquet")
    products = read(plausible.out_dir, "products").select(
        "product_id", pl.col("launch_date").str.to_date(), pl.col("discontinued_date").str.to_date()
    )
    active = truth.join(products, on="product_id").filter(
        (pl.col("date") >= pl.col("launch_date"))
        & (pl.col("discontinued_date").is_null() | (pl.col("date") <= pl.col("discontinued_date")))
    )
    fill = active["sold"].sum() / active["demand"].sum()
    out_of_stock = (active["physical_on_hand_close"] == 0).mean()
    assert 0.88 < fill < 0.995, fill
    assert 0.02 < out_of_stock < 0.15, out_of_stock
    inter = active.join(params.filter("intermittent").select("product_id"), on="product_id")
    assert inter["demand"].mean() < 0.3
    assert (inter["sold"] == 0).mean() > 0.8
    assert 0.25 < params["intermittent"].mean() < 0.35


def test_plausible_supply_returns_and_counts(plausible: GenerationSummary) -> None:
    root, defects = plausible.out_dir, defects_of(plausible)
    sales = clean(root, "sales_lines", defects).with_columns(pl.col("quantity").cast(pl.Int64))
    returned = sales.filter(pl.col("line_type") == "return")["quantity"].abs().sum()
    sold = sales.filter(pl.col("line_type") == "sale")["quantity"].sum()
    assert 0.002 < returned / sold < 0.05
    assert (sales.filter(pl.col("line_type") == "return")["quantity"] > 0).any()  # some tills export positive

    rc = clean(root, "receipts", defects)
    pol = read(root, "purchase_order_lines")
    per_line = rc.group_by("po_id", "po_line").agg(
        first=pl.col("received_date").str.to_date().min(),
        n=pl.len(),
        received=pl.col("quantity_received").cast(pl.Int64).sum(),
    )
    lines = pol.join(per_line, on=["po_id", "po_line"]).with_columns(
        lead=(pl.col("first") - pl.col("order_date").str.to_date()).dt.total_days()
    )
    assert (lines["n"] > 1).sum() > 0  # partial receipts
    short = lines.filter(
        (pl.col("status") == "closed") & (pl.col("received") < pl.col("quantity_ordered").cast(pl.Int64))
    )
    assert short.height > 0
    by_supplier = dict(lines.group_by("supplier_id").agg(pl.col("lead").mean()).iter_rows())
    assert by_supplier["SUP01"] < 8 and by_supplier["SUP06"] > 30  # domestic short, overseas long
    assert (lines["lead"] >= 1).all()

    cc = clean(root, "cycle_counts", defects).with_columns(pl.col("book_qty", "counted_qty").cast(pl.Int64))
    stores = cc.filter(pl.col("location_id") != "DC01")
    differs = (stores["book_qty"] != stores["counted_qty"]).mean()
    assert 0.05 < differs < 0.9
    assert (stores["counted_qty"] - stores["book_qty"]).sum() < 0  # shrinkage: the book overstates the shelf


def test_a_history_running_past_today_is_warned_about() -> None:
    from orchestration.cli import history_after_today_warning

    today = date(2026, 12, 7)
    # the M5-size company (1,941 days from the default start) runs into 2028: 503 days would be quarantined
    warning = history_after_today_warning(date(2023, 1, 2), 1941, today)
    assert warning is not None and "2028-04-25" in warning and "503 days" in warning
    assert "--start 2021-08-15" in warning
    assert history_after_today_warning(date(2021, 8, 15), 1941, today) is None  # ends today
    assert history_after_today_warning(date(2021, 8, 17), 1941, today) is None  # within the 2-day tolerance
    assert history_after_today_warning(date(2021, 8, 18), 1941, today) is not None
