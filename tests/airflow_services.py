"""Run real Airflow components from tests: start with one shared env, wait for health,
collect logs on failure, and always stop everything.

Used by the slow tests (tests/dags/test_standalone.py, tests/dags/test_celery.py). Each
process is started by dealer_feed_tools.processes.spawn (its own session, an owner token in its
environment), writes to its own log file, and is stopped with its whole tree (group,
descendants, everything carrying its token: SIGTERM, then SIGKILL after a bounded wait),
so an api-server's workers, standalone's components or a Celery worker's children never
outlive the test, also when it fails, times out or is interrupted. Every wait is bounded;
a timeout raises with the tail of every component's log.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dealer_feed_tools import processes
from support import ROOT

BIN = Path(sys.executable).parent


def airflow_env(home: Path, api_port: int, **extra: str) -> dict[str, str]:
    """The environment every component of one test deployment shares."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__API__PORT": str(api_port),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{api_port}",
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
            # pick up DAG files and new runs quickly
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            "GX_ANALYTICS_ENABLED": "False",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "tests")]),
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "NO_COLOR": "1",
        }
    )
    env.update(extra)
    return env


@dataclass
class Component:
    name: str
    argv: list[str]
    log_path: Path
    process: subprocess.Popen | None = None

    def tail(self, lines: int = 60) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None


@dataclass
class Services:
    """A set of processes sharing `env`; use as a context manager (always stops all)."""

    env: dict[str, str]
    log_dir: Path
    components: list[Component] = field(default_factory=list)

    def __enter__(self) -> Services:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            sys.stderr.write(self.report())
        self.stop_all()

    # ------------------------------------------------------------------ processes

    def start(self, name: str, argv: Sequence[str], env: dict[str, str] | None = None,
              cwd: Path | None = None) -> Component:
        """Start a component (`env`: default the shared one; `cwd`: its working directory, default
        the project: a Celery worker elsewhere proves nothing relies on a shared directory)."""
        comp = Component(name, [str(a) for a in argv], self.log_dir / f"{name}.log")
        with comp.log_path.open("ab") as log:
            comp.process = processes.spawn(comp.argv, env=env or self.env, stdout=log, stderr=subprocess.STDOUT,
                                           cwd=str(cwd or ROOT))
        self.components.append(comp)
        return comp

    def start_airflow(self, name: str, *args: str) -> Component:
        return self.start(name, [str(BIN / "airflow"), *args])

    def stop_all(self, grace: float = 20.0) -> None:
        """Stop every component's whole tree together (processes.stop): SIGTERM, then
        SIGKILL after `grace` seconds to whatever is left."""
        processes.stop(*(c.process for c in self.components if c.process is not None), grace=grace)

    def report(self, lines: int = 60) -> str:
        out = []
        for comp in self.components:
            state = "running" if comp.alive else f"exited {comp.process.returncode if comp.process else '?'}"
            out.append(f"\n===== {comp.name} ({state}) {comp.log_path} =====\n{comp.tail(lines)}\n")
        return "".join(out)

    def check_alive(self) -> None:
        dead = [c for c in self.components if not c.alive]
        if dead:
            raise RuntimeError(f"component(s) exited: {', '.join(c.name for c in dead)}\n{self.report()}")

    # ------------------------------------------------------------------ waiting

    def wait_until(self, predicate: Callable[[], Any], timeout: float, what: str, interval: float = 1.0,
                   require_alive: bool = True) -> Any:
        """Poll `predicate` until it returns a truthy value; bounded; fails with the logs."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = predicate()
                if value:
                    return value
            except Exception as exc:  # noqa: BLE001 - keep polling, report the last error
                last_error = exc
            if require_alive:
                self.check_alive()
            time.sleep(interval)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what} (last error: {last_error!r})\n"
                           f"{self.report()}")

    def wait_http(self, url: str, timeout: float = 90, what: str | None = None) -> None:
        def ok() -> bool:
            with urllib.request.urlopen(url, timeout=3) as response:
                return response.status < 500

        self.wait_until(ok, timeout, what or url)

    # ------------------------------------------------------------------ CLI

    def airflow(self, *args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
        """Run an `airflow` CLI command against this deployment (same env)."""
        result = subprocess.run([str(BIN / "airflow"), *args], env=self.env, capture_output=True, text=True,
                                timeout=timeout, stdin=subprocess.DEVNULL, cwd=str(ROOT))
        if check and result.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} exited {result.returncode}:\n{result.stdout[-3000:]}\n"
                               f"{result.stderr[-3000:]}")
        return result


# ---------------------------------------------------------------------- metadata DB


class Metadata:
    """Read Airflow's metadata DB directly (fast polling; the CLI costs ~2 s a call)."""

    def __init__(self, url: str) -> None:
        from sqlalchemy import create_engine
        from sqlalchemy.pool import NullPool

        self.engine = create_engine(url, poolclass=NullPool)

    def scalar(self, sql: str, **params: Any) -> Any:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).scalar()

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        from sqlalchemy import text

        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql), params).all()]

    def dag_loaded(self, dag_id: str) -> bool:
        return bool(self.scalar("SELECT count(*) FROM serialized_dag WHERE dag_id = :d", d=dag_id))

    def run_state(self, dag_id: str, run_id: str) -> str | None:
        return self.scalar("SELECT state FROM dag_run WHERE dag_id = :d AND run_id = :r", d=dag_id, r=run_id)

    def runs(self, dag_id: str) -> list[tuple]:
        return self.rows("SELECT run_id, state, run_type FROM dag_run WHERE dag_id = :d ORDER BY id", d=dag_id)

    def task_states(self, dag_id: str, run_id: str) -> list[tuple]:
        return self.rows(
            "SELECT task_id, map_index, state, try_number FROM task_instance WHERE dag_id = :d AND run_id = :r "
            "ORDER BY task_id, map_index", d=dag_id, r=run_id)

    def dispose(self) -> None:
        self.engine.dispose()


def wait_run_finished(services: Services, meta: Metadata, dag_id: str, run_id: str, timeout: float) -> str:
    """Wait until the run is success/failed; return the state (the logs are in the error on timeout)."""
    def finished() -> str | None:
        state = meta.run_state(dag_id, run_id)
        return state if state in ("success", "failed") else None

    return services.wait_until(finished, timeout, f"DAG run {dag_id} {run_id} to finish", interval=1.0)


def trigger(services: Services, dag_id: str, logical_date: str, conf: dict | None = None) -> str:
    """`airflow dags trigger` for a logical date; returns the run id."""
    run_id = f"test__{logical_date.replace(':', '').replace('+', '')}"
    args = ["dags", "trigger", dag_id, "--run-id", run_id, "--logical-date", logical_date]
    if conf:
        args += ["--conf", json.dumps(conf)]
    services.airflow(*args)
    return run_id


def http_json(url: str, timeout: float = 5) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return json.loads(response.read())

