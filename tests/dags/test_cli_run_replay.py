"""`dealer-feed run` and `dealer-feed replay` as a data engineer runs them (real subprocesses,
simulator over HTTP, real SQLite files), compared with the DAG's own runs under real Airflow
(`dag.test()`) for the same feed times: the business tables (every table but etl_runs, which
holds Airflow run ids and timings) must be equal."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from support import ROOT, TABLES, table_hashes
from dealer_feed_tools.demo import connection_env, group_dag
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import load_world

WORLD = ROOT / "include" / "simulator" / "demo_world.yaml"
DAY1 = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
BUSINESS = tuple(t for t in TABLES if t != "etl_runs")


def business_hashes(url: str) -> dict[str, str]:
    hashes = table_hashes(sa.create_engine(url))
    return {t: hashes[t] for t in BUSINESS}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    full_env = os.environ | {"PYTHONPATH": str(ROOT / "plugins")} | env
    return subprocess.run([sys.executable, "-m", "dealer_feed", *args], capture_output=True, text=True,
                          env=full_env, timeout=300, stdin=subprocess.DEVNULL)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("dealer-feed ")]
    assert errors == lines[-1:], result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def runs(airflow_db, tmp_path_factory):
    """The DAG's two runs into warehouse `dag`; the CLI's two runs (plus a rerun) into `cli`."""
    tmp = tmp_path_factory.mktemp("runreplay")
    world = load_world(WORLD)
    vendor = world.vendors[0]
    out: dict = {"tmp": tmp}
    with start_background(world) as sim:
        def env(name: str, data: str | None = None) -> dict[str, str]:
            url = f"sqlite:///{tmp / f'{name}.db'}"
            out[name] = url
            return connection_env(sim.url, vendor.username, vendor.password.get_secret_value(), url) | {
                "DEALER_FEED_DATA_DIR": str(tmp / (data or name))}

        mp = pytest.MonkeyPatch()
        try:
            for key, value in env("dag").items():
                mp.setenv(key, value)
            dag = group_dag("demo")
            out["dag_states"] = [str(dag.test(logical_date=day).state) for day in (DAY1, DAY2)]
        finally:
            mp.undo()
        cli_env = env("cli")
        out["cli_env"] = cli_env
        out["run1"] = cli("run", "demo", "--at", "2026-11-23T06:00", env=cli_env)
        out["run2"] = cli("run", "demo", "--at", "2026-11-24T06:00", env=cli_env)
        out["after_two"] = business_hashes(out["cli"])
        # off the daily 06:00 schedule: the latest 06:00 at or before it, the run above
        out["rerun"] = cli("run", "demo", "--at", "2026-11-24T09:30+01:00", env=cli_env)
        # The runbook's "older run refused": the later run applied first, then the older one.
        swapped_env = env("swapped")
        out["swapped_later"] = cli("run", "demo", "--at", "2026-11-24T06:00Z", env=swapped_env)
        out["swapped_older"] = cli("run", "demo", "--at", "2026-11-23T06:00", env=swapped_env)
        out["swapped_env"] = swapped_env
    return out


def test_run_prints_each_step_and_equals_the_dag(runs):
    assert runs["dag_states"] == ["success", "success"]
    for name in ("run1", "run2"):
        result = runs[name]
        assert result.returncode == 0, result.stderr[-3000:]
        assert "Traceback" not in result.stderr
        assert "migrate: " in result.stdout
        assert "validate ZE_ZE7 vehicles: ok" in result.stdout
        assert "transform: 3 dealer(s) extracted" in result.stdout
        assert "load: run demo:" in result.stdout and " applied" in result.stdout
        steps = ("run ", "migrate: ", "extract ", "validate ", "transform: ", "load: ")
        assert all(line.startswith(steps) for line in result.stdout.splitlines()), "stdout: step lines only"
        assert "[dealer_feed.pipeline]" in result.stderr, "logs go to stderr"
    assert runs["run1"].stdout.splitlines()[0] == (
        "run demo:20261123T060000Z: feed time 2026-11-23 06:00 UTC (on the `0 6 * * *` schedule)")
    assert runs["after_two"] == business_hashes(runs["dag"])


def test_rerun_off_schedule_processes_the_feed_before_it_and_changes_nothing(runs):
    result = runs["rerun"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0] == ("run demo:20261124T060000Z: feed time 2026-11-24 06:00 UTC "
                                             "(the latest `0 6 * * *` time at or before 2026-11-24 08:30:00 UTC)")
    assert "load: run demo:20261124T060000Z already applied; nothing changed" in result.stdout
    assert business_hashes(runs["cli"]) == runs["after_two"]
    with sa.create_engine(runs["cli"]).connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM etl_runs")).scalar() == 2


def test_bad_input_is_one_line(runs):
    env = runs["cli_env"]
    assert_one_line_error(cli("run", "demo", "--at", "2026-11-23T06:00", "--dealers", "NOPE", env=env),
                          "NOPE not in group demo")
    bad_time = cli("run", "demo", "--at", "yesterday", env=env)
    assert bad_time.returncode == 2 and "not an ISO 8601 time" in bad_time.stderr


def test_a_failed_dealer_fails_the_command_and_the_others_load(runs, tmp_path):
    """A dealer the simulator does not know fails its batch; the others load; exit 1, one line."""
    env = runs["cli_env"] | {
        "DEALER_FEED_DATA_DIR": str(tmp_path / "data"),
        "AIRFLOW_CONN_DEALER_FEED_WAREHOUSE": json.dumps(
            {"conn_type": "generic", "extra": {"sqlalchemy_url": f"sqlite:///{tmp_path / 'wh.db'}"}}),
        "AIRFLOW_CONN_OPENTRACK_DEFAULT": json.dumps(
            json.loads(runs["cli_env"]["AIRFLOW_CONN_OPENTRACK_DEFAULT"]) | {"password": "wrong"}),
    }
    result = cli("run", "demo", "--at", "2026-11-23T06:00", "--dealers", "ZE_ZE7", env=env)
    assert_one_line_error(result, "transform:")  # no dealer extracted: nothing to transform
    assert "extract ZE_ZE7 vehicles: failed" in result.stdout
    assert "wrong" not in result.stdout + result.stderr


def test_replay_into_an_empty_warehouse_equals_the_one_by_one_runs(runs):
    url = f"sqlite:///{runs['tmp'] / 'replayed.db'}"
    result = cli("replay", "demo", "--url", url, env=runs["cli_env"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "replay demo: 2 run(s)" in result.stdout
    assert business_hashes(url) == runs["after_two"] == business_hashes(runs["dag"])
    again = cli("replay", "demo", "--url", url, env=runs["cli_env"])
    assert again.returncode == 0 and "no landed run to apply" in again.stdout
    assert business_hashes(url) == runs["after_two"]


def test_replay_refuses_to_undo_applied_runs(runs):
    before = business_hashes(runs["cli"])
    result = cli("replay", "demo", "--from", "2026-11-23T06:00", env=runs["cli_env"])
    assert_one_line_error(result, "already holds run demo:20261124T060000Z", "--url")
    assert business_hashes(runs["cli"]) == before


def test_older_run_refused_is_recovered_by_replay(runs):
    """The runbook's RunOrderError: the older run cannot load after the later one; replaying the
    landing area into a new warehouse applies both in feed-time order, equal to the DAG's."""
    assert runs["swapped_later"].returncode == 0, runs["swapped_later"].stderr[-3000:]
    assert_one_line_error(runs["swapped_older"], "load:", "older than")
    url = f"sqlite:///{runs['tmp'] / 'recovered.db'}"
    result = cli("replay", "demo", "--url", url, env=runs["swapped_env"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert business_hashes(url) == business_hashes(runs["dag"])


def test_replay_validates_again_when_derived_files_are_gone(runs):
    """status.json / good.parquet are derived: replay rebuilds them from the immutable raw file."""
    data = Path(runs["cli_env"]["DEALER_FEED_DATA_DIR"])
    run_dir = data / "landing" / "demo" / "vehicles" / "ZE_ZE8" / "run=20261123T060000Z"
    (run_dir / "status.json").unlink()
    (run_dir / "good.parquet").unlink()
    url = f"sqlite:///{runs['tmp'] / 'revalidated.db'}"
    result = cli("replay", "demo", "--url", url, env=runs["cli_env"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert (run_dir / "status.json").exists()
    assert business_hashes(url) == runs["after_two"]
