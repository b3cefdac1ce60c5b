"""`dealer-feed` as a data engineer runs it: real subprocesses, real simulator, real files."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import sqlalchemy as sa

from support import ROOT
from dealer_feed import processes
from dealer_feed.simulator import start_background
from dealer_feed.simulator.world import load_world

WORLD = ROOT / "include" / "simulator" / "demo_world.yaml"


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = os.environ | {"PYTHONPATH": str(ROOT / "plugins")} | (env or {})
    return subprocess.run(
        [sys.executable, "-m", "dealer_feed", *args], capture_output=True, text=True, env=full_env,
        timeout=timeout, stdin=subprocess.DEVNULL,
    )


@pytest.mark.parametrize("sub", ["simulator", "check", "migrate", "demo"])
def test_every_subcommand_has_help(sub):
    result = run_cli(sub, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith(f"usage: dealer-feed {sub}")


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


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
    assert "5/5" in ok.stdout
    assert_one_line_error(bad, "group demo is missing access")
    assert "wrong" not in bad.stdout + bad.stderr


def test_unreachable_service_fails_the_check():
    conn = {"conn_type": "opentrack", "host": "http://127.0.0.1:9/", "login": "x", "password": "y",
            "extra": {"max_attempts": 1, "timeout": 2}}
    result = run_cli("check", "demo", "--as-of", "2026-11-23", env={"AIRFLOW_CONN_OPENTRACK_DEFAULT": json.dumps(conn)})
    assert_one_line_error(result, "missing access")
    assert "unreachable" in result.stdout


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
