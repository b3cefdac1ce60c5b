"""Concurrency (issue 14): runs at the same moment end as if they ran one by one.

1. Ten dealer groups' `dealer-feed run` at once, as separate OS processes (tests/forked_cli.py:
   each a forked child running the CLI's main, released together), all writing one new SQLite
   warehouse file and one new PostgreSQL database. Every process exits 0, no lock error
   ("database is locked", deadlock, serialization failure) reaches its stdout/stderr, and the
   warehouses hold what the same groups' runs one by one hold.
2. One group's runs in the orders the scheduler, a backfill and a manual trigger produce:
   (a) backfill ascending; (b) the manual trigger of T3 first, then the backfill of T1, T2
   (refused, RunOrderError pointing at `dealer-feed replay`; the replay equals ascending);
   (c) two runs of the same T at once (one applies, the other says already applied);
   (d) T1 and T2 at once, (c) and (d) as `dealer-feed run` processes. Every end state equals
   ascending by content hash.

Real parts: one simulator over HTTP for the module, real SQLite files, the tests' PostgreSQL.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

import reliability
from dealer_feed.config import find_group
from dealer_feed_tools.demo import connection_env
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD, World
from dealer_feed.warehouse import make_engine
from forked_cli import ForkedCli, Result
from run_steps import DAYS, Steps, business, extract_every_day
from support import ROOT, TABLES

pytestmark = pytest.mark.reliability

GROUPS = tuple(f"conc{n}" for n in range(10))
VENDOR = ("dealer-feed-vendor", "demo-secret")
"""The demo world's vendor (run_steps.Steps extracts with it)."""
LOCK_ERROR = re.compile(r"database is locked|deadlock|could not serialize|serializ\w* failure|Traceback", re.I)


def _world() -> World:
    """The demo world plus one small generated dealer per concurrency group; no rate limit in the way."""
    data = yaml.safe_load(DEMO_WORLD.read_text())
    data["vendors"][0]["requests_per_second"] = 1000
    data["dealers"] += [{"enterprise_code": "CC", "company_number": f"C{n}", "server_name": "itrack1.arkona.com",
                         "inventory": {"generated": {"size": 30, "bad_row_rate": 0.03, "turnover": 0.1}}}
                        for n in range(len(GROUPS))]
    return World.model_validate(data)


def _group_yaml(n: int) -> dict:
    dealer_id = f"CC_C{n}"
    return {
        "group": GROUPS[n],
        "schedule": "0 6 * * *",
        "thresholds": {"max_bad_fraction": 0.3},
        "settings": {
            "track_stock_and_client": {"mode": "for_n_days", "days": 3},
            "auto_close": {"mode": "immediately"},
            "vehicle_type_mapping": [{"system_code": "N", "vehicle_type": "New", "sr_type": "New Vehicle Inspection"}],
            "client_dealer": [{"client": f"Client {n}", "sr_type": "Recon", "dealer_id": dealer_id}],
        },
        "dealers": [{"enterprise_code": "CC", "company_number": f"C{n}", "server_name": "itrack1.arkona.com"}],
    }


@pytest.fixture(scope="module")
def groups_dir(tmp_path_factory) -> Path:
    """The ten groups' files and the demo group's, as DEALER_FEED_GROUPS_DIR."""
    directory = tmp_path_factory.mktemp("groups")
    for n in range(len(GROUPS)):
        (directory / f"{GROUPS[n]}.yaml").write_text(yaml.safe_dump(_group_yaml(n)))
    shutil.copy(ROOT / "include" / "dealer_groups" / "demo.yaml", directory)
    return directory


@pytest.fixture(scope="module")
def sim() -> Iterator[str]:
    with start_background(_world()) as handle:
        yield handle.url


@pytest.fixture(scope="module")
def extracted(sim, tmp_path_factory) -> Path:
    """The demo group's three runs extracted and validated once (Steps.copy_extract_from reuses them)."""
    return extract_every_day(sim, tmp_path_factory.mktemp("extracted"))


