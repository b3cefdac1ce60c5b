"""Benchmark: load one large run into a warehouse holding 1,000,000 service requests, against a
bare COPY of the same rows into the same tables (issues 12 and 13). Not a test.

Run: `make bench`, or
`PYTHONPATH=plugins .venv/bin/python bench/bench_load.py [--sqlite-only|--pg-only] [--rounds 3]`.

Scenario (SPEC "Scale"): a warehouse holding 1,000,000 SRs (185,000 active) and the previous
run's feed; the run has 200,000 feed rows of 300 dealers, 20,000 creates, 5,000 stock updates,
5,000 auto-closes (30,000 SR rows, 30,000 events) and 300 dealer statuses. Then the steady
state, the next day's run: the same vehicles, every present SR's last_seen_at moves (200,000
SR rows, no event).

How it runs. The warehouse is seeded once into a template (PostgreSQL: database `bench_seed`;
SQLite: a file); the first run is applied to a copy of it (`bench_after`, the steady run's
template). Each run's frames are written to Parquet, the way the transform writes its change
files, and read back as Arrow tables, the way the load reads them in production
(pipeline._read_changes). Every measurement is a fresh process of this script
(`--child apply|bare --url URL --run DIR`) on its own copy of the template (PostgreSQL:
CREATE DATABASE ... TEMPLATE, then CHECKPOINT; SQLite: a file copy), so every round starts
from the same state; the sides alternate bare, apply, apply, bare, ... over --rounds rounds,
so a load change on the shared machine hits both, and the report gives medians. Untimed in a
child: imports, reading the Parquet files, connecting, creating the bare tables.

What is compared:
- apply: `apply_run` (Arrow conversion of every frame, COPY / executemany into the staging
  table, the set-based merge into service_requests, appends, commit);
- bare: the same rows (feed rows, SR rows, events, dealer statuses) in one transaction into
  tables with the real tables' columns, types, NOT NULLs, checks, keys and indexes
  (PostgreSQL: `CREATE TABLE bare_x (LIKE x INCLUDING ALL)`, not TEMP: WAL-logged and in
  shared buffers as the real tables are; SQLite: the table's and its indexes' DDL from
  sqlite_master, renamed), created untimed before. The bare tables have no foreign keys
  (LIKE copies none; the SQLite DDL loses its REFERENCES). The rows are converted by plain
  Arrow, independently of warehouse._frames: select the columns the catalog lists, cast to
  the column's type, timestamps cast to naive UTC (Arrow writes them as 'YYYY-MM-DD
  HH:MM:SS.ffffff'; pc.strftime is 20x slower), then PostgreSQL: one `pyarrow.csv.write_csv`
  and COPY per table; SQLite: the columns as Python lists, one executemany per table. Then
  COMMIT, as the load does (the copy is thrown away). Before any timing, the bare rows are
  checked equal to what apply_run wrote (EXCEPT both ways, on `bench_after`, rolled back).

Why fair: same rows, same process start, same machine state, same table shapes and indexes,
the fastest plain conversion, a durable commit on both sides. What only apply does is the
load's own work: the staging table, the merge into a 1,000,000-row table, the foreign-key
checks, the etl_runs row. The bare tables start empty where the real ones hold the history.

Figures: wall (perf_counter) and client CPU (time.process_time: every thread of the Python
process, Arrow's pool included) of the timed part; PostgreSQL also the session's backend
CPU (psutil on pg_backend_pid; the engine is held to one connection). SQLite runs in the
client process, so its "client CPU" is all of the load's work: the issue-12 target (client
CPU <= 2x the bare COPY's) is checked on PostgreSQL; SQLite's ratio is shown for information.

PostgreSQL: a throwaway server (tests/pgserver.py, durable settings: fsync on), or the server
of $BENCH_PG_URL (the bench creates and drops databases bench_seed, bench_after, bench_child
on it). `--profile`: one more apply child per run and backend, under cProfile, prints the
load's top functions by own time (where its client CPU goes).
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import logging
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import Connection, make_url, text

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tests")]

from dealer_feed_tools import processes  # noqa: E402
from dealer_feed.contract.identity import run_id, run_key  # noqa: E402
from dealer_feed.contract.schemas import FEED_RENAMES, as_table  # noqa: E402
from machine import describe  # noqa: E402
from dealer_feed.warehouse import make_engine  # noqa: E402
from dealer_feed.warehouse.load import RunToLoad, apply_run  # noqa: E402
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
CPU_TARGET = 2.0      # issue 12: the load's client CPU <= 2x a bare COPY's (PostgreSQL)
CHILD_TIMEOUT_S = 1800


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


def seed_sql(dialect: str, *, group: str = GROUP, dealer_ids: list[str] | None = None, n_srs: int = N_SRS,
             n_active: int = N_ACTIVE, feed_rows: int = N_ACTIVE + 15_000, created: datetime = T_CREATED,
             previous: datetime = T_PREV) -> list[str]:
    """SQL that fills the warehouse: `n_srs` SRs (the first `n_active` active, the rest closed at
    `previous`, all created at `created`), the previous run (at `previous`) and its `feed_rows`
    feed rows. VINs are 'V' + 16 digits; dealers are `dealer_ids` round robin (default: 300
    dealers BG_000..BG_299). bench_large_run seeds closed history for the large group with it."""
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
    if dealer_ids:
        quoted = ", ".join(f"'{d}'" for d in dealer_ids)  # the group file's ids: no quotes in them (DEALER_ID)
        dealer = (f"(ARRAY[{quoted}])[mod(i, {len(dealer_ids)}) + 1]" if dialect == "postgresql" else
                  f"json_extract('[{quoted.replace(chr(39), chr(34))}]', '$[' || (i % {len(dealer_ids)}) || ']')")
    ts = (lambda d: f"'{d.strftime('%Y-%m-%d %H:%M:%S.%f')}'") if dialect == "sqlite" else (
        lambda d: f"TIMESTAMP '{d.strftime('%Y-%m-%d %H:%M:%S')}'")
    prev_run = f"{group}:{run_key(previous)}"
    return [
        f"""INSERT INTO etl_runs (run_id, dealer_group, logical_time, status, load_started_at, loaded_at, load_seconds)
            VALUES ('{prev_run}', '{group}', {ts(previous)}, 'success', {ts(previous)}, {ts(previous)}, 1)""",
        f"""INSERT INTO service_requests (sr_id, dealer_group, dealer_id, vin, stock_number, client, vehicle_type,
              sr_type, status, created_at, closed_at, close_reason, anchor_at, last_seen_at, created_run_id, last_run_id)
            SELECT '{group}:' || {vin} || ':{run_key(created)}', '{group}', {dealer}, {vin}, {stock}, 'ACME', 'New',
                   'Inspection', CASE WHEN i <= {n_active} THEN 'active' ELSE 'closed' END, {ts(created)},
                   CASE WHEN i <= {n_active} THEN NULL ELSE {ts(previous)} END,
                   CASE WHEN i <= {n_active} THEN NULL ELSE 'auto_close_immediately' END,
                   {ts(created)}, {ts(previous)}, '{prev_run}', '{prev_run}'
            FROM {series.format(n=n_srs)}""",
        f"""INSERT INTO feed_vehicles (run_id, dealer_group, logical_time, dealer_id, vin, stock_number, outcome)
            SELECT '{prev_run}', '{group}', {ts(previous)}, {dealer}, {vin}, {stock}, 'unchanged'
            FROM {series.format(n=feed_rows)}""",
    ]


def settle(engine) -> None:
    """VACUUM ANALYZE (SQLite: ANALYZE): the tables as a warehouse's are between runs (autovacuum)."""
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")


