"""Shared test set-up: a throwaway AIRFLOW_HOME and data directory for the whole session,
and a check that the session leaves no process running.

The environment is set at import time, before any test imports Airflow, so Airflow reads
its configuration from the temporary home and the tests leave nothing behind outside
temporary directories.

Processes: the session's owner token goes into DEALER_FEED_OWNERS (dealer_feed_tools.processes),
so every process the run starts, however it detaches, carries it in its environment. At
session end, after every fixture's teardown, any process still alive that carries the
token, descends from pytest, or has its AIRFLOW_HOME / DEALER_FEED_DATA_DIR under the
session's temporary directories (and did not exist before the session) is named, stopped,
and fails the run (exit status 1). A reaper (processes.start_reaper) stops the token's
processes even when pytest itself dies without teardown (SIGKILL, pytest-timeout's thread
method); SIGTERM is turned into KeyboardInterrupt so teardown runs as on Ctrl-C.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

import pgserver
import reliability
import s3server
from dealer_feed_tools import processes
from support import ROOT

_SESSION_DIR = Path(tempfile.mkdtemp(prefix="dealer-feed-tests-"))
SESSION_TOKEN = processes.new_token("pytest")
processes.claim(SESSION_TOKEN)
_BEFORE = {(p.pid, p.info["create_time"]) for p in psutil.process_iter(["create_time"])}
"""Processes alive before the session (the machine's PostgreSQL, Redis, ...): never flagged."""
_RUN_DIRS: list[Path] = [_SESSION_DIR]

os.environ.update(
    {
        "AIRFLOW_HOME": str(_SESSION_DIR / "airflow"),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS": "False",
        "GX_ANALYTICS_ENABLED": "False",
        "DEALER_FEED_DATA_DIR": str(_SESSION_DIR / "data"),
    }
)
for leaked in [k for k in os.environ if k.startswith("AIRFLOW_CONN_")]:
    del os.environ[leaked]


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """Airflow's metadata database, migrated once per session (about 3 s)."""
    home = Path(os.environ["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    airflow = Path(sys.executable).with_name("airflow")
    result = subprocess.run([str(airflow), "db", "migrate"], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return home


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """The reliability suite's one table (tests/reliability.py), when any of its suites ran."""
    lines = reliability.table()
    if lines:
        terminalreporter.section("reliability report")
        for line in lines:
            terminalreporter.write_line(line)
        written = reliability.write_report()
        if written:
            terminalreporter.write_line(f"written to {written}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """pytest-xdist (`make test` runs two workers, --dist loadgroup): a module's tests stay on one
    worker, so its module fixtures (simulator, reference runs) are set up once; the modules that
    start whole Airflow deployments (marker `slow`) share one worker, so two never compete."""
    for item in items:
        group = "airflow_services" if item.get_closest_marker("slow") else item.module.__name__
        item.add_marker(pytest.mark.xdist_group(group))


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error) -> None:
    """pytest-xdist: a worker's reliability figures join the controller's report."""
    exported = getattr(node, "workeroutput", {}).get("reliability")
    if exported:
        reliability.merge(exported)


def pytest_configure(config: pytest.Config) -> None:
    processes.stop_on_sigterm()  # a cancelled CI job: teardown runs as on Ctrl-C
    config.stash[_REAPER] = processes.start_reaper(SESSION_TOKEN)


_REAPER = pytest.StashKey[subprocess.Popen]()


@pytest.fixture(scope="session", autouse=True)
def _session_processes(tmp_path_factory: pytest.TempPathFactory):
    """The shared PostgreSQL and S3 servers stop at session end (before the leftover check), and
    the tests' tmp_path directories count as the run's (test AIRFLOW_HOMEs live there)."""
    _RUN_DIRS.append(tmp_path_factory.getbasetemp())
    yield
    pgserver.stop_server()
    s3server.stop_server()


def leftover_processes(exclude: set[int] = frozenset()) -> list[psutil.Process]:
    """Processes of this run still alive: carrying the session token, descending from
    pytest, or with AIRFLOW_HOME / DEALER_FEED_DATA_DIR in the run's directories; never
    one that existed before the session."""
    dirs = {key: _RUN_DIRS for key in ("AIRFLOW_HOME", "DEALER_FEED_DATA_DIR")}
    found = processes.find(tokens=[SESSION_TOKEN], roots=[os.getpid()], env_dirs=dirs, exclude=exclude)
    return [p for p in found if _identity(p) not in _BEFORE]


def _identity(proc: psutil.Process) -> tuple[int, float | None]:
    """(pid, start time): a pid alone may have been reused since the snapshot."""
    try:
        return proc.pid, proc.create_time()
    except psutil.NoSuchProcess:
        return proc.pid, None


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int):
    """After every fixture's teardown: fail the run if any process it started still runs
    (naming each), then stop them."""
    result = yield
    if hasattr(session.config, "workeroutput"):  # a pytest-xdist worker: report to the controller
        session.config.workeroutput["reliability"] = reliability.export()
    reaper = session.config.stash.get(_REAPER, None)
    leftovers = leftover_processes(exclude={reaper.pid} if reaper else set())
    if leftovers:
        lines = [f"{len(leftovers)} process(es) started by this test run are still running after teardown:",
                 *(f"  {processes.describe(p)}" for p in leftovers),
                 "fix: stop them in the fixture that starts them (dealer_feed_tools.processes.spawn / stop)"]
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for line in lines:
            if reporter is not None:
                reporter.write_line(line, red=True, bold=True)
            else:
                print(line, file=sys.stderr)
        processes.terminate(lambda: leftover_processes(exclude={reaper.pid} if reaper else set()), grace=10.0)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if reaper is not None:
        processes.stop_reaper(reaper)
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
    return result
