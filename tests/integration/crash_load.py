"""Run the load of one demo run and SIGKILL this process at a crash point (tests/integration/test_crash_points.py).

    python crash_load.py URL LANDING DAY POINT

The load is the product's own `pipeline.load` (one transaction, `warehouse.load.apply_run`);
nothing in the product knows about crashes. The crash is armed from outside: SQLAlchemy
events on the engine (`before_cursor_execute`, `commit`) and, for the bulk appends that
bypass SQLAlchemy, the driver (SQLite's statement trace callback, psycopg's COPY). Before
dying the process prints `CRASH <point>: <what was about to happen>` so the test can show
where it died; the test asserts the exit was SIGKILL, so a point that is never reached fails.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

EVENTS_TABLE = "service_request_events"
POINTS = ("before_staging", "after_staging", "mid_merge", "mid_events", "before_run_update", "at_commit",
          "commit_sent", "after_commit")
"""In the order a load reaches them; test_crash_points.py documents each."""


def die(point: str, what: str) -> None:
    print(f"CRASH {point}: {' '.join(what.split())[:120]}", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)


def arm(engine: Engine, point: str) -> None:
    """Register what kills the process at `point` (every point but after_commit, which the caller handles)."""
    stage_created = False

    @event.listens_for(engine, "before_cursor_execute")
    def _before(conn: Any, cursor: Any, statement: str, params: Any, context: Any, executemany: bool) -> None:
        nonlocal stage_created
        sql = " ".join(statement.split())
        if sql.startswith("CREATE TEMPORARY TABLE stage_sr"):
            if point == "before_staging":
                die(point, sql)
            stage_created = True  # the staged rows go in next, through the driver (invisible here)
        elif stage_created and point == "after_staging":
            die(point, sql)  # the first statement SQLAlchemy sees after the staging insert
        elif point == "mid_merge" and sql.startswith("UPDATE service_requests SET"):
            die(point, sql)  # stage marked and cascaded to inspections / work_orders; requests not yet
        elif point == "before_run_update" and sql.startswith("UPDATE etl_runs SET loaded_at"):
            die(point, sql)  # every append done; etl_runs' final update next

    if point in ("at_commit", "commit_sent"):
        @event.listens_for(engine, "commit")
        def _commit(conn: Any) -> None:
            if point == "commit_sent":  # PostgreSQL: COMMIT on the wire, its answer never read
                pgconn = conn.connection.driver_connection.pgconn
                pgconn.send_query(b"COMMIT")
                while pgconn.flush():
                    pass
            die(point, "COMMIT")

    if point == "mid_events":
        _arm_mid_events(engine)


def _arm_mid_events(engine: Engine) -> None:
    """Die with part of the events written: the events go in through the driver's bulk path."""
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _trace(dbapi_conn: Any, _record: Any) -> None:
            rows = 0

            def trace(sql: str) -> None:  # called as each row of the executemany starts
                nonlocal rows
                if sql.startswith(f"INSERT INTO {EVENTS_TABLE} "):
                    rows += 1
                    if rows == 2:
                        die("mid_events", f"row 2 of the events' executemany: {sql}")

            dbapi_conn.set_trace_callback(trace)
        return

    import psycopg

    copy = psycopg.Cursor.copy

    @contextlib.contextmanager
    def crashing_copy(self: Any, statement: Any, *args: Any, **kwargs: Any) -> Any:
        with copy(self, statement, *args, **kwargs) as cp:
            if f"COPY {EVENTS_TABLE} " in str(statement):
                write: Callable[[Any], None] = cp.write

                def half_then_die(data: Any) -> None:  # half the CSV on the wire, the COPY never ended
                    write(data[: len(data) // 2])
                    die("mid_events", f"half of the events' COPY sent: {statement}")

                cp.write = half_then_die
            yield cp

    psycopg.Cursor.copy = crashing_copy


def main(url: str, landing: str, day: str, point: str) -> None:
    from dealer_feed import pipeline
    from dealer_feed.config import find_group
    from dealer_feed.warehouse import make_engine
    from run_steps import DAYS

    if point not in POINTS:
        raise SystemExit(f"unknown crash point {point!r}; known: {', '.join(POINTS)}")
    engine = make_engine(url)
    arm(engine, point)
    ctx = pipeline.RunContext(group=find_group("demo"), logical_time=DAYS[int(day)], landing=Path(landing))
    result = pipeline.load(ctx, engine)
    if point == "after_commit":
        die(point, f"load returned {result['status']}")
    print(f"NO CRASH: load returned {result['status']}", flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
