"""Airflow operations under real Airflow (DagBag, dag.test(), the metadata DB).

- a broken group YAML is an import error of its own stub only, naming file, field and
  allowed values; the other groups' DAGs load;
- failure alerts: one message with group, run, task, dealer and the fix line, logged and
  POSTed to the `dealer_feed_alerts` webhook connection;
- scheduling contract: hourly default, cron per group, data intervals, max_active_runs 1,
  retries with exponential backoff and timeouts on every task, `load` depends on the past;
- with the pipeline (simulator + embedded warehouse, dag.test()): clear-and-rerun of every
  task keeps the warehouse as it was; a permanent error fails at once (1 try), a transient
  one is retried; the Asset event is recorded and the consumer DAG is scheduled on it;
  secrets never reach the task logs.
"""

from __future__ import annotations

import http.server
import json
import threading
from datetime import timedelta
from pathlib import Path

import pytest

from support import ROOT

STUB = '''"""Airflow DAG of dealer group `{group}`."""

from dealer_feed.airflow_edge.dag_factory import build_dag

dag = build_dag("{group}")
'''


def _demo_yaml(group: str, **replace: str) -> str:
    text = (ROOT / "include" / "dealer_groups" / "demo.yaml").read_text().replace("group: demo", f"group: {group}")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    return text


# --------------------------------------------------------------------------- config errors


