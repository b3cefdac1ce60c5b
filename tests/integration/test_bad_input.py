"""Bad input (issue 14, "Bad input"): one catalogue of the bad inputs the pipeline meets, each
exercised through the real part that reads it and judged by one assertion; then a fuzz of
the OpenTrack response parser.

A case is a `Case`: an id, the input, and what it must produce —

* `Raises(error, says, transient)`: a typed error of that class (it carries `transient`, and a
  fix line as `alerts.fix_line` finds it for the failure alert and the CLI), whose message
  holds `says`, raised without a chained traceback;
* `Quarantined(rules)`: every row of the case lands in quarantine with exactly these rules
  (sorted, `;`-joined) and its values as delivered (row_json);
* `Loads()`: a control next to a limit (a value at the warehouse's limit, an empty optional
  value): the row loads with its value as delivered. Controls prove the rule next to them is
  not overzealous; they are not counted as bad inputs.

Never a bare traceback, never a silent loss. `check()` is the one assertion; it counts every
bad input tried and handled into the reliability report (row "bad input").

How the cases reach the code:

* payload: a real OpenTrackClient against a tiny HTTP server on loopback (one per module)
  serving the case's bytes under its own base URL; rows the client returns are validated as
  the pipeline validates them; the server counts calls (permanent errors are not retried);
* row: one `validate_batches` call per dataset holding every row case of the dataset;
* run: the steps `runner.run_group` drives (extract_batch, validate, transform, load) with a real
  client against the simulator serving the rows as a scripted inventory, into a SQLite file;
* config: `config.load_group` of a YAML file written in tmp_path; connection: the pipeline
  function that resolves the group's connection (no Airflow connection defined);
* landing: a copy of one extracted and transformed run with one file missing or corrupt, and
  the step that reads it.

The fuzz (`test_parser_fuzz`): hypothesis feeds mutations of real responses and generated
XML-ish documents, chunked at random, to `parse_response` (what the client reads a body
with): nothing but `ResponseParseError`, the error the client turns into its typed
OpenTrackError, may escape. Counted as the report's row "parser fuzz".
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from threading import Thread
from typing import Any
from xml.sax.saxutils import escape

import pyarrow as pa
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import reliability
from dealer_feed import pipeline
from dealer_feed.airflow_edge.alerts import fix_line
from dealer_feed.config import ConfigError, Dealer, GroupConfig, load_group
from dealer_feed.contract.identity import run_id
from dealer_feed.landing import LandingFileError
from dealer_feed.opentrack.client import OPEN_REPAIR_ORDERS, VEHICLE_COLUMNS, VEHICLE_INVENTORY, OpenTrackClient
from dealer_feed.opentrack.envelope import OT_NS, SOAP11, SOAP12, STAR_NS
from dealer_feed.opentrack.errors import (
    AuthenticationError,
    MalformedResponseError,
    MissingConnectionError,
    OpenTrackRequestError,
    ResponseTooLargeError,
    ServiceUnavailableError,
    UnknownDealerError,
    UnsafeResponseError,
)
from dealer_feed.opentrack.parse import ParsedResponse, ResponseParseError, parse_response
from dealer_feed.contract.schemas import VEHICLE_GOOD_SCHEMA, VEHICLE_RAW_COLUMNS
from dealer_feed_tools.simulator import World, start_background
from dealer_feed.validation import DealerValidation, limits, validate_batches
from dealer_feed.validation.core import EXAMPLES_PER_RULE
from dealer_feed.warehouse import make_engine, reads
from dealer_feed.warehouse.errors import WarehouseError
from support import ROOT
from unit.validation.validation_helpers import D7, D8, T, make_group, row, table, vin

pytestmark = pytest.mark.reliability

SUITE = "bad input"


# --------------------------------------------------------------------------- the catalogue's terms


@dataclass(frozen=True)
class Raises:
    """A typed error of class `error` whose message holds `says`."""

    error: type[Exception]
    says: str
    transient: bool = False


@dataclass(frozen=True)
class Quarantined:
    """Each row of the case is quarantined with exactly these rules."""

    rules: str


@dataclass(frozen=True)
class Loads:
    """A control: each row of the case loads, its values as delivered."""


Expect = Raises | Quarantined | Loads


@dataclass(frozen=True)
class Case:
    id: str
    given: Any
    """The input: bytes of an answer, row overrides, a YAML text, a landing file to break..."""
    expect: Expect
    dataset: str = "vehicles"

    @property
    def bad(self) -> bool:
        return not isinstance(self.expect, Loads)


def check(case: Case, *, error: BaseException | None = None, rows: list[str | None] | None = None) -> None:
    """The catalogue's one assertion: `case` produced what it must (an `error` raised, or per row
    of the case its quarantine rules, None where it loaded). Counts the bad input."""
    if case.bad:
        reliability.record(SUITE, bad_inputs_tried=1)
    expect = case.expect
    if isinstance(expect, Raises):
        assert error is not None, f"{case.id}: accepted without an error (rows: {rows})"
        assert isinstance(error, expect.error), f"{case.id}: {error!r} is not a {expect.error.__name__}"
        assert getattr(error, "transient", None) is expect.transient, f"{case.id}: transient of {error!r}"
        assert fix_line(error), f"{case.id}: {error!r} has no fix line"
        assert expect.says in str(error), f"{case.id}: {expect.says!r} not in {str(error)!r}"
        assert error.__cause__ is None, f"{case.id}: chained traceback behind {error!r}"
    else:
        assert error is None, f"{case.id}: raised {error!r}"
        assert rows, f"{case.id}: no row to judge"
        want = expect.rules if isinstance(expect, Quarantined) else None
        assert rows == [want] * len(rows), f"{case.id}: rows ended as {rows}, expected {want or 'loaded'}"
    if case.bad:
        reliability.record(SUITE, bad_inputs_handled=1)


# --------------------------------------------------------------------------- payload: answers on loopback

FIXTURES = ROOT / "tests" / "fixtures" / "opentrack"
DEALER = Dealer(enterprise_code="ZE", company_number="ZE7")
"""Dealer ZE_ZE7 of validation_helpers' group: the rows the client returns validate in that group."""
OT_FIELD = {raw: name for name, raw in VEHICLE_COLUMNS.items()}
RESPONSE_LIMIT = 1 << 20
"""The payload client's max_response_bytes."""
PAYLOAD_PASSWORD = "bad-input-payload-secret"


def envelope(body: str, ns: str = SOAP11) -> bytes:
    return f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ns}"><soap:Body>{body}</soap:Body></soap:Envelope>'.encode()


def star(payload: str) -> bytes:
    """A payload as the STAR transport delivers it (ProcessMessageResponse/payload/content)."""
    return envelope(f'<ProcessMessageResponse xmlns="{STAR_NS}"><payload><content id="Content0">{payload}'
                    "</content></payload></ProcessMessageResponse>")


def inventory(*records: str) -> bytes:
    return star('<VehicleInventoryResponse xmlns="">' + "".join(records) + "</VehicleInventoryResponse>")


