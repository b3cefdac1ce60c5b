"""Benchmark: how the transform and the load grow with the feed (issue 13, part 4 "Growth").
Not a test.

Run: `make bench`, or
`PYTHONPATH=plugins .venv/bin/python bench/bench_growth.py [--sizes 25000,50000] [--rounds 2]
[--dialect postgresql|sqlite] [--profile N]`.

For each size N (feed rows: 25k, 50k, 100k, 200k, 400k) the warehouse holds 5N service
requests of history and the run lands N validated vehicles; the product's transform step and
its load step are each timed in a fresh process, beside a fair baseline, and the growth
exponent of each stage is fitted by least squares on log(time) against log(N)
(`numpy.polyfit`, degree 1). Target: exponent <= 1.1 (issue 13). The bench writes
bench/growth.png (log-log, time against feed rows, the four series, exponents in the legend)
and its section of bench/results.md (bench/results.py).

Scenario (bench/generate.make_scenario, deterministic): N active SRs, 4N closed ones created
over two years (closed VINs may repeat); 90% of the active SRs' vehicles are in the feed (2%
of them at another dealer of the group), 2.5% of the feed are closed-history VINs back in
stock, the rest new VINs; 5% of the feed rows carry a new stock number. Dealers grow with the
feed, 667 feed rows each (SPEC: 200,000 rows over 300 dealers), every 100th dealer not
extracted (the run is partial). Settings (growth_settings): a vehicle-type mapping for half of
the system codes, a client per dealer (every 25th dealer's client renamed since: client
updates; every other dealer with Ignore if SR with VIN exists, 30 days, so the transform reads
30 days of closed history), Track Stock No and Client for 180 days, Auto Close immediately.
Per run that is about 0.07N creates, 0.05N updates, 0.1N auto-closes (within the mass-close
guard's 50%), a few ignored vehicles, and an SR row for every present SR (its last_seen_at
moves): about 1.07N SR rows and 0.2N events.

How it runs. Per size, untimed: the scenario; the landing files the extract would have
written (good.parquet and status.json per extracted dealer, landing.write_parquet /
write_json); a seed database migrated and filled (`seed`: a "previous run" at T - 1 day applied by
the product's load, the feed's rows in feed_vehicles; the 5N SRs COPYied into
service_requests), then VACUUM ANALYZE. Every measurement is a fresh process of this script
(`--child SIDE`) on its own copy of the seed: PostgreSQL `CREATE DATABASE ... TEMPLATE seed
STRATEGY FILE_COPY` then CHECKPOINT (bench_load.PgWarehouses), SQLite a file copy; the copy is
dropped after the child. Untimed in a child: imports, the engine's first connection. Timed:
wall (perf_counter) and CPU; the child's peak RSS is its whole life's (VmHWM, imports
included: ~200 MB of it is the interpreter and libraries; its ru_maxrss would carry the
parent's high-water across exec on Linux, see peak_rss_mb). The
sides alternate per round (transform, plain, load, bare; then plain, transform, bare, load),
so a load change on the shared machine hits both; each figure is the fastest of --rounds
(the least disturbed process). CPU: the child's process_time plus its PostgreSQL backend's
(psutil on pg_backend_pid; the engine holds one connection), printed with its exponent as a
cross-check less sensitive to the other jobs on the machine.

What is timed:
- transform: `pipeline.transform(ctx, engine)`: the group state, the statuses, the good
  files, the SR read (reads.read_relevant_srs), the rules engine, the mass-close guard, the
  outcomes joined onto the feed, the change files and summary.json written.
- transform baseline ("plain"): the fastest plain equivalent of the same work we could write:
  the same good.parquet files read with pyarrow; the same SR rows (active + closed created in
  the last 30 days) read with one `COPY (SELECT ...) TO STDOUT` parsed by pyarrow.csv (SQLite:
  one cursor fetch); Arrow hash joins on VIN (the group's SR identity) of the feed with the
  active SRs, the per-dealer client table, the latest SR creation per VIN (Ignore) and the
  mapping; the new, updated, unchanged, closed and ignored rows as plain Arrow masks; the SR
  change rows, events and feed rows written to Parquet with the product's options. It applies
  exactly the rules this scenario exercises (no duplicates across dealers, include-only,
  anchor resets or after-N-days closing: the product handles those, the plain one does not),
  and the bench checks at every size that it writes the same number of SR rows, events and
  feed rows as the product. It computes no per-dealer counts, no guards, no summary.
- load: `pipeline.load(ctx, engine)`: the run-state checks, the change files read from
  Parquet, apply_run (staging, the merge into the 5N-row service_requests, appends, commit).
- load baseline ("bare"): the same change files read with pyarrow, then bench_load's bare
  COPY: the same rows into tables with the real tables' columns, checks, keys and indexes
  (`LIKE ... INCLUDING ALL`, created untimed, empty), converted by plain Arrow, one COPY per
  table, commit. Before the timings of a size, the bare rows are checked equal to what the
  load wrote (bench_load.check_bare, EXCEPT both ways, on the first load child's copy).

What it found (issue 13, part 4): the load's merge grew about 4x per doubling from 200k to 400k
feed rows (the UPDATE of ~N present SRs in the 5N-row table: with full pages every new row
version went to another page and into all five indexes). Migration 0005 leaves 20% of each
service_requests page free (fillfactor 80), so those updates are HOT (in place, no index
entries): the merge at 400k went from 40-48 s to 21 s, about 2.4x per doubling. The
transform's SR read built its frame from SQLAlchemy Rows, which pandas probes attribute by
attribute (two caught exceptions a row, ~3 s at 100k); reads.read_frame passes tuples.

PostgreSQL: the server of $BENCH_PG_URL, else 127.0.0.1:5432 (user postgres, trust), else a
throwaway server (tests/pgserver.py, fsync on). Only databases named bench_growth_<pid>_* are
created there, and all of them are dropped. `--profile N`: one more transform and load child
at the largest size under cProfile, top N functions by cumulative and own time.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "tests"), str(ROOT / "bench")]

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.compute as pc  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import bench_load  # noqa: E402
from bench_load import (  # noqa: E402
    PgWarehouses, SqliteWarehouses, bare_copy, bare_create, check_bare, measured, settle,
    table_columns,
)
from generate import dealer_ids, make_scenario  # noqa: E402
from machine import describe  # noqa: E402
from results import Row, record  # noqa: E402

from dealer_feed import pipeline  # noqa: E402
from dealer_feed.config import ClientDealer, Dealer, GroupConfig, IntegrationSettings  # noqa: E402
from dealer_feed.contract.identity import run_id, run_key  # noqa: E402
from dealer_feed.contract.schemas import (  # noqa: E402
    DEALER_STATUS_SCHEMA, EVENT_SCHEMA, VEHICLE_GOOD_SCHEMA, as_table,
)
from dealer_feed.landing import write_json, write_parquet  # noqa: E402
from dealer_feed.rules.frames import SR_COLUMNS, empty_events  # noqa: E402
from dealer_feed_tools import processes  # noqa: E402
from dealer_feed.warehouse import make_engine  # noqa: E402
from dealer_feed.warehouse.load import RunToLoad, apply_run  # noqa: E402
from dealer_feed.warehouse.migrations import apply as migrate  # noqa: E402

SECTION = "Growth: transform and load against feed size (issue 13 part 4)"
SIZES = (25_000, 50_000, 100_000, 200_000, 400_000)
HISTORY = 5           # SRs in the warehouse per feed row
ROWS_PER_DEALER = 667  # SPEC scale: 200,000 feed rows over 300 dealers
GROUP = "growth"
T = datetime(2026, 11, 24, 6, tzinfo=timezone.utc)
T_PREV = T - timedelta(days=1)
TRACK_DAYS = 180
IGNORE_DAYS = 30
TARGET = 1.1
STAGES = ("transform", "load")
BASELINE = {"transform": "plain", "load": "bare"}
CHANGE_FRAMES = ("service_requests", "events", "feed_vehicles")
"""Change files whose row counts the plain transform must match."""
PNG = Path(__file__).resolve().parent / "growth.png"


# -- scenario: settings, group, landing files, seed run

def client_of(d: int) -> str:
    """Dealer d's client in the settings; the seed SRs carry f"Client{d % 40}" (generate.py)."""
    return f"Client{d % 40}" + ("B" if d % 25 == 0 else "")


