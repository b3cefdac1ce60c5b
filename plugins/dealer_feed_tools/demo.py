"""`dealer-feed demo`: the demo group's DAG, end to end, on the embedded warehouse.

Starts the OpenTrack simulator on a free loopback port, points the Airflow connections
at it and at `data/warehouse.db`, runs the real DAG with `dag.test()` for consecutive
daily logical dates, stops the simulator and prints what was loaded. Rerunning the demo
re-applies nothing ("already applied") and prints the same summary.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

from dealer_feed_tools import processes
from dealer_feed.config import PROJECT_ROOT, airflow_defaults
from dealer_feed.landing import data_dir

DEMO_GROUP = "demo"

def connection_env(opentrack_url: str, username: str, password: str, warehouse_url: str,
                   transport: str | None = None) -> dict[str, str]:
    """AIRFLOW_CONN_* variables for the two connections a group reads (`transport`: the OpenTrack
    connection's extra, default the client's: star)."""
    extra = {"extra": {"transport": transport}} if transport else {}
    return {
        "AIRFLOW_CONN_OPENTRACK_DEFAULT": json.dumps(
            {"conn_type": "opentrack", "host": opentrack_url, "login": username, "password": password} | extra
        ),
        "AIRFLOW_CONN_DEALER_FEED_WAREHOUSE": json.dumps({"conn_type": "generic", "extra": {"sqlalchemy_url": warehouse_url}}),
    }


@contextlib.contextmanager
def output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout and stderr (file descriptors, so Airflow's task logs
    too) to `path` for the duration, so the console shows only the demo's own lines."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("ab") as sink:
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def group_dag(group: str, dags_folder: Path = PROJECT_ROOT / "dags"):
    """The group's DAG, loaded from its DAG file as a module (the stub's `dag`; no internal
    DagBag). A file that does not import is refused with its error in one line."""
    import importlib.util

    path = dags_folder / f"dealer_feed_{group}.py"
    spec = importlib.util.spec_from_file_location(f"dealer_feed_dag_{group}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001 - any import error of the file is the answer
        raise RuntimeError(f"DAG file {path} of group {group} does not import: {type(exc).__name__}: {exc}") from exc
    return module.dag


def run_demo(world: Path, days: int, first: datetime) -> int:
    airflow_defaults()
    from dealer_feed_tools.simulator.server import start_background
    from dealer_feed.warehouse import make_engine, reads

    warehouse_file = data_dir() / "warehouse.db"
    warehouse_file.parent.mkdir(parents=True, exist_ok=True)
    warehouse_url = f"sqlite:///{warehouse_file}"
    dates = [first + timedelta(days=i) for i in range(days)]
    task_log = data_dir() / "demo-airflow.log"
    engine = make_engine(warehouse_url)
    states = []
    # guarded: Ctrl-C or SIGTERM stops the simulator (a thread here) and anything the runs
    # started (dealer_feed_tools.processes), as a normal end does
    with processes.guarded("dealer-feed-demo"), start_background(world) as sim:
        print(f"OpenTrack simulator listening on {sim.url}")
        vendor = sim.world.vendors[0]
        os.environ.update(connection_env(sim.url, vendor.username, vendor.password.get_secret_value(), warehouse_url))
        with output_to(task_log):
            print(f"\n===== dealer-feed demo, {len(dates)} run(s) from {dates[0]:%Y-%m-%d %H:%M} UTC =====", flush=True)
            dag = group_dag(DEMO_GROUP)
        for moment in dates:
            print(f"running DAG dealer_feed_{DEMO_GROUP} for feed time {moment:%Y-%m-%d %H:%M} UTC ...", end=" ", flush=True)
            before = _applied_runs(engine)
            with output_to(task_log):
                states.append(str(dag.test(logical_date=moment).state))
            note = "" if _applied_runs(engine) - before else " (already applied: this rerun changed nothing)"
            print(states[-1] + note)
    print(f"simulator stopped; Airflow task logs (appended per demo): {task_log}\n")
    print(reads.format_run_summary(engine, DEMO_GROUP))
    print(f"\nWarehouse content hash (business tables, rows sorted): {reads.content_hash(engine)}")
    example = reads.SR_COUNTS_SQL.read_text().replace(":dealer_group", f"'{DEMO_GROUP}'")
    query = " ".join(line for line in example.splitlines() if not line.startswith("--"))
    print(f"Warehouse: {warehouse_file}\nTry:  sqlite3 {warehouse_file} \"{' '.join(query.split())};\"")
    if any(state != "success" for state in states):
        print(f"dealer-feed demo: runs ended {states}; see the task logs above", file=sys.stderr)
        return 1
    return 0


def _applied_runs(engine) -> set[str]:
    """Run ids already in the warehouse ledger (none before the first migrate)."""
    from dealer_feed.warehouse import reads
    from dealer_feed.warehouse.errors import NotMigratedError

    try:
        return set(reads.run_history(engine, DEMO_GROUP, limit=1000)["run_id"])
    except NotMigratedError:
        return set()