def vehicle(n: int, **raw: str | None) -> str:
    """validation_helpers' valid row `n` (with `raw` overrides) as a <Vehicle> record; None is absent."""
    values = {c: v for c, v in row(n, **raw).items() if c in OT_FIELD and v is not None}
    return "<Vehicle>" + "".join(f"<{OT_FIELD[c]}>{escape(v)}</{OT_FIELD[c]}>" for c, v in values.items()) + "</Vehicle>"


REAL_INVENTORY = star((FIXTURES / "VehicleInventory.xml").read_text())
LAUGHS = ('<!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
    '<!ENTITY lol%d "%s">' % (i, ("&lol%d;" % (i - 1) if i > 1 else "&lol;") * 10) for i in range(1, 10)) + "]>")
XXE = '<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def with_prolog(document: bytes, prolog: str) -> bytes:
    """`document` with `prolog` (a DOCTYPE...) right after its XML declaration."""
    return document.replace(b"?>", b"?>" + prolog.encode(), 1)


def laughing(document: bytes) -> bytes:
    """`document` whose first Model is the billion laughs' top entity."""
    return document.replace(b"<Model>Sorento", b"<Model>&lol9;", 1)


def soap11_fault(code: str, text: str) -> bytes:
    return envelope(f"<soap:Fault><faultcode>{code}</faultcode><faultstring>{text}</faultstring></soap:Fault>")


def errors(code: str, message: str) -> bytes:
    return star(f'<VehicleInventoryResponse xmlns=""><Errors><Error><Code>{code}</Code><Message>{message}'
                "</Message></Error></Errors></VehicleInventoryResponse>")


@dataclass(frozen=True)
class Answer:
    """What the loopback server answers a case's calls with."""

    body: bytes
    status: int = 200
    content_type: str = "text/xml; charset=utf-8"
    length: bool = True
    """Send Content-Length; False: stream the body until the connection closes."""


def ans(body: bytes, **kw: Any) -> Answer:
    return Answer(body, **kw)