def seed(engine, **history) -> float:
    """Fill the warehouse (seed_sql; `history`: its keyword arguments), then settle; seconds taken."""
    started = time.perf_counter()
    with engine.begin() as conn:
        for sql in seed_sql(engine.dialect.name, **history):
            conn.exec_driver_sql(sql)
    settle(engine)
    return time.perf_counter() - started


# -- the run's frames as the load reads them in production: Parquet change files -> Arrow tables

FRAMES = ("service_requests", "events", "feed_vehicles", "dealer_statuses")


def write_run(run: RunToLoad, directory: Path) -> Path:
    """The run's frames as Parquet files (the transform's options) + what else RunToLoad holds."""
    directory.mkdir(parents=True, exist_ok=True)
    for name in FRAMES:
        pq.write_table(as_table(getattr(run, name)), directory / f"{name}.parquet", compression="zstd",
                       write_statistics=True, store_schema=True)
    meta = {"group": run.group, "logical_time": run.T.isoformat(), "counts": run.counts, "status": run.status,
            "airflow_run_id": run.airflow_run_id, "started_at": run.started_at.isoformat()}
    (directory / "run.json").write_text(json.dumps(meta))
    return directory


def read_run(directory: Path) -> RunToLoad:
    """The run with Arrow tables read from its Parquet files (as pipeline._read_changes does)."""
    meta = json.loads((directory / "run.json").read_text())
    frames = {name: pq.read_table(directory / f"{name}.parquet") for name in FRAMES}
    return RunToLoad(group=meta["group"], logical_time=datetime.fromisoformat(meta["logical_time"]),
                     counts=meta["counts"], status=meta["status"], airflow_run_id=meta["airflow_run_id"],
                     started_at=datetime.fromisoformat(meta["started_at"]), quarantine=None, **frames)


