"""Every injected fault, survived by retry or ending in the typed error; attempts counted by the simulator."""

from __future__ import annotations

import json
import time
from datetime import timedelta

import pytest
import requests
from ot_support import RUN, dealer

from dealer_feed.opentrack.errors import (
    AccessNotGrantedError,
    AuthenticationError,
    MalformedResponseError,
    ServiceUnavailableError,
    ThrottledError,
    TransientOpenTrackError,
    UnknownDealerError,
    is_transient,
)

KINDS = ["http_500", "http_503", "slow", "drop", "truncate", "throttle"]


def _outcomes(sim, **match) -> list[str]:
    return [e["outcome"] for e in sim.requests(**match)]


@pytest.mark.parametrize("kind", KINDS)
def test_first_n_calls_fail_then_retry_succeeds(client, sim, world, kind):
    sim.add_fault(kind, dealer="T1_A1", method="Vehicle", times=2, delay_seconds=1.0)

    table = client.vehicle_inventory(dealer("A1"), RUN)

    assert table.num_rows == len(world.vehicles("T1_A1", RUN.date()))
    outcomes = _outcomes(sim, dealer_id="T1_A1", operation="VehicleInventory")
    assert len(outcomes) == 3
    assert outcomes[2] == "ok"
    assert all(o.startswith("fault:") or o == "throttled" for o in outcomes[:2])


@pytest.mark.parametrize(("kind", "error"), [
    ("http_500", ServiceUnavailableError),
    ("http_503", ServiceUnavailableError),
    ("slow", ServiceUnavailableError),
    ("drop", ServiceUnavailableError),
    ("truncate", MalformedResponseError),
    ("throttle", ThrottledError),
])
def test_persistent_fault_raises_typed_transient_error_after_max_attempts(client, sim, kind, error):
    sim.add_fault(kind, dealer="T1_A1", method="Vehicle", delay_seconds=1.0)

    with pytest.raises(error) as caught:
        client.vehicle_inventory(dealer("A1"), RUN)

    exc = caught.value
    assert isinstance(exc, TransientOpenTrackError) and is_transient(exc)
    assert exc.attempts == 3 and "after 3 attempts" in str(exc)
    assert (exc.dealer_id, exc.method, exc.operation) == ("T1_A1", "Vehicle", "VehicleInventory")
    assert "T1_A1" in str(exc) and "Fix:" in str(exc)
    assert len(sim.requests(dealer_id="T1_A1")) == 3


@pytest.mark.parametrize(("kind", "error", "code"), [
    ("auth_failed", AuthenticationError, None),
    ("not_granted", AccessNotGrantedError, "311"),
    ("grant_ended", AccessNotGrantedError, "312"),
    ("unknown_dealer", UnknownDealerError, "UNKNOWN_DEALER"),
])
def test_injected_access_fault_is_the_permanent_typed_error_without_retry(client, sim, kind, error, code):
    """The access faults answer as the service does for that cause (the world is unchanged):
    the client raises the permanent typed error at the first attempt."""
    sim.add_fault(kind, dealer="T1_A1", method="Vehicle")

    with pytest.raises(error) as caught:
        client.vehicle_inventory(dealer("A1"), RUN)

    exc = caught.value
    assert not is_transient(exc) and exc.attempts == 1 and exc.dealer_id == "T1_A1" and "Fix:" in str(exc)
    assert code is None or exc.code == code
    if kind == "grant_ended":
        assert exc.access_ends == RUN.date() - timedelta(days=1) and "it ended" in exc.fix
    assert _outcomes(sim, dealer_id="T1_A1") == [f"fault:{kind}"]
    client.vehicle_inventory(dealer("C3"), RUN)  # other dealers answer normally


def test_dated_fault_hits_only_calls_of_its_as_of_date(client, sim, world):
    """A permanent fault (no `times`) on one as-of date: every call of that date fails, the
    next day's call of the same dealer and method is answered."""
    sim.add_fault("http_500", dealer="T1_A1", method="Vehicle", date=RUN.date().isoformat())

    with pytest.raises(ServiceUnavailableError):
        client.vehicle_inventory(dealer("A1"), RUN)
    later = client.vehicle_inventory(dealer("A1"), RUN + timedelta(days=1))

    assert later.num_rows == len(world.vehicles("T1_A1", RUN.date() + timedelta(days=1)))
    assert _outcomes(sim, dealer_id="T1_A1") == ["fault:http_500"] * 3 + ["ok"]
    assert sim.add_fault("http_503", dates=["2026-11-23"])[-1]["dates"] == ["2026-11-23"]


