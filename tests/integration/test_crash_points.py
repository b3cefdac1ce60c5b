"""SIGKILL of the load at each point of its transaction (issue 14, "Crash points").

A load task can die anywhere: the worker is OOM-killed, the node goes away. The load of a
run is one transaction (`warehouse.load.apply_run`), so whatever the moment, the warehouse
must be exactly as before the load or exactly as after an uninterrupted load, never in
between, and the rerun Airflow makes (retry, or on-call clearing the task) must complete
and end equal to the uninterrupted run, without duplicate events or quarantine rows.

How: the demo group is extracted once from the simulator (real HTTP client) for two
consecutive feed times; per backend run 1 is loaded and run 2 transformed (the state
"before"), and run 2 loaded uninterrupted on a copy (the state "after"). Each case copies
that warehouse and landing area and runs the product's `pipeline.load` of run 2 in a child
Python process (tests/integration/crash_load.py) that SIGKILLs itself at the crash point,
armed from outside the product: SQLAlchemy `before_cursor_execute` / `commit` events, and
for the bulk appends (which go through the driver, not SQLAlchemy) SQLite's statement trace
callback or psycopg's COPY. The test asserts the child died by SIGKILL (exit -9) at that
point, so no case passes without its crash. Points, in the order the load reaches them:

- before_staging: before `CREATE TEMPORARY TABLE stage_sr` (the etl_runs row is already
  inserted in the open transaction; nothing staged);
- after_staging: before the first statement after the staging insert (stage rows in);
- mid_merge: before `UPDATE service_requests` (stage marked, changes cascaded to
  inspections / work_orders; requests neither updated nor inserted);
- mid_events: during the events' bulk append: SQLite after the first row of the
  executemany, PostgreSQL with half of the events' COPY data sent and the COPY never ended;
- before_run_update: every append done, before etl_runs' final `UPDATE ... SET loaded_at`;
- at_commit: every statement done, COMMIT not yet sent;
- commit_sent (PostgreSQL only): COMMIT sent, its answer never read (the server decides:
  either state is right, the rerun must agree with it; SQLite commits inside the killed
  process, there is nothing "sent");
- after_commit: the load returned, the task dies before reporting success.

Every case then checks: the table hashes (warehouse.reads.table_hash of run_steps.BUSINESS)
and etl_runs' business columns equal "before" or "after" (the exact one where the point
decides it); SQLite `PRAGMA integrity_check` is ok after the crash and after the rerun;
PostgreSQL has ended the dead client's session (no backend, so no lock, left: the rerun
also runs with a lock_timeout so a leftover lock fails instead of hanging); the rerun
applies from "before" or is "already applied" from "after", then equals "after", with the
reference's events, quarantine and feed rows per run (none duplicated, none lost).
"""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import dealer_feed
import reliability
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD, load_world
from run_steps import Steps

pytestmark = pytest.mark.reliability

CHILD = Path(__file__).with_name("crash_load.py")
FIRST, CRASHED = 0, 1
"""Days (run_steps.DAYS) of the run applied before and of the run whose load is killed."""
EXPECTED = {
    "before_staging": "before", "after_staging": "before", "mid_merge": "before", "mid_events": "before",
    "before_run_update": "before", "at_commit": "before", "commit_sent": None, "after_commit": "after",
}
"""The state each point must leave (None: either; the rerun must agree with it)."""
CASES = [("sqlite", p) for p in EXPECTED if p != "commit_sent"] + [("postgresql", p) for p in EXPECTED]
PER_RUN = {
    "events": "SELECT run_id, COUNT(*), COUNT(DISTINCT sr_id || kind || COALESCE(reason, '')) "
              "FROM service_request_events GROUP BY run_id",
    "quarantine": "SELECT run_id, COUNT(*), COUNT(DISTINCT dealer_id || dataset || row_json) "
                  "FROM quarantine GROUP BY run_id",
    "feed_vehicles": "SELECT run_id, COUNT(*), COUNT(DISTINCT dealer_id || vin) FROM feed_vehicles GROUP BY run_id",
}
"""Rows per run, and distinct rows by content (a duplicate with a new key would show)."""
SETTLE_SECONDS = 15
PG_TEMPLATE = "crash_points_before"


def _rows(steps: Steps, sql: str) -> list[tuple]:
    with steps.engine.connect() as conn:
        return sorted(tuple(map(str, r)) for r in conn.execute(sa.text(sql)))


def _per_run(steps: Steps) -> dict[str, list[tuple]]:
    return {name: _rows(steps, sql) for name, sql in PER_RUN.items()}


def _vehicles(steps: Steps) -> Counter:
    return Counter(_rows(steps, "SELECT run_id, dealer_id, vin FROM feed_vehicles"))


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with start_background(load_world(DEMO_WORLD)) as handle:
        yield handle.url


