"""OpenTrackClient: the pipeline's only way to talk to OpenTrack (usable without Airflow).

One client = one vendor account = one keep-alive HTTP session, one rate limiter and one
concurrency bound shared by every thread that uses it. Each dataset method returns a
pyarrow Table of string columns exactly as delivered (raw contract: ARCHITECTURE.md and
docs/OPENTRACK.md), or raises one typed error from opentrack.errors.

Retries (tenacity): transient failures — HTTP 5xx, timeouts, refused or dropped
connections, truncated or garbled XML, throttle answers — are retried with exponential
backoff and jitter, bounded by `max_attempts` and by `max_wait_seconds` of total time;
a throttle answer's Retry-After is honoured. Bad credentials, missing grants, unknown
dealers, refused requests and answers over `max_response_bytes` are never retried.

The password lives in one private attribute and in the request body only; it is not in
repr, logs or error messages (text from the wire is scrubbed before it is quoted).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
import requests
from requests.adapters import HTTPAdapter
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, stop_before_delay
from tenacity.wait import wait_exponential_jitter

from dealer_feed.contract.identity import as_utc, dealer_id
from dealer_feed.opentrack import envelope
from dealer_feed.opentrack.arrow import string_scalar
from dealer_feed.opentrack.errors import (
    GRANT_FIX,
    AccessNotGrantedError,
    AuthenticationError,
    DealerRef,
    MalformedResponseError,
    OpenTrackError,
    OpenTrackRequestError,
    ResponseTooLargeError,
    SchemaDriftError,
    ServiceUnavailableError,
    ThrottledError,
    UnknownDealerError,
    UnsafeResponseError,
    is_transient,
)
from dealer_feed.opentrack.parse import (
    AccessWindow,
    Fault,
    LineSpec,
    ParsedResponse,
    RecordSpec,
    ResponseParseError,
    UnexpectedElementError,
    parse_response,
)
from dealer_feed.opentrack.ratelimit import RateLimiter

log = logging.getLogger(__name__)

D = TypeVar("D", bound=DealerRef)
R = TypeVar("R")

AS_OF_HEADER = "X-OpenTrack-As-Of"
"""Simulator convention (docs/OPENTRACK.md): the run date, for operations without a date parameter."""
CHUNK_BYTES = 64 * 1024
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
"""Default bound of one answer's body: OpenTrack has no paging, so a big dealer's inventory is
one document (about 1 KB per vehicle: 256 MiB is some 250,000 vehicles), but an endless or
hostile answer must not fill the worker's memory (ResponseTooLargeError)."""

VEHICLE_COLUMNS: dict[str, str] = {
    "CompanyNumber": "company_number", "VIN": "vin", "StockNumber": "stock_number", "Status": "status",
    "TypeNU": "type_nu", "ModelYear": "model_year", "Make": "make", "Model": "model", "ModelCode": "model_code",
    "BodyStyle": "body_style", "Color": "color", "Trim": "trim", "Odometer": "odometer",
    "DateInInventory": "date_in_inventory", "DateInService": "date_in_service", "DateDelivered": "date_delivered",
    "DateModified": "date_modified", "ListPrice": "list_price", "VehicleCost": "vehicle_cost",
    "CertifiedUsedCar": "certified_used_car",
}
"""Vehicle record field -> raw.parquet column (after `dealer_id`). Real vehicles carry no
`DateModified`: date_modified has no known source and stays null (docs/OPENTRACK.md)."""

PARTS_COLUMNS: dict[str, str] = {
    "PartNumber": "part_number", "Manufacturer": "manufacturer", "PartDescription": "description",
    "QuantityOnHand": "quantity_on_hand", "QuantityOnOrder": "quantity_on_order", "BinLocation": "bin_location",
    "ListPrice": "list_price", "Cost": "cost", "DateLastSold": "date_last_sold",
    "DateLastReceived": "date_last_received", "Status": "status",
}
"""Part record field -> raw column (after `dealer_id`, `make_code`). `DateLastReceived` is a
guess with no real source (date_last_received stays null on the real service)."""

