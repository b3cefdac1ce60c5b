"""Simulator inventories: deterministic in (seed, dealer, date), with day-to-day churn and bad rows."""

from __future__ import annotations

import re
from datetime import date, timedelta

import pytest

from dealer_feed_tools.simulator.inventory import vin_check_digit
from dealer_feed_tools.simulator.world import World, load_world
from dealer_feed.config import PROJECT_ROOT

DEMO = PROJECT_ROOT / "include" / "simulator" / "demo_world.yaml"
VALID_VIN = re.compile(r"^[A-HJ-NPR-Z0-9]{17}$")
DAYS = [date(2026, 11, 1) + timedelta(days=i) for i in range(30)]


@pytest.fixture(scope="module")
def world() -> World:
    return load_world(DEMO)


def test_same_seed_dealer_date_gives_same_rows(world):
    again = load_world(DEMO)
    for dealer_id in ("ZE_ZE7", "ZE_ZE9"):
        assert world.vehicles(dealer_id, DAYS[5]) == again.vehicles(dealer_id, DAYS[5])
    assert world.vehicles("ZE_ZE7", DAYS[5]) != world.vehicles("ZE_ZE8", DAYS[5])
    assert world.vehicles("ZE_ZE7", DAYS[5]) != world.vehicles("ZE_ZE7", DAYS[6])


def test_other_world_seed_gives_other_rows(world):
    reseeded = World.model_validate(world.model_dump() | {"seed": 1, "vendors": [
        {"username": "v", "password": "p"}]})
    assert reseeded.vehicles("ZE_ZE7", DAYS[0]) != world.vehicles("ZE_ZE7", DAYS[0])


def _good(rows):
    """Real vehicles only: VIN -> stock number (bad rows carry a B stock number or a broken VIN)."""
    return {r["VIN"]: r["StockNumber"] for r in rows
            if VALID_VIN.match(r["VIN"] or "") and (r["StockNumber"] or "B").startswith(("N", "U", "T"))}


def test_daily_churn_has_arrivals_departures_stock_changes_and_returns(world):
    lots = [_good(world.vehicles("ZE_ZE7", d)) for d in DAYS]
    arrivals = departures = changes = returns = 0
    seen_then_gone: set[str] = set()
    for before, after in zip(lots, lots[1:]):
        arrivals += len(after.keys() - before.keys())
        departures += len(before.keys() - after.keys())
        changes += sum(before[v] != after[v] for v in before.keys() & after.keys())
        returns += len((after.keys() - before.keys()) & seen_then_gone)
        seen_then_gone |= before.keys() - after.keys()

    assert all(35 <= len(lot) <= 65 for lot in lots)
    assert arrivals >= 30 and departures >= 30
    assert changes >= 5
    assert returns >= 5


def test_vehicles_are_plausible(world):
    rows = [r for r in world.vehicles("ZE_ZE7", DAYS[0]) if (r["StockNumber"] or "").startswith("N")]
    assert rows
    for row in rows:
        assert VALID_VIN.match(row["VIN"]) and vin_check_digit(row["VIN"]) == row["VIN"][8]
        assert row["Make"] == "KIA" and row["TypeNU"] == "N"  # ZE7 sells new Kias
        assert row["DateInInventory"] <= DAYS[0].strftime("%Y%m%d") and "DateModified" not in row  # not a real field
        assert row["DateInService"] == "0" and row["CompanyNumber"] == "ZE7"


def test_bad_rows_about_one_percent_and_of_every_kind(world):
    rows = [r for d in DAYS for dealer_id in ("ZE_ZE7", "ZE_ZE8", "ZE_ZE9") for r in world.vehicles(dealer_id, d)]
    bad = [r for r in rows if (r["StockNumber"] or "B").startswith("B")]
    kinds = {
        "bad_vin_chars": any(re.search("[IOQ]", r["VIN"]) for r in bad),
        "bad_vin_length": any(len(r["VIN"]) != 17 for r in bad),
        "missing_stock": any(r["StockNumber"] == "" for r in bad),
        "duplicate_vin": any(sum(x["VIN"] == r["VIN"] for x in rows if x is not r) for r in bad),
        "bad_date": any(r["DateInInventory"].endswith("1345") for r in bad),
        "model_year_1850": any(r["ModelYear"] == "1850" for r in bad),
    }
    assert 0.003 <= len(bad) / len(rows) <= 0.03
    assert all(kinds.values()), kinds


def test_scripted_inventory_steps_between_dates():
    world = World.model_validate({
        "vendors": [{"username": "v", "password": "p"}],
        "dealers": [{"enterprise_code": "S", "company_number": "S1", "inventory": {"scripted": {
            "2026-11-02": [{"VIN": "V1", "StockNumber": 7, "ListPrice": None}],
            "2026-11-05": [],
        }}}],
    })
    assert world.vehicles("S_S1", date(2026, 11, 1)) == []
    [row] = world.vehicles("S_S1", date(2026, 11, 4))
    assert (row["VIN"], row["StockNumber"], row["ListPrice"], row["CompanyNumber"]) == ("V1", "7", None, "S1")
    assert "DateModified" not in row and row["DateInService"] == "0"
    assert world.vehicles("S_S1", date(2026, 11, 5)) == []
