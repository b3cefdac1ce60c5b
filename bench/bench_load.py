"""Benchmark: load one large run into a warehouse already holding 1,000,000 service requests.

Run: `make bench` or `PYTHONPATH=plugins .venv/bin/python bench/bench_load.py [--sqlite-only|--pg-only]`.

The run (SPEC "Scale"): 200,000 feed rows of 300 dealers, 20,000 creates, 5,000 stock
updates, 5,000 auto-closes (30,000 SR rows, 30,000 events), loaded by `apply_run` into a
warehouse holding 1,000,000 SRs (185,000 active) and the previous run's 200,000 feed rows.

Baseline, same process, same rows: a bare bulk insert of the same three frames
(feed, SRs, events) into empty, index-free tables - PostgreSQL: COPY (same CSV path);
SQLite: one executemany per frame in one transaction. The target is apply_run within
3x of the baseline.

PostgreSQL: a throwaway server (tests/pgserver.py, durable settings: fsync on), or the
server of $BENCH_PG_URL (a database that may be wiped).
"""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import text

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tests")]

from dealer_feed_tools import processes  # noqa: E402
from dealer_feed.contract.identity import run_key  # noqa: E402
from machine import describe  # noqa: E402
from dealer_feed.warehouse import make_engine  # noqa: E402
from dealer_feed.warehouse._frames import bulk_insert, prepare  # noqa: E402
from dealer_feed.contract.schemas import FEED_RENAMES  # noqa: E402
from dealer_feed.warehouse.load import EVENT_SPEC, FEED_SPEC, SR_SPEC, RunToLoad, apply_run  # noqa: E402
from dealer_feed.warehouse.migrations import apply  # noqa: E402
from dealer_feed.warehouse.reads import read_relevant_srs  # noqa: E402

GROUP = "large"
T = datetime(2026, 6, 1, 6, tzinfo=timezone.utc)
T_PREV = T - timedelta(days=1)
T_CREATED = T - timedelta(days=30)
N_SRS = 1_000_000
N_ACTIVE = 185_000
N_PRESENT = 180_000   # active SRs whose vehicle is in the feed
N_UPDATES = 5_000     # of those, stock number changed
N_CREATES = 20_000
N_DEALERS = 300
NEW_BASE = 2_000_000


def vins(idx: np.ndarray) -> pd.Series:
    return pd.Series(idx.astype(str), dtype=object).str.zfill(16).radd("V")


def dealers(idx: np.ndarray) -> pd.Series:
    return pd.Series((idx % N_DEALERS).astype(str), dtype=object).str.zfill(3).radd("BG_")