def growth_settings(dealers: np.ndarray) -> IntegrationSettings:
    mapping = [{"system_code": f"C{c:02d}", "vehicle_type": f"Type{c:02d}", "sr_type": f"SR{c % 4}"} for c in range(10)]
    clients = [ClientDealer(client=client_of(d), sr_type="Recon", dealer_id=dealer, ignore_days=IGNORE_DAYS,
                            ignore_if_sr_with_vin_exists=d % 2 == 0) for d, dealer in enumerate(dealers)]
    return IntegrationSettings.model_validate({
        "track_stock_and_client": {"mode": "for_n_days", "days": TRACK_DAYS},
        "auto_close": {"mode": "immediately"},
        "vehicle_type_mapping": mapping,
        "client_dealer": [c.model_dump() for c in clients],
    })


def group_config(n_dealers: int) -> GroupConfig:
    dealers = dealer_ids(n_dealers)
    return GroupConfig(group=GROUP, dealers=[Dealer(enterprise_code=d.split("_")[0], company_number=d.split("_")[1])
                                             for d in dealers], settings=growth_settings(dealers))


def good_table(feed: pd.DataFrame) -> pa.Table:
    """The scenario's feed as good.parquet rows (VEHICLE_GOOD_SCHEMA), sorted by dealer."""
    feed = feed.sort_values(["dealer_id", "vin"], ignore_index=True)
    n = len(feed)
    idx = np.arange(n)

    def const(value, type_):
        return pa.repeat(pa.scalar(value, type_), n)

    columns = {
        "dealer_id": pa.array(feed["dealer_id"], pa.string()),
        "company_number": pc.utf8_slice_codeunits(pa.array(feed["dealer_id"], pa.string()), 3),
        "vin": pa.array(feed["vin"], pa.string()), "stock_number": pa.array(feed["stock_number"], pa.string()),
        "status": const("I", pa.string()), "type_nu": pa.array(feed["system_code"], pa.string()),
        "model_year": pa.array((2020 + idx % 7).astype(np.int32)), "make": const("KIA", pa.string()),
        "model": const("EV6", pa.string()), "model_code": const("CV", pa.string()),
        "body_style": const("SUV", pa.string()), "color": const("BLUE", pa.string()), "trim": const("GT", pa.string()),
        "odometer": pa.array((idx * 37 % 90_000).astype(np.int64)),
        "date_in_inventory": pa.array(np.datetime64("2026-10-01") - (idx % 300).astype("timedelta64[D]"), pa.date32()),
        "date_in_service": pa.nulls(n, pa.date32()), "date_delivered": pa.nulls(n, pa.date32()),
        "date_modified": pa.nulls(n, pa.date32()),
        "list_price": pa.array(30_000.0 + idx % 20_000), "vehicle_cost": pa.array(28_000.0 + idx % 20_000),
        "certified_used_car": pa.array(idx % 5 == 0),
    }
    return pa.table(columns, schema=VEHICLE_GOOD_SCHEMA)


