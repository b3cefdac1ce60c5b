"""A scripted simulator world whose feed holds values at the warehouse's column limits and one past.

Group `fit`, two dealers:
- `G_GA`: five ordinary vehicles; for every length-limited feed column (validation.limits,
  read from the migration DDL) one vehicle whose value is exactly at the column's limit
  (must load) and one whose value is one character longer (must be quarantined with
  `<column>_too_long`); and one vehicle with a 10,240-character stock number.
- `G_<32 x B>`: its company number is at `company_number`'s limit (32), so all its rows
  load; one extra row carries a 33-character company number (quarantined).

`expected_quarantine()` is what validation must quarantine, `expected_loaded()` the VINs
that must reach feed_vehicles.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import yaml

from dealer_feed.opentrack.client import VEHICLE_COLUMNS
from dealer_feed.contract.schemas import VEHICLE_GOOD_SCHEMA
from dealer_feed.validation import limits

GROUP = "fit"
DAY1 = datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
PASSWORD = "fit-secret"
LONG_COMPANY = "B" * 32
DEALER_A, DEALER_B = "G_GA", f"G_{LONG_COMPANY}"
FIELD_OF = {column: field for field, column in VEHICLE_COLUMNS.items()}
HUGE_STOCK_NUMBER = "S" * 10_240


def vin(dealer: int, n: int) -> str:
    return f"1HGCM826{dealer}A{n:07d}"


def _row(dealer: int, n: int, **fields: str) -> dict[str, str]:
    return {"VIN": vin(dealer, n), "StockNumber": f"S{dealer}{n:03d}", "TypeNU": "U", "ModelYear": "2022",
            "Make": "Chevrolet", "Model": "Malibu", **fields}


def length_limits() -> list[limits.Limit]:
    return [lim for lim in limits.limits_for("vehicles", VEHICLE_GOOD_SCHEMA) if lim.column != "company_number"]


def rows_a() -> tuple[list[dict[str, str]], dict[str, str], set[str]]:
    """Dealer A's rows, {vin: rules} to quarantine, VINs to load."""
    rows = [_row(1, n) for n in range(5)]
    quarantined: dict[str, str] = {}
    for lim in length_limits():
        rows.append(_row(1, len(rows), **{FIELD_OF[lim.column]: "X" * lim.max_length}))
        past = _row(1, len(rows), **{FIELD_OF[lim.column]: "Y" * (lim.max_length + 1)})
        rows.append(past)
        quarantined[past["VIN"]] = lim.rule_name
    huge = _row(1, len(rows), StockNumber=HUGE_STOCK_NUMBER)
    rows.append(huge)
    quarantined[huge["VIN"]] = "stock_number_too_long"
    return rows, quarantined, {r["VIN"] for r in rows} - set(quarantined)


def rows_b() -> tuple[list[dict[str, str]], dict[str, str], set[str]]:
    rows = [_row(2, n) for n in range(3)]
    past = _row(2, 3, CompanyNumber="B" * 33)
    return rows + [past], {past["VIN"]: "company_number_too_long;dealer_id_known;dealer_id_matches_batch"}, {
        r["VIN"] for r in rows}


def expected_quarantine() -> dict[tuple[str, str], str]:
    """(dealer_id, vin) -> the quarantine row's rules."""
    (_, qa, _), (_, qb, _) = rows_a(), rows_b()
    return {**{(DEALER_A, v): r for v, r in qa.items()}, **{(DEALER_B, v): r for v, r in qb.items()}}


def expected_loaded() -> set[tuple[str, str]]:
    (_, _, la), (_, _, lb) = rows_a(), rows_b()
    return {(DEALER_A, v) for v in la} | {(DEALER_B, v) for v in lb}


def write(tmp: Path) -> tuple[Path, Path, Path]:
    """Write the world, the group file and its DAG stub; returns (world file, groups dir, dags dir)."""
    world = {
        "seed": 1,
        "vendors": [{"username": "vendor", "password": PASSWORD}],
        "defaults": {"grants": {"Vehicle": {"begins": "2026-01-01"}}},
        "dealers": [
            {"enterprise_code": "G", "company_number": "GA", "inventory": {"scripted": {"2026-11-23": rows_a()[0]}}},
            {"enterprise_code": "G", "company_number": LONG_COMPANY,
             "inventory": {"scripted": {"2026-11-23": rows_b()[0]}}},
        ],
    }
    group = {
        "schedule": "0 6 * * *",
        "dealers_per_task": 2,
        "thresholds": {"max_bad_fraction": 0.9},  # many bad rows on purpose: the guard is not under test
        "settings": {
            "auto_close": {"mode": "immediately"},
            "client_dealer": [{"client": f"Client {d}", "sr_type": "Recon", "dealer_id": d} for d in (DEALER_A, DEALER_B)],
        },
        "dealers": [{"enterprise_code": "G", "company_number": c} for c in ("GA", LONG_COMPANY)],
    }
    for sub in ("groups", "dags"):
        (tmp / sub).mkdir(exist_ok=True)
    (tmp / "world.yaml").write_text(yaml.safe_dump(world))
    (tmp / "groups" / f"{GROUP}.yaml").write_text(yaml.safe_dump(group))
    (tmp / "dags" / f"dealer_feed_{GROUP}.py").write_text(
        f'"""Airflow DAG of test group {GROUP}."""\nfrom dealer_feed.airflow_edge.dag_factory import build_dag\n\n'
        f'dag = build_dag("{GROUP}")\n'
    )
    return tmp / "world.yaml", tmp / "groups", tmp / "dags"
