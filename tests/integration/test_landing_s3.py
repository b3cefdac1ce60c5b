"""Landing on object storage (issue 13): the landing root is `s3://bucket/prefix`, reached
through Airflow's ObjectStoragePath and the `aws` connection `dealer_feed_landing`, against a
real S3 protocol server on loopback (moto's server mode, tests/s3server.py).

- landing.py's functions behave the same on a local directory and on S3 (same bytes, same
  errors: LandingFileError with the object's URL and its fix line, LandingStoreError for the
  store: no such bucket, unreachable endpoint);
- the demo group's DAG end to end under dag.test() with landing on S3: its objects are under
  the prefix, nothing lands locally, and the warehouse equals a local-landing run's;
- a rerun of the same feed time (`dealer-feed run`'s path: runner.run_group, root from the same
  hook) reuses the raw objects: no new OpenTrack request, objects unchanged;
- a corrupted raw object fails its dealer's task with the LandingFileError (URL + fix), no
  store traceback;
- the connection's secret key (a marker) is in no log record, output, landing object or XCom.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pyarrow as pa
import pytest
import sqlalchemy as sa

import s3server
from leaks import Records, files, found, objects, tables
from support import TABLES, table_hashes
from dealer_feed import landing
from dealer_feed.airflow_edge import hooks
from dealer_feed.landing import LandingFileError, LandingStoreError
from dealer_feed_tools.demo import connection_env, group_dag, output_to
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import DEMO_WORLD, load_world

DAY1 = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
PREFIX = "feeds/landing"
CORRUPT_DEALER = "ZE_ZE7"
BUSINESS = tuple(t for t in TABLES if t != "etl_runs")


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def s3(monkeypatch_module) -> SimpleNamespace:
    """The moto server, a bucket of this module, and AIRFLOW_CONN_DEALER_FEED_LANDING (JSON form)."""
    server = s3server.get_server()
    bucket = server.create_bucket(f"landing-{uuid.uuid4().hex[:10]}")
    for key, value in server.connection_env().items():
        monkeypatch_module.setenv(key, value)
    return SimpleNamespace(server=server, bucket=bucket, url=f"s3://{bucket}/{PREFIX}")


# --------------------------------------------------------------------------- landing.py on both stores


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path, s3) -> landing.LandingPath:
    if request.param == "local":
        return hooks.landing_root(str(tmp_path / "landing"))
    return hooks.landing_root(f"s3://{s3.bucket}/unit/{uuid.uuid4().hex[:8]}")


def _table() -> pa.Table:
    return pa.table({"vin": ["1HGCM82633A004352", "JH4KA7561PC008269"], "n": [1, 2]})


def test_landing_root_is_a_path_or_an_object_storage_path(s3, tmp_path, monkeypatch):
    from airflow.sdk import ObjectStoragePath

    assert hooks.landing_root(str(tmp_path)) == tmp_path
    assert hooks.landing_root(f"file://{tmp_path}") == tmp_path
    monkeypatch.delenv(landing.LANDING_URL_ENV, raising=False)
    monkeypatch.setenv(landing.DATA_DIR_ENV, str(tmp_path))
    assert hooks.landing_root() == landing.landing_root() == tmp_path / "landing"  # the default, as before
    monkeypatch.setenv(landing.LANDING_URL_ENV, s3.url)
    remote = hooks.landing_root()
    assert isinstance(remote, ObjectStoragePath) and remote.conn_id == "dealer_feed_landing"
    assert landing.url_of(remote / "demo") == f"{s3.url}/demo"
    monkeypatch.setenv(landing.LANDING_CONN_ID_ENV, "other_store")
    assert hooks.landing_root().conn_id == "other_store"
    with pytest.raises(LandingStoreError, match="airflow_edge.hooks.landing_root"):
        landing.landing_root()  # the Airflow-free default never silently lands locally instead


def test_files_round_trip_and_are_the_same_bytes_on_both_stores(root, tmp_path):
    run_dir = landing.dealer_run_dir(root, "demo", "vehicles", "ZE_ZE7", DAY1)
    raw = run_dir / "raw.parquet"
    assert not landing.exists(raw)
    assert landing.write_parquet(_table(), raw) == raw
    landing.write_json({"status": "ok", "rows": 2}, run_dir / "status.json")
    landing.write_text("<html></html>\n", run_dir / "report.html")
    assert landing.exists(raw) and landing.exists(run_dir)
    assert landing.read_parquet(raw).equals(_table())
    assert landing.read_parquet(raw, columns=["vin"]).column_names == ["vin"]
    assert landing.read_json(run_dir / "status.json") == {"status": "ok", "rows": 2}
    local_twin = landing.write_parquet(_table(), tmp_path / "twin.parquet")
    assert raw.read_bytes() == local_twin.read_bytes()  # deterministic, whatever the store
    landing.delete(run_dir / "report.html")
    landing.delete(run_dir / "report.html")  # already gone: fine
    assert not landing.exists(run_dir / "report.html")
    if not landing.is_local(root):
        assert not any(".raw.parquet." in p.name for p in run_dir.glob("*"))  # one PUT, no temp objects


def test_missing_and_corrupt_files_are_landing_file_errors_naming_the_url(root):
    raw = landing.dealer_run_dir(root, "demo", "vehicles", "ZE_ZE7", DAY1) / "raw.parquet"
    with pytest.raises(LandingFileError) as missing:
        landing.read_parquet(raw)
    assert f"landing file {landing.url_of(raw)} is missing" in str(missing.value)
    assert missing.value.fix.startswith(f"delete {landing.url_of(raw)} and clear the `extract` batch "
                                        "of dealer ZE_ZE7 for run 20261123T060000Z")
    landing.write_text("PAR1 this is not parquet", raw)
    with pytest.raises(LandingFileError, match="is not a readable Parquet file") as corrupt:
        landing.read_parquet(raw)
    assert corrupt.value.transient is False and "Fix: delete " in str(corrupt.value)
    summary = landing.group_run_dir(root, "demo", DAY1) / "summary.json"
    landing.write_text("{not json", summary)
    with pytest.raises(LandingFileError, match="is unreadable") as bad_json:
        landing.read_json(summary)
    assert bad_json.value.fix.startswith("clear the `transform` task of run 20261123T060000Z")
    if not landing.is_local(root):
        assert str(missing.value).count("s3://") == 2 and "dealer_feed_landing@" not in str(missing.value)


def test_landed_run_times_on_both_stores(root):
    for dealer, t in (("ZE_ZE7", DAY2), ("ZE_ZE8", DAY1)):
        landing.write_json({}, landing.dealer_run_dir(root, "demo", "vehicles", dealer, t) / "status.json")
    landing.write_json({}, landing.group_run_dir(root, "demo", DAY2 + timedelta(hours=1)) / "summary.json")
    landing.write_json({}, landing.dealer_run_dir(root, "other", "vehicles", "X", DAY1 - timedelta(days=3))
                       / "status.json")
    assert landing.landed_run_times(root, "demo") == [DAY1, DAY2, DAY2 + timedelta(hours=1)]
    assert landing.landed_run_times(root, "nosuch") == []


def test_no_such_bucket_is_a_permanent_store_error_naming_the_connection(s3):
    root = hooks.landing_root(f"s3://no-such-bucket-{uuid.uuid4().hex[:8]}/x")
    path = root / "demo" / "status.json"
    assert not landing.exists(path)
    for call in (lambda: landing.write_json({}, path), lambda: landing.read_json(path)):
        with pytest.raises(LandingStoreError) as err:
            call()
        assert err.value.transient is False and "no bucket" in str(err.value)
        assert "'dealer_feed_landing'" in err.value.fix and "Traceback" not in str(err.value)


def test_refused_credentials_are_a_permanent_store_error_naming_the_connection(monkeypatch):
    """A store that checks credentials (a second moto server, authenticating like AWS) refuses
    keys it does not know (403): every landing operation fails at once (no retry can help) with the
    connection to fix, and never with the secret or a botocore traceback."""
    import json

    server = s3server.start(authenticate=True)
    try:
        monkeypatch.setenv("AIRFLOW_CONN_LANDING_REFUSED", json.dumps(server.connection()))
        path = hooks.landing_root("s3://any-bucket/x", conn_id="landing_refused") / "demo" / "status.json"
        for call in (lambda: landing.write_json({}, path), lambda: landing.read_json(path),
                     lambda: landing.exists(path), lambda: landing.parquet_rows(path)):
            with pytest.raises(LandingStoreError) as err:
                call()
            assert err.value.transient is False and "refused access" in str(err.value), err.value
            assert "'landing_refused'" in err.value.fix and "s3:PutObject" in err.value.fix
            assert s3server.SECRET not in str(err.value) and "Traceback" not in str(err.value)
    finally:
        server.stop()


def test_unreachable_store_is_a_transient_store_error(s3, monkeypatch):
    import json

    from support import free_port

    down = s3.server.connection(config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 1})
    down["extra"]["endpoint_url"] = f"http://127.0.0.1:{free_port()}"
    monkeypatch.setenv("AIRFLOW_CONN_LANDING_DOWN", json.dumps(down))
    path = hooks.landing_root(f"s3://{s3.bucket}/x", conn_id="landing_down") / "status.json"
    with pytest.raises(LandingStoreError) as err:
        landing.write_json({}, path)
    assert err.value.transient is True and "unreachable" in str(err.value) and "'landing_down'" in err.value.fix
    assert s3server.SECRET not in str(err.value)


# --------------------------------------------------------------------------- the DAG with landing on S3


@pytest.fixture(scope="module")
def dag_runs(airflow_db, s3, tmp_path_factory, monkeypatch_module) -> dict:
    """Day 1 under dag.test() with landing on S3; its rerun through `dealer-feed run`'s path (the
    landing root from the same hook); day 2 with a corrupted raw object; a local-landing run of
    day 1 as the reference. Every log record, and everything printed (file descriptors 1 and 2
    and sys.stdout / sys.stderr), meanwhile is kept."""
    import airflow.settings
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    from dealer_feed.config import find_group
    from dealer_feed.opentrack.client import OpenTrackClient
    from dealer_feed.runner import run_group
    from dealer_feed.warehouse import make_engine

    tmp = tmp_path_factory.mktemp("s3landing")
    data = tmp / "data"
    monkeypatch_module.setenv(landing.DATA_DIR_ENV, str(data))
    monkeypatch_module.setenv(landing.LANDING_URL_ENV, s3.url)
    world = load_world(DEMO_WORLD)
    vendor = world.vendors[0]
    warehouse = f"sqlite:///{tmp / 'warehouse.db'}"
    with create_session() as session:
        session.execute(sa.delete(DagRun).where(DagRun.dag_id == "dealer_feed_demo"))
    records = Records()
    out: dict = {"data": data, "log": tmp / "output.log"}
    with (start_background(world) as sim, output_to(out["log"]), out["log"].open("a") as printed,
          contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed)):
        for key, value in connection_env(sim.url, vendor.username, vendor.password.get_secret_value(),
                                         warehouse).items():
            monkeypatch_module.setenv(key, value)
        logging_root = logging.getLogger()
        logging_root.addHandler(records)
        try:
            dag = group_dag("demo")
            for task in dag.tasks:  # retries stay quick (production: 30 s doubling)
                task.retries = 0
            out["day1"] = dag.test(logical_date=DAY1)
            out["requests_day1"] = len(sim.requests())
            out["business_day1"] = _business(warehouse)
            out["objects_day1"] = s3.server.objects(s3.bucket, PREFIX + "/")
            out["rerun"] = run_group(find_group("demo"), DAY1, make_engine(warehouse))  # prints its step lines
            out["requests_rerun"] = len(sim.requests()) - out["requests_day1"]
            out["objects_rerun"] = s3.server.objects(s3.bucket, PREFIX + "/")
            corrupt = f"{PREFIX}/demo/vehicles/{CORRUPT_DEALER}/run=20261124T060000Z/raw.parquet"
            s3.server.put(s3.bucket, corrupt, b"PAR1 half a file")
            out["day2"] = dag.test(logical_date=DAY2)
            with create_session() as session:
                out["tis2"] = {(ti.task_id, (ti.rendered_map_index or "").rpartition(": ")[2]): str(ti.state)
                               for ti in out["day2"].get_task_instances(session=session)}
            out["xcom"] = tables(airflow.settings.engine, "Airflow metadata DB", skip=("connection",))
        finally:
            logging_root.removeHandler(records)
        reference = tmp / "reference.db"
        with OpenTrackClient(sim.url, vendor.username, vendor.password.get_secret_value()) as client:
            run_group(find_group("demo"), DAY1, make_engine(f"sqlite:///{reference}"), landing=tmp / "local-landing",
                      client=client, say=lambda line: None)
    out["records"] = records.lines
    out["objects"] = s3.server.objects(s3.bucket, PREFIX + "/")
    out["warehouse"], out["reference"] = warehouse, f"sqlite:///{reference}"
    with create_session() as session:
        session.execute(sa.delete(DagRun).where(DagRun.dag_id == "dealer_feed_demo"))
    return out


def _business(url: str) -> dict[str, str]:
    engine = sa.create_engine(url)
    hashes = table_hashes(engine)
    engine.dispose()
    return {t: hashes[t] for t in BUSINESS}


def test_demo_dag_lands_on_s3_only_and_loads_what_a_local_landing_run_loads(dag_runs):
    assert str(dag_runs["day1"].state) == "success"
    keys = sorted(dag_runs["objects_day1"])
    for dealer in ("ZE_ZE7", "ZE_ZE8", "ZE_ZE9"):
        for name in ("raw.parquet", "good.parquet", "quarantine.parquet", "status.json", "report.html"):
            assert f"{PREFIX}/demo/vehicles/{dealer}/run=20261123T060000Z/{name}" in keys
    assert f"{PREFIX}/demo/runs/run=20261123T060000Z/summary.json" in keys
    assert f"{PREFIX}/demo/runs/run=20261123T060000Z/changes/events.parquet" in keys
    assert not any(p.is_file() for p in (dag_runs["data"] / "landing").rglob("*"))  # nothing landed locally
    # the warehouse equals a run of the same feed time with the local landing area (the default)
    assert dag_runs["business_day1"] == _business(dag_runs["reference"])


def test_rerun_of_the_same_feed_time_reuses_the_raw_objects(dag_runs):
    assert dag_runs["rerun"].load["status"] == "already_applied" and dag_runs["rerun"].failed_dealers == []
    assert dag_runs["requests_rerun"] == 0  # nothing fetched again from OpenTrack
    raws = {k for k in dag_runs["objects_day1"] if k.endswith("raw.parquet")}
    assert raws and {k: dag_runs["objects_rerun"][k] for k in raws} == {k: dag_runs["objects_day1"][k] for k in raws}
    assert dag_runs["objects_rerun"] == dag_runs["objects_day1"]  # validation rewrote the same bytes


def test_a_corrupted_object_fails_its_dealer_task_with_the_landing_file_error(dag_runs, s3):
    tis = dag_runs["tis2"]
    assert str(dag_runs["day2"].state) == "failed"
    assert tis[("extract", CORRUPT_DEALER)] == "failed"
    assert tis[("extract", "ZE_ZE8")] == tis[("load", "")] == "success"  # the others still load
    url = f"{s3.url}/demo/vehicles/{CORRUPT_DEALER}/run=20261124T060000Z/raw.parquet"
    errors = [line for line in dag_runs["records"] if f"landing file {url} is not a readable Parquet file" in line]
    assert errors and f"Fix: delete {url} and clear the `extract` batch of dealer {CORRUPT_DEALER}" in errors[0]
    assert not any("botocore" in line for line in dag_runs["records"])


def test_the_connection_secret_reaches_no_log_output_object_or_xcom(dag_runs, s3):
    places = {
        **dag_runs["xcom"],
        **objects(dag_runs["objects"], "landing object"),
        **files(dag_runs["data"], "data directory"),
        "output": [dag_runs["log"].read_text(errors="replace")],
        "log records": dag_runs["records"],
    }
    seen = found(places, CORRUPT_DEALER)  # proves each kind of place was read
    for kind in ("Airflow metadata DB xcom.", "landing object", "output", "log records"):
        assert any(place.startswith(kind) for place in seen), f"nothing of the run found in {kind}"
    assert found(places, s3server.SECRET) == []