def land(ctx: pipeline.RunContext, good: pa.Table, extracted: list[str]) -> list[dict]:
    """good.parquet + status.json per extracted dealer, as extract_validate writes them."""
    dealers = good.column("dealer_id").to_numpy(zero_copy_only=False)
    starts = np.searchsorted(dealers, extracted, side="left")
    ends = np.searchsorted(dealers, extracted, side="right")
    statuses = []
    for dealer_id, start, end in zip(extracted, starts, ends):
        directory = ctx.dealer_dir("vehicles", dealer_id)
        write_parquet(good.slice(start, end - start), directory / "good.parquet")
        status = {"dealer_id": dealer_id, "dataset": "vehicles", "status": "ok", "rows": int(end - start),
                  "good": int(end - start), "quarantined": 0, "error": None, "fix": None, "run_id": ctx.run_id,
                  "unknown_fields": {}}
        write_json(status, directory / "status.json")
        statuses.append(status)
    return statuses


def seed(engine, srs: pd.DataFrame, good: pa.Table, statuses: list[dict]) -> None:
    """The previous run (T - 1 day), applied by the product's load (its etl_runs row, dealer
    statuses and the feed's rows in feed_vehicles); then the 5N SRs of history created by it,
    COPYied straight into service_requests (bench_load.bare_copy into the real table: half the
    time of the load's stage-and-merge path, the same rows)."""
    n = good.num_rows
    feed = good.append_column("outcome", pa.repeat(pa.scalar("unchanged"), n)) \
        .append_column("reason", pa.nulls(n, pa.string())).append_column("sr_id", pa.nulls(n, pa.string()))
    prev = [{**s, "run_id": run_id(GROUP, T_PREV)} for s in statuses]
    no_srs = srs.iloc[0:0].assign(is_new=True)
    result = apply_run(engine, RunToLoad(
        group=GROUP, logical_time=T_PREV, service_requests=no_srs, events=empty_events(), feed_vehicles=feed,
        quarantine=None, dealer_statuses=as_table(prev, DEALER_STATUS_SCHEMA), status="success",
        airflow_run_id="bench-growth-seed", started_at=T_PREV))
    assert result.status == "applied", result
    history = RunToLoad(group=GROUP, logical_time=T_PREV, service_requests=srs.assign(created_run_id=result.run_id),
                        events=empty_events(), feed_vehicles=feed.slice(0, 0), quarantine=None,
                        dealer_statuses=as_table([], DEALER_STATUS_SCHEMA))
    with engine.begin() as conn:
        bare_copy(conn, history, table_columns(conn), into="")


def prepare_size(n: int, work: Path, warehouses, seed_name: str) -> dict:
    """Scenario, landing files and seed database of size n; returns what the children need."""
    started = time.perf_counter()
    n_dealers = max(10, round(n / ROWS_PER_DEALER))
    sc = make_scenario(n_vehicles=n, n_dealers=n_dealers, n_srs=HISTORY * n, n_active=n, group=GROUP, logical_time=T,
                       present_fraction=0.9, absent_since_fraction=0.0, duplicate_fraction=0.0)
    cfg = group_config(n_dealers)
    directory = work / f"n{n}"
    ctx = pipeline.RunContext(group=cfg, logical_time=T, landing=directory / "landing")
    good = good_table(sc.feed)
    statuses = land(ctx, good, sorted(sc.extracted_dealers))
    (directory / "group.json").write_text(cfg.model_dump_json())
    (directory / "extracted.json").write_text(json.dumps(sorted(sc.extracted_dealers)))
    built = time.perf_counter() - started

    url = warehouses.create(seed_name)
    engine = make_engine(url)
    migrate(engine)
    seed(engine, sc.srs, good, statuses)
    settle(engine)
    engine.dispose()
    active = int((sc.srs["status"] == "active").sum())
    print(f"n={n:,}: {good.num_rows:,} feed rows of {len(sc.extracted_dealers)}/{n_dealers} dealers, "
          f"{len(sc.srs):,} SRs ({active:,} active); built in {built:.1f}s, seeded in "
          f"{time.perf_counter() - started - built:.1f}s", flush=True)
    return {"n": n, "dir": directory, "feed_rows": good.num_rows, "srs": len(sc.srs)}


