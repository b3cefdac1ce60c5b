"""docker-compose.yaml: the production (CeleryExecutor) set-up is complete and consistent.

No Docker engine runs here, so the file is checked as data: every service the issue names,
its image, command, mounts, environment and healthcheck, the connections every group
reads, and settings that must agree across components (JWT secret, Execution API URL,
broker, landing volume). `docker compose config` runs too when the CLI has compose.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess

import pytest
import yaml

from support import ROOT
from dealer_feed.config import group_files, load_group

COMPOSE = ROOT / "docker-compose.yaml"
INIT_ROLES = ROOT / "include" / "warehouse" / "docker-init-roles.sh"
AIRFLOW_COMPONENTS = {
    "airflow-apiserver": "api-server",
    "airflow-scheduler": "scheduler",
    "airflow-dag-processor": "dag-processor",
    "airflow-triggerer": "triggerer",
    "airflow-worker": "celery worker",
}
LONG_RUNNING = ["postgres", "redis", "warehouse", "opentrack-simulator", *AIRFLOW_COMPONENTS]


def _interpolate(value):
    """Compose's ${VAR:-default} / ${VAR} / $$ with no variables set (the defaults)."""
    if isinstance(value, str):
        value = re.sub(r"(?<!\$)\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {k: _interpolate(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_interpolate(v) for v in value]
    return value


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(raw) -> dict:
    return _interpolate(raw["services"])


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment", {})
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def test_services_and_commands(services):
    for name in LONG_RUNNING + ["airflow-init"]:
        assert name in services, f"docker-compose.yaml lacks service {name}"
    for name, command in AIRFLOW_COMPONENTS.items():
        assert services[name]["command"] == command, name
    sim = services["opentrack-simulator"]
    argv = [*sim["entrypoint"], *sim["command"]]
    assert argv[:3] == ["python", "-m", "dealer_feed"]
    assert argv[3:8] == ["simulator", "--host", "0.0.0.0", "--port", "8081"]
    world = argv[argv.index("--world") + 1]
    assert world.startswith("/opt/airflow/include/")
    assert (ROOT / "include" / world.removeprefix("/opt/airflow/include/")).parent.is_dir()


def test_images(services):
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M).group(1)
    assert services["postgres"]["image"].startswith("postgres:")
    assert services["warehouse"]["image"].startswith("postgres:")
    assert services["redis"]["image"].startswith("redis:7")
    airflow_image = services["airflow-scheduler"]["image"]
    for name in [*AIRFLOW_COMPONENTS, "airflow-init", "opentrack-simulator"]:
        assert services[name]["image"] == airflow_image, name
        dockerfile = services[name]["build"]["dockerfile_inline"]
        # the same Airflow as the pinned requirements, plus them
        assert f"FROM apache/airflow:{pinned}-python3.11" in dockerfile
        assert "requirements.txt" in dockerfile


def test_mounts_and_shared_landing_area(services):
    for name in [*AIRFLOW_COMPONENTS, "airflow-init"]:
        volumes = services[name]["volumes"]
        targets = {v.split(":")[1]: v.split(":")[0] for v in volumes}
        for folder in ("dags", "plugins", "include"):
            assert targets.get(f"/opt/airflow/{folder}") == f"./{folder}", (name, folder)
        env = _env(services[name])
        # extract writes the Parquet files transform/load read, maybe on another worker
        assert targets.get(env["DEALER_FEED_DATA_DIR"]) == "dealer-feed-data", name
        assert env["DEALER_FEED_GROUPS_DIR"] == "/opt/airflow/include/dealer_groups"
    sim_targets = {v.split(":")[1] for v in services["opentrack-simulator"]["volumes"]}
    assert {"/opt/airflow/plugins", "/opt/airflow/include"} <= sim_targets


def test_shared_airflow_settings(services):
    envs = {name: _env(services[name]) for name in [*AIRFLOW_COMPONENTS, "airflow-init"]}
    secrets = {env["AIRFLOW__API_AUTH__JWT_SECRET"] for env in envs.values()}
    assert len(secrets) == 1 and secrets != {""}, "every component must share one JWT secret"
    port = services["airflow-apiserver"]["ports"][0].split(":")[-1]
    for name, env in envs.items():
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"http://airflow-apiserver:{port}/execution/", name
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://") and "@redis:6379" in env[
            "AIRFLOW__CELERY__BROKER_URL"]
        assert "@postgres/" in env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]
        assert env["AIRFLOW__CORE__LOAD_EXAMPLES"] == "false"
    worker_env = envs["airflow-worker"]
    # the module paths the settings name exist in the pinned Airflow
    auth = worker_env["AIRFLOW__CORE__AUTH_MANAGER"].rsplit(".", 1)[0]
    assert importlib.util.find_spec(auth) is not None
    assert importlib.util.find_spec("airflow.providers.celery.executors.celery_executor") is not None


