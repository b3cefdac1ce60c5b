"""Every process a test starts ends with it (issue 16): dealer_feed_tools.processes stops whole
trees, the fixtures' harness leaves nothing after a failing test, SIGTERM or SIGKILL to
pytest, the session-end check in tests/conftest.py fails a run that leaks, naming the
process, and a program under processes.guarded() (bench, dealer-feed airflow / demo)
leaves nothing on SIGTERM or SIGKILL. Real processes throughout;
the inner pytest runs load tests/conftest.py as a plugin (`-p conftest`)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from dealer_feed_tools import processes
from support import ROOT

TREE = '''
import os, subprocess, sys, time
# a grandchild in its own session (as uvicorn workers, executors and the postmaster do);
# it writes both pids once it is ready (SIGTERM ignored when 'stubborn')
GRANDCHILD = """
import os, signal, sys, time
if sys.argv[2] == 'stubborn':
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
with open(sys.argv[1] + '.tmp', 'w') as f:
    f.write(f'{os.getppid()} {os.getpid()}')
os.replace(sys.argv[1] + '.tmp', sys.argv[1])
time.sleep(300)
"""
subprocess.Popen([sys.executable, "-c", GRANDCHILD, sys.argv[1], sys.argv[2]], start_new_session=True)
while not os.path.exists(sys.argv[1]):
    time.sleep(0.05)
if sys.argv[3] == "orphan":
    sys.exit(0)  # the grandchild is re-parented to init: no longer our descendant
time.sleep(300)
'''


def tree_argv(tmp_path: Path, pid_file: Path, grandchild: str = "polite", parent: str = "stays") -> list[str]:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    return [sys.executable, str(script), str(pid_file), grandchild, parent]


def wait_pids(pid_file: Path, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while not pid_file.exists():
        assert time.monotonic() < deadline, f"{pid_file} never written"
        time.sleep(0.1)
    return [int(p) for p in pid_file.read_text().split()]


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pids: list[int], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := [p for p in pids if alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def inner_pytest(tmp_path: Path, body: str) -> subprocess.Popen:
    """A pytest run of one test file with tests/conftest.py loaded, in tmp_path."""
    (tmp_path / "test_inner.py").write_text(body)
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tests")])}
    return processes.spawn([sys.executable, "-m", "pytest", "-p", "conftest", "-p", "no:cacheprovider", "-q",
                            "test_inner.py"], env=env, cwd=str(tmp_path), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)


def test_stop_kills_a_detached_sigterm_ignoring_grandchild_of_an_exited_parent(tmp_path):
    pid_file = tmp_path / "pids"
    parent = processes.spawn(tree_argv(tmp_path, pid_file, grandchild="stubborn", parent="orphan"))
    try:
        parent_pid, grandchild = wait_pids(pid_file)
        assert parent.wait(timeout=30) == 0 and alive(grandchild)  # neither our child nor in our group
        started = time.monotonic()
        killed = processes.stop(parent, grace=1)
        assert [p.pid for p in killed] == [grandchild]  # SIGTERM ignored: SIGKILL after the grace period
        assert not alive(grandchild) and time.monotonic() - started < 10
    finally:
        processes.stop(parent, grace=1)


def test_the_services_harness_leaves_nothing_after_a_failing_test(tmp_path):
    pid_file = tmp_path / "pids"
    argv = tree_argv(tmp_path, pid_file)
    run = inner_pytest(tmp_path, f"""
import os
from pathlib import Path
from airflow_services import Services

def test_fails(tmp_path):
    with Services(env=dict(os.environ), log_dir=tmp_path / "logs") as services:
        services.start("tree", {argv!r})
        services.wait_until(lambda: Path({str(pid_file)!r}).exists(), 30, "the tree")
        assert False, "the test body fails"
""")
    try:
        out, _ = run.communicate(timeout=120)
        left = wait_gone(wait_pids(pid_file), timeout=5)  # before our own stop() below could hide a leak
    finally:
        processes.stop(run, grace=5)
    assert run.returncode == 1 and "1 failed" in out, out
    assert "still running after teardown" not in out, out
    assert left == []


def test_session_end_check_fails_the_run_and_names_a_leaked_child(tmp_path):
    run = inner_pytest(tmp_path, """