REPAIR_ORDER_COLUMNS: dict[str, str] = {
    "RepairOrderNumber": "repair_order_number", "CompanyNumber": "company_number", "VIN": "vin",
    "StockNumber": "stock_number", "CustomerKey": "customer_number", "ServiceWriterID": "service_advisor",
    "ROStatus": "status", "OpenTransactionDate": "date_opened", "PromisedDateTime": "date_promised",
    "OdometerIn": "odometer_in", "TotalEstimate": "total_estimate",
}
"""OpenRepairOrder field -> raw column (after `dealer_id`). The customer is in CustomerKey
(CustomerNumber comes empty); PromisedDateTime is yyyyMMddHHmm."""

REPAIR_ORDER_LINE_COLUMNS: dict[str, str] = {
    "ServiceLineNumber": "line_number", "SequenceNumber": "sequence_number", "LineType": "line_type",
    "TransCode": "trans_code", "TransDate": "trans_date", "ServiceType": "service_type",
    "LineStatus": "line_status", "LinePaymentMethod": "payment_method", "LaborOpCode": "labor_op_code",
    "TechnicianID": "technician_id", "LaborHours": "labor_hours", "PartNumber": "part_number",
    "Quantity": "quantity", "NetPrice": "net_price", "ActualRetailAmount": "actual_retail_amount",
    "Comments": "comments",
}
"""OpenRepairOrderDetail (Details list of a repair order) field -> line column (after
`dealer_id`, `repair_order_number`)."""

CUSTOMER_COLUMNS: dict[str, str] = {
    "CustomerNumber": "customer_number", "FirstName": "first_name", "LastName": "last_name", "Address1": "address",
    "City": "city", "StateCode": "state", "ZipCode": "zip_code", "PhoneNumber": "phone_number", "Email1": "email",
}
"""Customer record field -> raw column (after `dealer_id`)."""

UNKNOWN_FIELDS_KEY = b"dealer_feed.unknown_fields"
"""Schema metadata key of a fetched table: JSON {field local name: records carrying it} of the
record children the client does not map (drift visibility; survives raw.parquet)."""


@dataclass(frozen=True)
class Operation:
    """One OpenTrack operation as the client calls it: its per-area endpoint, access method,
    record element and field mapping (both transports deliver the same records)."""

    name: str
    service: str
    method: str
    record: str
    columns: Mapping[str, str]
    nested: frozenset[str] = frozenset()
    lines: LineSpec | None = None

    @property
    def spec(self) -> RecordSpec:
        return RecordSpec(self.name, self.record, tuple(self.columns), tuple(self.columns.values()), self.nested,
                          self.lines)


RO_LINES = LineSpec("Details", "OpenRepairOrderDetail", "RepairOrderNumber", "repair_order_number",
                    tuple(REPAIR_ORDER_LINE_COLUMNS), tuple(REPAIR_ORDER_LINE_COLUMNS.values()))
VEHICLE_NESTED = frozenset({"OptionalFields", "Options"})
VEHICLE_INVENTORY = Operation("VehicleInventory", "VehicleAPI.asmx", "Vehicle", "Vehicle", VEHICLE_COLUMNS,
                              VEHICLE_NESTED)
VEHICLE_LOOKUP = Operation("VehicleLookup", "VehicleAPI.asmx", "Vehicle", "Vehicle", VEHICLE_COLUMNS, VEHICLE_NESTED)
CUSTOMER_LOOKUP = Operation("CustomerLookup", "CustomerAPI.asmx", "Customer", "Customer", CUSTOMER_COLUMNS,
                            frozenset({"Vehicles"}))
OPEN_REPAIR_ORDERS = Operation("OpenRepairOrderLookup", "ServiceAPI.asmx", "Service", "OpenRepairOrder",
                               REPAIR_ORDER_COLUMNS, lines=RO_LINES)
PARTS_INVENTORY = Operation("PartsInventory", "PartsAPI.asmx", "Parts", "Part", PARTS_COLUMNS)