def test_fault_matches_only_its_dealer_and_method(client, sim):
    sim.add_fault("http_503", dealer="T1_A1", method="Parts")

    client.vehicle_inventory(dealer("A1"), RUN)
    client.vehicle_inventory(dealer("C3"), RUN)
    with pytest.raises(ServiceUnavailableError):
        client.parts_inventory(dealer("A1"), "KI", RUN)

    assert _outcomes(sim, operation="VehicleInventory") == ["ok", "ok"]


def test_retries_are_bounded_in_total_time(make_client, sim):
    client = make_client(max_attempts=1000, backoff_seconds=0.05, max_backoff_seconds=0.05, max_wait_seconds=0.3)
    sim.add_fault("http_503")

    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError) as caught:
        client.vehicle_inventory(dealer("A1"), RUN)

    assert time.monotonic() - started < 2
    assert 2 <= caught.value.attempts < 20


def test_vendor_over_its_rate_is_throttled_and_retries_through(make_client, sim):
    eager = make_client(username="slow-vendor", password="slow-vendor-password", requests_per_second=1000,
                        max_attempts=10, max_backoff_seconds=1.0, max_wait_seconds=10)

    for _ in range(6):
        eager.vehicle_lookup(dealer("A1"), RUN, vin="00000000000000000")

    outcomes = _outcomes(sim, vendor="slow-vendor")
    assert outcomes.count("ok") == 6
    assert "throttled" in outcomes  # the vendor allows 4/s


def test_client_rate_limit_keeps_vendor_under_its_limit(make_client, sim):
    polite = make_client(username="polite-vendor", password="polite-vendor-password", requests_per_second=3.5)

    def two_lookups(d):
        polite.vehicle_lookup(d, RUN, vin="00000000000000000")
        return polite.vehicle_lookup(d, RUN, vin="00000000000000001")

    results = polite.fetch_many([dealer("A1"), dealer("C3"), dealer("D4")], two_lookups)

    assert sorted(results) == ["T1_A1", "T1_C3", "T1_D4"]
    assert all(r.num_rows == 0 for r in results.values())
    assert _outcomes(sim, vendor="polite-vendor") == ["ok"] * 6


def test_admin_fault_endpoint_json(sim):
    url = sim.url + "admin/faults"
    added = requests.post(url, data=json.dumps([{"kind": "http_500", "dealer": "T1_C3", "times": 2},
                                                 {"kind": "slow", "method": "Parts", "delay_seconds": 0.1}]),
                          timeout=5).json()["faults"]
    bad = requests.post(url, data=json.dumps({"kind": "meteor_strike"}), timeout=5)

    assert [(f["kind"], f["remaining"]) for f in added] == [("http_500", 2), ("slow", None)]
    assert bad.status_code == 400 and "meteor_strike" in bad.text
    assert requests.delete(url, timeout=5).json() == {"ok": True}
    assert requests.get(url, timeout=5).json() == {"faults": []}


@pytest.mark.parametrize("payload", ["\x00", "\x01\x1f", "&#0;", "&#x1;"])
def test_forbidden_bytes_in_one_value_cost_that_value_only_and_are_not_retried(client, sim, world, payload):
    """One NUL (or other C0 control, raw or as a reference) in one vehicle's Model: the answer
    is read at the first attempt, every vehicle kept, the bad value carrying U+FFFD."""
    sim.add_fault("forbidden_bytes", dealer="T1_A1", method="Vehicle", field="Model", payload=payload)

    table = client.vehicle_inventory(dealer("A1"), RUN)

    served = world.vehicles("T1_A1", RUN.date())
    models = table.column("model").to_pylist()
    assert table.num_rows == len(served)
    bad = [i for i, m in enumerate(models) if m and "\ufffd" in m]
    first_model = next(i for i, row in enumerate(served) if row.get("Model") is not None)
    assert bad == [first_model]
    assert models[first_model].replace("\ufffd", "") == served[first_model]["Model"]
    assert _outcomes(sim, dealer_id="T1_A1", operation="VehicleInventory") == ["fault:forbidden_bytes"]


def test_inject_bytes_finds_a_tag_cut_between_chunks():
    from dealer_feed_tools.simulator.faults import inject_bytes

    doc = b"<a><Model>X</Model><Model>Y</Model></a>"
    for size in range(1, len(doc) + 1):
        chunks = [doc[i:i + size] for i in range(0, len(doc), size)]
        assert b"".join(inject_bytes(chunks, "Model", b"\x00")) == b"<a><Model>\x00X</Model><Model>Y</Model></a>"
    assert b"".join(inject_bytes([b"<a>", b"</a>"], "Model", b"\x00")) == b"<a></a>"