def test_connections_every_group_reads(services, raw):
    env = _env(services["airflow-worker"])
    simulator_port = services["opentrack-simulator"]["command"][services["opentrack-simulator"]["command"].index("--port") + 1]
    for path in group_files():
        group = load_group(path)
        for conn_id in (group.connections.opentrack, group.connections.warehouse):
            assert f"AIRFLOW_CONN_{conn_id.upper()}" in env, f"{path.name} reads connection {conn_id}"
    opentrack = json.loads(env["AIRFLOW_CONN_OPENTRACK_DEFAULT"])
    assert opentrack["host"] == f"http://opentrack-simulator:{simulator_port}"
    assert opentrack["login"] and opentrack["password"]
    warehouse = json.loads(env["AIRFLOW_CONN_DEALER_FEED_WAREHOUSE"])
    assert warehouse["conn_type"] == "postgres"
    assert warehouse["host"] == "warehouse", "the warehouse is its own PostgreSQL, not Airflow's metadata DB"
    wh_env = _env(services["warehouse"])
    assert warehouse["schema"] == wh_env["POSTGRES_DB"]
    # the DAGs connect as the loader login the init script creates, never as the owner (superuser)
    assert warehouse["login"] != wh_env["POSTGRES_USER"]
    assert warehouse["password"] == wh_env["WAREHOUSE_LOADER_PASSWORD"]
    assert f"CREATE ROLE {warehouse['login']} LOGIN PASSWORD %L IN ROLE dealer_feed_loader" in INIT_ROLES.read_text()
    # credentials are variables in the file, never literals
    common = raw["x-airflow-common"]["environment"]
    assert "${OPENTRACK_PASSWORD" in common["AIRFLOW_CONN_OPENTRACK_DEFAULT"]
    assert "${WAREHOUSE_LOADER_PASSWORD" in common["AIRFLOW_CONN_DEALER_FEED_WAREHOUSE"]
    for name in ("WAREHOUSE_OWNER_PASSWORD", "WAREHOUSE_LOADER_PASSWORD", "WAREHOUSE_ANALYST_PASSWORD"):
        assert f"${{{name}" in json.dumps(raw["services"]["warehouse"]["environment"]), name
    assert "${AIRFLOW_JWT_SECRET" in common["AIRFLOW__API_AUTH__JWT_SECRET"]


def test_healthchecks_and_dependencies(services):
    for name in LONG_RUNNING:
        check = services[name].get("healthcheck")
        assert check and check["test"], f"{name} has no healthcheck"
    assert "/api/v2/version" in " ".join(services["airflow-apiserver"]["healthcheck"]["test"])
    assert "8974/health" in " ".join(services["airflow-scheduler"]["healthcheck"]["test"])
    assert "DagProcessorJob" in " ".join(services["airflow-dag-processor"]["healthcheck"]["test"])
    assert "TriggererJob" in " ".join(services["airflow-triggerer"]["healthcheck"]["test"])
    assert "inspect ping" in " ".join(services["airflow-worker"]["healthcheck"]["test"])
    worker_deps = services["airflow-worker"]["depends_on"]
    for dep in ("redis", "postgres", "warehouse", "opentrack-simulator", "airflow-apiserver"):
        assert worker_deps[dep]["condition"] == "service_healthy", dep
    # the owner has migrated before any worker runs a DAG as the loader
    assert worker_deps["warehouse-migrate"]["condition"] == "service_completed_successfully"
    for name in AIRFLOW_COMPONENTS:
        assert services[name]["depends_on"]["airflow-init"]["condition"] == "service_completed_successfully"
    assert _env(services["airflow-init"])["_AIRFLOW_DB_MIGRATE"] == "true"


def _compose_works() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