# -- the children

def _context(directory: Path) -> pipeline.RunContext:
    cfg = GroupConfig.model_validate_json((directory / "group.json").read_text())
    return pipeline.RunContext(group=cfg, logical_time=T, landing=directory / "landing")


def _warm_imports() -> None:
    """What the steps import lazily: imported before the clock starts, on every side."""
    import dealer_feed.rules.engine  # noqa: F401
    import dealer_feed.rules.guards  # noqa: F401
    import dealer_feed.warehouse.reads  # noqa: F401
    import pyarrow.csv  # noqa: F401


def _changes_run(ctx: pipeline.RunContext) -> RunToLoad:
    """The transform's change files as the RunToLoad bench_load's bare COPY takes (read with pyarrow)."""
    changes = ctx.run_dir / "changes"
    frames = {name: pq.read_table(changes / f"{name}.parquet")
              for name in ("service_requests", "events", "feed_vehicles", "dealer_statuses")}
    return RunToLoad(group=GROUP, logical_time=T, quarantine=None, **frames)


def _read_srs_plain(engine, since: datetime) -> pa.Table:
    """The transform's SR rows, read the plainest fast way on the engine's one connection:
    PostgreSQL COPY (SELECT ...) TO STDOUT as CSV parsed by pyarrow; SQLite one fetchall."""
    import pyarrow.csv as pacsv

    where = (f"dealer_group = '{GROUP}' AND (status = 'active' OR (created_at >= '{since:%Y-%m-%d %H:%M:%S}' "
             f"AND created_at <= '{T:%Y-%m-%d %H:%M:%S}'))")
    select = f"SELECT {', '.join(SR_COLUMNS)} FROM service_requests WHERE {where}"
    ts = ("created_at", "closed_at", "anchor_at", "absent_since", "last_seen_at")
    schema = pa.schema([pa.field(c, pa.timestamp("us") if c in ts else pa.string()) for c in SR_COLUMNS])
    raw = engine.raw_connection()
    try:
        dbapi = raw.driver_connection
        if engine.dialect.name == "sqlite":
            rows = dbapi.execute(select).fetchall()
            return pa.table([pa.array(list(c), pa.string()) for c in zip(*rows)] if rows else
                            [pa.array([], pa.string())] * len(SR_COLUMNS), names=list(SR_COLUMNS)).cast(schema)
        buf = io.BytesIO()
        with dbapi.cursor() as cur, cur.copy(f"COPY ({select}) TO STDOUT (FORMAT csv, HEADER)") as copy:
            for block in copy:
                buf.write(block)
        dbapi.commit()
    finally:
        raw.close()
    options = pacsv.ConvertOptions(column_types={f.name: f.type for f in schema})
    return pacsv.read_csv(io.BytesIO(buf.getvalue()), convert_options=options)