@pytest.fixture(scope="module")
def extracted(sim: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both runs' extract output (real client, real validation), the second after the first applied."""
    base = tmp_path_factory.mktemp("extracted")
    steps = Steps(f"sqlite:///{base / 'scratch.db'}", base / "landing", sim)
    assert steps.run(FIRST)["status"] == "applied"
    steps.extract(CRASHED)
    steps.close()
    return base / "landing"


class SqliteCopies:
    """Copies of the SQLite "before" warehouse (a file; SQLite's backup API, so WAL state does not matter)."""

    dialect = "sqlite"

    def __init__(self, base: Path) -> None:
        self.url = f"sqlite:///{base / 'before.db'}"

    def clone(self, case: Path) -> str:
        target = case / "warehouse.db"
        with closing(sqlite3.connect(sa.make_url(self.url).database)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
        return f"sqlite:///{target}"

    def settle(self, url: str) -> None:
        """After the crash: the file (and the WAL the dead process left) is sound."""
        assert_sqlite_sound(url)


class PgCopies:
    """Copies of the PostgreSQL "before" warehouse (CREATE DATABASE ... TEMPLATE)."""

    dialect = "postgresql"

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.create_database(PG_TEMPLATE)

    def _admin(self, sql: str, *params: Any) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.server.dsn(), autocommit=True) as conn:
            cur = conn.execute(sql, params)
            return cur.fetchall() if cur.description else []

    def clone(self, case: Path) -> str:
        name = f"crash_{case.name.lower()}"[-60:]
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE "{PG_TEMPLATE}"')
        return self.server.url(name)

    def settle(self, url: str) -> None:
        """After the crash: the server noticed the dead client and ended its session (its
        transaction and advisory lock with it); nothing is connected to the case database."""
        name = sa.make_url(url).database
        deadline = time.monotonic() + SETTLE_SECONDS
        while left := self._admin("SELECT pid, state, query FROM pg_stat_activity WHERE datname = %s", name):
            assert time.monotonic() < deadline, f"the killed client's session is still on the server: {left}"
            time.sleep(0.05)


def assert_sqlite_sound(url: str) -> None:
    with closing(sqlite3.connect(sa.make_url(url).database)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


@dataclass(frozen=True)
class Backend:
    """One dialect's "before" warehouse (run 1 applied, run 2 transformed) and landing area, and the
    references: business tables before and after run 2's uninterrupted load, rows per run, feed rows."""

    copies: SqliteCopies | PgCopies
    landing: Path
    before: dict[str, Any]
    after: dict[str, Any]
    per_run: dict[str, list[tuple]]
    vehicles: Counter


@pytest.fixture(scope="module")
def prepared() -> dict[str, Backend]:
    """Each dialect's Backend, prepared by its first case (a parametrized module fixture would be
    prepared again for every case: the cases are (dialect, point) pairs, not a product)."""
    return {}


@pytest.fixture
def backend(request: pytest.FixtureRequest, prepared: dict[str, Backend], extracted: Path,
            tmp_path_factory: pytest.TempPathFactory) -> Backend:
    dialect = request.param
    if dialect not in prepared:
        base = tmp_path_factory.mktemp(f"crash_{dialect}")
        copies = SqliteCopies(base) if dialect == "sqlite" else PgCopies(request.getfixturevalue("pg_server"))
        prepared[dialect] = _prepare(copies, extracted, base)
    return prepared[dialect]


def _prepare(copies: SqliteCopies | PgCopies, extracted: Path, base: Path) -> Backend:
    steps = Steps(copies.url, base / "landing")
    for day in (FIRST, CRASHED):
        steps.copy_extract_from(extracted, day)
        steps.transform(day)
        if day == FIRST:
            assert steps.load(day)["status"] == "applied"
    before = steps.business()
    steps.close()

    case = base / "reference"
    case.mkdir()
    shutil.copytree(base / "landing", case / "landing")
    reference = Steps(copies.clone(case), case / "landing")
    assert reference.load(CRASHED)["status"] == "applied"
    backend = Backend(copies, base / "landing", before, reference.business(), _per_run(reference),
                      _vehicles(reference))
    reference.close()
    assert backend.after != backend.before
    return backend


def _crash(url: str, landing: Path, point: str) -> subprocess.CompletedProcess:
    tests = Path(__file__).parents[1]
    path = [str(Path(dealer_feed.__file__).parents[1]), str(tests), str(tests / "integration")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(path + [os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(CHILD), url, str(landing), str(CRASHED), point], env=env,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def _with_lock_timeout(url: str) -> str:
    """PostgreSQL: a lock left behind fails the rerun after 10 s instead of hanging it."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "postgresql":
        return url
    return parsed.update_query_dict({"options": "-c lock_timeout=10s"}).render_as_string(hide_password=False)


@pytest.mark.parametrize(("backend", "point"), CASES, indirect=["backend"], ids=[f"{d}-{p}" for d, p in CASES])
def test_sigkill_of_the_load_leaves_before_or_after_and_the_rerun_completes(backend: Backend, point: str,
                                                                              tmp_path: Path) -> None:
    shutil.copytree(backend.landing, tmp_path / "landing")
    url = backend.copies.clone(tmp_path)

    child = _crash(url, tmp_path / "landing", point)
    output = child.stdout[-2000:] + child.stderr[-3000:]
    assert child.returncode == -signal.SIGKILL, f"the load was not killed at {point}:\n{output}"
    assert f"CRASH {point}:" in child.stdout, output
    reliability.record("crash points", crashes=1)

    backend.copies.settle(url)
    steps = Steps(_with_lock_timeout(url), tmp_path / "landing")
    try:
        crashed = steps.business()
        state = next((name for name, ref in (("before", backend.before), ("after", backend.after))
                      if crashed == ref), None)
        tables = {t: "before" if crashed[t] == backend.before[t] else "after" if crashed[t] == backend.after[t]
                  else "neither" for t in crashed}
        assert state is not None, f"crash at {point} left the warehouse between before and after: {tables}"
        if EXPECTED[point]:
            assert state == EXPECTED[point], f"crash at {point} left the state {state!r}"

        rerun = steps.load(CRASHED)
        assert rerun["status"] == ("applied" if state == "before" else "already_applied")
        lost = backend.vehicles - _vehicles(steps)
        reliability.record("crash points", rows_lost=sum(lost.values()))
        assert not lost, f"vehicles missing after the rerun: {sorted(lost)[:5]}"
        assert _per_run(steps) == backend.per_run
        assert steps.business() == backend.after
    finally:
        steps.close()
    if backend.copies.dialect == "sqlite":
        assert_sqlite_sound(url)
