"""Apply one run's changes to the warehouse: one transaction per (group, run), set-based.

Order inside the transaction (`apply_run`):

1. lock the group (PostgreSQL: advisory transaction lock per group, so two groups load in
   parallel; SQLite: BEGIN IMMEDIATE, one writer at a time, others wait on the busy timeout);
2. check the run ledger: an applied run is a no-op ("already applied"); a run older than
   the group's last applied run is refused (RunOrderError says how to backfill); changes
   computed against another warehouse state than the current one (`based_on` is not
   `group_state`: a run or a late dealer applied since the transform) are refused with
   StaleChangesError, and the pipeline's load recomputes them;
3. insert the `etl_runs` row (parent of everything below);
4. stage the service-request frame into a temporary table (COPY / executemany), mark
   the rows whose stock number or client changes, cascade those to `inspections` and
   `work_orders` (UPDATE ... FROM), update existing requests (UPDATE ... FROM), insert new
   ones (INSERT ... SELECT);
5. bulk-append events, feed_vehicles, quarantine, per-dealer statuses, parts and repair
   orders (append-only frames go straight into their tables with the bulk path: inside
   the transaction a staging hop would only write them twice);
6. record the load's duration in `etl_runs`, commit.

Anything failing rolls the whole run back; the retried run then applies normally.

A *late part* (`RunToLoad.late_dealers`): dealers whose extract failed in the group's last
applied run and were fixed since. Their rows go into that run (events numbered after its
events, their etl_run_dealers rows replaced, etl_runs counts and status updated) in one
transaction, only while the run is still the group's last (else StaleChangesError).
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import Connection, Engine, bindparam, text
from sqlalchemy.exc import DBAPIError

from dealer_feed.contract.identity import as_utc, run_id
from dealer_feed.contract.schemas import (
    DEALER_STATUS_SCHEMA,
    EVENT_SCHEMA,
    FEED_RENAMES,
    OUTCOME_SCHEMA,
    QUARANTINE_SCHEMA,
    RUN_COLUMNS,
    SERVICE_REQUEST_CHANGE_SCHEMA,
    VEHICLE_GOOD_SCHEMA,
    as_table,
    load_spec,
)
from dealer_feed.warehouse._frames import bulk_insert, prepare, ts_param, with_columns
from dealer_feed.warehouse.engine import safe_url, write_transaction
from dealer_feed.warehouse.errors import (
    LoadDataError,
    NotMigratedError,
    RunOrderError,
    StaleChangesError,
    WarehouseError,
    typed_db_error,
)

log = logging.getLogger(__name__)

# Column specs of the tables the load writes, derived from the contract's schemas (the
# warehouse DDL in include/sql/migrations holds the same columns; tests/unit/test_contract_module.py checks it).
_AT = pa.schema([pa.field("logical_time", pa.timestamp("us", tz="UTC"))])
SR_SPEC = load_spec(pa.schema([pa.field("is_new", pa.int8())]),  # stage_sr.is_new is an INTEGER flag
                    SERVICE_REQUEST_CHANGE_SCHEMA, pa.schema([pa.field("dealer_group", pa.string())]))
EVENT_SPEC = load_spec(RUN_COLUMNS, pa.schema([pa.field("event_no", pa.int64()),
                                               pa.field("event_at", pa.timestamp("us", tz="UTC"))]), EVENT_SCHEMA)
FEED_SPEC = load_spec(RUN_COLUMNS, _AT, VEHICLE_GOOD_SCHEMA, OUTCOME_SCHEMA, renames=FEED_RENAMES)
QUARANTINE_SPEC = load_spec(QUARANTINE_SCHEMA)
DEALER_SPEC = load_spec(RUN_COLUMNS, _AT, pa.schema([f for f in DEALER_STATUS_SCHEMA if f.name not in ("fix", "warning")]))
RAW_ROWS_SCHEMA = pa.schema([pa.field("dealer_id", pa.string()), pa.field("row_number", pa.int64()),
                             pa.field("part_number", pa.string()), pa.field("row_json", pa.string())])
PARTS_SPEC = load_spec(RUN_COLUMNS, _AT, RAW_ROWS_SCHEMA)
RO_SPEC = load_spec(RUN_COLUMNS, _AT, RAW_ROWS_SCHEMA, renames={"part_number": "ro_number"})

REQUIRED = {
    "service_requests": tuple(c for c, _ in SR_SPEC if c != "dealer_group"),
    "events": ("dealer_id", "vin", "kind"),
    "feed_vehicles": ("dealer_id", "vin", "outcome", "reason", "sr_id"),
}

_STAGE_SR_DDL = """CREATE TEMPORARY TABLE stage_sr (
    sr_id VARCHAR(200) NOT NULL PRIMARY KEY, dealer_group VARCHAR(64) NOT NULL, dealer_id VARCHAR(64) NOT NULL,
    vin VARCHAR(17) NOT NULL, stock_number VARCHAR(64), client VARCHAR(200), vehicle_type VARCHAR(100),
    sr_type VARCHAR(100), status VARCHAR(16) NOT NULL, created_at TIMESTAMP NOT NULL, closed_at TIMESTAMP,
    close_reason VARCHAR(64), anchor_at TIMESTAMP NOT NULL, absent_since TIMESTAMP, last_seen_at TIMESTAMP,
    is_new INTEGER NOT NULL, changed INTEGER NOT NULL DEFAULT 0)"""

_MARK_CHANGED = """UPDATE stage_sr SET changed = 1
WHERE is_new = 0 AND EXISTS (
    SELECT 1 FROM service_requests sr
    WHERE sr.sr_id = stage_sr.sr_id
      AND (COALESCE(sr.stock_number, '') <> COALESCE(stage_sr.stock_number, '')
           OR COALESCE(sr.client, '') <> COALESCE(stage_sr.client, '')))"""

_CASCADE = """UPDATE {child} SET stock_number = s.stock_number, client = s.client
FROM stage_sr AS s
WHERE {child}.sr_id = s.sr_id AND s.changed = 1
  AND (COALESCE({child}.stock_number, '') <> COALESCE(s.stock_number, '')
       OR COALESCE({child}.client, '') <> COALESCE(s.client, ''))"""

_UPDATE_SRS = """UPDATE service_requests SET
    dealer_id = s.dealer_id, stock_number = s.stock_number, client = s.client, vehicle_type = s.vehicle_type,
    sr_type = s.sr_type, status = s.status, closed_at = s.closed_at, close_reason = s.close_reason,
    anchor_at = s.anchor_at, absent_since = s.absent_since, last_seen_at = s.last_seen_at, last_run_id = :run_id
