"""The simulator's HTTP server: SOAP endpoints, WSDLs, admin endpoints, background runner.

Endpoints (any path prefix works, so a base URL like `http://host:port/OpenTrack/` does):

* `POST .../WebService.asmx` — the STAR ProcessMessage transport (every operation; the
  real service's dialect, the client's default);
* `POST .../{VehicleAPI,CustomerAPI,ServiceAPI,PartsAPI}.asmx` — the per-area transport;
  both SOAP 1.1 (`text/xml`) or 1.2 (`application/soap+xml`), chosen per request by its
  content type, and both served from the same world;
* `GET  .../{Service}.asmx?WSDL` — the service's WSDL (both SOAP versions);
* `GET/POST/DELETE /admin/faults` — list / add (JSON rule or list) / clear injected faults;
* `GET/DELETE /admin/requests` — the request log (no credentials in it) / clear it;
* `GET /admin/health`.

A call is handled in this order: parse -> injected fault -> credentials (SOAP Fault) ->
vendor rate limit (HTTP 429) -> as-of date -> dealer (in-band UNKNOWN_DEALER) -> grant
(in-band 311 not granted / 314 access starts later / 312 access expired: the real STAR
access codes) -> data. Answers
are streamed with HTTP/1.1 chunked encoding on keep-alive connections.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import TypeAdapter, ValidationError

from dealer_feed_tools.simulator import records
from dealer_feed_tools.simulator.faults import FaultBook, RequestLog, VendorThrottle, inject_bytes
from dealer_feed_tools.simulator.inventory import ymd
from dealer_feed_tools.simulator.soap import (
    CONTENT_TYPES,
    SERVICES,
    STAR,
    STAR_SERVICE,
    SoapClientFault,
    SoapRequest,
    fault_document,
    parse_request,
    result_chunks,
    soap_version,
)
from dealer_feed_tools.simulator.world import FaultRule, World, load_world
from dealer_feed_tools.simulator.wsdl import star_wsdl_document, wsdl_document

log = logging.getLogger(__name__)

AS_OF_HEADER = "X-OpenTrack-As-Of"
"""Simulator convention: the UTC date a call is made 'on', for operations without a date parameter."""

_FAULT_RULES = TypeAdapter(list[FaultRule])
ACCESS_NOT_GRANTED, ACCESS_ENDED, ACCESS_NOT_YET_BEGUN = "311", "312", "314"
"""The real STAR access codes (OpenTrack.NET OpenTrackException.cs) the simulator answers with."""


@dataclass
class _Answer:
    """What to send back for one SOAP call (before fault shaping)."""

    status: int
    outcome: str
    body: Iterable[bytes]
    headers: dict[str, str] = field(default_factory=dict)


class Simulator:
    """The service's state: its world, injected faults, throttle and request log."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.faults = FaultBook(world.faults)
        self.throttle = VendorThrottle()
        self.log = RequestLog()
        self.stopping = threading.Event()

    # ----------------------------------------------------------------- one SOAP call

    def answer(self, request: SoapRequest, as_of_header: str | None, entry: dict[str, Any]) -> _Answer:
        """Credentials, rate, dealer, grant, then data; injected faults are applied by the caller."""
        version, op = request.version, request.operation
        vendor = self.world.vendor(request.username, request.password)
        if vendor is None:
            return _auth_failed(version)
        entry["vendor"] = vendor.username
        if not self.throttle.admit(vendor):
            return _throttled(version)
        try:
            day = _as_of(request, as_of_header)
        except ValueError as exc:
            return _Answer(500, "bad_request", [fault_document(version, "INVALID_REQUEST", str(exc), sender=True)])
        entry["as_of"] = day.isoformat()
        dealer = self.world.find_dealer(request.enterprise_code, request.company_number)
        where = f"enterprise {request.enterprise_code}, company {request.company_number}"
        if dealer is None or (request.server_name and request.server_name.lower() != dealer.server_name.lower()):
            reason = "no such dealer" if dealer is None else f"server name is {dealer.server_name!r}, not {request.server_name!r}"
            return self._in_band(request, "UNKNOWN_DEALER", f"Dealer not found ({where}, server "
                                 f"{request.server_name or '-'}): {reason}.")
        grant = dealer.grants.get(op.method)
        window = (op.method, ymd(grant.begins.toordinal()), ymd(grant.ends.toordinal()) if grant.ends else "0") \
            if grant else None
        vendor_is = f"Vendor {vendor.username!r}"
        if grant is None:
            return self._in_band(request, ACCESS_NOT_GRANTED, f"Access validation error: Dealer has not granted "
                                 f"access to Vendor ({vendor_is}, method {op.method}, {where}).")
        if day < grant.begins:
            return self._in_band(request, ACCESS_NOT_YET_BEGUN, f"Access validation error: Dealer access start date "
                                 f"is a future date ({vendor_is}, method {op.method}, {where}: begins "
                                 f"{grant.begins:%Y%m%d}, after {day:%Y%m%d}).", window)
        if grant.ends is not None and day > grant.ends:
            return self._in_band(request, ACCESS_ENDED, f"Access validation error: Dealer access for Vendor has "
                                 f"expired ({vendor_is}, method {op.method}, {where}: ended {grant.ends:%Y%m%d}).",
                                 window)
        rows, errors = self._rows(request, dealer.dealer_id, day)
        counter = [0]
        entry["rows"] = counter
        return _Answer(200, "ok" if not errors else f"error:{errors[0][0]}",
                       result_chunks(version, op, rows, transport=request.transport, window=window, errors=errors,
                                     counter=counter))

    def injected(self, request: SoapRequest, rule: FaultRule, day: date | None) -> _Answer | None:
        """The canned answer of a fault that replaces the response, or None if it shapes it
        (slow, drop, truncate, forbidden_bytes shape the normal answer). The access faults
        answer exactly what the service answers for that cause, so the client's mapping to
        its typed error is what is tested."""
        version, op, kind = request.version, request.operation, rule.kind
        outcome = f"fault:{kind}"
        where = f"enterprise {request.enterprise_code}, company {request.company_number}"
        if kind == "http_500":
            return _Answer(500, outcome, [fault_document(version, "INTERNAL_ERROR", "Server was unable to "
                                                         "process request (injected).", sender=False)])
        if kind == "http_503":
            return _Answer(503, outcome, [b"<html><body><h1>Service Unavailable</h1></body></html>"],
                           {"Content-Type": "text/html"})
        if kind == "throttle":
            return _throttled(version)
        if kind == "auth_failed":
            return _auth_failed(version, outcome)
        if kind == "unknown_dealer":
            answer = self._in_band(request, "UNKNOWN_DEALER", f"Dealer not found ({where}, server "
                                   f"{request.server_name or '-'}): no such dealer (injected).")
        elif kind == "not_granted":
            answer = self._in_band(request, ACCESS_NOT_GRANTED, f"Access validation error: Dealer has not granted "
                                   f"access to Vendor (method {op.method}, {where}; injected).")
        elif kind == "grant_ended":
            ended = ymd((day or datetime.now(timezone.utc).date()).toordinal() - 1)
            answer = self._in_band(request, ACCESS_ENDED, f"Access validation error: Dealer access for Vendor has "
                                   f"expired (method {op.method}, {where}: ended {ended}; injected).",
                                   (op.method, ended, ended))
        else:
            return None
        answer.outcome = outcome
        return answer

    def _in_band(self, request: SoapRequest, code: str, message: str,
                 window: tuple[str, str, str] | None = None) -> _Answer:
        return _Answer(200, f"error:{code}", result_chunks(request.version, request.operation, (),
                                                            transport=request.transport, window=window,
                                                            errors=[(code, message)]))

    def _rows(self, request: SoapRequest, dealer_id: str, day: date
              ) -> tuple[Iterable[dict[str, str | None]], list[tuple[str, str]]]:
        p, name = request.params, request.operation.name
        dealer = self.world.dealer(dealer_id)
        if name == "VehicleInventory":
            return self.world.iter_vehicles(dealer_id, day), []
        if name == "VehicleLookup":
            if not p.get("VIN") and not p.get("StockNumber"):
                return (), [("INVALID_REQUEST", "VehicleLookup needs LookupParms/VIN or LookupParms/StockNumber.")]
            return (r for r in self.world.iter_vehicles(dealer_id, day)
                    if r.get("VIN") == p.get("VIN", r.get("VIN"))
                    and r.get("StockNumber") == p.get("StockNumber", r.get("StockNumber"))), []
        if name == "CustomerLookup":
            found = records.customer(self.world, dealer, p["CustomerNumber"])
            return ([found] if found else []), []
        if name == "OpenRepairOrderLookup":
            start = _request_day(p.get("CreatedDateTimeStart"))
            keys = ("RepairOrderNumber", "VIN", "StockNumber")
            return [r for r in self.world.repair_orders(dealer_id, day)
                    if all(r.get(k) == p[k] for k in keys if k in p)
                    and (start is None or (r["OpenTransactionDate"] or "0") >= f"{start:%Y%m%d}")], []
        make = p["Manufacturer"]
        if make not in dealer.make_codes:
            return (), [("UNKNOWN_MAKE_CODE", f"Make code {make!r} is not set up at this dealer (known: "
                                              f"{', '.join(dealer.make_codes) or 'none'}).")]
        return [r for r in self.world.parts(dealer_id, make, day)
                if "PartNumber" not in p or r["PartNumber"] == p["PartNumber"]], []


