"""`make airflow` for real: `dealer-feed airflow` starts `airflow standalone` (scheduler,
api-server, dag-processor, triggerer, LocalExecutor) with the simulator; the test drives
it from the CLI as a data engineer would: trigger the demo DAG, wait for success, clear
its tasks, wait again, and checks that the warehouse did not change and that the
analysts' consumer DAG ran on the group's Asset. A last manual run with a logical date off the
schedule must process the latest feed time at or before it (an older feed than the one applied,
so its load must refuse it and leave the warehouse as it is), and its map index must say so. Then Ctrl-C (SIGINT), and SIGTERM in a
second test, must stop every process carrying the test's AIRFLOW_HOME (issue 16).
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from airflow_services import Metadata, Services, wait_run_finished
from dealer_feed.config import find_group
from dealer_feed.contract.identity import feed_time_at_or_before, run_key
from dealer_feed_tools import processes
from support import ROOT, free_port, table_hashes

pytestmark = pytest.mark.slow
DAG_ID = "dealer_feed_demo"
SCHEDULE = find_group("demo").schedule


def test_standalone_trigger_clear_rerun_keeps_the_warehouse(tmp_path):
    home, data = tmp_path / "airflow", tmp_path / "data"
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")} | {
        "AIRFLOW_HOME": str(home),
        "DEALER_FEED_DATA_DIR": str(data),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tests")]),
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with Services(env=env, log_dir=tmp_path / "logs") as services:
        services.start("dealer-feed-airflow", [sys.executable, "-m", "dealer_feed", "airflow", "--port", str(port)])
        services.wait_http(f"http://127.0.0.1:{port}/api/v2/version", timeout=240, what="the api-server")
        meta = Metadata(f"sqlite:///{home / 'airflow.db'}")
        services.wait_until(lambda: meta.dag_loaded(DAG_ID) and meta.dag_loaded("analyst_refresh_demo"),
                            120, "the DAGs to be parsed")

        # A manual run at "now": its feed time is the latest 06:00 tick, the same as the run
        # the scheduler creates when the DAG is unpaused, so the second to load is a no-op.
        logical = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
        services.airflow("dags", "trigger", DAG_ID, "--run-id", "manual_test", "--logical-date", logical)
        services.airflow("dags", "unpause", DAG_ID)

        def all_runs_done() -> bool:
            runs = meta.runs(DAG_ID)
            return bool(runs) and all(state in ("success", "failed") for _, state, _ in runs)

        services.wait_until(all_runs_done, 300, "the demo DAG's runs to finish", interval=2)
        assert {state for _, state, _ in meta.runs(DAG_ID)} == {"success"}, meta.task_states(DAG_ID, "manual_test")
        warehouse = sa.create_engine(f"sqlite:///{data / 'warehouse.db'}")
        with warehouse.connect() as conn:
            applied = conn.execute(sa.text("SELECT count(*), sum(sr_created) FROM etl_runs")).one()
        assert applied[0] == 1 and applied[1] > 100, applied  # one feed time, loaded once
        before = table_hashes(warehouse)

        # Every run of the DAG (the test's and the scheduler's), `extract` with downstream, in one
        # clear, as the runbook says: both runs are queued again at once and restart in logical-date
        # order (separate clears can restart the later run first, whose `load` then waits on the
        # earlier run's, which max_active_runs=1 keeps queued). Each load is then a no-op.
        # Airflow 3.3's -t matches task ids by substring, not by regex.
        cleared = services.airflow("tasks", "clear", DAG_ID, "-t", "extract", "-d", "-y").stdout

        def rerun_done() -> bool:
            tries = {t: n for t, _, state, n in meta.task_states(DAG_ID, "manual_test") if state == "success"}
            return tries.get("load", 0) >= 2 and meta.run_state(DAG_ID, "manual_test") in ("success", "failed")

        services.wait_until(rerun_done, 240, f"the cleared tasks to run again ({cleared})", interval=2)
        assert meta.run_state(DAG_ID, "manual_test") == "success"
        tries = {(t, m): n for t, m, _, n in meta.task_states(DAG_ID, "manual_test")}
        assert tries[("load", -1)] >= 2 and tries[("transform", -1)] >= 2 and tries[("validate", -1)] >= 2
        assert min(n for (t, _), n in tries.items() if t == "extract") >= 2  # they really ran again
        assert table_hashes(warehouse) == before

        consumer = services.wait_until(lambda: [s for _, s, _ in meta.runs("analyst_refresh_demo") if s == "success"],
                                       120, "the consumer DAG to run on the Asset")
        assert consumer
        assert (data / "analyst" / "demo_service_requests.json").exists()

        # Manual triggers say what they process (issue 13): logical date 2 h after the previous
        # 06:00 tick processes that 06:00 feed (the latest at or before it), not the feed
        # Airflow's CLI infers from the trigger time, and its map index says so. That feed is
        # older than the one applied above, so its load refuses it and the warehouse stays as it is.
        latest = feed_time_at_or_before(SCHEDULE, datetime.now(timezone.utc))
        previous = latest - timedelta(days=1)
        services.airflow("dags", "trigger", DAG_ID, "--run-id", "manual_off_schedule",
                         "--logical-date", (previous + timedelta(hours=2)).isoformat())
        assert wait_run_finished(services, meta, DAG_ID, "manual_off_schedule", 300) == "failed"
        states = {(t, m): s for t, m, s, _ in meta.task_states(DAG_ID, "manual_off_schedule")}
        assert states[("load", -1)] == "failed" and states[("transform", -1)] == "success", states
        names = meta.rows("SELECT rendered_map_index FROM task_instance WHERE dag_id = :d AND run_id = :r "
                          "AND task_id = 'extract'", d=DAG_ID, r="manual_off_schedule")
        assert names and all(n.startswith(f"feed {previous:%Y-%m-%d %H:%M} UTC: ") for (n,) in names), names
        assert (data / "landing" / "demo" / "runs" / f"run={run_key(previous)}").is_dir()
        assert table_hashes(warehouse) == before
        meta.dispose()

        # Ctrl-C, as at the terminal: `dealer-feed airflow` stops standalone's whole tree itself
        # (before the harness's own clean-up below could hide a leak)
        assert_stops_everything(services.components[0].process, signal.SIGINT, home)


def airflow_processes(home, root: int | None = None) -> list:
    """Every live process whose AIRFLOW_HOME is `home` (/proc/PID/environ), with the sessions
    they lead (workers that set their process title hide their environment), and `root`'s
    descendants."""
    return processes.find(env_dirs={"AIRFLOW_HOME": [home]}, roots=[root] if root else [])


def assert_stops_everything(process, sig: signal.Signals, home) -> None:
    running = airflow_processes(home, root=process.pid)
    names = " ".join(processes.describe(p) for p in running)
    assert all(part in names for part in ("standalone", "scheduler", "dag-processor", "triggerer")), names
    process.send_signal(sig)
    assert process.wait(timeout=90) == 0
    left = [p for p in running if processes.is_alive(p)] + airflow_processes(home)
    assert [processes.describe(p) for p in left] == []


def test_dealer_feed_airflow_stops_its_whole_tree_on_sigterm(tmp_path):
    """`kill PID` of `dealer-feed airflow` (a stopped service, a cancelled job) stops
    standalone and every component; Python's default SIGTERM would leave them all running."""
    home, port = tmp_path / "airflow", free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")} | {
        "AIRFLOW_HOME": str(home),
        "DEALER_FEED_DATA_DIR": str(tmp_path / "data"),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tests")]),
        "PATH": f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    with Services(env=env, log_dir=tmp_path / "logs") as services:
        airflow = services.start("dealer-feed-airflow",
                                 [sys.executable, "-m", "dealer_feed", "airflow", "--port", str(port)])
        services.wait_http(f"http://127.0.0.1:{port}/api/v2/version", timeout=240, what="the api-server")
        assert_stops_everything(airflow.process, signal.SIGTERM, home)
