"""The `large` group (300 dealers, ~200,000 vehicles) end to end through real Airflow.

Starts the simulator with include/simulator/large_world.yaml, runs the group's DAG with
dag.test() for two consecutive hourly runs against a fresh SQLite warehouse, and prints
each run's wall time, each task's share, and rows/s. The baseline, in the same process,
is the bare cost of the same extraction: one client fetching every dealer's inventory
over HTTP with no validation, rules or load.

Run: `make bench` (all benchmarks) or `.venv/bin/python bench/bench_large_run.py`.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "plugins"), str(ROOT / "bench")]
WORK = Path(tempfile.mkdtemp(prefix="bench-large-"))
os.environ.update(
    {
        "AIRFLOW_HOME": str(WORK / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "GX_ANALYTICS_ENABLED": "False",
        "DEALER_FEED_DATA_DIR": str(WORK / "data"),
    }
)

import subprocess  # noqa: E402

from machine import describe  # noqa: E402

from dealer_feed_tools import processes  # noqa: E402
from dealer_feed.config import find_group  # noqa: E402
from dealer_feed_tools.demo import connection_env, group_dag, output_to  # noqa: E402
from dealer_feed.opentrack.client import OpenTrackClient  # noqa: E402
from dealer_feed_tools.simulator import start_background  # noqa: E402
from dealer_feed_tools.simulator.world import load_world  # noqa: E402

WORLD = ROOT / "include" / "simulator" / "large_world.yaml"
FIRST = datetime(2026, 11, 24, 6, tzinfo=timezone.utc)


def task_seconds(dag_id: str, run_id: str) -> dict[str, float]:
    """Wall seconds per task id (mapped instances summed) from Airflow's metadata DB."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    totals: dict[str, float] = {}
    with create_session() as session:
        for ti in session.query(TaskInstance).filter(TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id):
            if ti.start_date and ti.end_date:
                totals[ti.task_id] = totals.get(ti.task_id, 0.0) + (ti.end_date - ti.start_date).total_seconds()
    return totals


def main() -> int:
    print(describe())
    (WORK / "airflow").mkdir(parents=True)
    subprocess.run([str(Path(sys.executable).with_name("airflow")), "db", "migrate"], check=True, capture_output=True)

    group = find_group("large")
    world = load_world(WORLD)
    vendor = world.vendors[0]
    log_file = WORK / "airflow-task.log"
    with start_background(world) as sim:
        password = vendor.password.get_secret_value()
        os.environ.update(connection_env(sim.url, vendor.username, password, f"sqlite:///{WORK / 'warehouse.db'}"))

        started = time.perf_counter()
        client = OpenTrackClient(sim.url, vendor.username, password, requests_per_second=1000)
        bare_rows = sum(client.vehicle_inventory(d, FIRST).num_rows for d in group.dealers)
        bare = time.perf_counter() - started
        print(f"baseline: bare HTTP extract of {len(group.dealers)} dealers, {bare_rows:,} vehicles: {bare:.1f}s")

        dag = group_dag("large")
        for n in range(2):
            moment = FIRST + timedelta(hours=n)
            started = time.perf_counter()
            with output_to(log_file):
                run = dag.test(logical_date=moment)
            seconds = time.perf_counter() - started
            tasks = task_seconds(dag.dag_id, run.run_id)
            shares = ", ".join(f"{k} {v:.1f}s" for k, v in sorted(tasks.items(), key=lambda kv: -kv[1]))
            print(f"run {n + 1} ({moment:%Y-%m-%d %H:%M}): {run.state}, {seconds:.1f}s wall "
                  f"({bare_rows / seconds:,.0f} vehicles/s; {seconds / bare:.1f}x the bare extract); tasks: {shares}")
    print(f"task logs: {log_file}")
    return 0


if __name__ == "__main__":
    with processes.guarded("bench-large-run"):  # nothing it starts outlives it (Ctrl-C, SIGTERM too)
        sys.exit(main())
