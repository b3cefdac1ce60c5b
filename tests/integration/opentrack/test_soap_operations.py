"""Every operation over real HTTP, SOAP 1.1 and 1.2, STAR and per-area transports: the client
returns what the simulator served."""

from __future__ import annotations

import pyarrow as pa
import pytest
from ot_support import RUN, dealer

from dealer_feed.opentrack.client import PARTS_COLUMNS, REPAIR_ORDER_COLUMNS, VEHICLE_COLUMNS, unknown_fields
from dealer_feed.contract.schemas import VEHICLE_RAW_COLUMNS
from dealer_feed_tools.simulator.soap import OPERATIONS

pytestmark = [pytest.mark.parametrize("soap_version", ["1.1", "1.2"]),
              pytest.mark.parametrize("transport", ["star", "per-area"])]


@pytest.fixture
def client(make_client, soap_version, transport):
    return make_client(soap_version=soap_version, transport=transport)


def _as_wire(table: pa.Table, columns: dict[str, str]) -> list[dict[str, str | None]]:
    """Client rows renamed back to the OpenTrack field names the simulator serves (dropping the
    columns we add, and those without a real source such as DateModified)."""
    served = {f for op in OPERATIONS.values() for f in op.fields}
    return [{field: row[column] for field, column in columns.items() if field in served} for row in table.to_pylist()]


def _served_only(rows: list[dict[str, str | None]], columns: dict[str, str]) -> list[dict[str, str | None]]:
    """World rows restricted to the mapped fields (the simulator also serves unmapped real fields)."""
    return [{k: v for k, v in row.items() if k in columns} for row in rows]


def test_vehicle_inventory_is_exactly_what_was_served(client, sim, world, soap_version, transport):
    table = client.vehicle_inventory(dealer("A1"), RUN)

    assert tuple(table.column_names) == VEHICLE_RAW_COLUMNS
    assert all(pa.types.is_string(t) for t in table.schema.types)
    assert _as_wire(table, VEHICLE_COLUMNS) == world.vehicles("T1_A1", RUN.date())
    assert set(table.column("dealer_id").to_pylist()) == {"T1_A1"}
    [call] = sim.requests(operation="VehicleInventory")
    assert (call["soap_version"], call["status"], call["as_of"], call["rows"]) == (soap_version, 200, "2026-11-23",
                                                                                   table.num_rows)
    assert call["transport"] == transport
    assert table.column("date_modified").null_count == table.num_rows  # no real source
    assert unknown_fields(table) == {}  # nested OptionalFields/Options are known lists


def test_vehicle_values_kept_verbatim_and_dealer_id_from_row_company(client, soap_version):
    rows = {r["vin"]: r for r in client.vehicle_inventory(dealer("C3"), RUN).to_pylist()}

    assert rows["1FTFW1E50PFA00001"]["dealer_id"] == "T1_C3"
    assert rows["1FTFW1E50PFA00001"]["date_in_service"] == "0"
    assert rows["1FTFW1E50PFA00002"]["dealer_id"] == "T1_ZZ9"  # foreign company: validation catches it
    assert rows["1FTFW1E50PFA00003"]["stock_number"] is None  # element absent -> null
    assert rows["1FTFW1E50PFA00003"]["make"] == ""  # element empty -> ""
    assert rows["1FTFW1E50PFA00003"]["model"] == "<&>"


def test_vehicle_lookup_by_vin_and_by_stock_number(client, world, soap_version):
    served = world.vehicles("T1_A1", RUN.date())[3]
    by_vin = client.vehicle_lookup(dealer("A1"), RUN, vin=served["VIN"])
    by_stock = client.vehicle_lookup(dealer("A1"), RUN, stock_number=served["StockNumber"])
    missing = client.vehicle_lookup(dealer("A1"), RUN, vin="00000000000000000")

    assert _as_wire(by_vin, VEHICLE_COLUMNS) == [served]
    assert _as_wire(by_stock, VEHICLE_COLUMNS) == [served]
    assert missing.num_rows == 0 and missing.column_names == by_vin.column_names


def test_parts_inventory_per_make_code(client, world, soap_version):
    for make in ("KI", "SU"):
        table = client.parts_inventory(dealer("A1"), make, RUN)
        assert table.column_names == ["dealer_id", "make_code", *PARTS_COLUMNS.values()]
        assert _as_wire(table, PARTS_COLUMNS) == _served_only(world.parts("T1_A1", make, RUN.date()), PARTS_COLUMNS)
        assert unknown_fields(table) == {"DateInInventory": table.num_rows}  # served, not mapped: counted
        assert set(table.column("make_code").to_pylist()) == {make}
        assert set(table.column("dealer_id").to_pylist()) == {"T1_A1"}


def test_open_repair_orders(client, world, soap_version):
    table, lines = client.open_repair_orders_with_lines(dealer("A1"), RUN)

    assert table.column_names == ["dealer_id", *REPAIR_ORDER_COLUMNS.values()]
    assert table.num_rows > 0
    assert _as_wire(table, REPAIR_ORDER_COLUMNS) == _served_only(world.repair_orders("T1_A1", RUN.date()),
                                                                 REPAIR_ORDER_COLUMNS)
    first = table.to_pylist()[0]
    assert first["date_opened"] <= "20261123" <= first["date_promised"][:8] and len(first["date_promised"]) == 12
    assert set(lines.column("repair_order_number").to_pylist()) == set(table.column("repair_order_number").to_pylist())
    assert set(lines.column("dealer_id").to_pylist()) == {"T1_A1"} and lines.num_rows >= table.num_rows
    assert unknown_fields(table) == {"CustomerNumber": table.num_rows}  # real ROs: empty; customer in CustomerKey


def test_customer_lookup(client, soap_version):
    found = client.customer_lookup(dealer("A1"), "123456", RUN).to_pylist()
    unknown = client.customer_lookup(dealer("A1"), "42", RUN)

    assert [(r["dealer_id"], r["customer_number"]) for r in found] == [("T1_A1", "123456")]
    assert found[0]["last_name"]
    assert unknown.num_rows == 0
