"""Client pieces without a server: errors, transient flags, rate limiter, envelopes, repr."""

from __future__ import annotations

import threading
import time
from datetime import date, datetime, timezone

import pytest

from dealer_feed.config import Dealer
from dealer_feed.opentrack import envelope
from dealer_feed.contract.identity import as_utc as as_utc_datetime
from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed.opentrack.errors import (
    AccessNotGrantedError,
    AuthenticationError,
    MalformedResponseError,
    OpenTrackError,
    ServiceUnavailableError,
    ThrottledError,
    UnknownDealerError,
    UnsafeResponseError,
    is_transient,
)
from dealer_feed.opentrack.ratelimit import RateLimiter

DEALER = Dealer(enterprise_code="ZE", company_number="ZE7", server_name="arkonap.arkona.com")


@pytest.mark.parametrize(("cls", "transient"), [
    (AuthenticationError, False), (AccessNotGrantedError, False), (UnknownDealerError, False),
    (UnsafeResponseError, False), (ServiceUnavailableError, True), (ThrottledError, True),
    (MalformedResponseError, True),
])
def test_transient_flags(cls, transient):
    exc = cls("x", dealer=DEALER, method="Vehicle")
    assert exc.transient is transient and is_transient(exc) is transient
    assert not is_transient(ValueError("x"))


def test_message_names_dealer_method_what_and_fix():
    exc = AccessNotGrantedError("access not granted", dealer=DEALER, method="Parts", operation="PartsInventory",
                                fix="add it")
    exc.attempts = 1
    assert str(exc) == ("OpenTrack PartsInventory (method Parts) for dealer ZE_ZE7 (enterprise ZE, company ZE7, "
                        "server arkonap.arkona.com): access not granted. Fix: add it")
    assert (exc.dealer_id, exc.method) == ("ZE_ZE7", "Parts")
    assert isinstance(exc, OpenTrackError)


def test_rate_limiter_spaces_calls_across_threads():
    limiter = RateLimiter(50)
    granted: list[tuple[float, float]] = []  # (slot, when the caller went on)
    lock = threading.Lock()

    def work():
        for _ in range(5):
            slot = limiter.acquire()
            went_on = time.monotonic()
            with lock:
                granted.append((slot, went_on))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    slots = sorted(slot for slot, _ in granted)
    assert len(slots) == 20
    assert all(b - a >= 0.02 - 1e-9 for a, b in zip(slots, slots[1:]))  # 50/s, evenly spaced
    assert all(went_on >= slot for slot, went_on in granted)  # nobody went before its slot
    assert max(went_on for _, went_on in granted) - min(went_on for _, went_on in granted) >= 19 * 0.02


@pytest.mark.parametrize("version", ["1.1", "1.2"])
def test_envelope_escapes_and_carries_username_token(version):
    body = envelope.build_envelope(version, "VehicleLookup", {"EnterpriseCode": "Z&E", "CompanyNumber": "1"},
                                   {"LookupParms": {"VIN": "<x>", "StockNumber": None}}, username="u",
                                   password="p<w>", now=datetime(2026, 1, 1, tzinfo=timezone.utc)).decode()
    assert "<EnterpriseCode>Z&amp;E</EnterpriseCode>" in body and "<VIN>&lt;x&gt;</VIN>" in body
    assert "StockNumber" not in body and "p&lt;w&gt;</wsse:Password>" in body
    assert envelope.SOAP12 in body if version == "1.2" else envelope.SOAP11 in body


def test_client_repr_hides_password_and_validates_url():
    client = OpenTrackClient("http://h/", "u", "sekret-pass")
    assert "sekret-pass" not in repr(client) and "sekret-pass" not in str(vars(client))
    with pytest.raises(ValueError, match="http"):
        OpenTrackClient("ot.dms.dealertrack.com", "u", "p")


def test_as_of_normalisation():
    assert as_utc_datetime(date(2026, 11, 23)) == datetime(2026, 11, 23, tzinfo=timezone.utc)
    assert as_utc_datetime(datetime(2026, 11, 23, 6)) == datetime(2026, 11, 23, 6, tzinfo=timezone.utc)
