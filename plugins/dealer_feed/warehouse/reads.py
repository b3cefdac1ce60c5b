"""What the pipeline reads from the warehouse: one query each, straight into pandas."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pandas as pd
from sqlalchemy import Connection, Engine, bindparam, text

from dealer_feed.config import SQL_DIR
from dealer_feed.contract.identity import run_id
from dealer_feed.rules.frames import SR_COLUMNS, SR_TIMESTAMPS, utc_column
from dealer_feed.warehouse._frames import ts_param
from dealer_feed.warehouse.load import (
    AppliedRun,
    group_state,
    last_applied,
    missing_tables_as_not_migrated,
    run_exists,
    unapplied_dealers,
)

SR_STRINGS = tuple(c for c in SR_COLUMNS if c not in SR_TIMESTAMPS)

_RELEVANT_SRS = f"""
SELECT {", ".join(SR_COLUMNS)} FROM service_requests
WHERE dealer_group = :g AND status = 'active'
UNION ALL
SELECT {", ".join(SR_COLUMNS)} FROM service_requests
WHERE dealer_group = :g AND status <> 'active' AND created_at >= :since AND created_at <= :t
"""


def read_frame(conn: Connection, sql: str, params: dict | None = None) -> pd.DataFrame:
    """One query's result as a DataFrame (a missing table becomes NotMigratedError)."""
    with missing_tables_as_not_migrated(conn):
        result = conn.execute(text(sql), params or {})
        columns = list(result.keys())
        # Plain tuples: pandas probes each SQLAlchemy Row for attributes (two caught exceptions a
        # row), which was most of the transform's SR read (bench/bench_growth.py profile).
        rows = [tuple(row) for row in result]
    return pd.DataFrame(rows, columns=columns)


def read_relevant_srs(engine: Engine, group: str, logical_time: datetime, max_ignore_days: int) -> pd.DataFrame:
    """The engine's `srs` input: every active SR of the group, plus SRs of any status
    created within `max_ignore_days` before T (for Ignore if SR with VIN exists).

    Columns SR_COLUMNS; strings as pandas `str`; timestamps datetime64[us, UTC]; sorted by sr_id.
    """
    T = logical_time
    since = T - timedelta(days=max_ignore_days)
    with engine.connect() as conn:
        params = {"g": group, "since": ts_param(conn, since), "t": ts_param(conn, T)}
        frame = read_frame(conn, _RELEVANT_SRS, params)
    for c in SR_TIMESTAMPS:
        frame[c] = utc_column(frame[c], text_format="ISO8601")  # the stored spelling: parsed vectorised
    for c in SR_STRINGS:
        frame[c] = frame[c].astype("str")
    return frame.sort_values("sr_id", ignore_index=True)[list(SR_COLUMNS)]


def previous_good_rows(
    engine: Engine, group: str, dealer_ids: Iterable[str], before: datetime
) -> dict[str, int | None]:
    """{dealer_id: good vehicle rows in its last run before `before` where its extract was ok, or None}.

    Feeds the empty-feed guard ("empty when the dealer had vehicles last run").
    """
    ids = list(dict.fromkeys(dealer_ids))
    result: dict[str, int | None] = dict.fromkeys(ids)
    if not ids:
        return result
    query = text("""
        SELECT d.dealer_id, d.good FROM etl_run_dealers d
        WHERE d.dealer_group = :g AND d.dataset = 'vehicles' AND d.status = 'ok' AND d.dealer_id IN :ids
          AND d.logical_time = (
              SELECT MAX(d2.logical_time) FROM etl_run_dealers d2
              WHERE d2.dealer_group = d.dealer_group AND d2.dealer_id = d.dealer_id
                AND d2.dataset = 'vehicles' AND d2.status = 'ok' AND d2.logical_time < :before)
    """).bindparams(bindparam("ids", expanding=True))
    with missing_tables_as_not_migrated(engine), engine.connect() as conn:
        rows = conn.execute(query, {"g": group, "ids": ids, "before": ts_param(conn, before)}).all()
    for dealer_id, good in rows:
        result[dealer_id] = int(good)
    return result