def build_run() -> RunToLoad:
    created_key = run_key(T_CREATED)
    run_k = run_key(T)
    present = np.arange(1, N_PRESENT + 1)
    new = np.arange(NEW_BASE + 1, NEW_BASE + N_CREATES + 1)
    closed = np.arange(N_PRESENT + 1, N_ACTIVE + 1)
    updated = np.arange(1, N_UPDATES + 1)

    feed_idx = np.concatenate([present, new])
    feed_vin = vins(feed_idx)
    feed = pd.DataFrame({
        "dealer_id": dealers(feed_idx), "company_number": "1", "vin": feed_vin,
        "stock_number": pd.Series(feed_idx.astype(str), dtype=object).radd("S"),
        "status": "I", "type_nu": np.where(feed_idx % 2 == 0, "N", "U"), "model_year": np.int32(2024),
        "make": "KIA", "model": "EV6", "model_code": "CV", "body_style": "SUV", "color": "BLUE", "trim": "GT",
        "odometer": (feed_idx % 50_000).astype(np.int64), "date_in_inventory": pd.Timestamp("2026-05-01"),
        "date_in_service": pd.NaT, "date_delivered": pd.NaT, "date_modified": pd.Timestamp("2026-05-30"),
        "list_price": 41_000.0, "vehicle_cost": 38_000.0, "certified_used_car": False,
    })
    feed.loc[: N_UPDATES - 1, "stock_number"] = feed.loc[: N_UPDATES - 1, "stock_number"] + "B"
    outcome = np.full(len(feed), "unchanged", dtype=object)
    outcome[:N_UPDATES] = "updated"
    outcome[N_PRESENT:] = "created"
    feed["outcome"] = outcome
    feed["reason"] = None
    existing_ids = feed_vin[:N_PRESENT] + f":{created_key}"
    feed["sr_id"] = pd.concat([f"{GROUP}:" + existing_ids, f"{GROUP}:" + feed_vin[N_PRESENT:] + f":{run_k}"],
                              ignore_index=True)

    def sr_rows(idx, *, status, created, stock_suffix="", is_new=False, closed_at=None, reason=None):
        v = vins(idx)
        return pd.DataFrame({
            "sr_id": f"{GROUP}:" + v + f":{run_key(created)}", "dealer_id": dealers(idx), "vin": v,
            "stock_number": pd.Series(idx.astype(str), dtype=object).radd("S") + stock_suffix, "client": "ACME",
            "vehicle_type": "New", "sr_type": "Inspection", "status": status,
            "created_at": pd.Timestamp(created), "closed_at": pd.Timestamp(closed_at) if closed_at else pd.NaT,
            "close_reason": reason, "anchor_at": pd.Timestamp(created), "absent_since": pd.NaT,
            "last_seen_at": pd.Timestamp(T if status == "active" else T_PREV), "is_new": is_new,
        })

    srs = pd.concat([
        sr_rows(new, status="active", created=T, is_new=True),
        sr_rows(updated, status="active", created=T_CREATED, stock_suffix="B"),
        sr_rows(closed, status="closed", created=T_CREATED, closed_at=T, reason="auto_close_immediately"),
    ], ignore_index=True)
    for c in ("created_at", "closed_at", "anchor_at", "absent_since", "last_seen_at"):
        srs[c] = pd.to_datetime(srs[c], utc=True).astype("datetime64[us, UTC]")

    kinds = np.array(["created"] * N_CREATES + ["updated"] * N_UPDATES + ["auto_closed"] * len(closed), dtype=object)
    events = pd.DataFrame({
        "sr_id": srs["sr_id"], "dealer_id": srs["dealer_id"], "vin": srs["vin"], "kind": kinds,
        "reason": np.where(kinds == "auto_closed", "auto_close_immediately", None),
        "old_stock_number": np.where(kinds == "updated", srs["stock_number"].str[:-1], None),
        "new_stock_number": np.where(kinds != "auto_closed", srs["stock_number"], None),
        "old_client": None, "new_client": np.where(kinds == "created", "ACME", None),
        "old_anchor_at": pd.Series(pd.NaT, index=srs.index, dtype="datetime64[us, UTC]"),
    })
    statuses = pd.DataFrame({"dealer_id": dealers(np.arange(N_DEALERS)), "dataset": "vehicles", "status": "ok"})
    statuses = statuses.merge(feed.groupby("dealer_id").size().rename("good").reset_index(), on="dealer_id")
    statuses["rows"] = statuses["good"]
    statuses["quarantined"] = 0
    return RunToLoad(group=GROUP, logical_time=T, service_requests=srs, events=events, feed_vehicles=feed,
                     quarantine=None, dealer_statuses=statuses, counts={"created": N_CREATES}, status="success",
                     airflow_run_id="bench", started_at=T)


def steady_run(engine, previous: RunToLoad) -> RunToLoad:
    """The run a day after `previous`: same vehicles, each present SR's last_seen_at moves."""
    t2 = T + timedelta(days=1)
    srs = read_relevant_srs(engine, GROUP, T, 0)
    srs["last_seen_at"] = pd.Timestamp(t2).as_unit("us")
    srs["is_new"] = False
    feed = previous.feed_vehicles.assign(outcome="unchanged")
    return RunToLoad(group=GROUP, logical_time=t2, service_requests=srs, events=previous.events.iloc[0:0],
                     feed_vehicles=feed, quarantine=None, dealer_statuses=previous.dealer_statuses,
                     counts={}, status="success", airflow_run_id="bench2", started_at=t2)