def _request_day(text: str | None) -> date | None:
    """The UTC date of an OpenTrack request date-time (yyyy-MM-ddTHH:mm:ssZ)."""
    if not text:
        return None
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").date()
    except ValueError:
        raise ValueError(f"date-time {text!r} is not yyyy-MM-ddTHH:mm:ssZ") from None


def _as_of(request: SoapRequest, header: str | None) -> date:
    """Simulator convention: the call's date is the operation's 'to' date, else the
    X-OpenTrack-As-Of header, else today (UTC). The real service ignores both."""
    p = request.params
    day = _request_day(p.get("ToDateInInventory") or p.get("CreatedDateTimeEnd"))
    if day is not None:
        return day
    if header:
        try:
            return date.fromisoformat(header.strip())
        except ValueError:
            raise ValueError(f"{AS_OF_HEADER} header {header!r} is not yyyy-MM-dd") from None
    return datetime.now(timezone.utc).date()


def _throttled(version: str) -> _Answer:
    return _Answer(429, "throttled", [fault_document(version, "THROTTLED", "Too many requests for this vendor; "
                                                     "slow down and retry.", sender=False)], {"Retry-After": "1"})


def _auth_failed(version: str, outcome: str = "auth_failed") -> _Answer:
    return _Answer(500, outcome, [fault_document(
        version, "AUTHENTICATION_FAILED", "The security token could not be authenticated: unknown vendor "
        "username or wrong password.", sender=True, subcode="wsse:FailedAuthentication")])