import subprocess

def test_leaks():
    subprocess.Popen(["sleep", "300"])  # never stopped
""")
    try:
        out, _ = run.communicate(timeout=120)
        lines = [line for line in out.splitlines() if line.strip().startswith("pid ") and line.endswith("sleep 300")]
        left = wait_gone([int(lines[0].split()[1].rstrip(":"))], timeout=5) if lines else []
    finally:
        processes.stop(run, grace=5)
    assert "1 passed" in out, out
    assert run.returncode == 1, out
    assert len(lines) == 1, out
    assert left == []  # and the check stopped it


def test_session_end_check_passes_a_clean_run(tmp_path):
    run = inner_pytest(tmp_path, """
import subprocess

def test_clean():
    subprocess.run(["true"], check=True)
""")
    try:
        out, _ = run.communicate(timeout=120)
    finally:
        processes.stop(run, grace=5)
    assert run.returncode == 0 and "1 passed" in out, out


def inner_holding_a_tree(tmp_path: Path, pid_file: Path) -> subprocess.Popen:
    argv = tree_argv(tmp_path, pid_file)
    return inner_pytest(tmp_path, f"""
import os, time
from airflow_services import Services

def test_waits(tmp_path):
    with Services(env=dict(os.environ), log_dir=tmp_path / "logs") as services:
        services.start("tree", {argv!r})
        time.sleep(300)
""")


def test_sigterm_to_pytest_runs_teardown(tmp_path):
    pid_file = tmp_path / "pids"
    run = inner_holding_a_tree(tmp_path, pid_file)
    try:
        pids = wait_pids(pid_file, timeout=60)
        run.send_signal(signal.SIGTERM)  # a cancelled CI job
        out, _ = run.communicate(timeout=60)
        left = wait_gone(pids, timeout=5)
    finally:
        processes.stop(run, grace=5)
    assert "KeyboardInterrupt" in out, out
    assert left == [], out


def test_the_reaper_stops_the_tree_when_pytest_is_killed_outright(tmp_path):
    """SIGKILL (or pytest-timeout's thread method, which ends with os._exit): no teardown
    runs in pytest at all; the session's reaper stops what carries its token."""
    pid_file = tmp_path / "pids"
    run = inner_holding_a_tree(tmp_path, pid_file)
    try:
        pids = wait_pids(pid_file, timeout=60)
        run.kill()
        run.wait(timeout=10)
        assert wait_gone(pids, timeout=30) == []
    finally:
        processes.stop(run, grace=5)


GUARDED = """
import subprocess, sys, time
from dealer_feed_tools import processes

with processes.guarded("program"):  # as bench/*.py, dealer-feed airflow and dealer-feed demo do
    subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2], "polite", "stays"], start_new_session=True)
    time.sleep(300)
"""


def guarded_program(tmp_path: Path, pid_file: Path) -> subprocess.Popen:
    """A program under processes.guarded() that started a tree with plain Popen (no spawn)."""
    (tmp_path / "guarded.py").write_text(GUARDED)
    tree_argv(tmp_path, pid_file)  # writes tree.py
    return processes.spawn([sys.executable, str(tmp_path / "guarded.py"), str(tmp_path / "tree.py"), str(pid_file)],
                           env=os.environ | {"PYTHONPATH": str(ROOT / "plugins")})


def test_guarded_program_stops_what_it_started_on_sigterm(tmp_path):
    pid_file = tmp_path / "pids"
    program = guarded_program(tmp_path, pid_file)
    try:
        pids = wait_pids(pid_file)
        program.send_signal(signal.SIGTERM)
        assert program.wait(timeout=30) != 0  # interrupted
        left = wait_gone(pids, timeout=2)
    finally:
        processes.stop(program, grace=5)
    assert left == []


def test_guarded_program_killed_outright_is_cleaned_up_by_its_reaper(tmp_path):
    pid_file = tmp_path / "pids"
    program = guarded_program(tmp_path, pid_file)
    try:
        pids = wait_pids(pid_file)
        program.kill()
        program.wait(timeout=10)
        left = wait_gone(pids, timeout=30)
    finally:
        processes.stop(program, grace=5)
    assert left == []