FROM stage_sr AS s
WHERE service_requests.sr_id = s.sr_id AND service_requests.dealer_group = s.dealer_group AND s.is_new = 0"""

_INSERT_SRS = """INSERT INTO service_requests (
    sr_id, dealer_group, dealer_id, vin, stock_number, client, vehicle_type, sr_type, status, created_at,
    closed_at, close_reason, anchor_at, absent_since, last_seen_at, created_run_id, last_run_id)
SELECT sr_id, dealer_group, dealer_id, vin, stock_number, client, vehicle_type, sr_type, status, created_at,
       closed_at, close_reason, anchor_at, absent_since, last_seen_at, :run_id, :run_id
FROM stage_sr WHERE is_new = 1"""


Frame = pa.Table | pd.DataFrame
"""A run's frames: Arrow tables (landing files), or the rules engine's pandas frames."""


@dataclass
class RunToLoad:
    """Everything one run writes. Frames use the engine-output column names (ARCHITECTURE.md)."""

    group: str
    logical_time: datetime
    service_requests: Frame
    """New or changed SRs, full new state + `is_new`."""
    events: Frame
    feed_vehicles: Frame
    """Good feed rows of the extracted dealers + `outcome`, `reason`, `sr_id`."""
    quarantine: Frame | None = None
    dealer_statuses: Frame | None = None
    """One row per dealer and dataset: dealer_id, dataset, status, rows, good, quarantined, error."""
    parts: Frame | None = None
    repair_orders: Frame | None = None
    counts: dict[str, Any] = field(default_factory=dict)
    status: str = "success"
    """'success' | 'partial' (some dealer failed)."""
    airflow_run_id: str | None = None
    started_at: datetime | None = None
    """When the run (the DAG run) started; etl_runs.run_seconds counts from it."""
    based_on: str | None = None
    """The `group_state` the changes were computed against (summary.json); the load applies
    them only while the warehouse is still there. None skips the check."""
    late_dealers: tuple[str, ...] = ()
    """Non-empty: a late part of the applied run (those dealers only), see the module doc."""

    @property
    def T(self) -> datetime:  # noqa: N802 - the spec's name
        return self.logical_time

    @property
    def run_id(self) -> str:
        return run_id(self.group, self.logical_time)


@dataclass
class LoadResult:
    run_id: str
    status: str
    """'applied' | 'already_applied'."""
    rows: dict[str, int]
    """Rows written per table (empty when already applied)."""
    seconds: float

    def __str__(self) -> str:
        if self.status == "already_applied":
            return f"run {self.run_id} already applied; nothing changed"
        written = ", ".join(f"{k}={v}" for k, v in self.rows.items() if v)
        return f"run {self.run_id} applied in {self.seconds:.2f}s ({written or 'no rows'})"


@dataclass(frozen=True)
class AppliedRun:
    run_id: str
    logical_time: datetime
    """Aware UTC."""
    status: str


def group_lock_key(group: str) -> int:
    """PostgreSQL advisory-lock key of a group's loads (distinct from the migrations key)."""
    return (0xDEA1 << 32) | zlib.crc32(group.encode())