PAYLOAD_CASES = [
    Case("payload: malformed XML (mismatched end tag)", ans(inventory("<Vehicle><VIN>X</Vehicle>")),
         Raises(MalformedResponseError, "not well-formed XML", transient=True)),
    Case("payload: truncated XML (a real answer cut mid-record)", ans(REAL_INVENTORY[: len(REAL_INVENTORY) * 2 // 3]),
         Raises(MalformedResponseError, "truncated?", transient=True)),
    Case("payload: empty body (HTTP 200, 0 bytes)", ans(b""),
         Raises(MalformedResponseError, "Document is empty", transient=True)),
    Case("payload: an HTML login page instead of SOAP", ans(b"<html><body>Login page</body></html>",
                                                            content_type="text/html; xml"),
         Raises(MalformedResponseError, "not a SOAP envelope", transient=True)),
    Case("payload: wrong namespace (envelope not in a SOAP namespace)",
         ans(inventory(vehicle(0)).replace(SOAP11.encode(), b"http://example.com/not-soap")),
         Raises(MalformedResponseError, "not a SOAP envelope", transient=True)),
    Case("payload: non-UTF-8 byte (Latin-1 e-acute) in a UTF-8 answer",
         ans(inventory(vehicle(0, model="Caf\xe9")).replace("Caf\xe9".encode(), b"Caf\xe9")),
         Raises(MalformedResponseError, "Invalid bytes in character encoding", transient=True)),
    Case("payload: SOAP 1.1 Fault soap:Client (HTTP 500)", ans(soap11_fault("soap:Client", "Bad request"), status=500),
         Raises(OpenTrackRequestError, "SOAP fault Client (HTTP 500): Bad request")),
    Case("payload: SOAP 1.2 Fault Sender / wsse:FailedAuthentication",
         ans(envelope('<soap:Fault><soap:Code><soap:Value>soap:Sender</soap:Value><soap:Subcode><soap:Value>'
                      "wsse:FailedAuthentication</soap:Value></soap:Subcode></soap:Code><soap:Reason>"
                      '<soap:Text xml:lang="en">no such user</soap:Text></soap:Reason></soap:Fault>', SOAP12),
             status=500, content_type="application/soap+xml; charset=utf-8"),
         Raises(AuthenticationError, "SOAP fault FailedAuthentication (HTTP 500): no such user")),
    Case("payload: SOAP 1.1 Fault soap:Server", ans(soap11_fault("soap:Server", "Oops"), status=500),
         Raises(ServiceUnavailableError, "SOAP fault Server", transient=True)),
    Case("payload: SOAP Fault without code or text", ans(envelope("<soap:Fault/>"), status=500),
         Raises(OpenTrackRequestError, "SOAP fault (no code) (HTTP 500)")),
    Case("payload: in-band Error with an unknown code", ans(errors("999", "Something odd")),
         Raises(OpenTrackRequestError, "999: Something odd")),
    Case("payload: in-band Error 301 (server address blank)", ans(errors("301", "Server address is blank")),
         Raises(UnknownDealerError, "301: Server address is blank")),
    Case("payload: in-band Error without Code or Message",
         ans(star('<VehicleInventoryResponse xmlns=""><Error/></VehicleInventoryResponse>')),
         Raises(OpenTrackRequestError, "in-band error (no code)")),
    Case("payload: XXE (external entity file:///etc/passwd)",
         ans(with_prolog(inventory(vehicle(0, model="&xxe;")).replace(b"&amp;xxe;", b"&xxe;"), XXE)),
         Raises(UnsafeResponseError, "DOCTYPE")),
    Case("payload: entity expansion (billion laughs)",
         ans(with_prolog(laughing(inventory(vehicle(0))), LAUGHS)),
         Raises(UnsafeResponseError, "DOCTYPE")),
    Case("payload: entity expansion declared after 70 KB of whitespace (past the first chunk's byte check)",
         ans(with_prolog(laughing(inventory(vehicle(0))), " " * 70_000 + LAUGHS)),
         Raises(UnsafeResponseError, "refused")),
    Case("payload: entity expansion in a UTF-16 answer",
         ans(("\ufeff" + with_prolog(laughing(inventory(vehicle(0))), LAUGHS).decode()
              .replace('encoding="utf-8"', 'encoding="UTF-16"')).encode("utf-16-le")),
         Raises(UnsafeResponseError, "refused")),
    Case("payload: nesting 300 elements deep", ans(inventory("<a>" * 300 + "</a>" * 300)),
         Raises(UnsafeResponseError, "Excessive depth")),
    Case("payload: answer over max_response_bytes (Content-Length)",
         ans(inventory(vehicle(0), " " * RESPONSE_LIMIT)), Raises(ResponseTooLargeError, "max_response_bytes")),
    Case("payload: answer over max_response_bytes (streamed, no Content-Length)",
         ans(inventory(vehicle(0), " " * RESPONSE_LIMIT), length=False),
         Raises(ResponseTooLargeError, "bytes read so far")),
    Case("payload: NUL byte in a value", ans(inventory(vehicle(0, model="Sor\x00ento"), vehicle(1))),
         Quarantined("forbidden_character")),
    Case("payload: forbidden character reference &#1; in a value",
         ans(inventory(vehicle(0, model="Sor&ento"), vehicle(1)).replace(b"Sor&amp;ento", b"Sor&#1;ento")),
         Quarantined("forbidden_character")),
    Case("payload: wrong type (ModelYear 'twenty')", ans(inventory(vehicle(0, model_year="twenty"), vehicle(1))),
         Quarantined("model_year_parses")),
    Case("payload: missing fields (a Vehicle without VIN, StockNumber, TypeNU)",
         ans(inventory(vehicle(0, vin=None, stock_number=None, type_nu=None), vehicle(1))),
         Quarantined("stock_number_present;type_nu_present;vin_present")),
    Case("payload: a record of another company (CompanyNumber ZZ9)",
         ans(inventory(vehicle(0, company_number="ZZ9"), vehicle(1))),
         Quarantined("dealer_id_known;dealer_id_matches_batch")),
]


class _Handler(BaseHTTPRequestHandler):
    server: _CaseServer

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        key = self.path.strip("/").split("/")[0]
        self.server.hits[key] += 1
        answer = self.server.answers[key]
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        if answer.length:
            self.send_header("Content-Length", str(len(answer.body)))
        self.end_headers()
        try:
            self.wfile.write(answer.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client stopped reading (max_response_bytes)

    def log_message(self, *args: Any) -> None:
        pass


class _CaseServer(ThreadingHTTPServer):
    """Answers POSTs to /<key>/... with answers[key]; hits counts the calls per key."""

    daemon_threads = True

    def __init__(self, answers: dict[str, Answer]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = answers
        self.hits: Counter[str] = Counter()

    def url(self, key: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{key}/"


@pytest.fixture(scope="module")
def answers() -> Iterator[_CaseServer]:
    server = _CaseServer({f"p{i}": case.given for i, case in enumerate(PAYLOAD_CASES)})
    thread = Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def validated_rows(dataset: str, raw: dict[str, pa.Table]) -> DealerValidation:
    """validate_batches of one dealer's raw table in validation_helpers' group: its DealerValidation."""
    [result] = validate_batches(dataset, raw, group=make_group(), logical_time=T).values()
    return result


def rules_by_row(result: DealerValidation) -> dict[int, str]:
    return dict(zip(result.quarantine["row_number"].tolist(), result.quarantine["rules"].tolist(), strict=True))


@pytest.mark.parametrize("n", range(len(PAYLOAD_CASES)), ids=[c.id for c in PAYLOAD_CASES])
def test_payload(answers, n):
    case, key = PAYLOAD_CASES[n], f"p{n}"
    error, rows = None, None
    with OpenTrackClient(answers.url(key), "vendor", PAYLOAD_PASSWORD, timeout=5, max_attempts=2, backoff_seconds=0.01,
                         max_backoff_seconds=0.02, requests_per_second=1000,
                         max_response_bytes=RESPONSE_LIMIT) as client:
        try:
            fetched = client.vehicle_inventory(DEALER, T)
        except Exception as exc:  # noqa: BLE001 - check() judges what came out
            error = exc
        else:
            result = validated_rows("vehicles", {DEALER.dealer_id: fetched})
            bad = rules_by_row(result)
            rows = [bad.get(0)]
            assert result.good_rows == fetched.num_rows - 1, f"{case.id}: the other rows did not load"
    check(case, error=error, rows=rows)
    transient = isinstance(case.expect, Raises) and case.expect.transient
    assert answers.hits[key] == (2 if transient else 1), f"{case.id}: only transient errors are retried"
    if error is not None:
        assert "root:" not in str(error) and PAYLOAD_PASSWORD not in str(error)


# --------------------------------------------------------------------------- rows: one batch per dataset

REQUIRED = {"dealer_id", "vin", "stock_number", "type_nu"}
TYPED = {f.name for f in VEHICLE_GOOD_SCHEMA if not pa.types.is_string(f.type)}
LIMITS = {lim.column: lim for lim in limits.limits_for("vehicles", VEHICLE_GOOD_SCHEMA)}
OVER_LONG = {
    # the columns without a VARCHAR limit: one character past what their rule accepts
    "dealer_id": ("ZE_" + "Z" * 62, "dealer_id_known;dealer_id_matches_batch"),
    "vin": ("1HGCM82633A0043521", "vin_format"),
    "model_year": ("20211", "model_year_range"),
    "odometer": ("1" * 19, "odometer_parses"),
    "date_in_inventory": ("202611011", "date_in_inventory_parses"),
    "date_in_service": ("202611011", "date_in_service_parses"),
    "date_delivered": ("202611011", "date_delivered_parses"),
    "date_modified": ("202611011", "date_modified_parses"),
    "list_price": ("1" * 31, "list_price_parses"),
    "vehicle_cost": ("1" * 31 + ".00", "vehicle_cost_parses"),
    "certified_used_car": ("YY", "certified_used_car_parses"),
}


def _row_case(case_id: str, expect: Expect, *rows: dict[str, Any], dataset: str = "vehicles") -> Case:
    return Case(f"row: {case_id}", list(rows), expect, dataset)


def _every_column() -> list[Case]:
    """Empty, at the warehouse limit, and one past it, for every vehicle column."""
    cases = []
    for column in VEHICLE_RAW_COLUMNS:
        cases.append(_row_case(f"{column} empty", Quarantined(f"{column}_present") if column in REQUIRED else Loads(),
                               {column: ""}))
        if column in LIMITS:
            n = LIMITS[column].max_length
            cases.append(_row_case(f"{column} at its limit ({n} characters)", Loads(), {column: "X" * n}))
            cases.append(_row_case(f"{column} one past its limit ({n + 1} characters)",
                                   Quarantined(LIMITS[column].rule_name), {column: "X" * (n + 1)}))
        else:
            value, rules = OVER_LONG[column]
            cases.append(_row_case(f"{column} over-long ({len(value)} characters)", Quarantined(rules), {column: value}))
    return cases


ROW_CASES = [
    *_every_column(),
    _row_case("dealer_id null", Quarantined("dealer_id_present"), {"dealer_id": None}),
    _row_case("dealer_id unknown", Quarantined("dealer_id_known;dealer_id_matches_batch"), {"dealer_id": "XX_1"}),
    _row_case("dealer_id of another dealer", Quarantined("dealer_id_matches_batch"), {"dealer_id": D8}),
    _row_case("dealer_id padded", Quarantined("dealer_id_known;dealer_id_matches_batch"), {"dealer_id": " ZE_ZE7"}),
    _row_case("vin null", Quarantined("vin_present"), {"vin": None}),
    _row_case("vin blank", Quarantined("vin_present"), {"vin": "   "}),
    _row_case("vin with I", Quarantined("vin_format"), {"vin": "1HGCM82633A00435I"}),
    _row_case("vin with O", Quarantined("vin_format"), {"vin": "1HGCM82633AO04352"}),
    _row_case("vin with Q", Quarantined("vin_format"), {"vin": "1HGCM82633AQ04352"}),
    _row_case("vin lower case", Quarantined("vin_format"), {"vin": "1hgcm82633a004352"}),
    _row_case("vin too short (16)", Quarantined("vin_format"), {"vin": "1HGCM82633A00435"}),
    _row_case("vin padded (leading space)", Quarantined("vin_format"), {"vin": " 1HGCM82633A004352"}),
    _row_case("vin padded (trailing space)", Quarantined("vin_format"), {"vin": "1HGCM82633A004352 "}),
    _row_case("vin duplicated (both copies)", Quarantined("vin_unique"), {"vin": vin(999)}, {"vin": vin(999)}),
    _row_case("stock_number null", Quarantined("stock_number_present"), {"stock_number": None}),
    _row_case("stock_number of 10,240 characters", Quarantined("stock_number_too_long"), {"stock_number": "S" * 10_240}),
    _row_case("stock_number of 64 non-ASCII characters (limit counts characters)", Loads(), {"stock_number": "é" * 64}),
    _row_case("type_nu null", Quarantined("type_nu_present"), {"type_nu": None}),
    _row_case("type_nu blank", Quarantined("type_nu_present"), {"type_nu": " "}),
    _row_case("model_year too old", Quarantined("model_year_range"), {"model_year": "1899"}),
    _row_case("model_year too new", Quarantined("model_year_range"), {"model_year": "2029"}),
    _row_case("model_year zero", Quarantined("model_year_range"), {"model_year": "0"}),
    _row_case("model_year not a number", Quarantined("model_year_parses"), {"model_year": "20X1"}),
    _row_case("impossible date: month 13", Quarantined("date_in_inventory_parses"), {"date_in_inventory": "20261332"}),
    _row_case("impossible date: 30 February", Quarantined("date_in_service_parses"), {"date_in_service": "20260230"}),
    _row_case("impossible date: 29 February 2025", Quarantined("date_delivered_parses"),
              {"date_delivered": "20250229"}),
    _row_case("date with dashes", Quarantined("date_delivered_parses"), {"date_delivered": "2026-01-01"}),
    _row_case("date too short", Quarantined("date_modified_parses"), {"date_modified": "2026112"}),
    _row_case("wrong type: odometer with a thousands separator", Quarantined("odometer_parses"), {"odometer": "12,000"}),
    _row_case("wrong type: list_price text", Quarantined("list_price_parses"), {"list_price": "N/A"}),
    _row_case("wrong type: vehicle_cost with an exponent", Quarantined("vehicle_cost_parses"), {"vehicle_cost": "1e3"}),
    _row_case("wrong type: certified flag 'maybe'", Quarantined("certified_used_car_parses"),
              {"certified_used_car": "maybe"}),
    _row_case("NUL in model (U+FFFD after parsing)", Quarantined("forbidden_character"), {"model": "Sor\ufffdento"}),
    _row_case("control character in vin (U+FFFD after parsing)", Quarantined("forbidden_character;vin_format"),
              {"vin": "1HGCM82633A00435\ufffd"}),
    _row_case("several rules at once", Quarantined("date_in_inventory_parses;stock_number_present;vin_format"),
              {"vin": "BAD", "stock_number": "", "date_in_inventory": "20261332"}),
    _row_case("parts: part_number at its limit (100 characters)", Loads(), {"part_number": "P" * 100},
              dataset="parts"),
    _row_case("parts: part_number one past its limit (101 characters)", Quarantined("part_number_too_long"),
              {"part_number": "P" * 101}, dataset="parts"),
    _row_case("parts: date_last_sold impossible (month 13)", Quarantined("date_last_sold_parses"),
              {"date_last_sold": "20261332"}, dataset="parts"),
    _row_case("repair_orders: repair_order_number one past its limit (101 characters)",
              Quarantined("repair_order_number_too_long"), {"repair_order_number": "R" * 101},
              dataset="repair_orders"),
    _row_case("repair_orders: date_promised not yyyyMMddHHmm", Quarantined("date_promised_parses"),
              {"date_promised": "20261124"}, dataset="repair_orders"),
]


def _keyed_row(dataset: str, n: int, overrides: dict[str, Any]) -> dict[str, Any]:
    key = "part_number" if dataset == "parts" else "repair_order_number"
    base = {"dealer_id": D7, key: f"K{n}", "date_last_sold" if dataset == "parts" else "date_promised":
            "20261101" if dataset == "parts" else "202611241700"}
    return base | overrides


@dataclass
class Batch:
    """One dataset's batch of every row case: the raw rows, each case's positions, the result."""

    raw: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, list[int]] = field(default_factory=dict)
    result: DealerValidation | None = None


@pytest.fixture(scope="module")
def row_batches() -> dict[str, Batch]:
    batches: dict[str, Batch] = {}
    for case in ROW_CASES:
        batch = batches.setdefault(case.dataset, Batch())
        for overrides in case.given:
            n = len(batch.raw)
            raw = row(n, **overrides) if case.dataset == "vehicles" else _keyed_row(case.dataset, n, overrides)
            batch.positions.setdefault(case.id, []).append(n)
            batch.raw.append(raw)
    for dataset, batch in batches.items():
        names = list(dict.fromkeys(k for r in batch.raw for k in r))
        raw_table = (table(batch.raw) if dataset == "vehicles"
                     else pa.table({k: pa.array([r.get(k) for r in batch.raw], pa.string()) for k in names}))
        batch.result = validated_rows(dataset, {D7: raw_table})
    return batches


@pytest.mark.parametrize("case", ROW_CASES, ids=[c.id for c in ROW_CASES])
def test_row(row_batches, case):
    batch = row_batches[case.dataset]
    result, positions = batch.result, batch.positions[case.id]
    bad = rules_by_row(result)
    check(case, rows=[bad.get(p) for p in positions])
    # never a silent loss: a quarantined row keeps its values as delivered; a loaded one too
    row_json = dict(zip(result.quarantine["row_number"].tolist(), result.quarantine["row_json"], strict=True))
    good_positions = [p for p in range(len(batch.raw)) if p not in bad]
    for p in positions:
        if p in bad:
            assert json.loads(row_json[p]) == batch.raw[p], case.id
            continue
        loaded = result.good.slice(good_positions.index(p), 1).to_pylist()[0]
        for column, value in case.given[positions.index(p)].items():
            blank = value is None or not value.strip()
            assert loaded[column] == (None if blank and column in TYPED else value), (case.id, column)


def test_row_batches_lose_nothing_and_count_every_rule(row_batches):
    """Every row of every batch is either good or quarantined, exactly once; each rule's count and
    examples (what the report shows) name the rows that broke it."""
    for batch in row_batches.values():
        result = batch.result
        assert result.rows == len(batch.raw) == result.good_rows + result.quarantined
        broke: dict[str, list[int]] = {}
        for p, rules in sorted(rules_by_row(result).items()):
            for rule in rules.split(";"):
                broke.setdefault(rule, []).append(p)
        assert {r: n for r, n in result.rule_counts.items() if n} == {r: len(ps) for r, ps in broke.items()}
        for rule, ps in broke.items():
            shown = [e.split(":", 1)[0] for e in result.examples[rule]]
            assert shown == [f"row {p}" for p in ps[:EXAMPLES_PER_RULE]], rule


# --------------------------------------------------------------------------- run: end to end, SQLite warehouse

DAY1 = T - timedelta(days=1)
DAY2 = T
RUN_GROUP = GroupConfig.model_validate({
    "group": "badinput",
    "thresholds": {"max_bad_fraction": 0.95},
    "dealers": [{"enterprise_code": "Q", "company_number": "A"}, {"enterprise_code": "Q", "company_number": "B"}],
})
RUN_CASES = [
    Case("run: vin lower case", [{"vin": vin(101).lower()}], Quarantined("vin_format")),
    Case("run: vin with O", [{"vin": vin(102)[:-1] + "O"}], Quarantined("vin_format")),
    Case("run: vin padded (leading space)", [{"vin": " " + vin(103)}], Quarantined("vin_format")),
    Case("run: vin duplicated (both copies)", [{"vin": vin(104)}, {"vin": vin(104)}], Quarantined("vin_unique")),
    Case("run: NUL byte in model (raw on the wire)", [{"model": "Sor\x00ento"}], Quarantined("forbidden_character")),
    Case("run: stock_number one past VARCHAR(64)", [{"stock_number": "S" * 65}], Quarantined("stock_number_too_long")),
    Case("run: stock_number at VARCHAR(64)", [{"stock_number": "S" * 64}], Loads()),
    Case("run: impossible date (30 February)", [{"date_in_service": "20260230"}],
         Quarantined("date_in_service_parses")),
    Case("run: model_year not a number", [{"model_year": "20X1"}], Quarantined("model_year_parses")),
    Case("run: 0 vehicles after a day with vehicles", [],
         Raises(pipeline.DealerStepError, "is empty, but the dealer's last validated run had 1 good rows")),
]


def _scripted(n: int, company: str = "A", **raw: str | None) -> dict[str, str | None]:
    """validation_helpers' row `n` as a scripted simulator row of `company` (OpenTrack field names)."""
    values = row(n, company_number=company, **raw)
    return {OT_FIELD[c]: v for c, v in values.items() if c in OT_FIELD}


@dataclass
class EndToEnd:
    engine: sa.Engine
    landing: Path
    pristine: Path
    """Landing area and warehouse file after run 2's transform, before its load (for the landing cases)."""
    client: OpenTrackClient
    errors: dict[str, BaseException] = field(default_factory=dict)
    positions: dict[str, list[int]] = field(default_factory=dict)

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql), params)]


def _run_steps(e2e: EndToEnd, day: datetime, *, before_load: Callable[[], None] | None = None) -> None:
    """What runner.run_group does for one run of one batch (the group fits one batch)."""
    ctx = pipeline.RunContext(RUN_GROUP, day, landing=e2e.landing)
    for step in (lambda: pipeline.extract_batch(ctx, list(RUN_GROUP.dealer_ids), None, e2e.client),
                 lambda: pipeline.validate(ctx, None, e2e.engine)):
        try:
            step()
        except pipeline.DealerStepError as exc:
            e2e.errors.setdefault(ctx.run_id, exc)
    pipeline.transform(ctx, e2e.engine)
    if before_load:
        before_load()
    pipeline.load(ctx, e2e.engine)


@pytest.fixture(scope="module")
def e2e(tmp_path_factory) -> Iterator[EndToEnd]:
    root = tmp_path_factory.mktemp("e2e")
    day2, positions = [_scripted(n) for n in range(5)], {}
    for case in RUN_CASES:
        for overrides in case.given:
            positions.setdefault(case.id, []).append(len(day2))
            day2.append(_scripted(200 + len(day2), **overrides))
    world = World.model_validate({
        "seed": 1,
        "vendors": [{"username": "vendor", "password": "bad-input-secret", "requests_per_second": 1000}],
        "defaults": {"grants": {"Vehicle": {"begins": "2026-01-01"}}},
        "dealers": [
            {"enterprise_code": "Q", "company_number": "A", "inventory": {"scripted": {
                DAY1.date().isoformat(): [_scripted(n) for n in range(5)], DAY2.date().isoformat(): day2}}},
            {"enterprise_code": "Q", "company_number": "B", "inventory": {"scripted": {
                DAY1.date().isoformat(): [_scripted(50, company="B")], DAY2.date().isoformat(): []}}},
        ],
    })
    engine = make_engine(f"sqlite:///{root / 'warehouse.db'}")
    with start_background(world) as sim, OpenTrackClient(sim.url, "vendor", "bad-input-secret", timeout=5,
                                                         max_attempts=1, requests_per_second=1000) as client:
        run = EndToEnd(engine, root / "landing", root / "pristine", client, positions=positions)
        pipeline.migrate(engine)
        _run_steps(run, DAY1)

        def snapshot() -> None:
            engine.dispose()
            shutil.copytree(run.landing, run.pristine / "landing")
            for db in root.glob("warehouse.db*"):
                shutil.copy(db, run.pristine / db.name)

        _run_steps(run, DAY2, before_load=snapshot)
        yield run
    engine.dispose()


@pytest.mark.parametrize("case", RUN_CASES, ids=[c.id for c in RUN_CASES])
def test_run(e2e, case):
    run2 = run_id(RUN_GROUP.group, DAY2)
    if isinstance(case.expect, Raises):  # the dealer that sent 0 vehicles
        error = e2e.errors.get(run2)
        check(case, error=error)
        assert error.dealers == ["Q_B"] and "- Q_B vehicles:" in str(error)
        assert e2e.rows("SELECT status FROM etl_run_dealers WHERE run_id = :r AND dealer_id = 'Q_B'", r=run2) == [
            ("failed",)]
        assert e2e.rows("SELECT vin FROM feed_vehicles WHERE run_id = :r AND dealer_id = 'Q_B'", r=run2) == []
        return
    quarantined = {n: (rules, row_json) for n, rules, row_json in e2e.rows(
        "SELECT row_number, rules, row_json FROM quarantine WHERE run_id = :r AND dealer_id = 'Q_A' "
        "AND dataset = 'vehicles'", r=run2)}
    loaded = dict(e2e.rows("SELECT vin, stock_number FROM feed_vehicles WHERE run_id = :r AND dealer_id = 'Q_A'",
                           r=run2))
    positions = e2e.positions[case.id]
    check(case, rows=[quarantined[p][0] if p in quarantined else None for p in positions])
    for p, overrides in zip(positions, case.given, strict=True):
        vin_sent = overrides.get("vin", vin(200 + p))
        if p in quarantined:  # in the warehouse with its values as delivered (a NUL as U+FFFD)
            kept = json.loads(quarantined[p][1])
            assert kept["vin"] == vin_sent and vin_sent not in loaded
            for column, value in overrides.items():
                assert kept[column] == value.replace("\x00", "\ufffd"), (case.id, column)
        else:
            assert loaded[vin_sent] == overrides["stock_number"]  # not truncated


def test_run_loads_the_good_rows(e2e):
    """The five good vehicles of Q_A load in run 2 next to the bad ones."""
    loaded = {v for (v,) in e2e.rows("SELECT vin FROM feed_vehicles WHERE run_id = :r AND dealer_id = 'Q_A'",
                                     r=run_id(RUN_GROUP.group, DAY2))}
    assert {vin(n) for n in range(5)} <= loaded


# --------------------------------------------------------------------------- landing files

LANDING_CASES = [
    # given: (file of run 2, how it breaks, the step that reads it); says: words of the fix line
    Case("landing: good.parquet missing", ("vehicles/Q_A/good.parquet", "missing", "transform"),
         Raises(LandingFileError, "with downstream (it rewrites dealer Q_A's")),
    Case("landing: good.parquet corrupt", ("vehicles/Q_A/good.parquet", "corrupt", "transform"),
         Raises(LandingFileError, "with downstream (it rewrites dealer Q_A's")),
    Case("landing: quarantine.parquet corrupt", ("vehicles/Q_A/quarantine.parquet", "corrupt", "transform"),
         Raises(LandingFileError, "with downstream (it rewrites dealer Q_A's")),
    Case("landing: status.json corrupt", ("vehicles/Q_B/status.json", "corrupt", "transform"),
         Raises(LandingFileError, "with downstream (it rewrites dealer Q_B's")),
    Case("landing: raw.parquet corrupt", ("vehicles/Q_A/raw.parquet", "corrupt", "extract"),
         Raises(LandingFileError, "delete ")),
    Case("landing: summary.json missing", ("runs/summary.json", "missing", "load"),
         Raises(LandingFileError, "clear the `transform` task of run")),
    Case("landing: summary.json corrupt", ("runs/summary.json", "corrupt", "load"),
         Raises(LandingFileError, "clear the `transform` task of run")),
    Case("landing: change file corrupt", ("runs/changes/service_requests.parquet", "corrupt", "load"),
         Raises(LandingFileError, "clear the `transform` task of run")),
    Case("landing: change file missing", ("runs/changes/feed_vehicles.parquet", "missing", "load"),
         Raises(LandingFileError, "changes/feed_vehicles.parquet is missing")),
]


def _landing_path(ctx: pipeline.RunContext, name: str) -> Path:
    first, rest = name.split("/", 1)
    if first == "runs":
        return ctx.run_dir / rest
    dealer, file = rest.split("/")
    return ctx.dealer_dir(first, dealer) / file


@pytest.mark.parametrize("case", LANDING_CASES, ids=[c.id for c in LANDING_CASES])
def test_landing(e2e, tmp_path, case):
    name, how, step = case.given
    shutil.copytree(e2e.pristine, tmp_path, dirs_exist_ok=True)
    engine = make_engine(f"sqlite:///{tmp_path / 'warehouse.db'}")
    ctx = pipeline.RunContext(RUN_GROUP, DAY2, landing=tmp_path / "landing")
    path = _landing_path(ctx, name)
    assert path.exists()
    if how == "missing":
        path.unlink()
    else:
        path.write_bytes(b"not parquet or json at all")
    calls = {"extract": lambda: pipeline.extract_batch(ctx, list(RUN_GROUP.dealer_ids), None, e2e.client),
             "transform": lambda: pipeline.transform(ctx, engine), "load": lambda: pipeline.load(ctx, engine)}
    try:
        with pytest.raises(Exception) as caught:  # noqa: PT011 - check() judges it
            calls[step]()
        check(case, error=caught.value)
        assert caught.value.path == path
        assert not reads.run_is_applied(engine, RUN_GROUP.group, DAY2)  # nothing half-applied
    finally:
        engine.dispose()


# --------------------------------------------------------------------------- group configs and connections

MINIMAL = "dealers:\n  - {enterprise_code: ZE, company_number: ZE7}\n"
CONFIG_CASES = [
    Case("config: unknown top-level key (the error lists the allowed keys)", MINIMAL + "colour: red\n",
         Raises(ConfigError, "colour: Extra inputs are not permitted (allowed keys: group, description, schedule,")),
    Case("config: unknown nested key", MINIMAL + "settings:\n  auto_close: {mode: never, dayz: 3}\n",
         Raises(ConfigError, "settings.auto_close.dayz: Extra inputs are not permitted (allowed keys: mode, days)")),
    Case("config: unknown dealer key", "dealers:\n  - {enterprise_code: ZE, company_number: ZE7, make: KI}\n",
         Raises(ConfigError, "dealers.0.make: Extra inputs are not permitted (allowed keys: enterprise_code,")),
    Case("config: invalid cron (minute 61)", MINIMAL + "schedule: '61 * * * *'\n",
         Raises(ConfigError, "schedule: '61 * * * *' is not a cron expression")),
    Case("config: invalid cron (words)", MINIMAL + "schedule: every day\n",
         Raises(ConfigError, "schedule: 'every day' is not a cron expression")),
    Case("config: client_dealer row for a dealer not in the group",
         MINIMAL + "settings:\n  client_dealer:\n    - {client: C, sr_type: R, dealer_id: ZE_ZE8}\n",
         Raises(ConfigError, "settings.client_dealer row 0 names dealer 'ZE_ZE8', which is not one of the group's "
                             "dealers (ZE_ZE7)")),
    Case("config: vehicle_type_mapping row for a dealer not in the group",
         MINIMAL + "settings:\n  vehicle_type_mapping:\n    - {system_code: N, vehicle_type: New, sr_type: X, "
                   "dealer_id: ZZ_1}\n",
         Raises(ConfigError, "settings.vehicle_type_mapping row 0 names dealer 'ZZ_1'")),
    Case("config: duplicate dealers", MINIMAL + "  - {enterprise_code: ZE, company_number: ZE7}\n",
         Raises(ConfigError, "dealers listed twice: ZE_ZE7")),
    Case("config: negative ignore_days",
         MINIMAL + "settings:\n  client_dealer:\n    - {client: C, sr_type: R, dealer_id: ZE_ZE7, ignore_days: -3}\n",
         Raises(ConfigError, "settings.client_dealer.0.ignore_days: Input should be greater than or equal to 0")),
    Case("config: negative auto_close days", MINIMAL + "settings:\n  auto_close: {mode: after_n_days, days: -1}\n",
         Raises(ConfigError, "settings.auto_close.days: Input should be greater than or equal to 0")),
    Case("config: not valid YAML", "dealers: [\n", Raises(ConfigError, "not valid YAML")),
    Case("config: a list instead of a mapping", "- dealers\n", Raises(ConfigError, "expected a mapping at the top level")),
    Case("config: empty file", "", Raises(ConfigError, "expected a mapping at the top level")),
]


@pytest.mark.parametrize("case", CONFIG_CASES, ids=[c.id for c in CONFIG_CASES])
def test_config(tmp_path, case):
    path = tmp_path / "broken.yaml"
    path.write_text(case.given)
    with pytest.raises(Exception) as caught:  # noqa: PT011 - check() judges it
        load_group(path)
    check(case, error=caught.value)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)  # names the file; one line