_ERROR_OF_CODE: dict[str, type[OpenTrackError]] = {
    # STAR transport codes (OpenTrack.NET OpenTrackException.cs lists 100-314)
    "100": AuthenticationError, "101": AuthenticationError, "202": AuthenticationError, "304": AuthenticationError,
    "200": OpenTrackRequestError, "201": OpenTrackRequestError, "203": OpenTrackRequestError,
    "204": OpenTrackRequestError, "205": OpenTrackRequestError,
    "301": UnknownDealerError, "302": UnknownDealerError, "303": UnknownDealerError,
    **{str(code): AccessNotGrantedError for code in (300, *range(305, 315))},
    # simulator / per-area names (guesses, docs/OPENTRACK.md)
    "METHOD_NOT_AUTHORIZED": AccessNotGrantedError,
    "ACCESS_NOT_YET_BEGUN": AccessNotGrantedError,
    "ACCESS_ENDED": AccessNotGrantedError,
    "UNKNOWN_DEALER": UnknownDealerError,
    "AUTHENTICATION_FAILED": AuthenticationError,
    "FailedAuthentication": AuthenticationError,
    "InvalidSecurity": AuthenticationError,
    "InvalidSecurityToken": AuthenticationError,
    "THROTTLED": ThrottledError,
    "INTERNAL_ERROR": ServiceUnavailableError,
    "Server": ServiceUnavailableError,
    "Receiver": ServiceUnavailableError,
}
"""Service error / fault codes -> error class; anything else is an OpenTrackRequestError."""

_ACCESS_KIND: dict[str, str] = {
    "ACCESS_ENDED": "ended", "312": "ended", "ACCESS_NOT_YET_BEGUN": "not_begun", "314": "not_begun",
    **{str(code): "vendor" for code in range(305, 311)},
}
"""Access codes whose fix differs from 'add the method' (311, 313, 300, METHOD_NOT_AUTHORIZED)."""

VENDOR_FIX = ("the vendor account or its integration code is not active at DealerTrack (code {code}): ask "
              "DealerTrack OpenTrack support to activate the vendor account (the OpenTrack connection's login) "
              "and its access to the integration; the dealership cannot fix this")
STAR_REQUEST_FIX = ("OpenTrack refused the request payload (code {code}): check the connection's transport "
                    "(extra.transport: star for WebService.asmx, per-area for *API.asmx) matches the base URL; if it "
                    "does, report the operation and dealer to DealerTrack OpenTrack support")