def _parse_ts(value: Any) -> datetime:
    """A stored timestamp (text on SQLite, naive UTC on PostgreSQL) as aware UTC: it enters here."""
    return as_utc(datetime.fromisoformat(value) if isinstance(value, str) else value)


def last_applied(conn: Connection, group: str) -> AppliedRun | None:
    with missing_tables_as_not_migrated(conn):
        row = conn.execute(
            text("SELECT run_id, logical_time, status FROM etl_runs WHERE dealer_group = :g "
                 "ORDER BY logical_time DESC LIMIT 1"),
            {"g": group},
        ).first()
    return AppliedRun(row[0], _parse_ts(row[1]), row[2]) if row else None


def raise_if_not_migrated(exc: DBAPIError, bind: Connection | Engine) -> None:
    """Raise NotMigratedError when `exc` says a table is missing (else return: the caller re-raises)."""
    msg = str(exc.orig).lower()
    if "no such table" in msg or "does not exist" in msg and "relation" in msg:
        raise NotMigratedError(
            f"warehouse {safe_url(bind.engine.url)} has no dealer-feed tables ({exc.orig}); "
            "run `dealer-feed migrate --url URL` (the DAG's migrate task does it)"
        ) from None


@contextmanager
def missing_tables_as_not_migrated(bind: Connection | Engine) -> Iterator[None]:
    """Database errors pass through, except "no such table", which becomes NotMigratedError."""
    try:
        yield
    except DBAPIError as exc:
        raise_if_not_migrated(exc, bind)
        raise


_GROUP_STATE = """SELECT r.run_id,
       (SELECT COUNT(*) FROM etl_run_dealers d WHERE d.run_id = r.run_id AND d.status = 'ok') AS dealers_ok
FROM etl_runs r WHERE r.dealer_group = :g ORDER BY r.logical_time DESC LIMIT 1"""

NO_RUN_STATE = "(no run applied)"