@pytest.fixture(scope="module")
def cli(sim, groups_dir, extracted, tmp_path_factory) -> Iterator[ForkedCli]:
    """`dealer-feed` processes; GX warmed up on the demo group's extracted runs (tests/forked_cli.py)."""
    env = dict(connection_env(sim, *VENDOR, "sqlite:///unused.db"),  # runs pass --url
               PYTHONPATH=str(ROOT / "plugins"), DEALER_FEED_GROUPS_DIR=str(groups_dir))
    server = ForkedCli(tmp_path_factory.mktemp("forked"), env, warm=extracted)
    yield server
    server.close()


def run_argv(group: str, at: datetime, url: str) -> list[str]:
    return ["run", group, "--at", at.isoformat(), "--url", url]


def assert_no_lock_error(results: list[Result]) -> None:
    shown = [(r.argv, m.group(0)) for r in results for m in [LOCK_ERROR.search(r.output)] if m]
    assert not shown, f"lock error or traceback shown to the user: {shown}"


def assert_exit_0(results: list[Result]) -> None:
    failed = [(r.argv, r.code, r.stderr[-1500:]) for r in results if r.code != 0]
    assert not failed, failed


def group_counts(url: str) -> dict[tuple[str, ...], int]:
    """Rows per table and group, service requests per status, events per kind: dialect-neutral."""
    queries = {table: f"SELECT dealer_group, count(*) FROM {table} GROUP BY dealer_group" for table in TABLES}  # noqa: S608
    queries["service_requests.status"] = (
        "SELECT dealer_group, status, count(*) FROM service_requests GROUP BY dealer_group, status")
    queries["service_request_events.kind"] = (
        "SELECT dealer_group, kind, count(*) FROM service_request_events GROUP BY dealer_group, kind")
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return {(name, *map(str, row[:-1])): int(row[-1])
                    for name, sql in queries.items() for row in conn.execute(sa.text(sql))}
    finally:
        engine.dispose()


def rows_lost(reference: dict, got: dict) -> int:
    return sum(max(0, n - got.get(key, 0)) for key, n in reference.items())


# --------------------------------------------------------------------------- ten groups at once


def test_ten_groups_at_once_equal_the_groups_one_by_one(cli, groups_dir, pg_url, tmp_path):
    """Ten groups' runs at once into one new SQLite file and one new PostgreSQL database (twenty
    processes: concurrent migrations of an empty warehouse, then concurrent loads). Reference: the SQLite runs' landed feeds applied group after group into a new
    warehouse (`dealer-feed replay`'s function): equal table hashes on SQLite; equal per-group
    counts and run ledger on PostgreSQL (its runs extracted the same feeds on their own)."""
    from dealer_feed.runner import replay_group

    urls = {"sqlite": f"sqlite:///{tmp_path / 'warehouse.db'}", "postgresql": pg_url}
    times = DAYS[:1]  # each child costs ~1 s of CPU: a second feed time would double the test's time
    results = [r for at in times for r in cli.batch(*(
        (run_argv(group, at, url), {"DEALER_FEED_DATA_DIR": str(tmp_path / dialect)})
        for group in GROUPS for dialect, url in urls.items()))]

    reference_url = f"sqlite:///{tmp_path / 'one_by_one.db'}"
    engine = make_engine(reference_url)
    replayed = [r["status"] for group in GROUPS for r in replay_group(
        find_group(group, groups_dir), engine, landing=tmp_path / "sqlite" / "landing", say=lambda _line: None)]
    reference = {"counts": group_counts(reference_url), **business(engine)}
    engine.dispose()
    got = {}
    for dialect, url in urls.items():
        engine = make_engine(url)
        got[dialect] = {"counts": group_counts(url), **business(engine)}
        engine.dispose()
    lost = sum(rows_lost(reference["counts"], g["counts"]) for g in got.values())
    reliability.record("concurrency", orders_tried=len(urls) * len(times), rows_lost=lost)

    assert len(results) == 2 * len(GROUPS) * len(times)
    assert_exit_0(results)
    assert_no_lock_error(results)
    assert all(" applied (" in r.stdout for r in results)
    assert replayed == ["applied"] * len(GROUPS) * len(times)
    assert {key[1] for key in reference["counts"]} == set(GROUPS)
    assert len(reference["etl_runs"]) == len(GROUPS) * len(times)
    assert got["sqlite"] == reference  # table hashes compare within a dialect
    assert got["postgresql"]["counts"] == reference["counts"]
    assert got["postgresql"]["etl_runs"] == reference["etl_runs"]


