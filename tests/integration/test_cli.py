"""`dealer-feed` as a data engineer runs it: real subprocesses, real simulator, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from support import ROOT
from dealer_feed_tools import processes
from dealer_feed_tools.simulator import start_background
from dealer_feed_tools.simulator.world import load_world

WORLD = ROOT / "include" / "simulator" / "demo_world.yaml"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = os.environ | {"PYTHONPATH": str(ROOT / "plugins")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "dealer_feed", *args], capture_output=True, text=True, env=full_env,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("sub", ["simulator", "check", "migrate", "run", "replay", "demo", "airflow"])
def test_every_subcommand_has_help(sub):
    result = run_cli(sub, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: dealer-feed {sub}")
    flags = [line for line in result.stdout.splitlines() if line.strip().startswith("--") and line.strip() != "--help"]
    undocumented = [f for f in flags if len(f.split()) < 2 and "-h, --help" not in f]
    assert not undocumented, f"flags without help text: {undocumented}"


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.startswith("dealer-feed ")


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    """Exit 1 and one `dealer-feed CMD:` error line, last on stderr (log lines may precede it), no traceback."""
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("dealer-feed ")]
    assert errors == lines[-1:], result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def test_unknown_group_is_one_clear_line():
    assert_one_line_error(run_cli("check", "nosuch"), "no dealer group 'nosuch'", "known: demo")


def test_missing_connection_is_one_clear_line():
    assert_one_line_error(run_cli("check", "demo"), "opentrack_default", "AIRFLOW_CONN_")


def test_check_against_the_simulator(tmp_path):
    world = load_world(WORLD)
    vendor = world.vendors[0]
    with start_background(world) as sim:
        conn = {"conn_type": "opentrack", "host": sim.url, "login": vendor.username,
                "password": vendor.password.get_secret_value()}
        ok = run_cli("check", "demo", "--as-of", "2026-11-23", env={"AIRFLOW_CONN_OPENTRACK_DEFAULT": json.dumps(conn)})
        bad = run_cli("check", "demo", "--as-of", "2026-11-23",
                      env={"AIRFLOW_CONN_OPENTRACK_DEFAULT": json.dumps(conn | {"password": "wrong"})})
    assert ok.returncode == 0, ok.stderr
    for dealer in ("ZE_ZE7", "ZE_ZE8", "ZE_ZE9"):
        assert dealer in ok.stdout
    assert ok.stdout.startswith("dealer  server"), "stdout is the table only; log lines go to stderr"
    assert "OpenTrack VehicleLookup" in ok.stderr
    assert "5/5" in ok.stdout
    assert_one_line_error(bad, "group demo: 5 of 5 dealer methods not ok: 5 auth_failed", "credentials were refused")
    assert "wrong" not in bad.stdout + bad.stderr


def test_unreachable_service_fails_the_check():
    conn = {"conn_type": "opentrack", "host": "http://127.0.0.1:9/", "login": "x", "password": "y",
            "extra": {"max_attempts": 1, "timeout": 2}}
    result = run_cli("check", "demo", "--as-of", "2026-11-23", env={"AIRFLOW_CONN_OPENTRACK_DEFAULT": json.dumps(conn)})
    assert_one_line_error(result, "5 unreachable (OpenTrack did not answer", "check the connection's host")
    assert "missing access" not in result.stderr
    assert "unreachable" in result.stdout


def test_cli_writes_nothing_outside_the_project(tmp_path):
    """Run outside `make` (no AIRFLOW_HOME), Airflow would create ~/airflow: the CLI keeps it in the project."""
    env = {k: v for k, v in os.environ.items() if k != "AIRFLOW_HOME"} | {"HOME": str(tmp_path)}
    result = subprocess.run([sys.executable, "-m", "dealer_feed", "check", "demo"], capture_output=True, text=True,
                            env=env | {"PYTHONPATH": str(ROOT / "plugins")}, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 1 and "opentrack_default" in result.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("body", "fragment"), [
    ("schedule: 'every day'\n", "is not a cron expression"),
    ("settings:\n  client_dealer:\n    - {client: C, sr_type: R, dealer_id: ZE_ZE8}\n", "not one of the group's dealers"),
])
def test_check_refuses_an_invalid_group_file(tmp_path, body, fragment):
    (tmp_path / "broken.yaml").write_text("dealers:\n  - {enterprise_code: ZE, company_number: ZE7}\n" + body)
    result = run_cli("check", "broken", env={"DEALER_FEED_GROUPS_DIR": str(tmp_path)})
    assert_one_line_error(result, "broken.yaml", fragment)


def test_migrate_twice_by_url(tmp_path):
    url = f"sqlite:///{tmp_path / 'wh.db'}"
    first = run_cli("migrate", "--url", url)
    second = run_cli("migrate", "--url", url)
    assert first.returncode == 0 and "0001_core" in first.stdout
    assert second.returncode == 0 and "none (up to date)" in second.stdout
    tables = sa.inspect(sa.create_engine(url)).get_table_names()
    assert {"service_requests", "service_request_events", "etl_runs", "quarantine", "feed_vehicles"} <= set(tables)


def test_simulator_subcommand_prints_its_url_and_serves(tmp_path):
    proc = processes.spawn(
        [sys.executable, "-m", "dealer_feed", "simulator", "--port", "0", "--world", str(WORLD)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=os.environ | {"PYTHONPATH": str(ROOT / "plugins")},
    )
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        import requests

        assert requests.get(url + "VehicleAPI.asmx?WSDL", timeout=10).status_code == 200
    finally:
        processes.stop(proc, grace=10)


def test_demo_twice_says_already_applied_and_keeps_its_hash(tmp_path, airflow_db):
    """`make demo` run twice: the second run says on the console that nothing changed, prints the
    same warehouse content hash, and the Airflow log keeps both demos' lines (appended)."""
    env = {"DEALER_FEED_DATA_DIR": str(tmp_path)}
    first = run_cli("demo", env=env, timeout=600)
    second = run_cli("demo", env=env, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    assert "already applied" not in first.stdout
    assert second.stdout.count("success (already applied: this rerun changed nothing)") == 2

    def hash_of(out: str) -> str:
        return next(line for line in out.splitlines() if line.startswith("Warehouse content hash")).split()[-1]

    assert len(hash_of(first.stdout)) == 64 and hash_of(first.stdout) == hash_of(second.stdout)
    assert (tmp_path / "demo-airflow.log").read_text().count("===== dealer-feed demo,") == 2