@pytest.mark.skipif(not _compose_works(), reason="the docker CLI here has no working `compose` plugin")
def test_docker_compose_config_accepts_the_file():
    result = subprocess.run(["docker", "compose", "-f", str(COMPOSE), "config", "--quiet"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_warehouse_roles_as_compose_sets_them_up(tmp_path):
    """What the `warehouse` and `warehouse-migrate` services do, on the tests' PostgreSQL (no Docker):
    the init script creates the logins, the owner migrates with the service's command; then the
    DAGs' login runs `migrate` (a no-op: it may not create tables) and writes rows, and the
    analyst login reads the views and writes nothing."""
    import os

    import psycopg
    import sqlalchemy as sa

    import pgserver
    from dealer_feed import cli
    from dealer_feed.warehouse import make_engine
    from dealer_feed.warehouse.migrations import apply

    services = _interpolate(yaml.safe_load(COMPOSE.read_text())["services"])
    server = pgserver.get_server()
    database = "compose_roles"
    server.create_database(database)
    env = {**os.environ, **_env(services["warehouse"]), "POSTGRES_USER": server.user, "POSTGRES_DB": database,
           "PGHOST": server.host, "PGPORT": str(server.port), "PATH": f"{pgserver.find_bindir()}:{os.environ['PATH']}"}
    for _ in range(2):  # safe to run twice (roles are cluster-wide: another database may have them)
        result = subprocess.run(["bash", str(INIT_ROLES)], env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
    migrate = services["warehouse-migrate"]
    argv = [*migrate["entrypoint"], *migrate["command"]]
    assert argv[:4] == ["python", "-m", "dealer_feed", "migrate"]
    url = argv[argv.index("--url") + 1]
    assert url.startswith(f"postgresql+psycopg://{_env(services['warehouse'])['POSTGRES_USER']}@warehouse:5432/")
    assert cli.main(["migrate", "--url", server.url(database)]) == 0  # the owner (here: the server's superuser)

    conn = json.loads(_env(services["airflow-worker"])["AIRFLOW_CONN_DEALER_FEED_WAREHOUSE"])
    loader = make_engine(server.url(database).replace(f"://{server.user}@", f"://{conn['login']}@"))
    analyst = make_engine(server.url(database).replace(f"://{server.user}@", "://analyst@"))
    try:
        assert apply(loader) == []
        with loader.begin() as c:
            c.exec_driver_sql("INSERT INTO etl_runs (run_id, dealer_group, logical_time, status, load_started_at, "
                              "loaded_at, load_seconds) VALUES ('g:1', 'g', '2026-01-01', 'success', '2026-01-01', "
                              "'2026-01-01', 0)")
        with analyst.connect() as c:
            assert c.exec_driver_sql("SELECT count(*) FROM v_run_history").scalar() == 1
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), analyst.begin() as c:
            c.exec_driver_sql("DELETE FROM etl_runs")
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), loader.begin() as c:
            c.exec_driver_sql("CREATE TABLE loader_scratch (id INTEGER)")
    finally:
        loader.dispose()
        analyst.dispose()
        server.drop_database(database)
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("DROP ROLE IF EXISTS airflow_dealer_feed")
            admin.execute("DROP ROLE IF EXISTS analyst")


def test_optional_s3_landing_store(services):
    """Landing on object storage is an option: MinIO and its bucket only under the `s3` profile,
    the landing connection (an `aws` connection pointing at it) in every task's environment, and
    the landing URL empty by default (the shared volume, as before)."""
    for name in ("minio", "minio-init"):
        assert services[name]["profiles"] == ["s3"], name
    env = _env(services["airflow-worker"])
    assert env["DEALER_FEED_LANDING_URL"] == ""
    conn = json.loads(env["AIRFLOW_CONN_DEALER_FEED_LANDING"])
    assert conn["conn_type"] == "aws" and conn["login"] and conn["password"]
    assert conn["extra"]["endpoint_url"] == "http://minio:9000"
    minio_env = _env(services["minio"])
    assert (minio_env["MINIO_ROOT_USER"], minio_env["MINIO_ROOT_PASSWORD"]) == (conn["login"], conn["password"])
    assert "dealer-feed-landing" in " ".join(services["minio-init"]["entrypoint"])
    for name in AIRFLOW_COMPONENTS:  # a profile service never becomes a dependency of the default set-up
        assert "minio" not in services[name].get("depends_on", {}), name