CONNECTION_CASES = [
    Case("connection: the group's OpenTrack connection is not defined", "opentrack",
         Raises(MissingConnectionError, "no Airflow connection 'ot_not_defined' is defined for OpenTrack")),
    Case("connection: the group's warehouse connection is not defined", "warehouse",
         Raises(WarehouseError, "no Airflow connection 'wh_not_defined' for the warehouse")),
]


@pytest.mark.parametrize("case", CONNECTION_CASES, ids=[c.id for c in CONNECTION_CASES])
def test_connection(tmp_path, case):
    path = tmp_path / "noconn.yaml"
    path.write_text(MINIMAL + "connections: {opentrack: ot_not_defined, warehouse: wh_not_defined}\n")
    cfg = load_group(path)
    from dealer_feed.airflow_edge import hooks

    with pytest.raises(Exception) as caught:  # noqa: PT011 - check() judges it
        if case.given == "opentrack":
            hooks.opentrack_client(cfg.connections.opentrack)
        else:
            hooks.warehouse_engine(cfg.connections.warehouse)
    check(case, error=caught.value)
    assert "AIRFLOW_CONN_" in fix_line(caught.value)


# --------------------------------------------------------------------------- the catalogue as a whole

CATALOGUE = [*PAYLOAD_CASES, *ROW_CASES, *RUN_CASES, *LANDING_CASES, *CONFIG_CASES, *CONNECTION_CASES]
ISSUE_LIST = {
    # the issue's list -> the cases that cover each item
    "malformed / truncated XML": ["payload: malformed XML (mismatched end tag)",
                                  "payload: truncated XML (a real answer cut mid-record)"],
    "wrong namespace": ["payload: wrong namespace (envelope not in a SOAP namespace)"],
    "SOAP Fault and in-band Error bodies": ["payload: SOAP 1.1 Fault soap:Client (HTTP 500)",
                                            "payload: in-band Error with an unknown code"],
    "missing fields": ["payload: missing fields (a Vehicle without VIN, StockNumber, TypeNU)"],
    "wrong types": ["payload: wrong type (ModelYear 'twenty')", "row: wrong type: list_price text"],
    "impossible dates": ["row: impossible date: 30 February", "run: impossible date (30 February)"],
    "VINs too short / with I,O,Q / lower case / padded": [
        "row: vin too short (16)", "row: vin with I", "row: vin with O", "row: vin with Q", "row: vin lower case",
        "row: vin padded (leading space)"],
    "duplicated VINs": ["row: vin duplicated (both copies)", "run: vin duplicated (both copies)"],
    "empty and over-long values for every column": [
        *(f"row: {c} empty" for c in VEHICLE_RAW_COLUMNS),
        *(f"row: {c} one past its limit ({LIMITS[c].max_length + 1} characters)" for c in LIMITS)],
    "NUL and other forbidden XML bytes": ["payload: NUL byte in a value",
                                          "payload: forbidden character reference &#1; in a value"],
    "non-UTF-8": ["payload: non-UTF-8 byte (Latin-1 e-acute) in a UTF-8 answer"],
    "0 vehicles": ["run: 0 vehicles after a day with vehicles"],
    "XXE with an external entity": ["payload: XXE (external entity file:///etc/passwd)"],
    "entity expansion": ["payload: entity expansion (billion laughs)"],
    "a response over a configured size limit": ["payload: answer over max_response_bytes (Content-Length)"],
    "corrupt and missing landing files": ["landing: good.parquet missing", "landing: summary.json corrupt"],
    "unknown key (the error lists the allowed keys)": [
        "config: unknown top-level key (the error lists the allowed keys)"],
    "invalid cron naming the file and field": ["config: invalid cron (minute 61)"],
    "client-dealer row for a dealer not in the group": ["config: client_dealer row for a dealer not in the group"],
    "duplicate dealers": ["config: duplicate dealers"],
    "negative days": ["config: negative ignore_days"],
    "missing connection": ["connection: the group's OpenTrack connection is not defined"],
}