def plain_transform(ctx: pipeline.RunContext, engine, directory: Path) -> dict[str, int]:
    """The transform baseline (module doc): plain Arrow over the same inputs; row counts written."""
    out = directory / "plain"
    extracted = json.loads((directory / "extracted.json").read_text())
    good = pa.concat_tables([pq.read_table(ctx.dealer_dir("vehicles", d) / "good.parquet") for d in extracted])
    srs = _read_srs_plain(engine, T - timedelta(days=IGNORE_DAYS))
    t = pa.scalar(T.replace(tzinfo=None), pa.timestamp("us"))
    settings = ctx.group.settings
    clients = pa.table({"dealer_id": [r.dealer_id for r in settings.client_dealer],
                        "new_client": [r.client for r in settings.client_dealer],
                        "client_sr_type": [r.sr_type for r in settings.client_dealer],
                        "flag": [r.ignore_if_sr_with_vin_exists for r in settings.client_dealer],
                        "ignore_days": [r.ignore_days for r in settings.client_dealer]})
    mapping = pa.table({"type_nu": [r.system_code for r in settings.vehicle_type_mapping],
                        "vehicle_type": [r.vehicle_type for r in settings.vehicle_type_mapping],
                        "sr_type": [r.sr_type for r in settings.vehicle_type_mapping]})
    active = srs.filter(pc.equal(srs.column("status"), "active"))
    latest = srs.group_by("vin").aggregate([("created_at", "max")]).rename_columns(["vin", "latest_created"])
    sr_side = active.select(["vin", "sr_id", "stock_number", "client", "created_at"]).rename_columns(
        ["vin", "sr_id", "old_stock", "old_client", "sr_created"])
    feed = (good.select(["dealer_id", "vin", "stock_number", "type_nu"])
            .join(clients, "dealer_id", join_type="left outer")
            .join(sr_side, "vin", join_type="left outer")
            .join(latest, "vin", join_type="left outer")
            .join(mapping, "type_nu", join_type="left outer"))
    has = pc.is_valid(feed.column("sr_id"))
    window = pc.greater_equal(feed.column("sr_created"), pc.subtract(t, pa.scalar(timedelta(days=TRACK_DAYS))))
    differs = pc.or_(pc.fill_null(pc.not_equal(feed.column("old_stock"), feed.column("stock_number")), True),
                     pc.fill_null(pc.not_equal(feed.column("old_client"), feed.column("new_client")), True))
    updated = pc.and_(pc.and_(has, pc.fill_null(window, False)), differs)
    age_ok = pc.greater_equal(feed.column("latest_created"),
                              pc.subtract(t, pc.multiply(pc.cast(feed.column("ignore_days"), pa.int64()),
                                                         86_400_000_000).cast(pa.duration("us"))))
    ignored = pc.and_(pc.invert(has), pc.fill_null(pc.and_(feed.column("flag"), age_ok), False))
    created = pc.and_(pc.invert(has), pc.invert(ignored))
    new_ids = pc.binary_join_element_wise(f"{GROUP}", feed.column("vin"), f"{run_key(T)}", ":")
    sr_id = pc.if_else(created, new_ids, feed.column("sr_id"))
    outcome = pc.if_else(created, "created", pc.if_else(updated, "updated",
                                                        pc.if_else(ignored, "ignored", "unchanged")))
    feed = feed.append_column("outcome", outcome).append_column("sr_id_out", sr_id)

    # SR change rows: new ones; present active ones (last_seen_at moves, stock/client when updated); closed ones.
    n_new = feed.filter(created)
    nulls = lambda n, type_=pa.string(): pa.nulls(n, type_)  # noqa: E731
    news = pa.table({
        "sr_id": n_new.column("sr_id_out"), "dealer_id": n_new.column("dealer_id"), "vin": n_new.column("vin"),
        "stock_number": n_new.column("stock_number"), "client": n_new.column("new_client"),
        "vehicle_type": n_new.column("vehicle_type"),
        "sr_type": pc.coalesce(n_new.column("sr_type"), n_new.column("client_sr_type")),
        "status": pa.repeat(pa.scalar("active"), len(n_new)), "created_at": pa.repeat(t, len(n_new)),
        "closed_at": nulls(len(n_new), pa.timestamp("us")), "close_reason": nulls(len(n_new)),
        "anchor_at": pa.repeat(t, len(n_new)), "absent_since": nulls(len(n_new), pa.timestamp("us")),
        "last_seen_at": pa.repeat(t, len(n_new)), "is_new": pa.repeat(pa.scalar(True), len(n_new)),
    })
    seen = feed.filter(has).select(["sr_id", "stock_number", "new_client", "outcome"])
    present = active.join(seen.rename_columns(["sr_id", "feed_stock", "feed_client", "outcome"]), "sr_id",
                          join_type="inner")
    upd = pc.equal(present.column("outcome"), "updated")
    present = (present.set_column(present.schema.get_field_index("stock_number"), "stock_number",
                                  pc.if_else(upd, present.column("feed_stock"), present.column("stock_number")))
               .set_column(present.schema.get_field_index("client"), "client",
                           pc.if_else(upd, present.column("feed_client"), present.column("client")))
               .set_column(present.schema.get_field_index("last_seen_at"), "last_seen_at",
                           pa.repeat(t, len(present))))
    absent = active.join(feed.select(["vin"]), "vin", join_type="left anti")
    absent = absent.filter(pc.is_in(absent.column("dealer_id"), value_set=pa.array(extracted)))
    closed = (absent.set_column(absent.schema.get_field_index("status"), "status", pa.repeat(pa.scalar("closed"), len(absent)))
              .set_column(absent.schema.get_field_index("closed_at"), "closed_at", pa.repeat(t, len(absent)))
              .set_column(absent.schema.get_field_index("close_reason"), "close_reason",
                          pa.repeat(pa.scalar("auto_close_immediately"), len(absent))))
    existing = pa.concat_tables([present.select(list(SR_COLUMNS)), closed.select(list(SR_COLUMNS))])
    existing = existing.append_column("is_new", pa.repeat(pa.scalar(False), len(existing)))
    srs_out = pa.concat_tables([news, existing.cast(news.schema)])

    # Events: created, updated, auto_closed, ignored.
    def events(rows: pa.Table, kind: str, **cols) -> pa.Table:
        n = len(rows)
        data = {name: cols.get(name, nulls(n, field.type)) for name, field in zip(EVENT_SCHEMA.names, EVENT_SCHEMA)}
        data.update(sr_id=cols.get("sr_id", rows.column("sr_id")), dealer_id=rows.column("dealer_id"),
                    vin=rows.column("vin"), kind=pa.repeat(pa.scalar(kind), n))
        return pa.table(data).cast(EVENT_SCHEMA)

    u = feed.filter(updated)
    i = feed.filter(ignored)
    events_out = pa.concat_tables([
        events(n_new, "created", sr_id=n_new.column("sr_id_out"), new_stock_number=n_new.column("stock_number"),
               new_client=n_new.column("new_client")),
        events(u, "updated", old_stock_number=u.column("old_stock"), new_stock_number=u.column("stock_number"),
               old_client=u.column("old_client"), new_client=u.column("new_client")),
        events(closed, "auto_closed", reason=pa.repeat(pa.scalar("auto_close_immediately"), len(closed))),
        events(i, "ignored", sr_id=nulls(len(i)), reason=pa.repeat(pa.scalar("sr_with_vin_exists"), len(i))),
    ])
    outcomes = feed.select(["dealer_id", "vin", "outcome", "sr_id_out"])
    feed_out = good.join(outcomes, ["dealer_id", "vin"], join_type="left outer")
    written = {"service_requests": srs_out, "events": events_out, "feed_vehicles": feed_out}
    for name, table in written.items():
        write_parquet(table, out / f"{name}.parquet")
    return {name: table.num_rows for name, table in written.items()}