def seed_sql(dialect: str) -> list[str]:
    """SQL that fills the warehouse: 1M SRs (185k active), the previous run and its 200k feed rows."""
    if dialect == "postgresql":
        series = "generate_series(1, {n}) AS s(i)"
        vin = "'V' || lpad(i::text, 16, '0')"
        dealer = "'BG_' || lpad(mod(i, 300)::text, 3, '0')"
        stock = "'S' || i::text"
    else:
        series = "(WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < {n}) SELECT i FROM c)"
        vin = "'V' || substr('0000000000000000' || i, -16, 16)"
        dealer = "'BG_' || substr('000' || (i % 300), -3, 3)"
        stock = "'S' || i"
    ts = (lambda d: f"'{d.strftime('%Y-%m-%d %H:%M:%S.%f')}'") if dialect == "sqlite" else (
        lambda d: f"TIMESTAMP '{d.strftime('%Y-%m-%d %H:%M:%S')}'")
    prev_run = f"{GROUP}:{run_key(T_PREV)}"
    return [
        f"""INSERT INTO etl_runs (run_id, dealer_group, logical_time, status, load_started_at, loaded_at, load_seconds)
            VALUES ('{prev_run}', '{GROUP}', {ts(T_PREV)}, 'success', {ts(T_PREV)}, {ts(T_PREV)}, 1)""",
        f"""INSERT INTO service_requests (sr_id, dealer_group, dealer_id, vin, stock_number, client, vehicle_type,
              sr_type, status, created_at, closed_at, close_reason, anchor_at, last_seen_at, created_run_id, last_run_id)
            SELECT '{GROUP}:' || {vin} || ':{run_key(T_CREATED)}', '{GROUP}', {dealer}, {vin}, {stock}, 'ACME', 'New',
                   'Inspection', CASE WHEN i <= {N_ACTIVE} THEN 'active' ELSE 'closed' END, {ts(T_CREATED)},
                   CASE WHEN i <= {N_ACTIVE} THEN NULL ELSE {ts(T_PREV)} END,
                   CASE WHEN i <= {N_ACTIVE} THEN NULL ELSE 'auto_close_immediately' END,
                   {ts(T_CREATED)}, {ts(T_PREV)}, '{prev_run}', '{prev_run}'
            FROM {series.format(n=N_SRS)}""",
        f"""INSERT INTO feed_vehicles (run_id, dealer_group, logical_time, dealer_id, vin, stock_number, outcome)
            SELECT '{prev_run}', '{GROUP}', {ts(T_PREV)}, {dealer}, {vin}, {stock}, 'unchanged'
            FROM {series.format(n=N_ACTIVE + 15_000)}""",
    ]


def seed(engine) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        for sql in seed_sql(engine.dialect.name):
            conn.exec_driver_sql(sql)
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE")
    return time.perf_counter() - started


def bare_baseline(engine, run: RunToLoad) -> float:
    """Bulk-insert the same frames into empty index-free tables (same conversion, same bulk path)."""
    dialect = engine.dialect.name
    frames = {
        "bare_feed": (run.feed_vehicles.rename(columns=FEED_RENAMES).assign(
            run_id="x", dealer_group=GROUP, logical_time=T), FEED_SPEC),
        "bare_srs": (run.service_requests.assign(dealer_group=GROUP), SR_SPEC),
        "bare_events": (run.events.assign(run_id="x", dealer_group=GROUP, event_at=T, event_no=range(len(run.events))),
                        EVENT_SPEC),
    }
    with engine.begin() as conn:
        for name, (_, spec) in frames.items():
            conn.exec_driver_sql(f"DROP TABLE IF EXISTS {name}")
            types = {"text": "TEXT", "int": "BIGINT", "float": "DOUBLE PRECISION", "bool": "BOOLEAN",
                     "ts": "TIMESTAMP", "date": "DATE"}
            if dialect == "sqlite":
                types["bool"] = "INTEGER"
            conn.exec_driver_sql(f"CREATE TABLE {name} ({', '.join(f'{c} {types[k]}' for c, k in spec)})")
    started = time.perf_counter()
    with engine.begin() as conn:
        for name, (frame, spec) in frames.items():
            bulk_insert(conn, name, prepare(frame, spec, dialect))
    seconds = time.perf_counter() - started
    with engine.begin() as conn:
        for name in frames:
            conn.exec_driver_sql(f"DROP TABLE {name}")
    return seconds


