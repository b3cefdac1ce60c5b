"""The distributed path for real: CeleryExecutor with its own processes on this machine.

api-server, scheduler, dag-processor and one `airflow celery worker`; PostgreSQL for
Airflow's metadata (a database on the tests' throwaway server), Redis as the broker (the
machine's Redis on db index 7 when one answers, else a throwaway redis-server). The demo
group's DAG is triggered, must succeed with its tasks executed by the Celery worker, and
the warehouse must hold the run.
"""

from __future__ import annotations

import shutil
import socket
import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

import pgserver
from airflow_services import Metadata, Services, airflow_env
from dealer_feed_tools.demo import connection_env
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import load_world
from support import ROOT, free_port

pytestmark = pytest.mark.slow
DAG_ID = "dealer_feed_demo"
REDIS_DB = 7


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
    api_port = free_port()
    world = load_world(ROOT / "include" / "simulator" / "demo_world.yaml")
    vendor = world.vendors[0]
    warehouse = tmp_path / "warehouse.db"
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
                AIRFLOW__CELERY__WORKER_CONCURRENCY="4",
                DEALER_FEED_DATA_DIR=str(tmp_path / "data"),
                **connection_env(sim.url, vendor.username, vendor.password.get_secret_value(), f"sqlite:///{warehouse}"),
            )
            (tmp_path / "airflow").mkdir()
            services.airflow("db", "migrate", timeout=300)
            services.start_airflow("api-server", "api-server", "--port", str(api_port))
            services.start_airflow("scheduler", "scheduler")
            services.start_airflow("dag-processor", "dag-processor")
            services.start_airflow("worker", "celery", "worker")
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
            worker_log = (tmp_path / "logs" / "worker.log").read_text(errors="replace")
            assert "execute_workload" in worker_log and DAG_ID in worker_log  # the Celery worker ran them
            meta.dispose()

        with sa.create_engine(f"sqlite:///{warehouse}").connect() as conn:
            count, created = conn.execute(sa.text("SELECT count(*), sum(sr_created) FROM etl_runs")).one()
            dealers = conn.execute(sa.text("SELECT count(DISTINCT dealer_id) FROM feed_vehicles")).scalar()
        assert count == 1 and created > 100 and dealers == 3
    finally:
        server.drop_database(database)
        if redis_answers(6379):
            flush_redis(6379, REDIS_DB)