# --------------------------------------------------------------------------- HTTP


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], simulator: Simulator) -> None:
        super().__init__(address, _Handler)
        self.simulator = simulator
        self.open_sockets: set[socket.socket] = set()
        self.sockets_lock = threading.Lock()

    def close_connections(self) -> None:
        with self.sockets_lock:
            for sock in list(self.open_sockets):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "OpenTrackSimulator/1.0"
    timeout = 60
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.sockets_lock:
            self.server.open_sockets.add(self.connection)

    def finish(self) -> None:
        with self.server.sockets_lock:
            self.server.open_sockets.discard(self.connection)
        try:
            super().finish()
        except OSError:
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        log.debug("%s %s", self.address_string(), format % args)

    @property
    def sim(self) -> Simulator:
        return self.server.simulator

    def _read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, obj: Any) -> None:
        self._send(status, json.dumps(obj, default=str).encode(), "application/json")

    def _service(self) -> str | None:
        name = urlsplit(self.path).path.rstrip("/").rsplit("/", 1)[-1]
        if name.lower().endswith(".asmx"):
            return next((s for s in (*SERVICES, STAR_SERVICE) if s.lower() == name[:-5].lower()), None)
        return None

    # ----------------------------------------------------------------- verbs

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        url = urlsplit(self.path)
        service = self._service()
        if service and url.query.lower() == "wsdl":
            host = self.headers.get("Host") or "%s:%s" % self.server.server_address[:2]
            location = f"http://{host}{url.path}"
            document = star_wsdl_document(location) if service == STAR_SERVICE else wsdl_document(service, location)
            self._send(200, document, "text/xml; charset=utf-8")
        elif url.path == "/admin/faults":
            self._json(200, {"faults": self.sim.faults.snapshot()})
        elif url.path == "/admin/requests":
            self._json(200, {"requests": [_public(e) for e in self.sim.log.entries()]})
        elif url.path == "/admin/health":
            self._json(200, {"ok": True, "dealers": len(self.sim.world.dealers)})
        else:
            self._send(404, b"not found: try /WebService.asmx?WSDL, /VehicleAPI.asmx?WSDL or /admin/requests",
                       "text/plain")

    def do_DELETE(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        self._read_body()
        if path == "/admin/faults":
            self.sim.faults.clear()
        elif path == "/admin/requests":
            self.sim.log.clear()
        else:
            self._send(404, b"not found", "text/plain")
            return
        self._json(200, {"ok": True})

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        body = self._read_body()
        if path == "/admin/faults":
            self._add_faults(body)
            return
        service = self._service()
        if service is None:
            self._send(404, b"not found: POST to one of " + ", ".join(
                f"{s}.asmx" for s in (STAR_SERVICE, *SERVICES)).encode(), "text/plain")
            return
        self._soap(service, body)

    def _add_faults(self, body: bytes) -> None:
        try:
            payload = json.loads(body or b"null")
            rules = _FAULT_RULES.validate_python(payload if isinstance(payload, list) else [payload])
        except (ValueError, ValidationError) as exc:
            self._json(400, {"error": str(exc)})
            return
        self.sim.faults.add(rules)
        self._json(200, {"faults": self.sim.faults.snapshot()})

    def _soap(self, service: str, body: bytes) -> None:
        content_type = self.headers.get("Content-Type", "")
        version = soap_version(content_type)
        entry = self.sim.log.start(service=service, soap_version=version)
        try:
            request = parse_request(body, content_type)
        except SoapClientFault as exc:
            self._finish(entry, _Answer(500, "bad_request", [fault_document(version, "INVALID_REQUEST", str(exc),
                                                                            sender=True)]), version)
            return
        op = request.operation
        entry.update(operation=op.name, method=op.method, dealer_id=request.dealer_id, transport=request.transport)
        expected = STAR_SERVICE if request.transport == STAR else op.service
        if expected != service:
            how = "a STAR ProcessMessage" if request.transport == STAR else f"a per-area {op.name}"
            self._finish(entry, _Answer(500, "bad_request", [fault_document(
                version, "INVALID_REQUEST", f"{how} request is served by {expected}.asmx, not {service}.asmx",
                sender=True)]), version)
            return
        as_of_header = self.headers.get(AS_OF_HEADER)
        try:
            day: date | None = _as_of(request, as_of_header)
        except ValueError:
            day = None  # answered as a bad request below; a dated fault rule does not match it
        rule = self.sim.faults.take(request.dealer_id, op.method, day)
        if rule is not None and rule.kind == "slow":
            self.sim.log.finish(entry, outcome="fault:slow")  # visible while it sleeps
            self.sim.stopping.wait(rule.delay_seconds)
        answer = (self.sim.injected(request, rule, day) if rule else None) or self.sim.answer(
            request, as_of_header, entry)
        if rule is not None and rule.kind == "forbidden_bytes":
            answer.body = inject_bytes(answer.body, rule.field, rule.payload.encode())
        if rule is not None and rule.kind in ("slow", "drop", "truncate", "forbidden_bytes"):
            answer.outcome = f"fault:{rule.kind}" + (f"+{answer.outcome}" if rule.kind == "slow" else "")
        self._finish(entry, answer, version, cut=rule.kind if rule and rule.kind in ("drop", "truncate") else None)

    def _finish(self, entry: dict[str, Any], answer: _Answer, version: str, cut: str | None = None) -> None:
        """Stream the answer (chunked), or cut it: `truncate` ends the body half-way through
        the first chunk as a complete HTTP message; `drop` closes the socket there."""
        self.sim.log.finish(entry, status=answer.status, outcome=answer.outcome)
        chunks: Iterator[bytes] = iter(answer.body)
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.headers.pop("Content-Type", CONTENT_TYPES[version]))
            self.send_header("Transfer-Encoding", "chunked")
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            if cut:
                first = next(chunks, b"")
                chunks = iter([first[: len(first) // 2]])
            for chunk in chunks:
                if chunk:
                    self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk))
            if cut == "drop":
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                self.close_connection = True
                return
            self.wfile.write(b"0\r\n\r\n")
        except OSError:  # the client gave up (timeout) or the server is stopping
            self.close_connection = True
        finally:
            rows = entry.get("rows")
            if isinstance(rows, list):
                self.sim.log.finish(entry, rows=rows[0])


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    rows = entry.get("rows")
    return entry | {"rows": rows[0] if isinstance(rows, list) else rows}


# --------------------------------------------------------------------------- running it


class SimulatorHandle:
    """A simulator serving in a background thread. `url` is its base URL (trailing slash).

    The fault and request-log helpers go through the admin HTTP endpoints, so they work
    the same against a simulator started elsewhere (`SimulatorHandle.remote(url)`).
    """

    def __init__(self, url: str, world: World | None = None, server: _Server | None = None,
                 thread: threading.Thread | None = None) -> None:
        self.url = url
        self.world = world
        self._server = server
        self._thread = thread

    @classmethod
    def remote(cls, url: str) -> SimulatorHandle:
        return cls(url if url.endswith("/") else url + "/")

    def _admin(self, method: str, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload, default=str).encode()
        req = urllib.request.Request(self.url + path.lstrip("/"), data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def add_fault(self, kind: str, *, dealer: str = "*", method: str = "*", times: int | None = None,
                  delay_seconds: float | None = None, **options: Any) -> list[dict[str, Any]]:
        """Inject a fault rule (FaultRule's fields; `options` e.g. field= / payload= of forbidden_bytes)."""
        rule: dict[str, Any] = {"kind": kind, "dealer": dealer, "method": method, "times": times, **options}
        if delay_seconds is not None:
            rule["delay_seconds"] = delay_seconds
        return self._admin("POST", "admin/faults", rule)["faults"]

    def clear_faults(self) -> None:
        self._admin("DELETE", "admin/faults")

    def requests(self, **match: Any) -> list[dict[str, Any]]:
        """Logged SOAP calls whose fields equal all of `match` (e.g. dealer_id=..., operation=...)."""
        entries = self._admin("GET", "admin/requests")["requests"]
        return [e for e in entries if all(e.get(k) == v for k, v in match.items())]

    def clear_requests(self) -> None:
        self._admin("DELETE", "admin/requests")

    def reset(self) -> None:
        """Forget injected faults and logged requests (between tests sharing one simulator)."""
        self.clear_faults()
        self.clear_requests()

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.simulator.stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None

    def __enter__(self) -> SimulatorHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"SimulatorHandle({self.url!r})"


def _bind(world: World | str | Path, host: str, port: int) -> tuple[_Server, World]:
    world = world if isinstance(world, World) else load_world(world)
    return _Server((host, port), Simulator(world)), world


def _url(server: _Server) -> str:
    host, port = server.server_address[:2]
    return f"http://{host}:{port}/"


def start_background(world: World | str | Path, host: str = "127.0.0.1", port: int = 0) -> SimulatorHandle:
    """Serve `world` (a World or a world file) on host:port (0: a free port) in a daemon thread.

    Returns once the socket listens; use the handle as a context manager or call `.stop()`.
    """
    server, world = _bind(world, host, port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              name=f"opentrack-simulator-{server.server_address[1]}", daemon=True)
    thread.start()
    return SimulatorHandle(_url(server), world, server, thread)


def serve_forever(world: World | str | Path, host: str = "127.0.0.1", port: int = 0) -> None:
    """Serve until interrupted; the first stdout line is the base URL (flushed), for scripts."""
    server, world = _bind(world, host, port)
    print(_url(server), flush=True)
    print(f"OpenTrack simulator: {len(world.dealers)} dealers, {len(world.vendors)} vendor(s); Ctrl-C stops it.",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.simulator.stopping.set()
        server.close_connections()
        server.server_close()
