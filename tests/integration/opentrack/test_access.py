"""Credentials, dealers and grant windows: typed errors with fix lines, never retried."""

from __future__ import annotations

import logging
from datetime import date

import pytest
from ot_support import RUN, dealer, serve_bytes

from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed.opentrack.errors import (
    AccessNotGrantedError,
    AuthenticationError,
    OpenTrackRequestError,
    UnknownDealerError,
    is_transient,
)

# T1_B2's Vehicle grant: begins 2026-11-10, ends 2026-11-20 (both inclusive).
GRANTED_DAYS = [date(2026, 11, 10), date(2026, 11, 15), date(2026, 11, 20)]


@pytest.mark.parametrize("day", GRANTED_DAYS, ids=["begin-day", "inside", "end-day"])
def test_grant_window_is_inclusive(client, day):
    assert client.vehicle_inventory(dealer("B2"), day).num_rows > 0


def test_day_before_access_begins(client, sim):
    with pytest.raises(AccessNotGrantedError) as caught:
        client.vehicle_inventory(dealer("B2"), date(2026, 11, 9))

    exc = caught.value
    assert exc.code == "314" and not is_transient(exc)
    assert (exc.access_begins, exc.access_ends) == (date(2026, 11, 10), date(2026, 11, 20))
    assert exc.fix.startswith("the dealership must add the Vehicle method for this vendor under Data Exchange > "
                              "OpenTrack, with Access Begins on or before 2026-11-09")
    assert len(sim.requests()) == 1  # never retried


def test_day_after_access_ends(client, sim):
    with pytest.raises(AccessNotGrantedError) as caught:
        client.vehicle_inventory(dealer("B2"), date(2026, 11, 21))

    exc = caught.value
    assert exc.code == "312"
    assert "it ended 2026-11-20" in exc.fix and "Data Exchange > OpenTrack" in exc.fix
    text = str(exc)
    for part in ("T1_B2", "enterprise T1", "company B2", "server itrack1.arkona.com", "Vehicle", "Fix:"):
        assert part in text
    assert len(sim.requests()) == 1


def test_method_never_granted(client, sim):
    with pytest.raises(AccessNotGrantedError) as caught:
        client.open_repair_orders(dealer("C3"), RUN)

    assert caught.value.code == "311"
    assert str(caught.value).endswith(
        "Fix: the dealership must add the Service method for this vendor under Data Exchange > OpenTrack, "
        "with Access Begins on or before 2026-11-23")
    assert caught.value.access_begins is None
    assert len(sim.requests()) == 1


@pytest.mark.parametrize("soap_version", ["1.1", "1.2"])
def test_bad_password_is_a_soap_fault_not_retried(make_client, sim, soap_version):
    client = make_client(password="wrong-password", soap_version=soap_version)

    with pytest.raises(AuthenticationError) as caught:
        client.vehicle_inventory(dealer("A1"), RUN)

    assert "FailedAuthentication" in str(caught.value) and "HTTP 500" in str(caught.value)
    assert not is_transient(caught.value)
    [call] = sim.requests()
    assert (call["status"], call["outcome"]) == (500, "auth_failed")


def test_unknown_dealer_and_wrong_server_name(client, sim):
    with pytest.raises(UnknownDealerError) as unknown:
        client.vehicle_inventory(dealer("X9"), RUN)
    with pytest.raises(UnknownDealerError) as server:
        client.vehicle_inventory(dealer("A1", server_name="itrack9.arkona.com"), RUN)

    assert unknown.value.code == "UNKNOWN_DEALER" and "T1_X9" in str(unknown.value)
    assert "itrack1.arkona.com" in str(server.value)  # the service says which server it knows
    assert "enterprise_code, company_number and server_name" in unknown.value.fix
    assert len(sim.requests()) == 2


def test_unknown_make_code_is_a_request_error(client):
    with pytest.raises(OpenTrackRequestError) as caught:
        client.parts_inventory(dealer("A1"), "MZ", RUN)

    assert caught.value.code == "UNKNOWN_MAKE_CODE" and "KI, SU" in str(caught.value)


def test_grant_ending_within_14_days_is_logged_as_warning(client, caplog):
    with caplog.at_level(logging.WARNING, logger="dealer_feed.opentrack"):
        client.vehicle_inventory(dealer("D4"), RUN)  # Vehicle ends 2026-11-30
        client.vehicle_inventory(dealer("A1"), RUN)  # open-ended

    [warning] = [r for r in caplog.records if "ending soon" in r.getMessage()]
    message = warning.getMessage()
    assert warning.levelno == logging.WARNING
    for part in ("T1_D4", "method Vehicle", "2026-11-30", "7 day(s)"):
        assert part in message


def test_grant_ending_later_than_14_days_is_not_logged(client, caplog):
    with caplog.at_level(logging.WARNING, logger="dealer_feed.opentrack"):
        client.vehicle_inventory(dealer("D4"), date(2026, 11, 15))  # 15 days before the end

    assert not [r for r in caplog.records if "ending soon" in r.getMessage()]


def test_grant_reported_as_a_fault_without_detail_is_a_typed_grant_error():
    """Some services report a missing grant as a SOAP 1.2 fault whose subcode is the code,
    with no Errors detail: still AccessNotGrantedError with the dealership's fix, not retried."""
    fault = (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault><e:Code>'
             b"<e:Value>e:Sender</e:Value><e:Subcode><e:Value>ACCESS_ENDED</e:Value></e:Subcode></e:Code>"
             b'<e:Reason><e:Text xml:lang="en">access ended</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>')
    with serve_bytes(fault, status=500, content_type="application/soap+xml") as served, \
            OpenTrackClient(served.url, "u", "p", timeout=2, max_attempts=3, backoff_seconds=0.01) as client:
        with pytest.raises(AccessNotGrantedError) as caught:
            client.vehicle_inventory(dealer("A1"), RUN)

    assert caught.value.code == "ACCESS_ENDED" and "access ended" in str(caught.value)
    assert caught.value.fix.startswith("the dealership must add the Vehicle method for this vendor")
    assert len(served.hits) == 1
