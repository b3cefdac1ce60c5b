"""Contract: payloads in the real service's shapes (tests/fixtures/opentrack/, our own files)
served on loopback as the STAR transport delivers them and as the per-area transport would,
fetched through OpenTrackClient's real HTTP path; every mapped field is asserted."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from ot_support import RUN, dealer

from dealer_feed.opentrack import envelope
from dealer_feed.opentrack.client import OpenTrackClient, unknown_fields
from dealer_feed.opentrack.errors import AccessNotGrantedError, SchemaDriftError, is_transient

FIXTURES = Path(__file__).parents[2] / "fixtures" / "opentrack"
SOAP_OPEN = '<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
SOAP_CLOSE = "</soap:Body></soap:Envelope>"
OPERATIONS = ("VehicleInventory", "VehicleLookup", "PartsInventory", "OpenRepairOrderLookup", "CustomerLookup")


def wrap(payload: str, operation: str, transport: str) -> bytes:
    """The payload as the transport delivers it: STAR ProcessMessageResponse/payload/content, or
    per-area {Op}Response/{Op}Result with every element qualified in opentrack.dealertrack.com."""
    if transport == "star":
        body = (f'<ProcessMessageResponse xmlns="{envelope.STAR_NS}"><payload><content id="Content0">{payload}'
                "</content></payload></ProcessMessageResponse>")
    else:
        inner = re.sub(rf'^\s*<{operation}Response xmlns="">|</{operation}Response>\s*$', "", payload)
        body = f'<{operation}Response xmlns="{envelope.OT_NS}"><{operation}Result>{inner}</{operation}Result></{operation}Response>'
    return (SOAP_OPEN + body + SOAP_CLOSE).encode()


@contextmanager
def serve(transport: str, payloads: dict[str, str]) -> Iterator[tuple[str, list[dict]]]:
    """A loopback server answering each call with its operation's payload; logs path, action, body."""
    calls: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
            operation = next(op for op in OPERATIONS if f"<{op} " in body)
            calls.append({"path": self.path, "action": self.headers.get("SOAPAction"), "body": body,
                          "operation": operation})
            data = wrap(payloads[operation], operation, transport)
            self.send_response(200)
            self.send_header("Content-Type", "text/xml; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/OpenTrack/", calls
    finally:
        server.shutdown()
        server.server_close()


def fixtures() -> dict[str, str]:
    return {op: (FIXTURES / f"{op}.xml").read_text() for op in OPERATIONS}


TELLURIDE = {
    "dealer_id": "T1_QA1", "company_number": "QA1", "vin": "5XYP3DHC9NG000101", "stock_number": "N4410",
    "status": "I", "type_nu": "N", "model_year": "2022", "make": "KIA", "model": "TELLURIDE", "model_code": "TLR",
    "body_style": "4D SUV", "color": "GRAVITY GRAY", "trim": "SX", "odometer": "12",
    "date_in_inventory": "20221003", "date_in_service": "0", "date_delivered": "0", "date_modified": None,
    "list_price": "46210.00", "vehicle_cost": "43980.55", "certified_used_car": "",
}
ACCORD = {
    "dealer_id": "T1_QA1", "company_number": "QA1", "vin": "1HGCV1F34LA000202", "stock_number": "U77 & co",
    "status": "I", "type_nu": "U", "model_year": "2020", "make": "HONDA", "model": "ACCORD", "model_code": "",
    "body_style": "", "color": "WHITE", "trim": "", "odometer": "48211", "date_in_inventory": "20221115",
    "date_in_service": "20200214", "date_delivered": "0", "date_modified": None, "list_price": "23995.00",
    "vehicle_cost": "21000.00", "certified_used_car": "Y",
}


@pytest.fixture(params=["star", "per-area"])
def transport(request) -> str:
    return request.param


@pytest.fixture
def served(transport):
    with serve(transport, fixtures()) as (url, calls), \
            OpenTrackClient(url, "u", "p", timeout=5, max_attempts=1, transport=transport) as client:
        yield client, calls


def test_requests_use_the_transport(served, transport):
    client, calls = served
    client.vehicle_inventory(dealer("QA1"), RUN)
    client.parts_inventory(dealer("QA1"), "KI", RUN)

    first, second = calls
    if transport == "star":
        assert first["path"] == second["path"] == "/OpenTrack/WebService.asmx"
        assert first["action"] == f'"{envelope.STAR_ACTION}"'
        assert "<tran:PayloadManifest" in first["body"] and 'element="VehicleInventory"' in first["body"]
        assert '<tran:content id="Content0"><VehicleInventory xmlns=""><Dealer>' in first["body"]
        assert "<wsse:UsernameToken>" in first["body"]
    else:
        assert (first["path"], second["path"]) == ("/OpenTrack/VehicleAPI.asmx", "/OpenTrack/PartsAPI.asmx")
        assert first["action"] == '"opentrack.dealertrack.com/VehicleInventory"'
        assert '<VehicleInventory xmlns="opentrack.dealertrack.com">' in first["body"]


def test_vehicle_inventory(served):
    client, _ = served
    table = client.vehicle_inventory(dealer("QA1"), RUN)

    assert table.to_pylist() == [TELLURIDE, ACCORD]  # nested Options' Description did not leak
    assert unknown_fields(table) == {"DocumentNumber": 1, "GLApplied": 1, "Cylinders": 1, "DateOrdered": 1,
                                     "CustomerKey": 1, "LastServiceDate": 1}


def test_vehicle_lookup(served):
    client, calls = served
    table = client.vehicle_lookup(dealer("QA1"), RUN, vin="5XYP3DHC9NG000101")

    assert table.to_pylist() == [TELLURIDE]
    assert "<VIN>5XYP3DHC9NG000101</VIN>" in calls[0]["body"]


def test_parts_inventory(served):
    client, _ = served
    rows = client.parts_inventory(dealer("QA1"), "KI", RUN).to_pylist()

    assert rows == [
        {"dealer_id": "T1_QA1", "make_code": "KI", "part_number": "26300-35505", "manufacturer": "KI",
         "description": "OIL FILTER", "quantity_on_hand": "14", "quantity_on_order": "6", "bin_location": "A-12",
         "list_price": "9.85", "cost": "4.10", "date_last_sold": "20221120", "date_last_received": None,
         "status": "A"},
        {"dealer_id": "T1_QA1", "make_code": "KI", "part_number": "58101-L1A00", "manufacturer": "KI",
         "description": "BRAKE PAD SET", "quantity_on_hand": "0", "quantity_on_order": "1", "bin_location": "",
         "list_price": "118.40", "cost": "61.00", "date_last_sold": "0", "date_last_received": None,
         "status": "A"},
    ]


def test_open_repair_orders_and_lines(served):
    client, _ = served
    orders, lines = client.open_repair_orders_with_lines(dealer("QA1"), RUN)

    assert orders.to_pylist() == [{
        "dealer_id": "T1_QA1", "repair_order_number": "7001234", "company_number": "QA1",
        "vin": "5XYP3DHC9NG000101", "stock_number": "", "customer_number": "1000555", "service_advisor": "204",
        "status": "2", "date_opened": "20221121", "date_promised": "202211221630", "odometer_in": "15022",
        "total_estimate": "389.50",
    }]
    line = {"dealer_id": "T1_QA1", "repair_order_number": "7001234", "line_number": "1", "trans_code": "CP",
            "trans_date": "20221121", "service_type": "MR", "line_status": "I", "payment_method": "C"}
    assert lines.to_pylist() == [
        line | {"sequence_number": "0", "line_type": "A", "labor_op_code": "01", "technician_id": "T17",
                "labor_hours": "0.5", "part_number": "", "quantity": "0", "net_price": "0",
                "actual_retail_amount": "59.95", "comments": "OIL CHANGE"},
        line | {"sequence_number": "1", "line_type": "P", "labor_op_code": "", "technician_id": "",
                "labor_hours": "0", "part_number": "26300-35505", "quantity": "1", "net_price": "9.85",
                "actual_retail_amount": "9.85", "comments": ""},
    ]
    assert unknown_fields(orders)["OpenRepairOrderDetail/DispatchStartTime"] == 1


def test_customer_lookup(served):
    client, _ = served
    rows = client.customer_lookup(dealer("QA1"), "1000555", RUN).to_pylist()

    assert rows == [{
        "dealer_id": "T1_QA1", "customer_number": "1000555", "first_name": "JANE", "last_name": "ROE",
        "address": "12 HARBOR RD", "city": "PORTLAND", "state": "ME", "zip_code": "041010000",
        "phone_number": "2075550142", "email": "JANE.ROE@EXAMPLE.ORG",
    }]


def test_error_311_is_a_missing_grant_not_a_request_error(transport):
    payloads = fixtures() | {"VehicleInventory": (FIXTURES / "Error311.xml").read_text()}
    with serve(transport, payloads) as (url, calls), \
            OpenTrackClient(url, "u", "p", timeout=5, max_attempts=3, backoff_seconds=0.01,
                            transport=transport) as client:
        with pytest.raises(AccessNotGrantedError) as caught:
            client.vehicle_inventory(dealer("QA1"), RUN)

    assert caught.value.code == "311" and not is_transient(caught.value) and len(calls) == 1
    assert "Dealer has not granted access to Vendor" in str(caught.value)
    assert caught.value.fix.startswith("the dealership must add the Vehicle method for this vendor")


@pytest.mark.parametrize(("payload", "element"), [
    ("<VehicleInventoryResponse xmlns=\"\"><Result><VIN>X</VIN></Result></VehicleInventoryResponse>", "Result"),
    ("<VehicleInventoryResponse xmlns=\"\"><Vehicles><Vehicle><VIN>X</VIN></Vehicle></Vehicles>"
     "</VehicleInventoryResponse>", "Vehicles"),
    ("<VehicleInventoryResponse xmlns=\"\"><Vehicle><VIN>X</VIN></Vehicle><Notice>m</Notice>"
     "</VehicleInventoryResponse>", "Notice"),
])
def test_unexpected_payload_element_is_permanent_schema_drift(transport, payload, element):
    with serve(transport, fixtures() | {"VehicleInventory": payload}) as (url, calls), \
            OpenTrackClient(url, "u", "p", timeout=5, max_attempts=3, backoff_seconds=0.01,
                            transport=transport) as client:
        with pytest.raises(SchemaDriftError) as caught:
            client.vehicle_inventory(dealer("QA1"), RUN)

    assert caught.value.element == element and f"<{element}>" in str(caught.value)
    assert not is_transient(caught.value) and len(calls) == 1  # never retried
    assert "T1_QA1" in str(caught.value) and "Fix:" in str(caught.value)


def test_answer_of_another_operation_is_schema_drift():
    """A body without the operation's container (here VehicleLookupResponse for an inventory call)."""
    payloads = fixtures() | {"VehicleInventory": (FIXTURES / "VehicleLookup.xml").read_text()}
    with serve("star", payloads) as (url, _), OpenTrackClient(url, "u", "p", timeout=5, max_attempts=1) as client:
        with pytest.raises(SchemaDriftError) as caught:
            client.vehicle_inventory(dealer("QA1"), RUN)
    assert caught.value.element == "VehicleLookupResponse"
