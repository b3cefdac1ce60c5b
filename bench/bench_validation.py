"""Benchmark: validate a 200,000-row vehicle batch (10% bad rows) from raw to good Parquet.

Not a test. Measures the whole validation step as the pipeline runs it — read raw.parquet,
`validate_vehicle_batches` (typing + one GX run + quarantine rows), write good.parquet and
quarantine.parquet — and, in the same run, the same step with GX replaced by a plain
vectorized pandas check of the same rules (whose failure matrix must equal GX's).
Reports wall time per phase, peak memory (RSS high-water mark of the step), GX's share,
the GX / pandas ratio, and the machine. GX's one-off import (~3 s per process) is
reported separately: it is paid once per task, not per batch.

    PYTHONPATH=plugins .venv/bin/python bench/bench_validation.py [--rows 200000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

import logging  # noqa: E402

logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
from machine import describe  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

from dealer_feed.config import GroupConfig  # noqa: E402
from dealer_feed.landing import write_parquet  # noqa: E402
from dealer_feed.contract.schemas import VEHICLE_RAW_COLUMNS  # noqa: E402
from dealer_feed.validation import core  # noqa: E402

T = datetime(2026, 11, 24, 6, tzinfo=timezone.utc)
VIN_CHARS = np.array(list("ABCDEFGHJKLMNPRSTUVWXYZ0123456789"))
BAD_KINDS = (
    "vin_format", "vin_missing", "vin_duplicate", "stock_missing", "dealer_unknown", "dealer_other",
    "type_missing", "date_bad", "year_range", "year_bad", "price_bad", "flag_bad", "odometer_bad",
)
SET_TO = {
    "vin_missing": ("vin", ""), "stock_missing": ("stock_number", None), "dealer_unknown": ("dealer_id", "XX_X01"),
    "type_missing": ("type_nu", " "), "date_bad": ("date_in_inventory", "20261332"), "year_range": ("model_year", "1899"),
    "year_bad": ("model_year", "20X5"), "price_bad": ("list_price", "N/A"), "flag_bad": ("certified_used_car", "maybe"),
    "odometer_bad": ("odometer", "12,000"),
}
"""The bad kinds made by setting one column of the chosen rows to one bad value."""


# --------------------------------------------------------------------------- data


def make_group(n_dealers: int) -> GroupConfig:
    dealers = [{"enterprise_code": "L0", "company_number": f"L{i:03d}"} for i in range(n_dealers)]
    return GroupConfig.model_validate({"group": "bench", "dealers": dealers})


def make_batch(n: int, dealer_id: str, other_dealer: str, bad_fraction: float, seed: int) -> tuple[pa.Table, int]:
    """A raw vehicle table (all strings) with about `bad_fraction` bad rows; returns (table, bad rows)."""
    rng = np.random.default_rng(seed)
    vins = VIN_CHARS[rng.integers(0, len(VIN_CHARS), size=(n, 17))]
    vins = np.array(["".join(r) for r in vins.tolist()], dtype=object)
    # make VINs unique by construction: last 6 characters = row number in base 33
    idx = np.arange(n)
    tail = np.empty((n, 6), dtype="<U1")
    rest = idx.copy()
    for k in range(5, -1, -1):
        tail[:, k] = VIN_CHARS[rest % 33]
        rest //= 33
    vins = np.char.add(np.array([v[:11] for v in vins], dtype="<U11"), np.array(["".join(t) for t in tail.tolist()]))
    vins = vins.astype(object)
    years = rng.integers(2005, 2028, n).astype(str).astype(object)
    dates = (np.datetime64("2024-01-01") + rng.integers(0, 1000, n)).astype("datetime64[D]")
    dates = np.char.replace(dates.astype(str), "-", "").astype(object)
    cols = {
        "dealer_id": np.full(n, dealer_id, dtype=object),
        "company_number": np.full(n, dealer_id.split("_")[1], dtype=object),
        "vin": vins,
        "stock_number": np.char.add("S", idx.astype(str)).astype(object),
        "status": np.full(n, "I", dtype=object),
        "type_nu": rng.choice(np.array(["N", "U", "T"], dtype=object), n),
        "model_year": years,
        "make": rng.choice(np.array(["KIA", "SUBARU", "MAZDA", "ISUZU"], dtype=object), n),
        "model": rng.choice(np.array(["Sorento", "Outback", "CX-5", "D-Max"], dtype=object), n),
        "model_code": np.full(n, "MC1", dtype=object),
        "body_style": np.full(n, "SUV", dtype=object),
        "color": rng.choice(np.array(["Red", "Blue", "White/Black"], dtype=object), n),
        "trim": np.full(n, "", dtype=object),
        "odometer": rng.integers(0, 200_000, n).astype(str).astype(object),
        "date_in_inventory": dates,
        "date_in_service": rng.choice(np.array(["0", "20250101"], dtype=object), n),
        "date_delivered": np.full(n, "0", dtype=object),
        "date_modified": dates.copy(),
        "list_price": np.char.add(rng.integers(5_000, 90_000, n).astype(str), ".00").astype(object),
        "vehicle_cost": rng.integers(4_000, 80_000, n).astype(str).astype(object),
        "certified_used_car": rng.choice(np.array(["Y", "N", ""], dtype=object), n),
    }
    n_bad = int(n * bad_fraction)
    bad = rng.choice(n, size=n_bad, replace=False)
    kinds = np.array(BAD_KINDS)[rng.integers(0, len(BAD_KINDS), n_bad)]
    for kind in BAD_KINDS:
        rows = bad[kinds == kind]
        if kind == "vin_format":
            cols["vin"][rows] = np.char.add(cols["vin"][rows].astype(str), "I").astype(object)
        elif kind == "vin_duplicate":  # pairs: the second row of each pair copies the first's VIN
            half = len(rows) // 2 * 2
            cols["vin"][rows[1:half:2]] = cols["vin"][rows[0:half:2]]
            cols["vin"][rows[half:]] = ""  # odd one out: missing instead
        elif kind == "dealer_other":
            cols["dealer_id"][rows] = other_dealer
        else:
            column, value = SET_TO[kind]
            cols[column][rows] = value
    table = pa.table({c: pa.array(cols[c], type=pa.string()) for c in VEHICLE_RAW_COLUMNS})
    return table, n_bad


# --------------------------------------------------------------------------- pandas baseline


def pandas_rules(check: pd.DataFrame, suite_name: str, rules) -> np.ndarray:
    """The same rules as the GX suite, checked with plain vectorized pandas."""
    failed = np.zeros((len(check), len(rules)), dtype=bool)
    for j, rule in enumerate(rules):
        kw = dict(rule.kwargs)
        if rule.expectation == "ExpectColumnValuesToNotBeNull":
            m = check[kw["column"]].isna()
        elif rule.expectation == "ExpectColumnValuesToBeNull":
            m = check[kw["column"]].notna()
        elif rule.expectation == "ExpectColumnValuesToBeInSet":
            col = check[kw["column"]]
            m = col.notna() & ~col.isin(list(kw["value_set"]))
        elif rule.expectation == "ExpectColumnValuesToMatchRegex":
            col = check[kw["column"]]
            m = col.notna() & ~col.str.match(kw["regex"]).fillna(False).astype(bool)
        elif rule.expectation == "ExpectCompoundColumnsToBeUnique":
            cols = list(kw["column_list"])
            present = check[cols].notna().all(axis=1)
            m = present & check[cols].duplicated(keep=False)
        elif rule.expectation == "ExpectColumnPairValuesToBeEqual":
            a, b = check[kw["column_A"]], check[kw["column_B"]]
            m = a.notna() & b.notna() & (a != b)
        elif rule.expectation == "ExpectColumnValuesToBeBetween":
            col = check[kw["column"]]
            m = col.notna() & ((col < kw["min_value"]) | (col > kw["max_value"]))
        else:
            raise NotImplementedError(rule.expectation)
        failed[:, j] = np.asarray(m, dtype=bool)
    return failed


# --------------------------------------------------------------------------- measurement


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (Linux >= 4.0)
        return True
    except OSError:
        return False


def run_step(raw_path: Path, out_dir: Path, group: GroupConfig, dealer_ids: list[str], runner) -> dict:
    """One validation step: read raw.parquet per dealer -> validate -> write good + quarantine."""
    timings: dict[str, float] = {}
    before = _rss_kib("VmRSS")
    can_peak = _reset_peak()
    t0 = time.perf_counter()
    raw = pq.read_table(raw_path)
    if len(dealer_ids) == 1:
        tables = {dealer_ids[0]: raw}
    else:
        company = raw.column("company_number").to_numpy(zero_copy_only=False)
        tables = {d: raw.filter(pa.array(company == d.split("_")[1])) for d in dealer_ids}
    timings["read"] = time.perf_counter() - t0
    plan = core._vehicle_plan(group, T.year)
    results = core._validate(plan, tables, group, T, runner=runner, timings=timings)
    t1 = time.perf_counter()
    for d, v in results.items():
        write_parquet(v.good, out_dir / d / "good.parquet")
        write_parquet(v.quarantine_table(), out_dir / d / "quarantine.parquet")
    timings["write"] = time.perf_counter() - t1
    total = time.perf_counter() - t0
    peak = _rss_kib("VmHWM") if can_peak else 0
    return {
        "total": total,
        "timings": timings,
        "peak_mib": (peak - before) / 1024 if can_peak else float("nan"),
        "results": results,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--bad", type=float, default=0.10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dealers", type=int, default=1, help="split the rows over this many dealers (one call)")
    args = ap.parse_args()

    t = time.perf_counter()
    gx = core.gx_runtime()[0]
    gx_import = time.perf_counter() - t
    print(describe(pandas=pd.__version__, pyarrow=pa.__version__, great_expectations=gx.__version__))

    group = make_group(max(args.dealers, 2))
    dealer_ids = list(group.dealer_ids[: args.dealers])
    per = args.rows // len(dealer_ids)
    parts, n_bad = [], 0
    for k, d in enumerate(dealer_ids):
        t, b = make_batch(per, d, group.dealer_ids[(k + 1) % len(group.dealer_ids)], args.bad, seed=k)
        parts.append(t)
        n_bad += b
    raw = pa.concat_tables(parts)
    print(f"batch: {raw.num_rows:,} rows, {len(dealer_ids)} dealer(s), {n_bad:,} rows made bad ({args.bad:.0%}), "
          f"{raw.num_columns} string columns")

    print(f"GX import + ephemeral context (once per process, not in the step figures): {gx_import:.2f} s")

    with tempfile.TemporaryDirectory(prefix="bench-validation-") as tmp:
        tmp = Path(tmp)
        raw_path = write_parquet(raw, tmp / "raw.parquet")
        print(f"raw.parquet: {raw_path.stat().st_size / 2**20:.1f} MiB")
        # warm-up on the real data (first GX validation builds the suite and caches)
        run_step(raw_path, tmp / "warm", group, dealer_ids, None)

        runs = {"gx": [], "pandas": []}
        for _ in range(args.repeat):
            runs["gx"].append(run_step(raw_path, tmp / "gx", group, dealer_ids, None))
            runs["pandas"].append(run_step(raw_path, tmp / "pd", group, dealer_ids, pandas_rules))

        # the two engines must agree exactly
        for d in dealer_ids:
            a, b = runs["gx"][-1]["results"][d], runs["pandas"][-1]["results"][d]
            assert a.quarantine.equals(b.quarantine), f"GX and pandas quarantine differ for {d}"
            assert a.good.equals(b.good), f"GX and pandas good rows differ for {d}"
        quarantined = sum(v.quarantined for v in runs["gx"][-1]["results"].values())
        good = sum(v.good_rows for v in runs["gx"][-1]["results"].values())
        print(f"result: good={good:,} quarantined={quarantined:,} (GX and pandas results identical)")

        def med(engine: str, key: str | None = None) -> float:
            if key is None:
                return statistics.median(r["total"] for r in runs[engine])
            return statistics.median(r["timings"].get(key, 0.0) for r in runs[engine])

        phases = ["read", "normalise", "type", "check_frame", "rules", "split", "write"]
        print(f"\nmedian of {args.repeat} runs, seconds:")
        print(f"  {'phase':<12} {'GX':>8} {'pandas':>8}")
        for p in phases:
            print(f"  {p:<12} {med('gx', p):>8.3f} {med('pandas', p):>8.3f}")
        gx_total, pd_total = med("gx"), med("pandas")
        print(f"  {'TOTAL':<12} {gx_total:>8.3f} {pd_total:>8.3f}")
        peak_gx = max(r["peak_mib"] for r in runs["gx"])
        peak_pd = max(r["peak_mib"] for r in runs["pandas"])
        print(f"peak memory above baseline (RSS high-water mark): GX {peak_gx:.0f} MiB, pandas {peak_pd:.0f} MiB")
        print(f"GX share of the GX step: {med('gx', 'rules') / gx_total:.0%} "
              f"(GX rules {med('gx', 'rules'):.3f} s vs pandas rules {med('pandas', 'rules'):.3f} s)")
        print(f"ratio GX step / pandas step: {gx_total / pd_total:.2f}x")
        target = 1.0
        verdict = "MET" if gx_total <= target else "NOT MET"
        print(f"target whole step <= {target:.1f} s: {verdict} ({gx_total:.3f} s)")


if __name__ == "__main__":
    main()
