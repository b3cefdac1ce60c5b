"""Validation guards under real Airflow (dag.test) with a scripted simulator world.

Day 1 every dealer has a clean lot. Day 2: GA sends half bad rows (bad-fraction guard),
GB sends an empty feed (empty-feed guard), GC lost one vehicle. The guarded dealers fail
the `validate` task with the guard's message; nothing of theirs is loaded or
closed, while GC's change still loads. Forcing the guards loads them.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from dealer_feed_tools.demo import connection_env, group_dag
from dealer_feed.contract.identity import run_key
from dealer_feed_tools.simulator import start_background

DAY1 = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
DAY2 = DAY1 + timedelta(days=1)
GROUP = "guards"
RUN2 = f"{GROUP}:{run_key(DAY2)}"


def vin(dealer: int, n: int) -> str:
    return f"1HGCM826{dealer}A{n:07d}"


def lot(dealer: int, numbers) -> list[dict]:
    return [{"VIN": vin(dealer, n), "StockNumber": f"S{dealer}{n:03d}", "TypeNU": "U", "ModelYear": "2022"} for n in numbers]


def write_world_and_group(tmp: Path) -> tuple[Path, Path]:
    bad = [{"VIN": f"BAD{n}", "StockNumber": f"B{n}", "TypeNU": "U", "ModelYear": "2022"} for n in range(5)]
    world = {
        "seed": 1,
        "vendors": [{"username": "vendor", "password": "guard-secret"}],
        "defaults": {"grants": {"Vehicle": {"begins": "2026-01-01"}}},
        "dealers": [
            {"enterprise_code": "G", "company_number": "GA",
             "inventory": {"scripted": {"2026-11-23": lot(1, range(10)), "2026-11-24": lot(1, range(5)) + bad}}},
            {"enterprise_code": "G", "company_number": "GB",
             "inventory": {"scripted": {"2026-11-23": lot(2, range(10)), "2026-11-24": []}}},
            {"enterprise_code": "G", "company_number": "GC",
             "inventory": {"scripted": {"2026-11-23": lot(3, range(10)), "2026-11-24": lot(3, range(9))}}},
        ],
    }
    group = {
        "schedule": "0 6 * * *",
        "dealers_per_task": 1,
        "settings": {
            "auto_close": {"mode": "immediately"},
            "client_dealer": [{"client": f"Client {d}", "sr_type": "Recon", "dealer_id": f"G_{d}"} for d in ("GA", "GB", "GC")],
        },
        "dealers": [{"enterprise_code": "G", "company_number": c} for c in ("GA", "GB", "GC")],
    }
    (tmp / "groups").mkdir()
    (tmp / "dags").mkdir()
    (tmp / "world.yaml").write_text(yaml.safe_dump(world))
    (tmp / "groups" / f"{GROUP}.yaml").write_text(yaml.safe_dump(group))
    (tmp / "dags" / f"dealer_feed_{GROUP}.py").write_text(
        '"""Airflow DAG of test group guards."""\nfrom dealer_feed.airflow_edge.dag_factory import build_dag\n\ndag = build_dag("guards")\n'
    )
    return tmp / "world.yaml", tmp / "dags"


@pytest.fixture
def guarded(airflow_db, tmp_path, monkeypatch):
    world, dags = write_world_and_group(tmp_path)
    monkeypatch.setenv("DEALER_FEED_GROUPS_DIR", str(tmp_path / "groups"))
    # dag.test serializes the DAG into the configured dags-folder bundle; Airflow reads the
    # folder from the environment, and caches it in settings if it was imported already.
    import airflow.settings

    monkeypatch.setenv("AIRFLOW__CORE__DAGS_FOLDER", str(dags))
    monkeypatch.setattr(airflow.settings, "DAGS_FOLDER", str(dags))
    monkeypatch.setenv("DEALER_FEED_DATA_DIR", str(tmp_path / "data"))
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    with start_background(world) as sim:
        for key, value in connection_env(sim.url, "vendor", "guard-secret", warehouse).items():
            monkeypatch.setenv(key, value)

        def run(moment: datetime, conf: dict | None = None) -> str:
            dag = group_dag(GROUP, dags)
            return str(dag.test(logical_date=moment, run_conf=conf).state)

        yield run, sa.create_engine(warehouse)


def rows(engine, sql: str, **params) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def state(engine) -> dict[str, list[tuple]]:
    return {
        table: rows(engine, f"SELECT * FROM {table} ORDER BY 1, 2")  # noqa: S608 - fixed table names
        for table in ("service_requests", "service_request_events", "quarantine", "feed_vehicles", "etl_run_dealers")
    }


class Collect(logging.Handler):
    """The pipeline's own log records, wherever Airflow's log configuration sends them."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def pipeline_log():
    handler = Collect()
    logger = logging.getLogger("dealer_feed")
    logger.addHandler(handler)
    yield handler.lines
    logger.removeHandler(handler)


def test_guards_stop_their_dealer_only(guarded, pipeline_log):
    run, engine = guarded
    assert run(DAY1) == "success"
    assert run(DAY2) == "failed"  # the guarded dealers' tasks failed; the run still loaded the rest

    statuses = dict(rows(engine, "SELECT dealer_id, status FROM etl_run_dealers WHERE run_id = :r", r=RUN2))
    assert statuses == {"G_GA": "failed", "G_GB": "failed", "G_GC": "ok"}
    errors = dict(rows(engine, "SELECT dealer_id, error FROM etl_run_dealers WHERE status = 'failed'"))
    assert "bad" in errors["G_GA"] and "5 of 10" in errors["G_GA"].replace(",", "")
    assert "Report: " in errors["G_GA"] and "G_GA" in errors["G_GA"] and "report.html" in errors["G_GA"]
    assert "empty" in errors["G_GB"].lower() and "force_guards" in errors["G_GB"]

    by_dealer = dict(rows(engine, "SELECT dealer_id, sum(status = 'active') FROM service_requests GROUP BY dealer_id"))
    assert by_dealer == {"G_GA": 10, "G_GB": 10, "G_GC": 9}  # nothing of GA / GB closed
    assert rows(engine, "SELECT vin FROM service_requests WHERE status = 'closed'") == [(vin(3, 9),)]
    assert rows(engine, "SELECT count(*) FROM feed_vehicles WHERE dealer_id IN ('G_GA', 'G_GB') AND run_id = :r", r=RUN2) == [(0,)]

    text = "\n".join(pipeline_log)
    assert "validation vehicles dealer=G_GA" in text and "vin_format" in text  # the one-screen summary
    assert "report:" in text and "report.html" in text

    before = state(engine)
    assert run(DAY2) == "failed"  # rerun of the same run: same failures, nothing doubled
    assert state(engine) == before


def test_forcing_the_guards_loads_the_guarded_dealers(guarded):
    run, engine = guarded
    assert run(DAY1) == "success"
    assert run(DAY2, {"force_guards": True}) == "success"
    closed = {v for (v,) in rows(engine, "SELECT vin FROM service_requests WHERE status = 'closed'")}
    assert closed == {vin(1, n) for n in range(5, 10)} | {vin(2, n) for n in range(10)} | {vin(3, 9)}
    quarantined = rows(engine, "SELECT dealer_id, rules FROM quarantine ORDER BY row_number")
    assert [d for d, _ in quarantined] == ["G_GA"] * 5
    assert all("vin_format" in r for _, r in quarantined)
    assert json.loads(rows(engine, "SELECT row_json FROM quarantine ORDER BY row_number LIMIT 1")[0][0])["vin"] == "BAD0"