class _Secret:
    """A string that shows as *** in repr/str/vars dumps (debuggers, task logs of locals)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "'***'"

    __str__ = __repr__


class OpenTrackClient:
    """Calls OpenTrack for one vendor account. Thread-safe; close() (or `with`) releases the session.

    timeout: seconds per HTTP request (connect and each read); max_attempts: calls per
    operation including retries; max_wait_seconds: no retry starts after this many seconds
    since the first attempt; backoff_seconds: first retry wait (doubles, with jitter, up to
    max_backoff_seconds); requests_per_second / max_concurrency: shared by all threads;
    max_response_bytes: larger answers are refused (ResponseTooLargeError).
    """

    def __init__(
        self,
        base_url: str,
        username: str,
        password: str,
        *,
        timeout: float = 60.0,
        max_attempts: int = 4,
        max_wait_seconds: float = 120.0,
        requests_per_second: float = 20.0,
        max_concurrency: int = 4,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        soap_version: str = "1.1",
        transport: str = envelope.STAR,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        if soap_version not in envelope.SOAP_VERSIONS:
            raise ValueError(f"soap_version must be one of {envelope.SOAP_VERSIONS}")
        if transport not in envelope.TRANSPORTS:
            raise ValueError(f"transport must be one of {envelope.TRANSPORTS}, got {transport!r}")
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"OpenTrack base URL must start with http:// or https://, got {base_url!r}")
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self.username = username
        self.__password = _Secret(password)
        self.timeout = timeout
        self.max_attempts = max(1, max_attempts)
        self.max_wait_seconds = max_wait_seconds
        self.max_concurrency = max(1, max_concurrency)
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.soap_version = soap_version
        self.transport = transport
        self.max_response_bytes = max_response_bytes
        self._limiter = RateLimiter(requests_per_second)
        self._slots = threading.BoundedSemaphore(self.max_concurrency)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.max_concurrency, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update({"User-Agent": "dealer-feed-etl OpenTrackClient", "Connection": "keep-alive"})

    def __repr__(self) -> str:
        return (f"OpenTrackClient(base_url={self.base_url!r}, username={self.username!r}, "
                f"soap_version={self.soap_version!r}, transport={self.transport!r})")

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> OpenTrackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- datasets

    def vehicle_inventory(self, dealer: DealerRef, as_of: date | datetime) -> pa.Table:
        """The dealer's inventory as of the run (raw vehicle columns, dealer_id first).

        ToDateInInventory carries the run time: the simulator serves the lot as it stood on
        that UTC date (docs/OPENTRACK.md); the real service returns its current inventory.
        """
        moment = as_utc(as_of)
        params = {"LookupParms": {"ToDateInInventory": envelope.request_date_time(moment)}}
        parsed = self._call(VEHICLE_INVENTORY, dealer, moment, params)
        return with_unknown_fields(_with_row_dealer_ids(parsed.table, dealer), parsed.unknown_fields)

    def vehicle_lookup(self, dealer: DealerRef, as_of: date | datetime, *, vin: str | None = None,
                       stock_number: str | None = None) -> pa.Table:
        """One vehicle by VIN or stock number (zero rows if not found); same columns as the inventory."""
        if not vin and not stock_number:
            raise ValueError("vehicle_lookup needs vin or stock_number")
        params = {"VIN": vin, "StockNumber": stock_number}
        parsed = self._call(VEHICLE_LOOKUP, dealer, as_utc(as_of), params)
        return with_unknown_fields(_with_row_dealer_ids(parsed.table, dealer), parsed.unknown_fields)

    def parts_inventory(self, dealer: DealerRef, make_code: str, as_of: date | datetime, *,
                        part_number: str | None = None) -> pa.Table:
        """Parts in inventory for one make code: dealer_id, make_code, then PARTS_COLUMNS."""
        params = {"InventoryParms": {"Manufacturer": make_code, "PartNumber": part_number}}
        parsed = self._call(PARTS_INVENTORY, dealer, as_utc(as_of), params)
        return with_unknown_fields(_prepend(parsed.table, dealer_id=_dealer_id(dealer), make_code=make_code),
                             parsed.unknown_fields)

    def open_repair_orders(self, dealer: DealerRef, as_of: date | datetime, *, vin: str | None = None
                           ) -> pa.Table:
        """Repair orders open at the run time: dealer_id, then REPAIR_ORDER_COLUMNS.

        CreatedDateTimeEnd carries the run time (only orders opened by then; the simulator
        also takes it as the as-of date).
        """
        return self.open_repair_orders_with_lines(dealer, as_of, vin=vin)[0]

    def open_repair_orders_with_lines(self, dealer: DealerRef, as_of: date | datetime, *, vin: str | None = None
                                      ) -> tuple[pa.Table, pa.Table]:
        """Open repair orders (as open_repair_orders) and their lines from the same answer:
        dealer_id, repair_order_number, then REPAIR_ORDER_LINE_COLUMNS (one row per Details line)."""
        moment = as_utc(as_of)
        params = {"LookupParms": {"VIN": vin, "CreatedDateTimeEnd": envelope.request_date_time(moment)}}
        parsed = self._call(OPEN_REPAIR_ORDERS, dealer, moment, params)
        orders = with_unknown_fields(_with_row_dealer_ids(parsed.table, dealer), parsed.unknown_fields)
        assert parsed.lines is not None
        return orders, _prepend(parsed.lines, dealer_id=_dealer_id(dealer))

    def customer_lookup(self, dealer: DealerRef, customer_number: str, as_of: date | datetime) -> pa.Table:
        """One customer (zero rows if unknown): dealer_id, then CUSTOMER_COLUMNS."""
        parsed = self._call(CUSTOMER_LOOKUP, dealer, as_utc(as_of), {"CustomerNumber": customer_number})
        return with_unknown_fields(_prepend(parsed.table, dealer_id=_dealer_id(dealer)), parsed.unknown_fields)

    def check_access(self, dealer: DealerRef, method: str, as_of: date | datetime, *, make_code: str | None = None
                     ) -> AccessWindow | None:
        """Probe one method with a cheap call (a lookup that matches nothing); returns the grant
        window the service reported (None if it reports none). Raises the typed error otherwise."""
        moment = as_utc(as_of)
        probes: dict[str, tuple[Operation, dict[str, Any]]] = {
            "Vehicle": (VEHICLE_LOOKUP, {"VIN": "00000000000000000"}),
            "Customer": (CUSTOMER_LOOKUP, {"CustomerNumber": "0"}),
            "Service": (OPEN_REPAIR_ORDERS, {"LookupParms": {"RepairOrderNumber": "0",
                                                              "CreatedDateTimeEnd": envelope.request_date_time(moment)}}),
            "Parts": (PARTS_INVENTORY, {"InventoryParms": {"Manufacturer": make_code or "", "PartNumber": "0"}}),
        }
        if method not in probes:
            raise ValueError(f"unknown OpenTrack method {method!r} (known: {', '.join(probes)})")
        if method == "Parts" and not make_code:
            raise ValueError("probing Parts needs a make code")
        op, params = probes[method]
        return self._call(op, dealer, moment, params).window

    def fetch_many(self, dealers: Iterable[D], fetch: Callable[[D], R], *,
                   on_done: Callable[[str], None] | None = None) -> dict[str, R | OpenTrackError]:
        """Run `fetch(dealer)` for many dealers on up to max_concurrency threads.

        Returns dealer_id -> what `fetch` returned, or the OpenTrackError that dealer ended
        with, in the dealers' order, so one dealer's failure never hides the others'.
        `on_done(dealer_id)` runs in the caller's thread as each dealer finishes (progress).
        The threads share this client's rate limiter and in-flight bound. Other exceptions
        propagate (bugs): dealers not started yet are dropped, running ones finish first.
        """
        def one(dealer: D) -> R | OpenTrackError:
            try:
                return fetch(dealer)
            except OpenTrackError as exc:
                return exc

        dealers = list(dealers)
        with ThreadPoolExecutor(max_workers=self.max_concurrency, thread_name_prefix="opentrack") as pool:
            futures = {pool.submit(one, dealer): _dealer_id(dealer) for dealer in dealers}
            try:
                for future in as_completed(futures):
                    future.result()
                    if on_done is not None:
                        on_done(futures[future])
            except BaseException:
                pool.shutdown(cancel_futures=True)
                raise
        return {dealer_id: future.result() for future, dealer_id in futures.items()}

    # ----------------------------------------------------------------- one call

    def _call(self, op: Operation, dealer: DealerRef, moment: datetime, params: Mapping[str, Any]) -> ParsedResponse:
        """One operation with retries; raises the typed error of the last attempt."""
        body = envelope.build_envelope(
            self.soap_version, op.name,
            {"EnterpriseCode": dealer.enterprise_code, "CompanyNumber": dealer.company_number,
             "ServerName": dealer.server_name or None},
            params, username=self.username, password=self.__password.reveal(), now=datetime.now(timezone.utc),
            transport=self.transport,
        )
        headers = (envelope.headers(self.soap_version, op.name, self.transport)
                   | {AS_OF_HEADER: moment.date().isoformat()})
        url = self.base_url + (envelope.STAR_ENDPOINT if self.transport == envelope.STAR else op.service)
        started = time.perf_counter()
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts) | stop_before_delay(self.max_wait_seconds),
            wait=self._wait,
            retry=retry_if_exception(is_transient),
            before_sleep=self._log_retry,
            reraise=True,
        )
        attempt_number = 0
        try:
            for attempt in retrying:
                attempt_number = attempt.retry_state.attempt_number
                with attempt:
                    parsed = self._attempt(op, dealer, url, body, headers, moment)
        except OpenTrackError as exc:
            exc.attempts = attempt_number
            raise
        log.info("OpenTrack %s %s as of %s: %d rows in %.2fs (attempt %d)", op.name, _dealer_id(dealer),
                 moment.date(), parsed.table.num_rows, time.perf_counter() - started, attempt_number)
        if parsed.unknown_fields:
            log.info("OpenTrack %s %s: %d unmapped field name(s) delivered: %s", op.name, _dealer_id(dealer),
                     len(parsed.unknown_fields), ", ".join(sorted(parsed.unknown_fields)))
        self._warn_if_ending(op, dealer, parsed.window, moment.date())
        return parsed

    def _attempt(self, op: Operation, dealer: DealerRef, url: str, body: bytes, headers: dict[str, str],
                 moment: datetime) -> ParsedResponse:
        context = {"dealer": dealer, "method": op.method, "operation": op.name}
        with self._slots:  # in flight from the rate slot on: no burst of waiters when slots free up
            self._limiter.acquire()
            try:
                response = self.session.post(url, data=body, headers=headers, timeout=self.timeout, stream=True)
            except requests.Timeout:
                raise ServiceUnavailableError(f"no answer from {url} within {self.timeout:g}s (timeout)",
                                              **context) from None
            except requests.RequestException as exc:
                raise ServiceUnavailableError(f"could not reach {url}: {type(exc).__name__}", **context) from None
            with response:
                status = response.status_code
                if status == 429:
                    raise ThrottledError(f"HTTP 429 from {url}: the vendor exceeds its request rate",
                                         retry_after=_seconds(response.headers.get("Retry-After")), **context)
                if status != 200 and "xml" not in response.headers.get("Content-Type", ""):
                    error = ServiceUnavailableError if status >= 500 else OpenTrackRequestError
                    raise error(f"HTTP {status} {response.reason or ''} from {url}".rstrip(), **context)
                length = response.headers.get("Content-Length", "")
                if length.isdigit() and int(length) > self.max_response_bytes:
                    raise self._too_large(f"Content-Length {int(length):,}", context)
                parsed = self._read(response, op, context)
        if parsed.fault is not None:
            raise self._fault_error(parsed.fault, parsed, status, context, moment.date())
        if status != 200:
            raise (ServiceUnavailableError if status >= 500 else OpenTrackRequestError)(
                f"HTTP {status} from {url} without a SOAP fault", **context)
        if parsed.errors:
            raise self._service_error(parsed, context, moment.date())
        return parsed

    def _read(self, response: requests.Response, op: Operation, context: dict[str, Any]) -> ParsedResponse:
        try:
            return parse_response(self._bounded(response.iter_content(chunk_size=CHUNK_BYTES), context), op.spec)
        except UnexpectedElementError as exc:
            raise SchemaDriftError(
                f"the answer holds <{exc.element}> in {exc.where}, which is neither a <{op.record}> record nor an "
                f"error ({self.transport} transport)", element=exc.element, **context) from None
        except ResponseParseError as exc:
            cls = UnsafeResponseError if exc.unsafe else MalformedResponseError
            raise cls(self._scrub(str(exc)), **context) from None
        except requests.RequestException as exc:
            raise ServiceUnavailableError(f"connection dropped while reading the answer ({type(exc).__name__})",
                                          **context) from None

    def _bounded(self, chunks: Iterable[bytes], context: dict[str, Any]) -> Iterable[bytes]:
        """The body's chunks, refused (ResponseTooLargeError) once more than max_response_bytes arrived."""
        total = 0
        for chunk in chunks:
            total += len(chunk)
            if total > self.max_response_bytes:
                raise self._too_large(f"{total:,} bytes read so far", context)
            yield chunk

    def _too_large(self, size: str, context: dict[str, Any]) -> ResponseTooLargeError:
        return ResponseTooLargeError(f"the answer is larger than max_response_bytes={self.max_response_bytes:,} "
                                     f"({size}); refused", **context)

    # ----------------------------------------------------------------- errors

    def _scrub(self, text: str) -> str:
        """Wire text with the password blanked out, in case a service ever echoes it."""
        password = self.__password.reveal()
        return text.replace(password, "***") if password else text

    def _fault_error(self, fault: Fault, parsed: ParsedResponse, status: int, context: dict[str, Any],
                     run_date: date) -> OpenTrackError:
        """A SOAP Fault as a typed error: by its (sub)code, else by the Error code in its detail."""
        detail = parsed.errors[0] if parsed.errors else None
        cls = (_ERROR_OF_CODE.get(fault.subcode or "") or (detail and _ERROR_OF_CODE.get(detail.code))
               or _ERROR_OF_CODE.get(fault.code) or OpenTrackRequestError)
        message = self._scrub(detail.message if detail else fault.message) or "(no text)"
        what = f"SOAP fault {fault.subcode or fault.code or '(no code)'} (HTTP {status}): {message}"
        return self._typed_error(cls, detail.code if detail else fault.subcode or fault.code, what, parsed.window,
                                 context, run_date)

    def _service_error(self, parsed: ParsedResponse, context: dict[str, Any], run_date: date) -> OpenTrackError:
        """An in-band Errors/Error as a typed error, by its code."""
        error = parsed.errors[0]
        cls = _ERROR_OF_CODE.get(error.code, OpenTrackRequestError)
        what = f"{error.code or 'in-band error (no code)'}: {self._scrub(error.message) or '(no message)'}"
        return self._typed_error(cls, error.code, what, parsed.window, context, run_date)

    @staticmethod
    def _typed_error(cls: type[OpenTrackError], code: str, what: str, window: AccessWindow | None,
                     context: dict[str, Any], run_date: date) -> OpenTrackError:
        """The error of class `cls`; a missing grant also gets the fix the dealership must make,
        whether the service reported it in-band or as a fault."""
        if cls is OpenTrackRequestError and code.isdigit() and code.startswith("2"):
            return cls(what, code=code, fix=STAR_REQUEST_FIX.format(code=code), **context)
        if cls is not AccessNotGrantedError:
            return cls(what, code=code, **context)
        kind = _ACCESS_KIND.get(code)
        fix = GRANT_FIX.format(method=context["method"], run_date=run_date.isoformat())
        if kind == "vendor":
            fix = VENDOR_FIX.format(code=code)
        elif kind == "ended" and window and window.ends:
            fix = (f"the dealership must extend or clear Access Ends of the {context['method']} method for this "
                   f"vendor under Data Exchange > OpenTrack (it ended {window.ends}), or add the method again "
                   f"with Access Begins on or before {run_date.isoformat()}")
        elif kind == "not_begun" and window and window.begins:
            fix += f" (it is set to {window.begins})"
        return AccessNotGrantedError(
            f"access not granted on {run_date} ({what})", code=code, fix=fix,
            access_begins=window.begins if window else None, access_ends=window.ends if window else None, **context)

    def _warn_if_ending(self, op: Operation, dealer: DealerRef, window: AccessWindow | None, run_date: date) -> None:
        if window is not None and window.ends_soon(run_date):
            log.warning(
                "OpenTrack grant ending soon: dealer %s (enterprise %s, company %s, server %s) method %s access "
                "ends %s (%d day(s) after the run date %s); ask the dealership to extend Access Ends under "
                "Data Exchange > OpenTrack", _dealer_id(dealer), dealer.enterprise_code, dealer.company_number,
                dealer.server_name or "-", op.method, window.ends, window.days_left(run_date), run_date)

    # ----------------------------------------------------------------- retry policy

    def _wait(self, state: RetryCallState) -> float:
        wait = wait_exponential_jitter(multiplier=self.backoff_seconds, max=self.max_backoff_seconds,
                                       jitter=self.backoff_seconds)(state)
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, ThrottledError) and exc.retry_after:
            wait = max(wait, min(exc.retry_after, self.max_backoff_seconds))
        return wait

    def _log_retry(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("attempt %d/%d failed, retrying in %.2fs: %s", state.attempt_number, self.max_attempts,
                    state.upcoming_sleep, exc)


def _seconds(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _dealer_id(dealer: DealerRef) -> str:
    return dealer_id(dealer.enterprise_code, dealer.company_number)


def with_unknown_fields(table: pa.Table, counts: Mapping[str, int]) -> pa.Table:
    """`table` carrying the call's unmapped field counts in its schema metadata (UNKNOWN_FIELDS_KEY)."""
    return table.replace_schema_metadata({UNKNOWN_FIELDS_KEY: json.dumps(dict(sorted(counts.items())))})


def unknown_fields(*tables: pa.Table) -> dict[str, int]:
    """Unmapped field counts carried by fetched tables (summed; {} when none or not a fetched table)."""
    total: dict[str, int] = {}
    for table in tables:
        raw = (table.schema.metadata or {}).get(UNKNOWN_FIELDS_KEY)
        for name, count in json.loads(raw or b"{}").items():
            total[name] = total.get(name, 0) + int(count)
    return total


def _with_row_dealer_ids(table: pa.Table, dealer: DealerRef) -> pa.Table:
    """`dealer_id` in front, per row `{EnterpriseCode}_{row CompanyNumber}` (ARCHITECTURE.md):
    a row of another company shows as foreign instead of being attributed to the dealer."""
    company = table.column("company_number")
    return _prepend(table, dealer_id=pc.binary_join_element_wise(string_scalar(dealer.enterprise_code), company,
                                                                  string_scalar("_")))


def _prepend(table: pa.Table, **columns: str | pa.Array | pa.ChunkedArray) -> pa.Table:
    """`columns` (a constant string or an array) in front of `table`'s columns, all strings."""
    for position, (name, value) in enumerate(columns.items()):
        array = pa.repeat(string_scalar(value), table.num_rows) if isinstance(value, str) else value
        table = table.add_column(position, pa.field(name, pa.string()), array)
    return table