def group_state(conn: Connection, group: str) -> str:
    """A token of the group's warehouse state as far as the transform depends on it: the last
    applied run and how many of its dealer datasets are applied (a late dealer changes it).
    Every write of the group's service requests is a run or a late part, so equal tokens
    mean the transform would read the same service requests."""
    with missing_tables_as_not_migrated(conn):
        row = conn.execute(text(_GROUP_STATE), {"g": group}).first()
    return f"{row[0]}+{row[1]}" if row else NO_RUN_STATE


def _check_state(conn: Connection, run: RunToLoad) -> None:
    """Refuse changes computed against another warehouse state (StaleChangesError)."""
    if run.based_on is None:
        return
    now = group_state(conn, run.group)
    if now != run.based_on:
        raise StaleChangesError(
            f"run {run.run_id}: its changes were computed against warehouse state {run.based_on}, but the warehouse "
            f"of group {run.group} is now at {now} (a run or a late dealer applied since); nothing was loaded.",
            fix=f"clear the `load` task of run {run.run_id}: it recomputes the changes against the current "
                "warehouse (the transform's rules, same inputs) and applies them",
        )


def unapplied_dealers(conn: Connection, run_id_: str) -> list[str]:
    """Dealers whose vehicles failed in an applied run and are neither applied nor caught up since."""
    with missing_tables_as_not_migrated(conn):
        return list(conn.execute(
            text("SELECT dealer_id FROM etl_run_dealers WHERE run_id = :r AND dataset = 'vehicles' "
                 "AND status = 'failed' AND caught_up_by IS NULL ORDER BY dealer_id"),
            {"r": run_id_},
        ).scalars())


_LATER_OK = """SELECT dealer_id, run_id FROM etl_run_dealers
WHERE dealer_group = :g AND dataset = 'vehicles' AND status = 'ok' AND logical_time > :t AND dealer_id IN :ids
ORDER BY logical_time"""


def mark_caught_up(engine: Engine, group: str, run_id_: str, dealer_ids: list[str]) -> dict[str, str]:
    """For dealers that failed in the applied run `run_id_` and are extracted now although a
    later run has applied: record in etl_run_dealers.caught_up_by the first later run that
    applied each one's full inventory. Returns {dealer_id: that run} (dealers no later run
    extracted are left pending: the next run that extracts them applies them)."""
    with write_transaction(engine) as conn:
        t = conn.execute(text("SELECT logical_time FROM etl_runs WHERE run_id = :r"), {"r": run_id_}).scalar_one()
        later = conn.execute(
            text(_LATER_OK).bindparams(bindparam("ids", expanding=True)),
            {"g": group, "t": t, "ids": list(dealer_ids)},
        ).all()
        caught_up: dict[str, str] = {}
        for dealer_id, later_run in later:
            caught_up.setdefault(dealer_id, later_run)
        for dealer_id, later_run in caught_up.items():
            conn.execute(
                text("UPDATE etl_run_dealers SET caught_up_by = :later WHERE run_id = :r AND dealer_id = :d "
                     "AND status = 'failed' AND caught_up_by IS NULL"),
                {"later": later_run, "r": run_id_, "d": dealer_id},
            )
    return caught_up


def _check_late_part(conn: Connection, run: RunToLoad) -> bool:
    """For a late part: True when its dealers are already applied; StaleChangesError when the
    run is no longer the group's last (a later run caught up) or the state moved."""
    last = last_applied(conn, run.group)
    if last is None or last.run_id != run.run_id:
        raise StaleChangesError(
            f"run {run.run_id}: late dealer(s) {', '.join(run.late_dealers)} cannot be added: "
            f"{'no run' if last is None else 'run ' + last.run_id} is the group's last applied run now.",
            fix=f"clear the `load` task of run {run.run_id}: it records the dealers as caught up by the later run",
        )
    return not set(run.late_dealers) & set(unapplied_dealers(conn, run.run_id))


