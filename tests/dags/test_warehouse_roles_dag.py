"""Issue 14, defects 2 and 3, under real Airflow (dag.test) on PostgreSQL with the documented roles.

The owner (a non-superuser that owns the database) migrates with `dealer-feed migrate`; the
DAG's warehouse connection is a login in `dealer_feed_loader`, which may not create tables:
its `migrate` task only reads the schema version and every task runs. The feed holds values
at every length-limited column's limit and one past (tests/fit_world.py): the over-long rows
are quarantined with their rule and the rest loads. Then a login in `dealer_feed_analyst` reads
every analyst view. Day 2: the owner narrows a column behind validation's back, so the load
hits a data error: it fails at once (no retry) with a fix line, and the watcher says nothing
of the run was loaded.
"""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import psycopg
import pytest
import sqlalchemy as sa
from fit_world import DAY1, GROUP, PASSWORD, expected_loaded, expected_quarantine, write

import pgserver
from dealer_feed import cli
from dealer_feed_tools.demo import connection_env, group_dag
from dealer_feed_tools.simulator import start_background

DATABASE, OWNER, LOADER, ANALYST = "fit_roles_dag", "fit_owner", "fit_loader", "fit_analyst"
ANALYST_VIEWS = ("v_open_service_requests_by_age", "v_auto_closes_per_day", "v_stock_client_changes", "v_feed_churn",
                 "v_run_history", "v_active_request_ages", "v_auto_close_events")


def _admin(server: pgserver.PgServer, *statements: str) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture(scope="module")
def roles():
    """A database owned by a non-superuser owner, migrated by it; URLs of owner, loader and analyst."""
    server = pgserver.get_server()
    _admin(server, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)",
           *(f"DROP ROLE IF EXISTS {r}" for r in (LOADER, ANALYST, OWNER)),
           f"CREATE ROLE {OWNER} LOGIN CREATEROLE", f"CREATE DATABASE {DATABASE} OWNER {OWNER}")
    url = {role: server.url(DATABASE).replace("://postgres@", f"://{role}@") for role in (OWNER, LOADER, ANALYST)}
    assert cli.main(["migrate", "--url", url[OWNER]]) == 0  # as documented: the owner migrates
    _admin(server, f"CREATE ROLE {LOADER} LOGIN IN ROLE dealer_feed_loader",
           f"CREATE ROLE {ANALYST} LOGIN IN ROLE dealer_feed_analyst")
    yield url
    _admin(server, f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)",
           *(f"DROP ROLE IF EXISTS {r}" for r in (LOADER, ANALYST, OWNER)))


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def as_loader(roles, airflow_db, tmp_path_factory, monkeypatch_module):
    """run(day) -> (DagRun, its task instances' (state, try)), the DAG connected as the loader role."""
    import airflow.settings

    tmp = tmp_path_factory.mktemp("fit")
    world, groups, dags = write(tmp)
    mp = monkeypatch_module
    mp.setenv("DEALER_FEED_GROUPS_DIR", str(groups))
    mp.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    mp.setattr(airflow.settings, "DAGS_FOLDER", str(dags))
    mp.setenv("DEALER_FEED_DATA_DIR", str(tmp / "data"))
    _forget_runs(f"dealer_feed_{GROUP}")
    with start_background(world) as sim:
        for key, value in connection_env(sim.url, "vendor", PASSWORD, roles[LOADER]).items():
            mp.setenv(key, value)

        def run(day):
            dag = group_dag(GROUP, dags)
            for task in dag.tasks:  # a retry (the old behaviour) must not take minutes
                task.retry_delay = timedelta(seconds=1)
                task.max_retry_delay = timedelta(seconds=2)
            dr = dag.test(logical_date=day)
            return dr, _tis(dr)

        yield run
    _forget_runs(f"dealer_feed_{GROUP}")


def _forget_runs(dag_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(sa.delete(DagRun).where(DagRun.dag_id == dag_id))


def _tis(dr) -> dict[tuple[str, int], tuple[str, int]]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {(ti.task_id, ti.map_index): (str(ti.state), ti.try_number) for ti in dr.get_task_instances(session=session)}


def rows(url: str, sql: str) -> list[tuple]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def day1(as_loader):
    return as_loader(DAY1)


def test_the_loader_role_runs_the_whole_dag(day1, roles):
    dr, tis = day1
    assert str(dr.state) == "success", tis
    assert tis[("migrate", -1)] == ("success", 1)
    assert tis[("load", -1)] == ("success", 1)
    assert rows(roles[OWNER], "SELECT status, dealers_ok FROM etl_runs") == [("success", 2)]


def test_over_long_values_are_quarantined_and_the_rest_loads(day1, roles):
    quarantined = {(d, json.loads(j)["vin"]): r for d, j, r in rows(roles[OWNER], "SELECT dealer_id, row_json, rules FROM quarantine")}
    assert quarantined == expected_quarantine()
    assert set(rows(roles[OWNER], "SELECT dealer_id, vin FROM feed_vehicles")) == expected_loaded()
    assert rows(roles[OWNER], "SELECT max(length(stock_number)) FROM service_requests") == [(64,)]


def test_the_analyst_reads_every_view_and_writes_nothing(day1, roles):
    analyst = roles[ANALYST]
    for view in ANALYST_VIEWS:
        rows(analyst, f"SELECT * FROM {view}")  # noqa: S608 - fixed names
    assert rows(analyst, "SELECT status, sr_created FROM v_run_history") == [("success", len(expected_loaded()))]
    assert rows(analyst, "SELECT SUM(open_requests) FROM v_open_service_requests_by_age") == [(len(expected_loaded()),)]
    assert rows(analyst, "SELECT SUM(vehicles) FROM v_feed_churn") == [(len(expected_loaded()),)]
    assert rows(analyst, "SELECT current_user") == [(ANALYST,)]
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
        rows(analyst, "DELETE FROM service_requests")


def test_a_data_error_in_the_load_fails_at_once_and_the_watcher_says_nothing_loaded(day1, as_loader, roles, caplog):
    engine = sa.create_engine(roles[OWNER])
    with engine.begin() as conn:  # validation (the DDL files) allows 64; the database now takes 3
        conn.exec_driver_sql("ALTER TABLE feed_vehicles ALTER COLUMN make TYPE VARCHAR(3) USING left(make, 3)")
    engine.dispose()
    with caplog.at_level(logging.ERROR, logger="dealer_feed.airflow_edge.alerts"):
        dr, tis = as_loader(DAY1 + timedelta(days=1))
    assert str(dr.state) == "failed", tis
    assert tis[("load", -1)] == ("failed", 1), tis  # permanent: not retried
    assert tis[("watcher", -1)] == ("failed", 1), tis
    alerts = [r.getMessage() for r in caplog.records if "[dealer-feed] FAILED" in r.getMessage()]
    [load] = [a for a in alerts if "task=load" in a]
    assert "WarehouseDataError" in load and "feed_vehicles.make" in load
    assert "\nFix: a row in this run's change files does not fit feed_vehicles.make" in load
    [watcher] = [a for a in alerts if "task=watcher" in a]
    assert "nothing of this run was loaded" in watcher and "loaded;" not in watcher.split("nothing")[0]
    assert "other dealers loaded" not in watcher
    assert rows(roles[OWNER], "SELECT count(*) FROM etl_runs") == [(1,)]

