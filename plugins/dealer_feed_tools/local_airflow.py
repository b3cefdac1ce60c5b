"""`make airflow` / `dealer-feed airflow`: the Airflow UI locally, with the project's DAGs.

Starts the OpenTrack simulator on a free loopback port, points the two connections at it
and at the embedded warehouse (`data/warehouse.db`, the same one `make demo` fills), and
runs `airflow standalone` (api-server + scheduler + dag-processor + triggerer, LocalExecutor
on a SQLite metadata DB in the project-local AIRFLOW_HOME). When the api-server answers it
prints the URL and the login (standalone's generated admin password file), then waits.
Ctrl-C or SIGTERM stops Airflow, every process it started (standalone's components detach
into their own groups; dealer_feed_tools.processes finds them by the owner token in their
environment) and the simulator; a reaper process does the same if this one is killed
(dealer_feed_tools.processes.guarded).

Port: `--port`, else DEALER_FEED_AIRFLOW_PORT, else 8080 when free, else any free port.
Everything set here is only a default: variables already in the environment win
(AIRFLOW_HOME, AIRFLOW__CORE__DAGS_FOLDER, DEALER_FEED_DATA_DIR, ...), which is how the
tests run it in temporary directories.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dealer_feed_tools import processes
from dealer_feed.config import PROJECT_ROOT

PORT_ENV = "DEALER_FEED_AIRFLOW_PORT"
DEFAULT_PORT = 8080
READY_TIMEOUT_S = 180
STOP_GRACE_S = 30.0
PASSWORD_FILE = "simple_auth_manager_passwords.json.generated"


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def choose_port(host: str, requested: int | None) -> int:
    """The configured port (flag, then env), else 8080 when free, else a free one."""
    if requested:
        return requested
    if os.environ.get(PORT_ENV):
        return int(os.environ[PORT_ENV])
    if _port_free(host, DEFAULT_PORT):
        return DEFAULT_PORT
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _jwt_secret(home: Path) -> str:
    """One JWT secret per AIRFLOW_HOME, shared by every component (kept across restarts)."""
    path = home / ".dealer_feed_jwt_secret"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def login_info(home: Path, users: str) -> tuple[str, str | None, Path]:
    """(username, password or None, password file) of standalone's admin user."""
    configured = os.environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
    path = Path(configured) if configured else home / PASSWORD_FILE
    username = users.split(",")[0].split(":")[0] or "admin"
    try:
        return username, json.loads(path.read_text()).get(username), path
    except (OSError, ValueError):
        return username, None, path


def airflow_env(host: str, port: int, sim_url: str, username: str, password: str, warehouse_url: str) -> dict[str, str]:
    """The environment `airflow standalone` and its components run with."""
    from dealer_feed.config import airflow_defaults
    from dealer_feed_tools.demo import connection_env

    airflow_defaults()  # AIRFLOW_HOME=.airflow, DAGS_FOLDER=dags, no examples (unless set)
    env = dict(os.environ)
    home = Path(env["AIRFLOW_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    bin_dir = str(Path(sys.executable).parent)
    base_url = f"http://{host}:{port}"
    defaults = {
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT_ROOT / "plugins"),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__API_AUTH__JWT_SECRET": _jwt_secret(home),
    }
    for key, value in defaults.items():
        env.setdefault(key, value)
    env.update(
        {
            "AIRFLOW__API__HOST": host,
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": base_url,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
            "PATH": bin_dir + os.pathsep + env.get("PATH", ""),  # standalone starts `airflow` from PATH
            "PYTHONPATH": os.pathsep.join(p for p in (str(PROJECT_ROOT / "plugins"), env.get("PYTHONPATH")) if p),
        }
    )
    env.update(connection_env(sim_url, username, password, warehouse_url))
    return env


def _wait_ready(url: str, process: subprocess.Popen, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=3) as response:
                if response.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(1)
    return False


def _stop(process: subprocess.Popen) -> None:
    """Stop standalone and everything it started (its process group, descendants and any
    process carrying its owner token, wherever it detached to): SIGINT, standalone's own
    clean shutdown, then SIGKILL whatever is left after 30 s (or at a second Ctrl-C)."""
    print("Stopping Airflow standalone and its components...", flush=True)
    processes.stop(process, grace=STOP_GRACE_S, first_signal=signal.SIGINT)


def run_local_airflow(port: int | None = None, host: str = "127.0.0.1", world: Path | None = None,
                      ready_timeout: float = READY_TIMEOUT_S) -> int:
    from dealer_feed.landing import data_dir
    from dealer_feed_tools.simulator.server import start_background
    from dealer_feed_tools.simulator.world import DEMO_WORLD

    port = choose_port(host, port)
    warehouse_file = data_dir() / "warehouse.db"
    warehouse_file.parent.mkdir(parents=True, exist_ok=True)

    # guarded: SIGTERM acts as Ctrl-C, and whatever is left at the end (or after we are
    # killed outright: the reaper) is stopped
    with processes.guarded("dealer-feed-airflow"), start_background(world or DEMO_WORLD, host="127.0.0.1") as sim:
        vendor = sim.world.vendors[0]
        env = airflow_env(host, port, sim.url, vendor.username, vendor.password.get_secret_value(),
                          f"sqlite:///{warehouse_file}")
        home = Path(env["AIRFLOW_HOME"])
        print(f"OpenTrack simulator listening on {sim.url}", flush=True)
        print(f"Starting Airflow standalone (AIRFLOW_HOME={home}, DAGs {env['AIRFLOW__CORE__DAGS_FOLDER']}) "
              f"on port {port}...", flush=True)
        process = processes.spawn([Path(sys.executable).parent / "airflow", "standalone"], env=env)
        try:
            url = f"http://{host}:{port}"
            if not _wait_ready(f"{url}/api/v2/version", process, ready_timeout):
                print(f"dealer-feed airflow: Airflow did not answer on {url} within {ready_timeout:.0f}s "
                      f"(see the output above)", file=sys.stderr)
                return 1
            username, pw, pw_file = login_info(home, env.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin"))
            print("", flush=True)
            print(f"Airflow UI:  {url}", flush=True)
            print(f"Login:       {username} / {pw or '(see ' + str(pw_file) + ')'}   (password file: {pw_file})",
                  flush=True)
            print(f"Warehouse:   {warehouse_file}", flush=True)
            print("Press Ctrl-C to stop Airflow and the simulator.", flush=True)
            return process.wait() or 0
        except KeyboardInterrupt:
            return 0
        finally:
            _stop(process)
