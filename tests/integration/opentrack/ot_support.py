"""The OpenTrack integration tests' world and helpers (imported by conftest and the tests).

The world is written out here so each test's expectations can be read next to it. The
run date of most tests is RUN = 2026-11-23.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from dealer_feed.config import Dealer

RUN = datetime(2026, 11, 23, 6, 0, tzinfo=timezone.utc)
USERNAME = "test-vendor"
PASSWORD = "Pa55-w0rd-that-must-never-leak"

ALL_GRANTS = {m: {"begins": "2026-01-01"} for m in ("Vehicle", "Customer", "Service", "Parts")}
WORLD = {
    "seed": 7,
    "vendors": [
        {"username": USERNAME, "password": PASSWORD, "requests_per_second": 1000},
        {"username": "slow-vendor", "password": "slow-vendor-password", "requests_per_second": 4},
        {"username": "polite-vendor", "password": "polite-vendor-password", "requests_per_second": 4},
    ],
    "defaults": {"grants": {"Vehicle": {"begins": "2026-01-01"}},
                 "inventory": {"generated": {"size": 40, "turnover": 0.1, "stock_change_share": 0.3,
                                             "return_share": 0.3, "bad_row_rate": 0.0}}},
    "dealers": [
        {"enterprise_code": "T1", "company_number": "A1", "server_name": "itrack1.arkona.com",
         "make_codes": ["KI", "SU"], "grants": ALL_GRANTS},
        {"enterprise_code": "T1", "company_number": "B2", "server_name": "itrack1.arkona.com",
         "grants": {"Vehicle": {"begins": "2026-11-10", "ends": "2026-11-20"}}},
        {"enterprise_code": "T1", "company_number": "C3", "server_name": "itrack1.arkona.com",
         "inventory": {"scripted": {
             "2026-11-20": [
                 {"VIN": "1FTFW1E50PFA00001", "StockNumber": "S1", "TypeNU": "N", "Make": "FORD"},
                 {"VIN": "1FTFW1E50PFA00002", "StockNumber": "S2", "CompanyNumber": "ZZ9"},
                 {"VIN": "1FTFW1E50PFA00003", "StockNumber": None, "Model": "<&>"},
             ],
             "2026-11-24": [],
         }}},
        {"enterprise_code": "T1", "company_number": "D4", "server_name": "itrack1.arkona.com",
         "make_codes": ["MZ"], "grants": {"Vehicle": {"begins": "2026-01-01", "ends": "2026-11-30"},
                                          "Parts": None}},
    ],
}


def dealer(company: str, **overrides) -> Dealer:
    """A config.Dealer of the test world (enterprise T1)."""
    fields = {"enterprise_code": "T1", "company_number": company, "server_name": "itrack1.arkona.com"} | overrides
    return Dealer(**fields)


@dataclass
class Served:
    url: str
    hits: list[str]


@contextmanager
def serve_bytes(body: bytes, status: int = 200, content_type: str = "text/xml; charset=utf-8") -> Iterator[Served]:
    """A real HTTP server answering every POST with `body`: for hostile documents the
    simulator never produces. `hits` grows by one path per request."""
    hits: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            hits.append(self.path)
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.server_address[1]}/", hits)
    finally:
        server.shutdown()
        server.server_close()