def test_broken_group_file_is_an_import_error_of_its_stub_only(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    groups, dags = tmp_path / "groups", tmp_path / "dags"
    groups.mkdir()
    dags.mkdir()
    for name in ("alpha", "broken", "gamma"):
        (dags / f"dealer_feed_{name}.py").write_text(STUB.format(group=name))
    (groups / "alpha.yaml").write_text(_demo_yaml("alpha"))
    (groups / "gamma.yaml").write_text(_demo_yaml("gamma", **{"schedule: \"0 6 * * *\"": "schedule: \"*/15 * * * *\""}))
    (groups / "broken.yaml").write_text(_demo_yaml("broken", **{"auto_close: {mode: immediately}":
                                                                 "auto_close: {mode: sometimes}"}))
    monkeypatch.setenv("DEALER_FEED_GROUPS_DIR", str(groups))

    bag = DagBag(dag_folder=str(dags))

    assert set(bag.dag_ids) == {"dealer_feed_alpha", "dealer_feed_gamma"}
    assert list(bag.import_errors) == [str(dags / "dealer_feed_broken.py")]
    error = bag.import_errors[str(dags / "dealer_feed_broken.py")]
    assert len(error.strip().splitlines()) == 1, f"a config error is one line, not a traceback: {error}"
    last = error.strip().splitlines()[-1]
    # one line naming the file, the field and the allowed values
    assert last.startswith(str(groups / "broken.yaml"))
    assert "settings.auto_close.mode" in last
    assert "'never', 'immediately' or 'after_n_days'" in last
    # the per-group schedule is honoured
    assert bag.dags["dealer_feed_gamma"].timetable.expression == "*/15 * * * *"


def test_missing_group_file_names_the_known_groups(tmp_path, monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    groups, dags = tmp_path / "groups", tmp_path / "dags"
    groups.mkdir()
    dags.mkdir()
    (groups / "alpha.yaml").write_text(_demo_yaml("alpha"))
    (dags / "dealer_feed_alpha.py").write_text(STUB.format(group="alpha"))
    (dags / "dealer_feed_typo.py").write_text(STUB.format(group="alpah"))
    monkeypatch.setenv("DEALER_FEED_GROUPS_DIR", str(groups))
    bag = DagBag(dag_folder=str(dags))
    assert set(bag.dag_ids) == {"dealer_feed_alpha"}
    message = bag.import_errors[str(dags / "dealer_feed_typo.py")].strip().splitlines()[-1]
    assert "no dealer group 'alpah'" in message and "known: alpha" in message


def test_import_error_shows_in_the_metadata_db_for_that_file_only(tmp_path, monkeypatch, airflow_db):
    """What the UI shows: `airflow dags list-import-errors` after a real dag-processor pass."""
    import subprocess
    import sys

    groups, dags = tmp_path / "groups", tmp_path / "dags"
    groups.mkdir()
    dags.mkdir()
    for name in ("alpha", "broken"):
        (dags / f"dealer_feed_{name}.py").write_text(STUB.format(group=name))
    (groups / "alpha.yaml").write_text(_demo_yaml("alpha"))
    (groups / "broken.yaml").write_text(_demo_yaml("broken", **{"max_bad_fraction: 0.05": "max_bad_fraction: 5"}))
    env = dict(__import__("os").environ, DEALER_FEED_GROUPS_DIR=str(groups), AIRFLOW__CORE__DAGS_FOLDER=str(dags),
               PYTHONPATH=str(ROOT / "plugins"))
    airflow = str(Path(sys.executable).with_name("airflow"))
    parsed = subprocess.run([airflow, "dag-processor", "--num-runs", "1"], env=env, capture_output=True, text=True,
                            timeout=180)
    assert parsed.returncode == 0, parsed.stderr[-3000:]
    listed = subprocess.run([airflow, "dags", "list-import-errors", "-o", "json"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert "[{" in listed.stdout, listed.stdout[-2000:] + listed.stderr[-3000:]  # exits 1 when there are import errors
    payload = next(line for line in listed.stdout.splitlines() if line.startswith("[{"))
    errors = json.loads(payload)  # file paths relative to the bundle (the dags folder)
    assert [Path(e["filepath"]).name for e in errors] == ["dealer_feed_broken.py"]
    assert "thresholds.max_bad_fraction" in errors[0]["error"] and "less than or equal to 1" in errors[0]["error"]
    dag_list = subprocess.run([airflow, "dags", "list", "-o", "json"], env=env, capture_output=True, text=True,
                              timeout=120)
    assert "dealer_feed_alpha" in dag_list.stdout


# --------------------------------------------------------------------------- scheduling contract


def _bag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_schedule_retries_timeouts_and_ordering():
    from airflow.sdk import CronDataIntervalTimetable

    from dealer_feed.config import GroupConfig

    assert GroupConfig.model_fields["schedule"].default == "0 * * * *"  # hourly unless the group says otherwise
    bag = _bag()
    for dag_id in ("dealer_feed_demo", "dealer_feed_large"):
        dag = bag.dags[dag_id]
        assert isinstance(dag.timetable, CronDataIntervalTimetable)  # logical time = interval end
        assert dag.max_active_runs == 1
        assert dag.catchup is False
        assert set(dag.params.keys()) >= {"force_guards", "dealers"}
        assert "force_guards" in dag.doc_md and "dealers" in dag.doc_md and "RUNBOOK" in dag.doc_md
        for task in dag.tasks:
            if task.task_id == "watcher":  # fails the run when a task failed; retrying it means nothing
                assert task.retries == 0 and task.trigger_rule == "one_failed"
                continue
            assert task.retries >= 1 and task.retry_exponential_backoff, task.task_id
            assert task.max_retry_delay is not None, task.task_id
            assert task.execution_timeout is not None and task.execution_timeout <= timedelta(hours=1), task.task_id
            assert task.on_failure_callback, task.task_id
        assert dag.get_task("load").depends_on_past is True
        assert {o.name for o in dag.get_task("load").outlets} == {f"dealer_feed_warehouse_{dag_id[12:]}"}
    assert bag.dags["dealer_feed_large"].timetable.expression == "0 * * * *"


def test_consumer_dag_is_scheduled_on_the_demo_asset():
    from dealer_feed.airflow_edge.dag_factory import warehouse_asset

    dag = _bag().dags["analyst_refresh_demo"]
    assert list(dag.timetable.asset_condition.objects) == [warehouse_asset("demo")]


# --------------------------------------------------------------------------- alerts


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append({"path": self.path, "body": json.loads(body), "auth": self.headers.get("Authorization")})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(monkeypatch):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    url = f"http://127.0.0.1:{server.server_address[1]}/hooks/T0/B0/s3cr3tT0ken"
    monkeypatch.setenv("AIRFLOW_CONN_DEALER_FEED_ALERTS", json.dumps({"conn_type": "http", "host": url}))
    yield _Hook.received
    server.shutdown()


class _TI:
    dag_id = "dealer_feed_demo"
    run_id = "scheduled__2026-11-24T06:00:00+00:00"
    task_id = "extract"
    map_index = 1
    rendered_map_index = "feed 2026-11-24 06:00 UTC: ZE_ZE8"
    try_number = 1
    max_tries = 3  # Airflow's meaning: tries 1..3 may be retried; 4 tries in all (retries=3)
    log_url = "http://localhost:8080/dags/dealer_feed_demo/runs/x/tasks/extract/mapped/1"


def test_failure_alert_names_group_run_task_dealer_and_fix(webhook, caplog):
    from airflow.sdk.exceptions import AirflowFailException

    from dealer_feed.airflow_edge import alerts
    from dealer_feed.opentrack.errors import AccessNotGrantedError
    from dealer_feed.pipeline import DealerStepError

    class Dealer:
        enterprise_code, company_number, server_name = "ZE", "ZE8", "arkonap.arkona.com"

    grant = AccessNotGrantedError("method Vehicle is not granted to this vendor", dealer=Dealer(), method="Vehicle",
                                  operation="VehicleInventory",
                                  fix="the dealership must add the Vehicle method for this vendor under Data Exchange > OpenTrack")
    step = DealerStepError(f"1 of 1 dealer(s) in this batch failed.\n- ZE_ZE8 vehicles: {grant}",
                           dealers=["ZE_ZE8"], fix=grant.fix)
    try:
        raise AirflowFailException(str(step)) from step
    except AirflowFailException as exc:
        wrapped = exc

    with caplog.at_level("ERROR", logger="dealer_feed.airflow_edge.alerts"):
        alerts.on_task_failure({"ti": _TI(), "run_id": _TI.run_id, "exception": wrapped})

    [line] = [r.getMessage() for r in caplog.records if "[dealer-feed] FAILED" in r.getMessage()]
    assert "group=demo" in line and f"run={_TI.run_id}" in line
    assert "task=extract[feed 2026-11-24 06:00 UTC: ZE_ZE8]" in line and "dealer=ZE_ZE8" in line and "try=1/4" in line
    assert "DealerStepError" in line
    assert "Fix: the dealership must add the Vehicle method" in line
    [posted] = webhook
    assert posted["path"] == "/hooks/T0/B0/s3cr3tT0ken"
    body = posted["body"]
    assert body["group"] == "demo" and body["task_id"] == "extract" and body["dealers"] == ["ZE_ZE8"]
    assert body["fix"].startswith("the dealership must add the Vehicle method")
    assert body["text"] == line


def test_alert_without_webhook_only_logs_and_never_raises(monkeypatch, caplog):
    from dealer_feed.airflow_edge import alerts
    from dealer_feed.validation.guards import EmptyFeedError

    monkeypatch.delenv("AIRFLOW_CONN_DEALER_FEED_ALERTS", raising=False)
    error = EmptyFeedError("vehicles batch of dealer ZE_ZE7 is empty.", dealer_id="ZE_ZE7", dataset="vehicles",
                           fix="If the dealer really has no vehicles now, trigger the run again with run parameter "
                               "force_guards=true.")
    ti = _TI()
    ti.task_id, ti.map_index, ti.rendered_map_index = "transform", -1, None
    with caplog.at_level("ERROR", logger="dealer_feed.airflow_edge.alerts"):
        alerts.on_task_failure({"ti": ti, "run_id": ti.run_id, "exception": error})
        alerts.on_task_failure({"ti": ti, "run_id": ti.run_id, "exception": None})  # e.g. killed by timeout
    lines = [r.getMessage() for r in caplog.records if "[dealer-feed] FAILED" in r.getMessage()]
    assert len(lines) == 2
    assert "dealer=ZE_ZE7" in lines[0] and "task=transform " in lines[0]
    assert "Fix: If the dealer really has no vehicles now, trigger the run again with run parameter " \
           "force_guards=true." in lines[0]
    assert "Fix: see the task log; docs/RUNBOOK.md" in lines[1]


def test_webhook_from_http_connection_parts_through_the_http_provider(monkeypatch):
    """host + schema/port + extra endpoint, as the http provider's HttpHook builds the URL."""
    from dealer_feed.airflow_edge import alerts

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    try:
        monkeypatch.setenv("AIRFLOW_CONN_DEALER_FEED_ALERTS", json.dumps(
            {"conn_type": "http", "host": "127.0.0.1", "schema": "http", "port": server.server_address[1],
             "login": "bot", "password": "pw", "extra": {"endpoint": "/hooks/abc"}}))
        alert = alerts.Alert(group="demo", dag_id="dealer_feed_demo", run_id="r", task_id="load", map_index=-1,
                             rendered_map_index=None, try_number=1, tries_allowed=4)
        assert alerts.post_webhook(alert) is True
    finally:
        server.shutdown()
    [posted] = _Hook.received
    assert posted["path"] == "/hooks/abc" and posted["auth"].startswith("Basic ")
    assert posted["body"]["text"] == alert.text


# --------------------------------------------------------------------------- with the pipeline (dag.test)

T1 = "2026-11-23T06:00:00+00:00"
T2 = "2026-11-24T06:00:00+00:00"
OT_PASSWORD = "Ot-S3cret-Pw-4711"
DAG_ID = "dealer_feed_demo"


def _forget_runs(dag_id: str) -> None:
    """Delete the DAG's runs from the session's metadata DB (load depends on the past)."""
    from sqlalchemy import delete

    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(delete(DagRun).where(DagRun.dag_id == dag_id))


def snapshot(url: str, business_only: bool = False) -> dict[str, list[tuple]]:
    """Every warehouse table's rows, sorted; business_only drops Airflow run ids and timings."""
    import re

    import sqlalchemy as sa

    engine = sa.create_engine(url)
    out = {}
    try:
        inspector = sa.inspect(engine)
        with engine.connect() as conn:
            for table in sorted(inspector.get_table_names()):
                cols = [c["name"] for c in inspector.get_columns(table)]
                if business_only and table in ("etl_runs", "etl_run_dealers"):
                    cols = [c for c in cols if not re.search(r"airflow|started|finished|seconds|duration|_at$", c)]
                rows = conn.execute(sa.text(f"SELECT {', '.join(cols)} FROM {table}")).all()
                out[table] = sorted((tuple(map(str, r)) for r in rows))
    finally:
        engine.dispose()
    return out


@pytest.fixture
def demo_run(request, tmp_path, monkeypatch, airflow_db):
    """The demo DAG against a fresh simulator and warehouse, driven with dag.test(); a test may
    edit the demo world's text (indirect parameter: a function str -> str)."""

    from dealer_feed_tools.demo import connection_env, group_dag
    from dealer_feed_tools.simulator.server import start_background

    world = tmp_path / "world.yaml"
    from dealer_feed_tools.simulator.world import DEMO_WORLD

    edit = getattr(request, "param", None) or (lambda text: text)
    world.write_text(edit(DEMO_WORLD.read_text().replace("password: demo-secret", f"password: {OT_PASSWORD}")))
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    monkeypatch.setenv("DEALER_FEED_DATA_DIR", str(tmp_path / "data"))
    _forget_runs(DAG_ID)
    with start_background(world) as sim:
        env = connection_env(sim.url, "dealer-feed-vendor", OT_PASSWORD, warehouse)
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        dag = group_dag("demo")
        for task in dag.tasks:  # keep retries quick in tests (production: 30 s doubling)
            task.retry_delay = timedelta(seconds=1)
            task.max_retry_delay = timedelta(seconds=2)

        class Run:
            pass

        run = Run()
        run.dag, run.sim, run.warehouse, run.tmp = dag, sim, warehouse, tmp_path

        def test(logical_date: str, **kwargs):
            from datetime import datetime

            return run.dag.test(logical_date=datetime.fromisoformat(logical_date), **kwargs)

        run.test = test
        yield run
    _forget_runs(DAG_ID)


def _tis(dr):
    from airflow.utils.session import create_session

    with create_session() as session:
        return {(ti.task_id, ti.map_index): (str(ti.state), ti.try_number)
                for ti in dr.get_task_instances(session=session)}


def _rerun_task(dag, dr, task_id: str) -> list[str]:
    """What a clear of one task + the scheduler do: reset its TIs (all map indexes), bump
    the try, run each in process; return their final states."""
    from sqlalchemy import select

    from airflow.models.taskinstance import TaskInstance as TI
    from airflow.sdk.definitions.dag import _run_task
    from airflow.utils.session import create_session
    from airflow.utils.state import TaskInstanceState

    with create_session() as session:
        tis = session.scalars(select(TI).where(TI.dag_id == dag.dag_id, TI.run_id == dr.run_id,
                                               TI.task_id == task_id)).all()
        for ti in tis:
            ti.try_number += 1
            ti.state = TaskInstanceState.SCHEDULED
        session.commit()
        ids = [(ti.task_id, ti.map_index) for ti in tis]
    states = []
    for task_id_, map_index in ids:
        with create_session() as session:
            ti = session.scalar(select(TI).where(TI.dag_id == dag.dag_id, TI.run_id == dr.run_id,
                                                 TI.task_id == task_id_, TI.map_index == map_index))
            session.expunge(ti)
        _run_task(ti=ti, task=dag.task_dict[task_id_])
        with create_session() as session:
            states.append(str(session.scalar(select(TI.state).where(
                TI.dag_id == dag.dag_id, TI.run_id == dr.run_id, TI.task_id == task_id_, TI.map_index == map_index))))
    return states


def test_clear_and_rerun_every_task_keeps_the_warehouse(demo_run):
    assert str(demo_run.test(T1).state) == "success"
    dr = demo_run.test(T2)
    assert str(dr.state) == "success"
    before = snapshot(demo_run.warehouse)
    assert before["service_requests"] and before["service_request_events"]
    for task_id in ("migrate", "extract", "validate", "transform", "load"):
        states = _rerun_task(demo_run.dag, dr, task_id)
        assert states and set(states) == {"success"}, (task_id, states)
        assert snapshot(demo_run.warehouse) == before, f"clearing {task_id} changed the warehouse"


def test_transient_fault_is_retried_permanent_error_fails_at_once(demo_run, monkeypatch, caplog):
    from dealer_feed_tools.demo import connection_env

    # transient: OpenTrack answers 503 once for ZE_ZE8; the client does not retry (max_attempts 1),
    # so the task's first try fails and Airflow's retry succeeds
    env = connection_env(demo_run.sim.url, "dealer-feed-vendor", OT_PASSWORD, demo_run.warehouse)
    conn = json.loads(env["AIRFLOW_CONN_OPENTRACK_DEFAULT"]) | {"extra": {"max_attempts": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_OPENTRACK_DEFAULT", json.dumps(conn))
    demo_run.sim.clear_requests()
    demo_run.sim.add_fault("http_503", dealer="ZE_ZE8", method="Vehicle", times=1)
    dr = demo_run.test(T1)
    tis = _tis(dr)
    assert str(dr.state) == "success", tis
    assert tis[("extract", 1)] == ("success", 2), tis  # ZE_ZE8's batch: failed once, retried
    assert tis[("extract", 0)] == ("success", 1) and tis[("extract", 2)] == ("success", 1)
    calls = [r for r in demo_run.sim.requests(dealer_id="ZE_ZE8") if "Vehicle" in str(r.get("method", ""))
             or "Vehicle" in str(r.get("operation", ""))]
    assert len(calls) == 2, calls

    # permanent: wrong password -> AuthenticationError -> every batch fails on its first try
    # (on T2: T1's raw files exist and a rerun of T1 reuses them without calling OpenTrack)
    monkeypatch.setenv("AIRFLOW_CONN_OPENTRACK_DEFAULT", json.dumps(conn | {"password": "wrong-password"}))
    with caplog.at_level("ERROR", logger="dealer_feed.airflow_edge.alerts"):
        dr = demo_run.test(T2)
    tis = _tis(dr)
    alerted = [r.getMessage() for r in caplog.records if "FAILED" in r.getMessage() and "task=extract[" in r.getMessage()]
    assert len(alerted) == 3, alerted  # one alert per failed batch, naming its dealer and the fix
    assert all(" dealer=ZE_ZE" in a and "\nFix: check the login and password of the OpenTrack" in a for a in alerted), alerted
    assert all(" try=1/4 " in a for a in alerted), alerted  # failed at once: the first of 4 tries
    assert str(dr.state) == "failed", tis
    for index in range(3):
        assert tis[("extract", index)] == ("failed", 1), tis  # not retried
    assert tis[("load", -1)][0] == "upstream_failed"
    assert tis[("watcher", -1)] == ("failed", 1)


def test_a_failed_migrate_holds_back_the_load_not_the_fetching(demo_run):
    """`migrate` runs beside the extract batches: when it fails (here: a warehouse whose
    schema_version table is not ours), the batches still land their raw files, nothing reaches
    the warehouse (load: upstream_failed) and the watcher fails the run."""
    import sqlite3

    warehouse = demo_run.tmp / "warehouse.db"
    with sqlite3.connect(warehouse) as db:
        db.execute("CREATE TABLE schema_version (not_ours TEXT)")
    dr = demo_run.test(T1)
    tis = _tis(dr)
    assert str(dr.state) == "failed", tis
    assert tis[("migrate", -1)] == ("failed", 1), tis  # a permanent WarehouseError: not retried
    assert {tis[("extract", index)] for index in range(3)} == {("success", 1)}, tis
    assert tis[("load", -1)][0] == "upstream_failed" and tis[("watcher", -1)][0] == "failed", tis
    with sqlite3.connect(warehouse) as db:
        assert [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == [
            "schema_version"]
    landed = sorted((demo_run.tmp / "data" / "landing" / "demo" / "vehicles").glob("*/run=*/raw.parquet"))
    assert len(landed) == 3, landed


def test_alert_of_the_last_try_counts_tries_like_airflow(demo_run, monkeypatch, caplog):
    """A fault that outlasts every retry: the alert of the last try says `try=4/4` (was `try=4/3`)."""
    from dealer_feed_tools.demo import connection_env

    env = connection_env(demo_run.sim.url, "dealer-feed-vendor", OT_PASSWORD, demo_run.warehouse)
    conn = json.loads(env["AIRFLOW_CONN_OPENTRACK_DEFAULT"]) | {"extra": {"max_attempts": 1}}
    monkeypatch.setenv("AIRFLOW_CONN_OPENTRACK_DEFAULT", json.dumps(conn))
    demo_run.sim.add_fault("http_503", dealer="ZE_ZE8", method="Vehicle")
    retries = demo_run.dag.task_dict["extract"].retries
    with caplog.at_level("ERROR", logger="dealer_feed.airflow_edge.alerts"):
        dr = demo_run.test(T1)
    tis = _tis(dr)
    assert tis[("extract", 1)] == ("failed", retries + 1), tis
    alerted = [r.getMessage() for r in caplog.records if "FAILED" in r.getMessage()
               and "task=extract[" in r.getMessage()]
    assert len(alerted) == 1 and f" try={retries + 1}/{retries + 1} dealer=ZE_ZE8" in alerted[0], alerted


def test_asset_event_recorded_and_consumer_queued(demo_run):
    from sqlalchemy import select

    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.utils.session import create_session

    dr = demo_run.test(T1)
    assert str(dr.state) == "success"
    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.name == "dealer_feed_warehouse_demo"))
        assert asset is not None and asset.uri == "x-dealer-feed://warehouse/demo"
        events = session.scalars(select(AssetEvent).where(AssetEvent.asset_id == asset.id,
                                                          AssetEvent.source_run_id == dr.run_id)).all()
        assert [(e.source_dag_id, e.source_task_id) for e in events] == [(DAG_ID, "load")]
        queued = session.scalars(select(AssetDagRunQueue.target_dag_id).where(
            AssetDagRunQueue.asset_id == asset.id)).all()
        assert "analyst_refresh_demo" in queued  # the scheduler creates the consumer's run from this


def test_passwords_are_masked_in_task_logs(demo_run, monkeypatch, capfd):
    """OpenTrack password (connection field) and a warehouse password inside an extra
    `sqlalchemy_url` (not a connection field: masked by dag_factory) never reach the logs."""
    import os
    import uuid

    import pgserver

    wh_password = "Wh-S3cret-Pw-0815"
    server = pgserver.get_server()
    db = f"dealer_feed_mask_{uuid.uuid4().hex[:8]}"
    url = server.create_database(db).replace(f"{server.user}@", f"{server.user}:{wh_password}@", 1)  # trust auth
    try:
        monkeypatch.setenv("AIRFLOW_CONN_DEALER_FEED_WAREHOUSE",
                           json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": url}}))
        capfd.readouterr()
        dr = demo_run.test(T1)
        out = capfd.readouterr()
        logs = out.out + out.err
        logs += "".join(p.read_text(errors="replace") for p in (Path(os.environ["AIRFLOW_HOME"]) / "logs").rglob("*.log")
                        if p.is_file())
        assert str(dr.state) == "success"
        assert "dealer-feed-vendor" in logs or "load" in logs  # the logs were captured at all
        assert OT_PASSWORD not in logs
        assert wh_password not in logs
    finally:
        server.drop_database(db)


def _ze8_has_no_vehicles_yet(world: str) -> str:
    """ZE_ZE8's lot is empty until a date after the test's runs (scripted inventory)."""
    return world.replace("    make_codes: [SU]\n", "    make_codes: [SU]\n    inventory: {scripted: {2027-01-01: []}}\n", 1)


@pytest.mark.parametrize("demo_run", [_ze8_has_no_vehicles_yet], indirect=True)
def test_empty_first_feed_is_a_notice_alert_not_silence(demo_run, webhook, caplog):
    """Issue 15: a dealer's first vehicle feed of 0 rows passes the guards (no earlier run to
    compare with), so the run succeeds -- but on-call gets a NOTICE naming the dealer, logged
    and POSTed like a failure alert, and the summary lists it."""
    import json

    with caplog.at_level("WARNING", logger="dealer_feed.airflow_edge.alerts"):
        assert str(demo_run.test(T1).state) == "success"
    [line] = [r.getMessage() for r in caplog.records if "[dealer-feed] NOTICE" in r.getMessage()]
    assert "task=transform" in line and "dealer=ZE_ZE8" in line and "EmptyFirstFeed" in line
    assert "Fix: check `dealer-feed check GROUP`" in line
    [posted] = [p["body"] for p in webhook if p["body"]["kind"] == "NOTICE"]
    assert posted["dealers"] == ["ZE_ZE8"] and posted["text"] == line
    summary = json.loads(next((demo_run.tmp / "data").rglob("summary.json")).read_text())
    assert summary["empty_first_feeds"] == ["ZE_ZE8"]