def test_catalogue_covers_the_issue_with_at_least_30_distinct_bad_inputs():
    ids = [c.id for c in CATALOGUE]
    assert len(ids) == len(set(ids)), [i for i in ids if ids.count(i) > 1]
    assert sum(c.bad for c in CATALOGUE) >= 30
    missing = {item: [i for i in covered if i not in ids] for item, covered in ISSUE_LIST.items()}
    assert not any(missing.values()), missing
    assert {f"row: {c} empty" for c in VEHICLE_RAW_COLUMNS} <= set(ids)
    assert {c for c in VEHICLE_RAW_COLUMNS if any(i.startswith(f"row: {c} one past") or
                                                   i.startswith(f"row: {c} over-long") for i in ids)} == set(
        VEHICLE_RAW_COLUMNS)


# --------------------------------------------------------------------------- the parser fuzz

FUZZ_SUITE = "parser fuzz"
REAL_ANSWERS = [
    (REAL_INVENTORY, VEHICLE_INVENTORY.spec),
    (star((FIXTURES / "OpenRepairOrderLookup.xml").read_text()), OPEN_REPAIR_ORDERS.spec),
    (star((FIXTURES / "Error311.xml").read_text()), VEHICLE_INVENTORY.spec),
    (soap11_fault("soap:Client", "x"), VEHICLE_INVENTORY.spec),
]
SNIPPETS = [
    XXE.encode(), LAUGHS.encode(), b"&lol9;", b"&xxe;", b"&#0;", b"&#x1F;", b"&#", b"\x00", b"\x01", b"\xff\xfe",
    b"\xef\xbb\xbf", b"\xc3", b"\xe9", b"<![CDATA[<Vehicle>]]>", b"<!-- c -->", b"<?pi x?>", b"<Vehicle>",
    b"</Vehicle>", b"<Vehicle/>", b"<Errors><Error><Code>311</Code></Error></Errors>", b"<soap:Fault>", b"<Details>",
    b"<OpenRepairOrderDetail><x/></OpenRepairOrderDetail>", b"<Notice/>", b' xmlns="urn:x"', b"&amp;", b"<",
    b"<AccessWindow><AccessEnds>99999999</AccessEnds></AccessWindow>", b'<?xml version="1.0" encoding="UTF-16"?>',
    b'<?xml version="1.0" encoding="x-bogus"?>', b"<a>" * 300,
]
NAMES = ["Envelope", "Body", "Header", "Fault", "faultcode", "faultstring", "Code", "Value", "Subcode", "Reason", "Text",
         "ProcessMessageResponse", "payload", "content", "VehicleInventoryResponse", "VehicleInventoryResult",
         "OpenRepairOrderLookupResponse", "OpenRepairOrderLookupResult", "Vehicle", "OpenRepairOrder", "Details",
         "OpenRepairOrderDetail", "VIN", "RepairOrderNumber", "Options", "Error", "Errors", "Message", "AccessWindow",
         "AccessBegins", "AccessEnds", "Method", "x"]