def last_applied_run(engine: Engine, group: str) -> AppliedRun | None:
    """The group's most recent applied run (run_id, aware-UTC logical_time, status), or None."""
    with engine.connect() as conn:
        return last_applied(conn, group)


def current_state(engine: Engine, group: str) -> str:
    """The group's warehouse state token (load.group_state): what a transform is based on."""
    with engine.connect() as conn:
        return group_state(conn, group)


def failed_dealers(engine: Engine, run_id_: str) -> list[str]:
    """Dealers whose vehicles failed in the applied run `run_id_`, neither applied nor caught up since."""
    with engine.connect() as conn:
        return unapplied_dealers(conn, run_id_)


def run_is_applied(engine: Engine, group: str, logical_time: datetime) -> bool:
    with missing_tables_as_not_migrated(engine), engine.connect() as conn:
        return run_exists(conn, run_id(group, logical_time))


def run_history(engine: Engine, group: str, limit: int = 20) -> pd.DataFrame:
    """The group's last `limit` runs from v_run_history, newest first."""
    with engine.connect() as conn:
        return read_frame(
            conn, "SELECT * FROM v_run_history WHERE dealer_group = :g ORDER BY logical_time DESC LIMIT :n",
            {"g": group, "n": limit},
        )


SR_COUNTS_SQL = SQL_DIR / "queries" / "service_requests_by_status.sql"
"""The one spelling of "service requests per dealer and status" (parameter :dealer_group)."""


def service_request_counts(engine: Engine, group: str) -> pd.DataFrame:
    """dealer_id, status, service_requests of the group (include/sql/queries/service_requests_by_status.sql)."""
    with engine.connect() as conn:
        return read_frame(conn, SR_COUNTS_SQL.read_text(), {"dealer_group": group})


def format_run_summary(engine: Engine, group: str, limit: int = 20) -> str:
    """Plain-text summary for people: recent runs and service requests per dealer and status."""
    runs = run_history(engine, group, limit)
    srs = service_request_counts(engine, group)
    cols = ["run_id", "status", "dealers_ok", "dealers_failed", "vehicles_seen", "sr_created", "sr_updated",
            "sr_anchor_reset", "sr_auto_closed", "vehicles_ignored", "quarantined", "load_seconds"]
    runs_text = runs[cols].sort_values("run_id").to_string(index=False) if len(runs) else "(no runs applied)"
    srs_text = srs.to_string(index=False) if len(srs) else "(no service requests)"
    return f"Runs of group {group}:\n{runs_text}\n\nService requests of group {group}:\n{srs_text}"


BUSINESS_TABLES = ("etl_run_dealers", "service_requests", "service_request_events", "inspections", "work_orders",
                   "feed_vehicles", "quarantine", "parts_inventory", "repair_orders")
"""Tables whose content is a function of the runs applied (etl_runs also holds timings and Airflow ids)."""


def table_hash(engine: Engine, table: str) -> str:
    """sha256 of a table's rows, independent of physical order: equal content, equal hash."""
    import hashlib

    with engine.connect() as conn:
        frame = read_frame(conn, f"SELECT * FROM {table}")  # noqa: S608 - table names are ours, never data
    frame = frame.astype(str).sort_values(list(frame.columns), ignore_index=True)
    return hashlib.sha256(frame.to_csv(index=False).encode()).hexdigest()


def content_hash(engine: Engine, tables: Iterable[str] = BUSINESS_TABLES) -> str:
    """One hash over every business table: two warehouses with equal content print the same value
    (`make demo` prints it, so a reshaping of the code can be shown to change nothing)."""
    import hashlib

    return hashlib.sha256("".join(f"{t}={table_hash(engine, t)};" for t in tables).encode()).hexdigest()
