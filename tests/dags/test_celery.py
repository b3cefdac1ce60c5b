"""The distributed path for real: CeleryExecutor with its own processes on this machine.

api-server, scheduler, dag-processor and two `airflow celery worker`s (concurrency 1 each, so
the run's tasks spread over both) that share no disk: each runs in its own working directory
with its own, empty DEALER_FEED_DATA_DIR. The landing area is object storage only (S3 on a
moto server, tests/s3server.py, through the `dealer_feed_landing` connection) and the
warehouse a PostgreSQL database, as in production. PostgreSQL for Airflow's metadata (a
database on the tests' throwaway server), Redis as the broker (the machine's Redis on db
index 7 when one answers, else a throwaway redis-server). The demo group's DAG is triggered
and must succeed with tasks executed by both workers (a task on one worker reads what a task
on the other landed), its files in S3 and none in either worker's data directory, and the
warehouse must hold the run.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

import pgserver
import s3server
from airflow_services import BIN, Metadata, Services, airflow_env
from dealer_feed_tools.demo import connection_env
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import load_world
from support import ROOT, free_port

pytestmark = pytest.mark.slow
DAG_ID = "dealer_feed_demo"
REDIS_DB = 7
WORKERS = ("worker-a", "worker-b")
PREFIX = "celery"


def redis_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def flush_redis(port: int, db: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"SELECT {db}\r\nFLUSHDB\r\n".encode())
        sock.recv(64)


def test_celery_executor_runs_the_demo_dag(tmp_path):
    server = pgserver.get_server()
    database = f"airflow_celery_{uuid.uuid4().hex[:8]}"
    server.create_database(database)
    metadata_url = server.url(database, driver="postgresql+psycopg2")
    warehouse_db = f"warehouse_celery_{uuid.uuid4().hex[:8]}"
    warehouse = server.create_database(warehouse_db)
    s3 = s3server.get_server()
    bucket = s3.create_bucket(f"celery-{uuid.uuid4().hex[:10]}")
    api_port = free_port()
    world = load_world(ROOT / "include" / "simulator" / "demo_world.yaml")
    vendor = world.vendors[0]
    try:
        with start_background(world) as sim, Services(env={}, log_dir=tmp_path / "logs") as services:
            redis_port = 6379
            if not redis_answers(redis_port):
                redis_port = free_port()
                services.start("redis", [shutil.which("redis-server") or "redis-server", "--port", str(redis_port),
                                         "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                services.wait_until(lambda: redis_answers(redis_port), 30, "redis-server")
            flush_redis(redis_port, REDIS_DB)
            services.env = airflow_env(
                tmp_path / "airflow", api_port,
                AIRFLOW__CORE__EXECUTOR="CeleryExecutor",
                AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=metadata_url,
                AIRFLOW__CELERY__BROKER_URL=f"redis://127.0.0.1:{redis_port}/{REDIS_DB}",
                AIRFLOW__CELERY__RESULT_BACKEND=f"db+{metadata_url.replace('+psycopg2', '')}",
                AIRFLOW__CELERY__WORKER_CONCURRENCY="1",
                DEALER_FEED_DATA_DIR=str(tmp_path / "data-services"),
                DEALER_FEED_LANDING_URL=f"s3://{bucket}/{PREFIX}",
                **s3.connection_env(),
                **connection_env(sim.url, vendor.username, vendor.password.get_secret_value(), warehouse),
            )
            (tmp_path / "airflow").mkdir()
            services.airflow("db", "migrate", timeout=300)
            services.start_airflow("api-server", "api-server", "--port", str(api_port))
            services.start_airflow("scheduler", "scheduler")
            services.start_airflow("dag-processor", "dag-processor")
            for name in WORKERS:  # no shared directory: own cwd, own empty data dir
                (tmp_path / name / "data").mkdir(parents=True)
                services.start(name, [BIN / "airflow", "celery", "worker", "--celery-hostname", f"{name}@%h",
                                      "--concurrency", "1"],
                               env=services.env | {"DEALER_FEED_DATA_DIR": str(tmp_path / name / "data")},
                               cwd=tmp_path / name)
            services.wait_http(f"http://127.0.0.1:{api_port}/api/v2/version", timeout=180, what="the api-server")
            meta = Metadata(server.url(database))
            services.wait_until(lambda: meta.dag_loaded(DAG_ID), 120, "the demo DAG to be parsed")

            logical = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
            services.airflow("dags", "trigger", DAG_ID, "--run-id", "celery_test", "--logical-date", logical)

            def all_runs_done() -> bool:
                runs = meta.runs(DAG_ID)
                return bool(runs) and all(state in ("success", "failed") for _, state, _ in runs)

            services.wait_until(all_runs_done, 300, "the demo DAG's runs to finish", interval=2)
            states = meta.task_states(DAG_ID, "celery_test")
            assert meta.run_state(DAG_ID, "celery_test") == "success", states
            assert {s for _, _, s, _ in states} <= {"success", "skipped"}
            for name in WORKERS:  # both Celery workers ran tasks of the run
                worker_log = (tmp_path / "logs" / f"{name}.log").read_text(errors="replace")
                assert "execute_workload" in worker_log and DAG_ID in worker_log, name
            meta.dispose()

        keys = s3.keys(bucket, f"{PREFIX}/demo/")
        assert sum(k.endswith("/raw.parquet") for k in keys) >= 3 and any(k.endswith("/summary.json") for k in keys)
        for name in WORKERS:
            assert not [p for p in (tmp_path / name).rglob("*") if p.is_file() and "landing" in p.parts], name
        engine = sa.create_engine(warehouse)
        with engine.connect() as conn:
            count, created = conn.execute(sa.text("SELECT count(*), sum(sr_created) FROM etl_runs")).one()
            dealers = conn.execute(sa.text("SELECT count(DISTINCT dealer_id) FROM feed_vehicles")).scalar()
        engine.dispose()
        assert count == 1 and created > 100 and dealers == 3
    finally:
        server.drop_database(database)
        server.drop_database(warehouse_db)
        if redis_answers(6379):
            flush_redis(6379, REDIS_DB)