NAMESPACES = [SOAP11, SOAP12, STAR_NS, OT_NS, "", "urn:x"]
TEXTS = st.one_of(st.text(max_size=12), st.sampled_from(["&amp;", "&#0;", "&#x1;", "&e;", "0", "20261301", "99999999",
                                                          "]]>", "&", "<", "\x00", "\ufffd", "311", "Vehicle"]))


@st.composite
def mutated_answer(draw) -> tuple[bytes, Any]:
    """A real answer with one to four mutations: cut, delete, flip a byte, repeat a slice, insert a
    snippet or bytes, or replace an element's text; half of them at a tag boundary, where the
    document stays well-formed and the parser's deeper paths run."""
    body, spec = draw(st.sampled_from(REAL_ANSWERS))
    data = bytearray(body)
    for _ in range(draw(st.integers(1, 4))):
        tags = [i for i, byte in enumerate(data) if byte == ord("<")]
        at = draw(st.sampled_from(tags) if tags and draw(st.booleans()) else st.integers(0, len(data)))
        kind = draw(st.sampled_from(["cut", "delete", "flip", "repeat", "insert", "insert", "text", "text"]))
        if kind == "cut":
            del data[at:]
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 64))]
        elif kind == "flip" and at < len(data):
            data[at] ^= draw(st.integers(1, 255))
        elif kind == "repeat":
            data[at:at] = data[at:at + draw(st.integers(1, 200))]
        elif kind == "insert":
            data[at:at] = draw(st.one_of(st.sampled_from(SNIPPETS), st.binary(max_size=16)))
        elif kind == "text" and (end := data.find(b">", at)) >= 0 and (stop := data.find(b"<", end)) >= 0:
            data[end + 1:stop] = draw(TEXTS).encode()
    return bytes(data), spec