def bench(label: str, url: str) -> None:
    engine = make_engine(url)
    apply(engine)
    print(f"\n== {label}: {engine.url.render_as_string(hide_password=True)}")
    run = build_run()
    print(f"seeded {N_SRS:,} SRs ({N_ACTIVE:,} active) + previous run's feed in {seed(engine):.1f}s")
    t = time.perf_counter()
    srs = read_relevant_srs(engine, GROUP, T, 0)
    print(f"read_relevant_srs: {len(srs):,} active SRs in {time.perf_counter() - t:.2f}s")
    baseline = bare_baseline(engine, run)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("dealer_feed.warehouse.load").setLevel(logging.INFO)
    result = apply_run(engine, run)
    assert result.status == "applied", result
    again = apply_run(engine, run)
    rows = sum(len(f) for f in (run.feed_vehicles, run.service_requests, run.events))
    print(f"run: {len(run.feed_vehicles):,} feed rows, {N_CREATES:,} creates, {N_UPDATES:,} updates, "
          f"{N_ACTIVE - N_PRESENT:,} closes, {len(run.events):,} events ({rows:,} rows in all)")
    print(f"bare bulk insert of the same rows: {baseline:.2f}s")
    print(f"apply_run:                         {result.seconds:.2f}s  ({result})")
    print(f"ratio apply_run / bare:            {result.seconds / baseline:.2f}x (target <= 3x)")
    print(f"re-apply (already applied):        {again.seconds:.3f}s")
    # Steady state as the rules engine emits it: every present SR's last_seen_at moves, so the
    # next run's SR frame holds all 200,000 present SRs (no creates, no events).
    steady = steady_run(engine, run)
    baseline2 = bare_baseline(engine, steady)
    result2 = apply_run(engine, steady)
    print(f"next run, every present SR touched (last_seen_at): {len(steady.service_requests):,} SR rows + "
          f"{len(steady.feed_vehicles):,} feed rows: apply_run {result2.seconds:.2f}s, bare {baseline2:.2f}s, "
          f"ratio {result2.seconds / baseline2:.2f}x")
    with engine.connect() as conn:
        n = conn.execute(text("SELECT COUNT(*) FROM service_requests")).scalar()
        active = conn.execute(text("SELECT COUNT(*) FROM service_requests WHERE status = 'active'")).scalar()
    print(f"after: {n:,} SRs, {active:,} active")
    engine.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--pg-only", action="store_true")
    args = parser.parse_args()
    print(describe(pandas=pd.__version__, sqlite=sqlite3.sqlite_version))
    if not args.pg_only:
        with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
            bench("SQLite (file, WAL)", f"sqlite:///{tmp}/warehouse.db")
    if not args.sqlite_only:
        if os.environ.get("BENCH_PG_URL"):
            bench("PostgreSQL ($BENCH_PG_URL)", os.environ["BENCH_PG_URL"])
        else:
            import pgserver

            server = pgserver.start(settings={"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on",
                                              "shared_buffers": "512MB", "max_wal_size": "4GB"})
            try:
                import psycopg

                with psycopg.connect(server.dsn()) as c:
                    print(c.execute("SELECT version()").fetchone()[0])
                bench("PostgreSQL (throwaway server, fsync on)", server.create_database("bench_load"))
            finally:
                server.stop()
    return 0


if __name__ == "__main__":
    with processes.guarded("bench-load"):  # nothing it starts outlives it (Ctrl-C, SIGTERM too)
        raise SystemExit(main())