def child(side: str, url: str, directory: Path, profile: int = 0) -> dict:
    """One timed side on the warehouse copy at `url`; its figures as a dict."""
    _warm_imports()
    ctx = _context(directory)
    engine = make_engine(url, pool_size=1, max_overflow=0) if not url.startswith("sqlite") else make_engine(url)
    columns = None
    if side == "bare":
        with engine.begin() as conn:
            columns = bare_create(conn)

    def call() -> dict:
        if side == "transform":
            summary = pipeline.transform(ctx, engine)
            rows = {name: pq.read_metadata(ctx.run_dir / "changes" / f"{name}.parquet").num_rows
                    for name in CHANGE_FRAMES}
            return rows | {"closed": summary["counts"]["totals"]["closed"]}
        if side == "plain":
            return plain_transform(ctx, engine, directory)
        if side == "load":
            result = pipeline.load(ctx, engine)
            assert result["status"] == "applied", result
            return dict(result["rows"])
        with engine.begin() as conn:
            return bare_copy(conn, _changes_run(ctx), columns)

    # the steps' own timing lines (load phases, rules engine seconds) come back with the figures
    m = measured(engine, call, loggers=["dealer_feed.pipeline", "dealer_feed.warehouse.load"], profile=profile,
                 orders=("cumulative", "tottime"))
    engine.dispose()
    return {"side": side, "wall": m.wall, "cpu": m.client_cpu + (m.server_cpu or 0.0), "client_cpu": m.client_cpu,
            "peak_mb": peak_rss_mb(), "rows": m.result, "log": m.messages}


