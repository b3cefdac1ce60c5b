"""Secrets (issue 14): the OpenTrack and warehouse passwords never leave their connections.

The demo group's DAG runs under real Airflow (dag.test) with an OpenTrack connection whose
password is a unique marker, and a PostgreSQL warehouse connection (login, password, host,
port, schema: the URI every task builds) for the login role owning the warehouse database,
whose password is another marker. The test server trusts loopback logins, so PostgreSQL
does not check it, but it is in the URI: a leak would show. One dealer fails (the simulator answers its Vehicle calls with an
authentication fault), so the error paths run too: its task fails, the failure alert is
logged and POSTed to a webhook, the watcher fails the run. Then both markers are searched:

- the task logs: under dag.test() Airflow runs each task in this process and writes no task
  log file (a real executor's supervisor would, under AIRFLOW_HOME/logs: scanned too, empty
  here); the tasks' log lines go to this process's logging and stdout/stderr, both captured;
- every file of the data directory (landing area: Parquet decoded, values and metadata;
  JSON, HTML and anything else as bytes);
- every column of every table of Airflow's metadata DB (XCom, task instances, rendered
  fields, dag runs, audit log, ...; zlib-compressed values decompressed), except
  `connection`, where Airflow keeps connections by design (encrypted with the Fernet key
  when one is set). These connections come from AIRFLOW_CONN_* variables, so it holds
  neither marker anyway;
- every row of every warehouse table;
- the alert webhook's requests;
- stdout/stderr of the process during the run, and every log record it emitted (the tasks'
  logs, the failure alerts).
"""

from __future__ import annotations

import http.server
import json
import logging
import os
import secrets
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa
import yaml

import pgserver
import reliability
from leaks import Records, files, found, tables, texts
from dealer_feed_tools.demo import group_dag
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD, World

pytestmark = pytest.mark.reliability

DAY1 = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
FAILING = "ZE_ZE8"
ROLE, DATABASE = "secrets_owner", "secrets_warehouse"
MARKERS = {"OpenTrack password": f"otpw{secrets.token_hex(8)}", "warehouse password": f"whpw{secrets.token_hex(8)}"}
CONTROL = FAILING
"""Not a secret, but in every place scanned (the failing dealer's id): proves each place was read."""


class _Webhook(http.server.BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 - stdlib name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Webhook.received.append(f"POST {self.path}\n{self.headers}\n".encode() + body)
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def _world() -> World:
    data = yaml.safe_load(DEMO_WORLD.read_text())
    data["vendors"][0]["password"] = MARKERS["OpenTrack password"]
    data["faults"] = [{"kind": "auth_failed", "dealer": FAILING, "method": "Vehicle"}]
    return World.model_validate(data)


def _admin(server: pgserver.PgServer, *statements: str) -> None:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement)


@pytest.fixture
def warehouse() -> Iterator[dict]:
    """A database owned by a login role whose password is the warehouse marker; its connection fields."""
    server = pgserver.get_server()
    drop = (f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)", f"DROP ROLE IF EXISTS {ROLE}")
    _admin(server, *drop, f"CREATE ROLE {ROLE} LOGIN CREATEROLE PASSWORD '{MARKERS['warehouse password']}'",
           f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
    yield {"conn_type": "postgres", "host": server.host, "port": server.port, "login": ROLE,
           "password": MARKERS["warehouse password"], "schema": DATABASE}
    _admin(server, *drop)


@pytest.fixture
def webhook() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Webhook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Webhook.received = []
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks/dealer-feed"
    server.shutdown()
    server.server_close()


def _forget_runs(dag_id: str) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    with create_session() as session:
        session.execute(sa.delete(DagRun).where(DagRun.dag_id == dag_id))


# --------------------------------------------------------------------------- the run


@pytest.fixture
def scanned(airflow_db, warehouse, webhook, tmp_path, monkeypatch, capfd) -> dict:
    """The demo DAG's run with both markers in its connections; every place a marker could reach."""
    import airflow.settings

    monkeypatch.setenv("DEALER_FEED_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AIRFLOW_CONN_DEALER_FEED_WAREHOUSE", json.dumps(warehouse))
    monkeypatch.setenv("AIRFLOW_CONN_DEALER_FEED_ALERTS", json.dumps({"conn_type": "http", "host": webhook}))
    records = Records()
    logging.getLogger().addHandler(records)
    _forget_runs("dealer_feed_demo")
    capfd.readouterr()
    try:
        with start_background(_world()) as sim:
            monkeypatch.setenv("AIRFLOW_CONN_OPENTRACK_DEFAULT", json.dumps({
                "conn_type": "opentrack", "host": sim.url, "login": "dealer-feed-vendor",
                "password": MARKERS["OpenTrack password"]}))
            dag = group_dag("demo")
            for task in dag.tasks:  # retries stay quick (production: 30 s doubling)
                task.retry_delay = timedelta(seconds=1)
                task.max_retry_delay = timedelta(seconds=2)
            dr = dag.test(logical_date=DAY1)
            authenticated = [r for r in sim.requests() if r.get("vendor") == "dealer-feed-vendor"]
    finally:
        logging.getLogger().removeHandler(records)
    output = capfd.readouterr()
    from airflow.utils.session import create_session

    with create_session() as session:
        tis = {(ti.task_id, (ti.rendered_map_index or "").rpartition(": ")[2]): str(ti.state) for ti in dr.get_task_instances(session=session)}

    url = sa.URL.create("postgresql+psycopg", username=ROLE, password=warehouse["password"], host=warehouse["host"],
                        port=warehouse["port"], database=DATABASE)
    engine = sa.create_engine(url)
    places = {
        **files(Path(os.environ["AIRFLOW_HOME"]) / "logs", "AIRFLOW_HOME/logs"),
        **files(tmp_path / "data", "data directory"),
        **tables(airflow.settings.engine, "Airflow metadata DB", skip=("connection",)),
        **tables(engine, "warehouse"),
        **{f"alert webhook request {n}": texts(body) for n, body in enumerate(_Webhook.received)},
        "stdout/stderr": [output.out, output.err],
        "log records": records.lines,
    }
    engine.dispose()
    _forget_runs("dealer_feed_demo")
    return {"state": str(dr.state), "tis": tis, "places": places, "authenticated": len(authenticated)}


def test_no_password_reaches_logs_files_xcom_metadata_warehouse_or_alerts(scanned):
    leaks = {marker: found(scanned["places"], value) for marker, value in MARKERS.items()}
    reliability.record("secrets", leaks=sum(len(places) for places in leaks.values()))

    # the run took both paths with both secrets in use
    assert scanned["state"] == "failed", scanned["tis"]
    assert scanned["tis"][("extract", FAILING)] == "failed"
    assert scanned["tis"][("load", "")] == scanned["tis"][("extract", "ZE_ZE7")] == "success"
    assert scanned["authenticated"] > 0, "the OpenTrack password was not used"
    # every kind of place was read and holds the run's data
    seen = found(scanned["places"], CONTROL)
    for kind in ("data directory", "Airflow metadata DB xcom.", "Airflow metadata DB task_instance.",
                 "warehouse etl_run_dealers.", "alert webhook request", "stdout/stderr", "log records"):
        assert any(place.startswith(kind) for place in seen), f"nothing of the run found in {kind}"

    assert leaks == dict.fromkeys(MARKERS, []), f"a password was found in: {leaks}"
