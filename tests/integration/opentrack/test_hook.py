"""OpenTrackHook: an Airflow Connection (env var) -> client; test_connection against the simulator."""

from __future__ import annotations

import json

import pytest
import requests
from ot_support import PASSWORD, RUN, USERNAME, dealer

from dealer_feed.airflow_edge.hooks import OpenTrackHook, base_url


@pytest.fixture
def connection(sim, monkeypatch):
    def set_conn(conn_id: str = "opentrack_default", **fields) -> str:
        conn = {"conn_type": "opentrack", "host": sim.url, "login": USERNAME, "password": PASSWORD,
                "extra": {"timeout": "2", "max_attempts": 2, "backoff_seconds": 0.01}} | fields
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
        return conn_id

    return set_conn


def test_hook_attributes_like_http_hook():
    assert (OpenTrackHook.conn_name_attr, OpenTrackHook.default_conn_name, OpenTrackHook.conn_type,
            OpenTrackHook.hook_name) == ("opentrack_conn_id", "opentrack_default", "opentrack", "DealerTrack OpenTrack")


def test_hook_builds_client_from_connection(connection):
    hook = OpenTrackHook(connection())
    client = hook.client()

    assert isinstance(hook.get_conn(), requests.Session) and hook.get_conn() is client.session
    assert (client.timeout, client.max_attempts, client.backoff_seconds) == (2.0, 2, 0.01)
    assert client.vehicle_inventory(dealer("A1"), RUN).num_rows > 0
    assert PASSWORD not in repr(client)


@pytest.mark.parametrize(("extra", "transport", "service"), [
    ({}, "star", "WebService"),
    ({"transport": "per-area"}, "per-area", "VehicleAPI"),
])
def test_transport_is_a_connection_field(connection, sim, extra, transport, service):
    client = OpenTrackHook(connection(extra={"timeout": "2"} | extra)).client()

    assert client.transport == transport and client.vehicle_inventory(dealer("A1"), RUN).num_rows > 0
    [call] = sim.requests(operation="VehicleInventory")
    assert (call["transport"], call["service"]) == (transport, service)


def test_unknown_transport_is_refused(connection):
    with pytest.raises(ValueError, match="transport must be one of"):
        OpenTrackHook(connection(extra={"transport": "soap"})).client()


def test_test_connection_ok_and_bad_password(connection):
    ok, message = OpenTrackHook(connection()).test_connection()
    bad, why = OpenTrackHook(connection("opentrack_bad", password="nope")).test_connection()

    assert ok and "credentials accepted" in message
    assert not bad and "rejected the vendor credentials" in why and "nope" not in why


def test_test_connection_unreachable(connection):
    ok, message = OpenTrackHook(connection(host="http://127.0.0.1:9/")).test_connection()

    assert not ok and "could not reach" in message


def test_base_url_from_uri_style_fields():
    assert base_url("https://ot.dms.dealertrack.com/", None, None, None) == "https://ot.dms.dealertrack.com/"
    assert base_url("otstaging.arkona.com", None, None, "OpenTrack") == "https://otstaging.arkona.com/OpenTrack/"
    assert base_url("127.0.0.1", "http", 8080, "") == "http://127.0.0.1:8080/"