# --------------------------------------------------------------------------- one group, every order


@pytest.fixture(params=["sqlite", "postgresql"])
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[str], str]]:
    """`new_url(name)`: a new empty warehouse of the test's dialect (hashes compare within one)."""
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    made: list[str] = []

    def make(name: str) -> str:
        if server is None:
            return f"sqlite:///{tmp_path / f'{name}.db'}"
        made.append(f"t_conc_{name}_{id(request) % 100000}")
        return server.create_database(made[-1])

    yield make
    for database in made:
        try:
            server.drop_database(database)
        except Exception:  # noqa: BLE001 - best effort; the server directory goes at session end
            pass


def _steps(url: str, landing: Path, extracted: Path) -> Steps:
    steps = Steps(url, landing)
    for day in range(3):
        steps.copy_extract_from(extracted, day)
    return steps


def _apply(steps: Steps, day: int) -> dict:
    """Transform and load of an extracted run (Steps.run without its extract)."""
    steps.transform(day)
    return steps.load(day)


def _replayed(url: str, landing: Path) -> Steps:
    """A new warehouse rebuilt from the landing area by `dealer-feed replay`'s function."""
    from dealer_feed.runner import replay_group

    steps = Steps(url, landing)
    replay_group(steps.group, steps.engine, landing=landing, say=lambda _line: None)
    return steps


def test_one_group_in_every_order_ends_equal_to_ascending(cli, extracted, new_url, tmp_path):
    from dealer_feed.airflow_edge.alerts import fix_line
    from dealer_feed.warehouse.errors import RunOrderError

    # (a) backfill ascending T1, T2, T3: the reference
    ascending = _steps(new_url("a"), tmp_path / "a", extracted)
    assert [_apply(ascending, day)["status"] for day in range(3)] == ["applied"] * 3
    reference = ascending.business()
    ends = {"a": ascending}

    # (b) manual trigger of T3 first, then the backfill of T1, T2: refused, recovered by replay
    manual_first = _steps(new_url("b"), tmp_path / "b", extracted)
    assert _apply(manual_first, 2)["status"] == "applied"
    for day in (0, 1):
        manual_first.transform(day)
        with pytest.raises(RunOrderError) as refused:
            manual_first.load(day)
        assert "`dealer-feed replay demo --url NEW_EMPTY_WAREHOUSE_URL`" in fix_line(refused.value)
    with manual_first.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT run_id FROM etl_runs")).scalars().all() == ["demo:20261122T060000Z"]
    ends["b"] = _replayed(new_url("b_replayed"), tmp_path / "b")

    # (d) T1 and T2 at once, then (c) two runs of T3 at once: separate `dealer-feed run` processes
    url, data = new_url("cd"), {"DEALER_FEED_DATA_DIR": str(tmp_path / "cd")}
    first, second = cli.batch((run_argv("demo", DAYS[0], url), data), (run_argv("demo", DAYS[1], url), data))
    t3_twice = cli.batch(*[(run_argv("demo", DAYS[2], url), data)] * 2)
    if first.code == 0:  # T1's load went first; T2's changes, computed before it, were recomputed
        ends["cd"] = Steps(url, tmp_path / "cd" / "landing")
    else:  # T2's load went first: T1 is refused as in (b)
        assert "is older than the last applied run" in first.stderr and "dealer-feed replay demo" in first.stderr
        ends["cd"] = _replayed(new_url("cd_replayed"), tmp_path / "cd" / "landing")

    hashes = {name: steps.business() for name, steps in ends.items()}
    counts = {name: group_counts(steps.url) for name, steps in ends.items()}
    for steps in ends.values():
        steps.close()
    reliability.record("concurrency", orders_tried=4,
                       rows_lost=sum(rows_lost(counts["a"], c) for c in counts.values()))

    assert_exit_0([second, *t3_twice])
    assert_no_lock_error([first, second, *t3_twice])
    assert sorted(" applied (" in r.stdout for r in t3_twice) == [False, True]
    assert any("load: run demo:20261122T060000Z already applied; nothing changed" in r.stdout for r in t3_twice)
    assert {name: h == reference for name, h in hashes.items()} == dict.fromkeys(ends, True)