_ADD_LATE_COUNTS = """UPDATE etl_runs SET status = :status, dealers_ok = dealers_ok + :dealers_ok,
    dealers_failed = dealers_failed - :dealers_ok, vehicles_seen = vehicles_seen + :vehicles_seen,
    sr_created = sr_created + :sr_created, sr_updated = sr_updated + :sr_updated,
    sr_anchor_reset = sr_anchor_reset + :sr_anchor_reset, sr_auto_closed = sr_auto_closed + :sr_auto_closed,
    vehicles_unchanged = vehicles_unchanged + :vehicles_unchanged,
    vehicles_ignored = vehicles_ignored + :vehicles_ignored, quarantined = quarantined + :quarantined,
    counts_json = :counts_json
WHERE run_id = :run_id"""


def merge_counts(old: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """A run's counts_json plus a late part's: by_dealer entries joined, totals summed."""
    by_dealer = {**old.get("by_dealer", {}), **part.get("by_dealer", {})}
    keys = dict.fromkeys([*old.get("totals", {}), *part.get("totals", {})])
    totals = {k: int(old.get("totals", {}).get(k, 0)) + int(part.get("totals", {}).get(k, 0)) for k in keys}
    return {**old, **part, "by_dealer": by_dealer, "totals": totals}


def _finish_late_part(conn: Connection, run: RunToLoad, counts: dict[str, int]) -> None:
    """etl_runs of a late part: counts added, status success once no dealer is left failed."""
    old = conn.execute(text("SELECT counts_json FROM etl_runs WHERE run_id = :r"), {"r": run.run_id}).scalar_one()
    left = conn.execute(
        text("SELECT COUNT(*) FROM etl_run_dealers WHERE run_id = :r AND dataset = 'vehicles' AND status = 'failed'"),
        {"r": run.run_id},
    ).scalar_one()
    conn.execute(text(_ADD_LATE_COUNTS), {
        **counts, "run_id": run.run_id, "status": "partial" if left else "success",
        "counts_json": json.dumps(merge_counts(json.loads(old or "{}"), run.counts), sort_keys=True, default=str),
    })


def run_exists(conn: Connection, run_id_: str) -> bool:
    """Whether etl_runs holds this run (it was applied)."""
    return conn.execute(text("SELECT 1 FROM etl_runs WHERE run_id = :r"), {"r": run_id_}).first() is not None


def _check_order(conn: Connection, run: RunToLoad) -> bool:
    """True when the run is already applied; raise RunOrderError when it is out of order."""
    last = last_applied(conn, run.group)
    if last is None:
        return False
    if run_exists(conn, run.run_id):
        return True
    if last.logical_time > run.T:
        raise RunOrderError(
            f"group {run.group}: run {run.run_id} (logical time {run.T.isoformat()}) is older than the last applied "
            f"run {last.run_id} ({last.logical_time.isoformat()}); runs of a group apply in logical-time order, so "
            "it was not loaded.",
            fix=f"to apply it, rebuild the warehouse from the landing area in feed-time order: `dealer-feed replay "
                f"{run.group} --url NEW_EMPTY_WAREHOUSE_URL`, then point the warehouse connection at it; to backfill "
                f"instead, pick logical times after {last.logical_time.isoformat()} (e.g. `airflow dags backfill "
                "--from-date` after that time) (docs/RUNBOOK.md).",
        )
    return False


def _check_frames(run: RunToLoad, tables: dict[str, pa.Table]) -> None:
    if run.status not in ("success", "partial"):
        raise LoadDataError(f"run {run.run_id}: status must be 'success' or 'partial', not {run.status!r}")
    for name, cols in REQUIRED.items():
        table = tables[name]
        missing = [c for c in cols if c not in table.column_names]
        if missing and table.num_rows:
            raise LoadDataError(f"run {run.run_id}: frame {name} lacks column(s) {', '.join(missing)}")


def _with_run_columns(table: pa.Table, run: RunToLoad, **extra: Any) -> pa.Table:
    """The table with the run's constant columns (run_id, dealer_group, `extra`) filled in."""
    return with_columns(table, run_id=run.run_id, dealer_group=run.group, **extra)


def _raw_rows(frame: Any, key: str, source: str) -> pd.DataFrame | None:
    """An optional raw dataset (parts, repair orders) -> dealer_id, row_number (per dealer), key
    (the frame's `source` column), row_json. The row's JSON text is the one per-row step."""
    frame = as_table(frame).to_pandas() if frame is not None else None
    if frame is None or frame.empty:
        return None
    lines = frame.to_json(orient="records", lines=True, date_format="iso", date_unit="s").splitlines()
    out = pd.DataFrame({
        "dealer_id": frame["dealer_id"].astype("str"),
        "row_number": frame.groupby("dealer_id", sort=False).cumcount(),
        key: frame[source] if source in frame.columns else None,
        "row_json": lines,
    })
    return out


def _value_counts(table: pa.Table, column: str) -> dict[str, int]:
    if not table.num_rows or column not in table.column_names:
        return {}
    return {str(c["values"]): int(c["counts"]) for c in pc.value_counts(table.column(column)).to_pylist()}


def _counts(tables: dict[str, pa.Table]) -> dict[str, int]:
    ev = _value_counts(tables["events"], "kind")
    out = _value_counts(tables["feed_vehicles"], "outcome")
    st = tables["dealer_statuses"]
    vehicles = st.filter(pc.equal(st.column("dataset"), "vehicles")) if st.num_rows else st
    status = _value_counts(vehicles, "status")
    srs = tables["service_requests"]
    return {
        "dealers_ok": status.get("ok", 0),
        "dealers_failed": status.get("failed", 0),
        "vehicles_seen": tables["feed_vehicles"].num_rows,
        "sr_created": int(pc.sum(srs.column("is_new").cast(pa.int64())).as_py() or 0) if srs.num_rows else 0,
        "sr_updated": ev.get("updated", 0),
        "sr_anchor_reset": ev.get("anchor_reset", 0),
        "sr_auto_closed": ev.get("auto_closed", 0),
        "vehicles_unchanged": out.get("unchanged", 0),
        "vehicles_ignored": out.get("ignored", 0),
        "quarantined": tables["quarantine"].num_rows,
    }


def _insert_run_row(conn: Connection, run: RunToLoad, load_started_at: datetime, counts: dict[str, int]) -> None:
    """The run's etl_runs row (parent of everything else the run writes)."""
    conn.execute(
        text("""INSERT INTO etl_runs (run_id, dealer_group, logical_time, airflow_run_id, status, started_at,
                load_started_at, loaded_at, load_seconds, dealers_ok, dealers_failed, vehicles_seen, sr_created,
                sr_updated, sr_anchor_reset, sr_auto_closed, vehicles_unchanged, vehicles_ignored, quarantined,
                counts_json)
                VALUES (:run_id, :g, :t, :airflow_run_id, :status, :started_at, :load_started_at,
                :load_started_at, 0, :dealers_ok, :dealers_failed, :vehicles_seen, :sr_created, :sr_updated,
                :sr_anchor_reset, :sr_auto_closed, :vehicles_unchanged, :vehicles_ignored, :quarantined,
                :counts_json)"""),
        {
            "run_id": run.run_id, "g": run.group, "t": ts_param(conn, run.T),
            "airflow_run_id": run.airflow_run_id, "status": run.status,
            "started_at": ts_param(conn, run.started_at),
            "load_started_at": ts_param(conn, load_started_at),
            "counts_json": json.dumps(run.counts, sort_keys=True, default=str),
            **counts,
        },
    )


def apply_run(
    engine: Engine,
    run: RunToLoad,
    *,
    on_step: Callable[[str, Connection], None] | None = None,
) -> LoadResult:
    """Apply `run` in one transaction; idempotent; refuses runs older than the group's last.

    `on_step(name, conn)` is called inside the transaction after each phase ("staged",
    "merged", "appended", "before_commit"); tests use it to inject a crash. With
    `run.late_dealers`, adds those dealers' part to the applied run (module doc).
    """
    started = time.perf_counter()
    load_started_at = datetime.now(timezone.utc)
    tables = {name: as_table(getattr(run, name)) for name in
              ("service_requests", "events", "feed_vehicles", "quarantine", "dealer_statuses")}
    _check_frames(run, tables)
    dialect = engine.dialect.name
    T = run.T
    late = bool(run.late_dealers)
    # Cheap early exit for reruns (checked again under the lock below).
    with missing_tables_as_not_migrated(engine), engine.connect() as conn:
        if not late and run_exists(conn, run.run_id):
            log.info("run %s is already applied; nothing to do", run.run_id)
            return LoadResult(run.run_id, "already_applied", {}, time.perf_counter() - started)

    # Convert tables before taking any lock: the lock is held only for database work.
    events = tables["events"]
    feed = tables["feed_vehicles"]
    prepared = {
        "stage_sr": prepare(with_columns(tables["service_requests"], dealer_group=run.group), SR_SPEC, dialect),
        "service_request_events": prepare(
            _with_run_columns(events, run, event_at=T, event_no=pa.array(range(events.num_rows), pa.int64())),
            EVENT_SPEC, dialect,
        ),
        "feed_vehicles": prepare(
            _with_run_columns(feed.rename_columns([FEED_RENAMES.get(c, c) for c in feed.column_names]), run,
                              logical_time=T), FEED_SPEC, dialect,
        ),
        "quarantine": prepare(_with_run_columns(tables["quarantine"], run), QUARANTINE_SPEC, dialect),
        "etl_run_dealers": prepare(_with_run_columns(tables["dealer_statuses"], run, logical_time=T), DEALER_SPEC,
                                   dialect),
    }
    for table, frame, key, source, spec in (
        ("parts_inventory", run.parts, "part_number", "part_number", PARTS_SPEC),
        ("repair_orders", run.repair_orders, "ro_number", "repair_order_number", RO_SPEC),
    ):
        raw = _raw_rows(frame, key, source)
        prepared[table] = prepare(_with_run_columns(as_table(raw), run, logical_time=T), spec, dialect)
    counts = _counts(tables)

    timings = {"prepare": time.perf_counter() - started}
    mark = [time.perf_counter()]

    def step(name: str, conn: Connection) -> None:
        now = time.perf_counter()
        timings[name] = now - mark[0]
        mark[0] = now
        if on_step is not None:
            on_step(name, conn)

    rows: dict[str, int] = {}
    try:
        with write_transaction(engine) as conn:
            if dialect == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": group_lock_key(run.group)})
            if _check_late_part(conn, run) if late else _check_order(conn, run):
                log.info("run %s is already applied; nothing to do", run.run_id)
                return LoadResult(run.run_id, "already_applied", {}, time.perf_counter() - started)
            _check_state(conn, run)
            if late:
                first_event = conn.execute(
                    text("SELECT COALESCE(MAX(event_no) + 1, 0) FROM service_request_events WHERE run_id = :r"),
                    {"r": run.run_id},
                ).scalar_one()
                events = prepared["service_request_events"]
                prepared["service_request_events"] = with_columns(
                    events, event_no=pc.add(events.column("event_no"), int(first_event)))
                conn.execute(
                    text("DELETE FROM etl_run_dealers WHERE run_id = :r AND dealer_id IN :ids").bindparams(
                        bindparam("ids", expanding=True)),
                    {"r": run.run_id, "ids": list(run.late_dealers)},
                )
            else:
                _insert_run_row(conn, run, load_started_at, counts)

            # -- service requests: stage, cascade, update, insert
            if dialect == "sqlite":
                conn.exec_driver_sql("DROP TABLE IF EXISTS temp.stage_sr")
                conn.exec_driver_sql(_STAGE_SR_DDL)
            else:
                conn.exec_driver_sql(_STAGE_SR_DDL + " ON COMMIT DROP")
            staged = bulk_insert(conn, "stage_sr", prepared["stage_sr"])
            if dialect == "postgresql":
                conn.exec_driver_sql("ANALYZE stage_sr")
            step("staged", conn)
            n_new = counts["sr_created"] if staged else 0
            if staged:
                conn.exec_driver_sql(_MARK_CHANGED)
                for child in ("inspections", "work_orders"):
                    rows[f"{child}_updated"] = conn.exec_driver_sql(_CASCADE.format(child=child)).rowcount
                updated = conn.execute(text(_UPDATE_SRS), {"run_id": run.run_id}).rowcount
                if updated != staged - n_new:
                    missing = conn.exec_driver_sql(
                        "SELECT s.sr_id FROM stage_sr s WHERE s.is_new = 0 AND NOT EXISTS "
                        "(SELECT 1 FROM service_requests sr WHERE sr.sr_id = s.sr_id AND sr.dealer_group = s.dealer_group) "
                        "LIMIT 5"
                    ).scalars().all()
                    raise LoadDataError(
                        f"run {run.run_id}: {staged - n_new - updated} service request(s) to update are not in the "
                        f"warehouse for group {run.group} (e.g. {', '.join(missing)}); was the transform computed "
                        "against another warehouse?"
                    )
                conn.execute(text(_INSERT_SRS), {"run_id": run.run_id})
                rows["service_requests_created"] = n_new
                rows["service_requests_updated"] = updated
            if dialect == "sqlite":
                conn.exec_driver_sql("DROP TABLE temp.stage_sr")
            step("merged", conn)

            # -- append-only frames
            for table in ("service_request_events", "feed_vehicles", "quarantine", "etl_run_dealers",
                          "parts_inventory", "repair_orders"):
                rows[table] = bulk_insert(conn, table, prepared[table])
            step("appended", conn)

            loaded_at = datetime.now(timezone.utc)
            if late:  # the run's own timings stay; its counts and status grow
                _finish_late_part(conn, run, counts)
            else:
                conn.execute(
                    text("UPDATE etl_runs SET loaded_at = :at, load_seconds = :ls, run_seconds = :rs "
                         "WHERE run_id = :r"),
                    {
                        "at": ts_param(conn, loaded_at),
                        "ls": time.perf_counter() - started,
                        "rs": (loaded_at - run.started_at).total_seconds() if run.started_at else None,
                        "r": run.run_id,
                    },
                )
            step("before_commit", conn)
    except Exception as exc:
        if isinstance(exc, DBAPIError):
            raise_if_not_migrated(exc, engine)
        typed = _typed_load_error(exc, run)
        if typed is None:
            raise
        raise typed from exc
    timings["commit"] = time.perf_counter() - mark[0]
    result = LoadResult(run.run_id, "applied", rows, time.perf_counter() - started)
    log.info("%s; phases: %s", result, ", ".join(f"{k} {v:.2f}s" for k, v in timings.items()))
    return result


def _typed_load_error(exc: BaseException, run: RunToLoad) -> WarehouseError | None:
    """A database error of the load, typed by warehouse.errors: a rejected value or constraint is
    permanent (the same files fail again) with a fix line; a lost connection is transient."""
    return typed_db_error(
        exc,
        action=f"load of run {run.run_id} (group {run.group}; nothing was written)",
        data_fix=(
            "a row in this run's change files does not fit {place} (or breaks a constraint); validation should "
            "have quarantined it (docs/VALIDATION.md, warehouse-fit rules). Correct the rule or the data, then "
            "clear this run's `validate` task with downstream (docs/RUNBOOK.md, WarehouseDataError)."
        ),
    )


__all__ = ["AppliedRun", "LoadResult", "RunToLoad", "WarehouseError", "apply_run"]