# -- the baseline: a bare COPY of the same rows into tables shaped like the real ones

BARE_TABLES = {  # warehouse table -> the run frame whose rows it receives
    "feed_vehicles": "feed_vehicles",
    "service_requests": "service_requests",
    "service_request_events": "events",
    "etl_run_dealers": "dealer_statuses",
}


def _sqlite_bare_ddl(sql: str, table: str) -> str:
    """A table's or index's DDL for bare_<table>: renamed, without foreign keys (as LIKE)."""
    sql = re.sub(r"\s+REFERENCES\s+\w+\s*\([^)]*\)", "", sql)
    sql = re.sub(r"\bINDEX\s+(IF NOT EXISTS\s+)?(\w+)", r"INDEX \1bare_\2", sql)
    return re.sub(rf"\b{table}\b", f"bare_{table}", sql)


def table_columns(conn: Connection) -> dict[str, list[tuple[str, str]]]:
    """Each real table's (column, declared type), in order."""
    if conn.dialect.name == "postgresql":
        return {table: [tuple(r) for r in conn.execute(text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = :t ORDER BY ordinal_position"), {"t": table})]
            for table in BARE_TABLES}
    return {table: [(r[1], r[2]) for r in conn.exec_driver_sql(f"PRAGMA table_info({table})")] for table in BARE_TABLES}


def bare_create(conn: Connection) -> dict[str, list[tuple[str, str]]]:
    """Create the bare tables; return each real table's (column, declared type), in order."""
    for table in BARE_TABLES:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql(f"CREATE TABLE bare_{table} (LIKE {table} INCLUDING ALL)")
        else:
            for (sql,) in conn.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE tbl_name = ? AND sql IS NOT NULL ORDER BY type = 'index'",
                    (table,)).all():
                conn.exec_driver_sql(_sqlite_bare_ddl(sql, table))
    return table_columns(conn)


def _arrow_type(declared: str, dialect: str) -> pa.DataType:
    t = declared.lower()
    if "char" in t or "text" in t:
        return pa.string()
    if "timestamp" in t:
        return pa.timestamp("us")  # naive UTC, as the warehouse's columns are
    if t == "date":
        return pa.date32()
    if "int" in t:
        return pa.int64()
    if "double" in t:
        return pa.float64()
    if "bool" in t:
        return pa.bool_() if dialect == "postgresql" else pa.int64()
    raise ValueError(declared)


def bare_copy(conn: Connection, run: RunToLoad, columns: dict[str, list[tuple[str, str]]],
              into: str = "bare_") -> dict[str, int]:
    """Convert the run's rows by plain Arrow and bulk-insert them into the bare tables (`into`:
    the tables' prefix; "" fills the real tables, as bench_growth seeds its history)."""
    dialect = conn.dialect.name
    rid = run_id(run.group, run.T)
    written = {}
    for table, frame_name in BARE_TABLES.items():
        frame = as_table(getattr(run, frame_name))
        if table == "feed_vehicles":
            frame = frame.rename_columns([FEED_RENAMES.get(c, c) for c in frame.column_names])
        n = frame.num_rows
        constants = {"run_id": rid, "dealer_group": run.group, "logical_time": run.T, "event_at": run.T,
                     "last_run_id": rid}
        out = {}
        for name, declared in columns[table]:
            target = _arrow_type(declared, dialect)
            if name in frame.column_names:
                column = frame.column(name)
            elif name == "event_no":
                column = pa.array(np.arange(n, dtype=np.int64))
            elif name in constants:
                column = pa.repeat(pa.scalar(constants[name]), n)
            else:
                column = pa.nulls(n)
            column = column.cast(target, safe=False)
            if dialect == "sqlite" and target in (pa.timestamp("us"), pa.date32()):
                column = column.cast(pa.string())
            out[name] = column
        prepared = pa.table(out)
        names = ", ".join(prepared.column_names)
        dbapi = conn.connection.driver_connection
        if dialect == "postgresql":
            buf = io.BytesIO()
            pacsv.write_csv(prepared, buf, pacsv.WriteOptions(include_header=False))
            with dbapi.cursor() as cur, cur.copy(f"COPY {into}{table} ({names}) FROM STDIN (FORMAT csv)") as copy:
                copy.write(buf.getbuffer())
        else:
            rows = list(zip(*(c.to_pylist() for c in prepared.columns)))
            with closing(dbapi.cursor()) as cur:
                cur.executemany(f"INSERT INTO {into}{table} ({names}) VALUES ({', '.join('?' * len(out))})", rows)
        written[table] = n
    return written


def check_bare(engine, run: RunToLoad) -> int:
    """Rows of the bare tables not in what apply_run wrote for `run`, and the reverse (0: the
    same rows); on a warehouse where `run` is applied, rolled back."""
    differences = 0
    with engine.connect() as conn:
        tx = conn.begin()
        columns = bare_create(conn)
        bare_copy(conn, run, columns)
        for table in BARE_TABLES:
            cols = ", ".join(c for c, _ in columns[table] if c != "created_run_id")  # the SR's first run
            mine = f"SELECT {cols} FROM bare_{table}"
            real = f"SELECT {cols} FROM {table} WHERE {'last_run_id' if table == 'service_requests' else 'run_id'} = :r"
            for a, b in ((mine, real), (real, mine)):
                differences += conn.execute(text(f"SELECT COUNT(*) FROM ({a} EXCEPT {b}) AS d"),
                                            {"r": run_id(run.group, run.T)}).scalar_one()
        tx.rollback()
    return differences


# -- one measurement, in a fresh process

APPLY_ROWS = ("feed_vehicles", "service_requests_created", "service_requests_updated", "service_request_events",
              "etl_run_dealers")


@dataclass
class Measured:
    """One timed call: wall seconds, this process's CPU, its one PostgreSQL backend's CPU (None on
    SQLite), the INFO lines the product logged meanwhile, and the call's result."""

    wall: float
    client_cpu: float
    server_cpu: float | None
    messages: list[str]
    result: Any


def measured(engine, call: Callable[[], Any], *, loggers: Sequence[str], profile: int = 0,
             orders: Sequence[str] = ("tottime",)) -> Measured:
    """Run `call()` once and time it, client and server side. `engine` must hold one connection
    (pool_size=1) so that its backend is the one measured; with `profile`, cProfile's top
    `profile` lines per sort order are printed (the child's stdout, before its JSON line)."""
    import psutil

    with engine.begin() as conn:
        pg = conn.dialect.name == "postgresql"
        backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar() if pg else None
    server = psutil.Process(backend) if backend else None
    messages: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: messages.append(record.getMessage())
    for name in loggers:
        logging.getLogger(name).addHandler(handler)
        logging.getLogger(name).setLevel(logging.INFO)
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
    gc.collect()
    server_before = sum(server.cpu_times()[:2]) if server else 0.0
    wall, cpu = time.perf_counter(), time.process_time()
    if profiler:
        profiler.enable()
    result = call()
    if profiler:
        profiler.disable()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    server_cpu = sum(server.cpu_times()[:2]) - server_before if server else None
    if profiler:
        import pstats

        for order in orders:
            pstats.Stats(profiler, stream=sys.stdout).sort_stats(order).print_stats(profile)
    return Measured(wall, cpu, server_cpu, messages, result)


def child(side: str, url: str, run_dir: Path, profile: int = 0) -> dict:
    """Time apply_run or the bare COPY of the run in `run_dir` on the warehouse at `url`."""
    engine = make_engine(url, pool_size=1, max_overflow=0)  # one connection: one backend to measure
    run = read_run(run_dir)
    columns = None
    if side == "bare":
        with engine.begin() as conn:
            columns = bare_create(conn)

    def call() -> dict[str, int]:
        if side == "apply":
            result = apply_run(engine, run)
            assert result.status == "applied", result
            return {k: result.rows.get(k, 0) for k in APPLY_ROWS}
        with engine.begin() as conn:
            return bare_copy(conn, run, columns)

    m = measured(engine, call, loggers=["dealer_feed.warehouse.load"], profile=profile)
    engine.dispose()
    return {"side": side, "wall": m.wall, "cpu": m.client_cpu, "server_cpu": m.server_cpu,
            "rows": sum(m.result.values()), "phases": m.messages[-1].split("phases: ")[-1] if m.messages else ""}


def child_main(child: Callable[[str, str, Path, int], dict], sides: Sequence[str], dir_flag: str) -> None:
    """A bench script's `--child SIDE --url URL <dir_flag> DIR [--profile N]` entry (run_child starts
    it): one timed side, its figures printed as the last stdout line (JSON)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", choices=sides, required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument(dir_flag, dest="directory", type=Path, required=True)
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(child(args.child, args.url, args.directory, args.profile)))


def run_child(side: str, url: str, run_dir: Path, profile: int = 0, *, script: str = __file__,
              dir_flag: str = "--run") -> tuple[dict, str]:
    """`script --child SIDE` in a fresh process (this bench's, or bench_growth's with its own
    `dir_flag`); its figures (the last stdout line, JSON) and what it printed before them."""
    argv = [sys.executable, script, "--child", side, "--url", url, dir_flag, str(run_dir)]
    argv += ["--profile", str(profile)] if profile else []
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S, stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        raise RuntimeError(f"{side} child failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    lines = proc.stdout.rstrip().splitlines()
    return json.loads(lines[-1]), "\n".join(lines[:-1])


# -- warehouses to copy: a template per run, a fresh copy per child

class PgWarehouses:
    """Databases on one PostgreSQL server: create (empty or from a template), drop."""

    def __init__(self, url: str) -> None:
        self.url = make_url(url).set(drivername="postgresql+psycopg")

    def _admin(self, sql: str) -> None:
        import psycopg

        u = self.url
        with psycopg.connect(host=u.host, port=u.port, user=u.username, password=u.password, dbname=u.database,
                             autocommit=True) as conn:
            conn.execute(sql)

    def create(self, name: str, template: str | None = None) -> str:
        import psycopg

        self.drop(name)
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else "")
        for attempt in range(60):  # the template may be busy for a moment (autovacuum)
            try:
                self._admin(sql)
                break
            except psycopg.errors.ObjectInUse:
                if attempt == 59:
                    raise
                time.sleep(0.5)
        self._admin("CHECKPOINT")  # the copy on disk: no checkpoint of it falls into a timing
        return self.url.set(database=name).render_as_string(hide_password=False)

    def drop(self, name: str) -> None:
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


class SqliteWarehouses:
    """SQLite files in one directory: create (empty or a copy of a template), drop."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def create(self, name: str, template: str | None = None) -> str:
        self.drop(name)
        path = self.directory / f"{name}.db"
        if template:
            source = self.directory / f"{template}.db"
            with closing(sqlite3.connect(source)) as conn:  # everything in the main file
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copyfile(source, path)
        return f"sqlite:///{path}"

    def drop(self, name: str) -> None:
        for suffix in ("", "-wal", "-shm"):
            (self.directory / f"{name}.db{suffix}").unlink(missing_ok=True)


# -- the benchmark

def interleaved(warehouses, template: str, run_dir: Path, rounds: int) -> dict[str, list[dict]]:
    """`rounds` timings per side, each a fresh process on a fresh copy of `template`, the sides
    alternating (bare, apply, then apply, bare, ...)."""
    times: dict[str, list[dict]] = {"bare": [], "apply": []}
    for r in range(rounds):
        for side in ("bare", "apply") if r % 2 == 0 else ("apply", "bare"):
            url = warehouses.create("bench_child", template)
            try:
                times[side].append(run_child(side, url, run_dir)[0])
            finally:
                warehouses.drop("bench_child")
    return times


def bench(label: str, warehouses, tmp: Path, rounds: int, profile: int) -> list[dict]:
    """Seed, check, measure both runs on one backend; returns a summary per run."""
    print(f"\n== {label}")
    seed_url = warehouses.create("bench_seed")
    engine = make_engine(seed_url)
    apply(engine)
    print(f"seeded {N_SRS:,} SRs ({N_ACTIVE:,} active) + previous run's feed in {seed(engine):.1f}s")
    started = time.perf_counter()
    srs = read_relevant_srs(engine, GROUP, T, 0)
    print(f"read_relevant_srs: {len(srs):,} active SRs in {time.perf_counter() - started:.2f}s")
    engine.dispose()

    built = build_run()
    first_dir = write_run(built, tmp / "run1")
    first = read_run(first_dir)
    engine = make_engine(warehouses.create("bench_after", "bench_seed"))
    result = apply_run(engine, first)
    assert result.status == "applied", result
    again = apply_run(engine, first)
    differences = check_bare(engine, first)
    print(f"check on a copy: {result}; re-apply {again.seconds:.3f}s ({again.status}); bare rows vs the rows "
          f"apply_run wrote: {differences} differences (EXCEPT both ways)")
    assert differences == 0, "the baseline must write the rows the load writes"
    steady_dir = write_run(steady_run(engine, built), tmp / "run2")
    settle(engine)
    engine.dispose()

    summaries = []
    for name, template, run_dir in (("first run", "bench_seed", first_dir),
                                    ("steady run", "bench_after", steady_dir)):
        times = interleaved(warehouses, template, run_dir, rounds)
        rows = {t["rows"] for side in times.values() for t in side}
        assert len(rows) == 1, f"{name}: apply and bare wrote different row counts {rows}"
        summaries.append({"backend": label.split()[0], "run": name, "rows": rows.pop(), "times": times})
        if profile:
            url = warehouses.create("bench_child", template)
            try:
                print(f"-- profile of one apply child, {name} (top {profile} by own time):")
                print(run_child("apply", url, run_dir, profile)[1])
            finally:
                warehouses.drop("bench_child")
    for name in ("bench_seed", "bench_after"):
        warehouses.drop(name)
    return summaries


def _median(times: list[dict], key: str) -> float | None:
    values = [t[key] for t in times if t[key] is not None]
    return statistics.median(values) if values else None


def report(summaries: list[dict], rounds: int, load: tuple[float, float]) -> bool:
    """Print the table; True when every PostgreSQL run meets the client-CPU target."""
    print(f"\n== load vs bare COPY of the same rows: medians of {rounds} fresh processes per side, interleaved "
          f"(bare, apply, apply, bare, ...), each on a fresh copy of the warehouse")
    print(f"{'backend':<11}{'run':<11}{'rows':>9} | {'wall apply':>10}{'bare':>7}{'ratio':>7} | "
          f"{'client CPU apply':>16}{'bare':>7}{'ratio':>7}  target | {'server CPU apply':>16}{'bare':>7}")
    met = True
    for s in summaries:
        apply_t, bare_t = s["times"]["apply"], s["times"]["bare"]
        wall_a, wall_b = _median(apply_t, "wall"), _median(bare_t, "wall")
        cpu_a, cpu_b = _median(apply_t, "cpu"), _median(bare_t, "cpu")
        srv_a, srv_b = _median(apply_t, "server_cpu"), _median(bare_t, "server_cpu")
        ratio = cpu_a / cpu_b
        if s["backend"] == "PostgreSQL":
            ok = ratio <= CPU_TARGET
            met &= ok
            verdict = f"<={CPU_TARGET:g}x {'met' if ok else 'MISSED'}"
        else:
            verdict = "in-process engine: informational"
        server = f"{srv_a:>15.2f}s{srv_b:>6.2f}s" if srv_a is not None else f"{'-':>16}{'-':>7}"
        print(f"{s['backend']:<11}{s['run']:<11}{s['rows']:>9,} | {wall_a:>9.2f}s{wall_b:>6.2f}s"
              f"{wall_a / wall_b:>6.2f}x | {cpu_a:>15.2f}s{cpu_b:>6.2f}s{ratio:>6.2f}x  {verdict} | {server}")
    print("per process (wall / client CPU, s, in run order per side):")
    for s in summaries:
        for side in ("apply", "bare"):
            figures = "  ".join(f"{t['wall']:.2f}/{t['cpu']:.2f}" for t in s["times"][side])
            print(f"  {s['backend']:<11}{s['run']:<11}{side:<6} {figures}")
        print(f"  {'':<11}{'':<11}apply phases (last): {s['times']['apply'][-1]['phases']}")
    print(f"load average (1 min) before / after the timings: {load[0]:.2f} / {load[1]:.2f} "
          f"(2 cores shared with other jobs: wall figures are noisy, CPU figures less so)")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sqlite-only", action="store_true")
    parser.add_argument("--pg-only", action="store_true")
    parser.add_argument("--rounds", type=int, default=3, help="fresh processes per side and run (default 3)")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile one apply child per run, print its top N functions")
    args = parser.parse_args()
    import psycopg

    print(describe(pandas=pd.__version__, pyarrow=pa.__version__, psycopg=psycopg.__version__,
                   sqlite=sqlite3.sqlite_version))
    summaries = []
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        if not args.pg_only:
            (Path(tmp) / "sqlite").mkdir()
            summaries += bench("SQLite (file, WAL)", SqliteWarehouses(Path(tmp) / "sqlite"), Path(tmp) / "sqlite",
                               args.rounds, args.profile)
        if not args.sqlite_only:
            server = None
            if os.environ.get("BENCH_PG_URL"):
                url, label = os.environ["BENCH_PG_URL"], "PostgreSQL ($BENCH_PG_URL's server)"
            else:
                import pgserver

                server = pgserver.start(settings={"fsync": "on", "synchronous_commit": "on",
                                                  "full_page_writes": "on", "shared_buffers": "512MB",
                                                  "max_wal_size": "4GB"})
                url, label = server.url("postgres"), "PostgreSQL (throwaway server, fsync on)"
            try:
                with psycopg.connect(make_url(url).set(drivername="postgresql").render_as_string(False)) as c:
                    label += f": {c.execute('SHOW server_version').fetchone()[0]}"
                summaries += bench(label, PgWarehouses(url), Path(tmp) / "pg", args.rounds, args.profile)
            finally:
                if server is not None:
                    server.stop()
    met = report(summaries, args.rounds, (load_before, os.getloadavg()[0]))
    return 0 if met else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child_main(child, ("apply", "bare"), "--run")
    else:
        with processes.guarded("bench-load"):  # nothing it starts outlives it (Ctrl-C, SIGTERM too)
            raise SystemExit(main())