def peak_rss_mb() -> float:
    """This process's peak RSS: VmHWM, the high-water mark of its own address space. (Its
    ru_maxrss would do on a process started from a small parent; on Linux it keeps, across
    exec, the high-water of the parent that forked it, which here holds the scenario.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_child(side: str, url: str, directory: Path, profile: int = 0) -> tuple[dict, str]:
    return bench_load.run_child(side, url, directory, profile, script=__file__, dir_flag="--dir")


# -- the benchmark

def measure(size: dict, warehouses, seed_name: str, child_name: str, rounds: int) -> dict[str, list[dict]]:
    """`rounds` fresh-process timings per side, sides alternating, each on a fresh copy of the seed."""
    times: dict[str, list[dict]] = {s: [] for s in ("transform", "plain", "load", "bare")}
    directory = size["dir"]
    for r in range(rounds):
        order = ("transform", "plain", "load", "bare") if r % 2 == 0 else ("plain", "transform", "bare", "load")
        for side in order:
            url = warehouses.create(child_name, seed_name)
            try:
                figures = run_child(side, url, directory)[0]
                times[side].append(figures)
                if side == "load" and r == 0:
                    engine = make_engine(url)
                    differences = check_bare(engine, _changes_run(_context(directory)))
                    engine.dispose()
                    assert differences == 0, f"n={size['n']}: bare rows differ from the load's ({differences})"
            finally:
                warehouses.drop(child_name)
        print(f"  round {r + 1}: " + ", ".join(f"{s} {times[s][-1]['wall']:.2f}s/{times[s][-1]['peak_mb']:.0f}MB"
                                              for s in times), flush=True)
        for side in ("transform", "load"):
            lines = [m for m in times[side][-1]["log"] if "phases" in m or "rules engine" in m or "transform:" in m]
            print(f"    {side}: " + " | ".join(m.split("; ")[-1] for m in lines), flush=True)
    product = times["transform"][0]["rows"]
    plain = times["plain"][0]["rows"]
    assert all(product[k] == plain[k] for k in CHANGE_FRAMES), f"plain transform wrote other row counts: {product} vs {plain}"
    print(f"  change rows (product = plain): {', '.join(f'{k} {product[k]:,}' for k in CHANGE_FRAMES)}; "
          f"closed {product['closed']:,}; load wrote {times['load'][0]['rows']}", flush=True)
    return times


def best(figures: list[dict], key: str) -> float:
    """The fastest (smallest) of the fresh processes' figures: on a machine shared with other
    jobs the least disturbed one is the closest to the step's own cost (timeit's rule)."""
    return min(f[key] for f in figures)


def exponent(sizes: list[int], seconds: list[float]) -> float:
    """Least-squares slope of log(time) against log(size)."""
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def plot(sizes: list[int], series: dict[str, list[float]], exponents: dict[str, float], title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 5))
    styles = {"transform": ("C0", "-", "o"), "plain": ("C0", "--", "s"), "load": ("C1", "-", "o"),
              "bare": ("C1", "--", "s")}
    labels = {"transform": "transform (pipeline.transform)", "plain": "transform baseline (plain Arrow)",
              "load": "load (pipeline.load)", "bare": "load baseline (bare COPY)"}
    for side, seconds in series.items():
        color, line, marker = styles[side]
        ax.loglog(sizes, seconds, color=color, linestyle=line, marker=marker,
                  label=f"{labels[side]}: exponent {exponents[side]:.2f}")
    ref = np.array([sizes[0], sizes[-1]], dtype=float)
    top = max(s[0] for s in series.values())
    ax.loglog(ref, top * (ref / ref[0]), color="grey", linestyle=":", label="slope 1 (linear)")
    ax.set_xlabel("feed rows (warehouse: 5x as many service requests)")
    ax.set_ylabel("wall time, s (fastest of fresh processes)")
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(PNG, dpi=110)
    plt.close(fig)
    return PNG


def pg_url() -> tuple[str, object | None]:
    """$BENCH_PG_URL, else the local server on 127.0.0.1:5432, else a throwaway server (stopped by the caller)."""
    if os.environ.get("BENCH_PG_URL"):
        return os.environ["BENCH_PG_URL"], None
    import psycopg

    url = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    try:
        psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", connect_timeout=3).close()
        return url, None
    except psycopg.OperationalError:
        import pgserver

        server = pgserver.start(settings={"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"})
        return server.url("postgres"), server


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="feed rows per size, comma separated")
    parser.add_argument("--rounds", type=int, default=2, help="fresh processes per side and size (default 2)")
    parser.add_argument("--dialect", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="also profile a transform and a load child at the largest size, top N functions")
    parser.add_argument("--no-record", action="store_true", help="print only (no results.md section, no PNG)")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    import psycopg

    machine = describe(pandas=pd.__version__, pyarrow=pa.__version__, psycopg=psycopg.__version__)
    print(machine, flush=True)
    load_before = os.getloadavg()
    started = time.perf_counter()
    tag = f"bench_growth_{os.getpid()}"
    server = None
    results: dict[int, dict[str, list[dict]]] = {}
    prepared = {}
    with tempfile.TemporaryDirectory(prefix="bench-growth-") as tmp:
        work = Path(tmp)
        if args.dialect == "postgresql":
            url, server = pg_url()
            warehouses = PgWarehouses(url)
            with psycopg.connect(warehouses.url.set(drivername="postgresql").render_as_string(False)) as c:
                backend = f"PostgreSQL {c.execute('SHOW server_version').fetchone()[0].split()[0]} (fsync " \
                          f"{c.execute('SHOW fsync').fetchone()[0]}, shared_buffers " \
                          f"{c.execute('SHOW shared_buffers').fetchone()[0]})"
        else:
            (work / "sqlite").mkdir()
            warehouses, backend = SqliteWarehouses(work / "sqlite"), "SQLite (file, WAL)"
        seed_name, child_name = f"{tag}_seed", f"{tag}_child"
        try:
            for n in sizes:
                size = prepare_size(n, work, warehouses, seed_name)
                prepared[n] = size
                results[n] = measure(size, warehouses, seed_name, child_name, args.rounds)
                if args.profile and n == sizes[-1]:
                    for side in ("transform", "load"):
                        url_ = warehouses.create(child_name, seed_name)
                        try:
                            print(f"-- profile of one {side} child, n={n:,}:")
                            print(run_child(side, url_, size["dir"], args.profile)[1])
                        finally:
                            warehouses.drop(child_name)
                warehouses.drop(seed_name)
                shutil.rmtree(size["dir"] / "landing" / GROUP / "vehicles", ignore_errors=True)
        finally:
            for name in (seed_name, child_name):
                warehouses.drop(name)
            if server is not None:
                server.stop()
    load_after = os.getloadavg()
    elapsed = time.perf_counter() - started

    sides = ("transform", "plain", "load", "bare")
    series = {side: [best(results[n][side], "wall") for n in sizes] for side in sides}
    cpu = {side: [best(results[n][side], "cpu") for n in sizes] for side in sides}
    fit = (lambda v: exponent(sizes, v)) if len(sizes) > 1 else (lambda v: float("nan"))
    exponents = {side: fit(v) for side, v in series.items()}
    cpu_exponents = {side: fit(v) for side, v in cpu.items()}
    rows = []
    print(f"\n{'stage':<10}{'feed rows':>10}{'SRs':>11}{'time':>9}{'peak':>9}{'baseline':>10}{'ratio':>7}"
          f"{'CPU':>9}{'base CPU':>10}   (fastest of {args.rounds}; CPU = client + its PostgreSQL backend)")
    for stage in STAGES:
        for k, n in enumerate(sizes):
            figures = results[n][stage]
            base = series[BASELINE[stage]][k]
            row = Row(stage=stage, size=f"{prepared[n]['feed_rows']:,} feed rows, {prepared[n]['srs']:,} SRs",
                      seconds=series[stage][k], peak_mb=best(figures, "peak_mb"), baseline_seconds=base)
            rows.append(row)
            print(f"{stage:<10}{prepared[n]['feed_rows']:>10,}{prepared[n]['srs']:>11,}{row.seconds:>8.2f}s"
                  f"{row.peak_mb:>7.0f}MB{base:>9.2f}s{row.ratio:>6.2f}x{cpu[stage][k]:>8.2f}s"
                  f"{cpu[BASELINE[stage]][k]:>9.2f}s")
    met = True
    for stage in STAGES:
        e = exponents[stage]
        ok = bool(e <= TARGET)
        met &= ok
        rows.append(Row(stage=f"{stage} exponent", size=f"{e:.2f} (fit over {sizes[0]:,}…{sizes[-1]:,} feed rows)",
                        seconds=None, target=f"≤ {TARGET}", met=ok))
        print(f"{stage} exponent {e:.2f} (baseline {exponents[BASELINE[stage]]:.2f}); target <= {TARGET}: "
              f"{'met' if ok else 'MISSED'}; CPU-time exponent {cpu_exponents[stage]:.2f} "
              f"(baseline {cpu_exponents[BASELINE[stage]]:.2f})")
    load_text = (f"load average (1/5/15 min) {load_before[0]:.2f}/{load_before[1]:.2f}/{load_before[2]:.2f} before, "
                 f"{load_after[0]:.2f}/{load_after[1]:.2f}/{load_after[2]:.2f} after; the whole bench took "
                 f"{elapsed / 60:.1f} min")
    print(load_text)
    if not args.no_record and len(sizes) > 1:
        title = f"Transform and load against feed size\n{backend}, fastest of {args.rounds} fresh processes"
        plot([prepared[n]["feed_rows"] for n in sizes], series, exponents, title)
        notes = (
            f"Warehouse: {backend}, a copy of the seeded database per child (CREATE DATABASE ... TEMPLATE, "
            f"FILE_COPY, then CHECKPOINT). Each size N: {HISTORY}N service requests of history (N active), the run "
            "lands N validated vehicles (dealers: one per 667 rows, every 100th not extracted): ~0.07N creates, "
            "0.05N stock/client updates, 0.1N auto-closes, every present SR's last_seen_at moves. "
            f"Time: wall of the step in a fresh process, the fastest of {args.rounds} rounds, sides interleaved; "
            "peak memory: the child's peak RSS (VmHWM, imports included). Baselines: transform = plain Arrow over the same "
            "inputs (good.parquet files, the same SR rows by COPY TO STDOUT, hash joins on VIN, the same number of "
            "SR change rows, events and feed rows, written to Parquet); load = bench_load's bare COPY of the same "
            "change rows into tables with the same columns and indexes (checked equal to the load's rows). "
            f"Exponents: least-squares slope of log(time) on log(feed rows); baselines: transform "
            f"{exponents['plain']:.2f}, load {exponents['bare']:.2f}. Exponents of CPU time (client + its "
            f"PostgreSQL backend, less sensitive to the other jobs): transform {cpu_exponents['transform']:.2f} "
            f"(plain {cpu_exponents['plain']:.2f}), load {cpu_exponents['load']:.2f} (bare {cpu_exponents['bare']:.2f}). "
            "Plot: growth.png (log-log). "
            f"Machine load: {load_text}. How it runs: bench/bench_growth.py's docstring."
        )
        path = record(SECTION, rows, notes, images=[PNG.name])
        print(f"wrote {path} and {PNG}")
    return 0 if met else 1


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        bench_load.child_main(child, ("transform", "plain", "load", "bare"), "--dir")
    else:
        with processes.guarded("bench-growth"):  # nothing it starts outlives it (Ctrl-C, SIGTERM too)
            raise SystemExit(main())
