"""The password never leaks (hostile XML, XXE and entity expansion: the bad-input catalogue,
tests/integration/test_bad_input.py)."""

from __future__ import annotations

import logging

import pyarrow.parquet as pq
import pytest
from ot_support import PASSWORD, RUN, USERNAME, dealer, serve_bytes

from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed.opentrack.errors import OpenTrackError


def _fast(url: str) -> OpenTrackClient:
    return OpenTrackClient(url, USERNAME, PASSWORD, timeout=2, max_attempts=3, backoff_seconds=0.01)


def test_password_echoed_by_a_service_is_scrubbed():
    fault = (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body><soap:Fault>'
             b"<faultcode>soap:Client</faultcode><faultstring>bad token " + PASSWORD.encode()
             + b"</faultstring></soap:Fault></soap:Body></soap:Envelope>")
    with serve_bytes(fault, status=500) as served, _fast(served.url) as client:
        with pytest.raises(OpenTrackError) as caught:
            client.vehicle_inventory(dealer("A1"), RUN)

    assert PASSWORD not in str(caught.value) and "bad token ***" in str(caught.value)


def test_password_in_no_log_record_repr_error_or_written_file(make_client, sim, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)  # every logger, urllib3 included
    client = make_client()
    tables = [client.vehicle_inventory(dealer("A1"), RUN), client.parts_inventory(dealer("A1"), "KI", RUN),
              client.open_repair_orders(dealer("A1"), RUN)]
    sim.add_fault("http_503", times=1)
    client.vehicle_inventory(dealer("C3"), RUN)  # a retry, logged as a warning
    errors = []
    for call in (lambda: client.vehicle_inventory(dealer("B2"), RUN),
                 lambda: make_client(password=PASSWORD + "x").vehicle_inventory(dealer("A1"), RUN)):
        with pytest.raises(OpenTrackError) as caught:
            call()
        errors.append(caught.value)
    for i, table in enumerate(tables):
        pq.write_table(table, tmp_path / f"{i}.parquet")

    texts = [r.getMessage() for r in caplog.records] + [repr(client), str(vars(client))]
    texts += [str(e) for e in errors] + [repr(e) for e in errors] + [str(vars(e)) for e in errors]
    assert caplog.records and all(PASSWORD not in t for t in texts)
    assert all(PASSWORD.encode() not in p.read_bytes() for p in tmp_path.iterdir())
    assert all(PASSWORD not in str(entry) for entry in sim.requests())