def _element(name: str, prefix: str, ns: str, attrs: str, children: list[str]) -> str:
    declare = f' xmlns{":" + prefix if prefix else ""}="{ns}"' if ns is not None else ""
    tag = f"{prefix}:{name}" if prefix else name
    return f"<{tag}{declare}{attrs}>{''.join(children)}</{tag}>"


ELEMENTS = st.recursive(
    TEXTS.map(escape) | TEXTS,
    lambda inner: st.builds(_element, st.sampled_from(NAMES), st.sampled_from(["", "soap", "s"]),
                            st.one_of(st.none(), st.sampled_from(NAMESPACES)),
                            st.sampled_from(["", ' a="1"', ' a="&e;"', ' xml:lang="en"']),
                            st.lists(inner, max_size=4)),
    max_leaves=25,
)


def _dressed(draw, body: str) -> bytes:
    """`body` in an envelope (mostly), after a prolog, in an encoding."""
    if draw(st.integers(0, 3)):
        ns = draw(st.sampled_from([SOAP11, SOAP12, "urn:x"]))
        body = f'<soap:Envelope xmlns:soap="{ns}"><soap:Body>{body}</soap:Body></soap:Envelope>'
    prolog = draw(st.sampled_from(["", "", '<?xml version="1.0" encoding="utf-8"?>', XXE, LAUGHS, "<!-- c -->",
                                   '<?xml version="1.0"?>' + " " * 5000]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8", "utf-8", "utf-16", "latin-1"]))
    return (prolog + body).encode(encoding, errors="replace")


@st.composite
def xmlish_answer(draw) -> tuple[bytes, Any]:
    """A generated document of OpenTrack-like names in any nesting."""
    spec = draw(st.sampled_from([VEHICLE_INVENTORY.spec, OPEN_REPAIR_ORDERS.spec]))
    return _dressed(draw, draw(ELEMENTS)), spec


@st.composite
def shaped_answer(draw) -> tuple[bytes, Any]:
    """A generated answer in an operation's shape (STAR or per-area container; records, lines,
    Errors, AccessWindow, a stray element) with odd values: the parser's deeper paths."""
    spec = draw(st.sampled_from([VEHICLE_INVENTORY.spec, OPEN_REPAIR_ORDERS.spec]))

    def text() -> str:
        value = draw(TEXTS)
        return value if draw(st.integers(0, 4)) == 0 else escape(value)

    def fields(names: tuple[str, ...]) -> str:
        return "".join(f"<{n}>{text()}</{n}>" for n in draw(st.lists(st.sampled_from(names), max_size=5)))

    def child() -> str:
        kind = draw(st.sampled_from(["record", "record", "error", "window", "stray"]))
        if kind == "record":
            lines = ""
            if spec.lines and draw(st.booleans()):
                line = spec.lines.record if draw(st.integers(0, 5)) else "Stray"
                lines = f"<{spec.lines.container}><{line}>{fields(spec.lines.fields + ('X',))}</{line}></{spec.lines.container}>"
            return f"<{spec.record}>{fields(spec.fields + ('Unknown', *spec.nested))}{lines}</{spec.record}>"
        if kind == "error":
            return f"<Errors><Error><Code>{text()}</Code><Message>{text()}</Message></Error></Errors>"
        if kind == "window":
            return f"<AccessWindow>{fields(('Method', 'AccessBegins', 'AccessEnds'))}</AccessWindow>"
        return f"<{draw(st.sampled_from(NAMES))}/>"

    children = "".join(child() for _ in range(draw(st.integers(0, 4))))
    if draw(st.booleans()):
        body = (f'<ProcessMessageResponse xmlns="{STAR_NS}"><payload><content id="Content0">'
                f'<{spec.operation}Response xmlns="">{children}</{spec.operation}Response></content></payload>'
                "</ProcessMessageResponse>")
    else:
        body = (f'<{spec.operation}Response xmlns="{OT_NS}"><{spec.operation}Result>{children}'
                f"</{spec.operation}Result></{spec.operation}Response>")
    return _dressed(draw, body), spec


def _chunks(data: bytes, size: int) -> Iterator[bytes]:
    return (data[i:i + size] for i in range(0, len(data), size))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(answer=st.one_of(mutated_answer(), shaped_answer(), xmlish_answer(),
                        st.tuples(st.binary(max_size=200), st.just(VEHICLE_INVENTORY.spec))),
       chunk=st.one_of(st.integers(1, 4096), st.just(1 << 16)))
def test_parser_fuzz(answer, chunk):
    """Whatever the bytes, parse_response returns rows of the operation's columns or raises
    ResponseParseError (which the client turns into Malformed- / Unsafe- / SchemaDriftError)."""
    body, spec = answer
    reliability.record(FUZZ_SUITE, bad_inputs_tried=1)
    try:
        parsed = parse_response(_chunks(body, chunk), spec)
    except ResponseParseError as exc:
        assert str(exc)
    else:
        assert isinstance(parsed, ParsedResponse) and parsed.table.column_names == list(spec.columns)
        assert all(pa.types.is_string(f.type) for f in parsed.table.schema)
    reliability.record(FUZZ_SUITE, bad_inputs_handled=1)
