"""OpenTrackHook: builds an OpenTrackClient from an Airflow Connection (credentials live only there).

Connection fields: host = base URL including scheme (e.g. `https://ot.dms.dealertrack.com/`,
or the simulator's `http://127.0.0.1:PORT/`); login / password = the vendor's OpenTrack
credentials; extra (JSON, all optional) = client settings: timeout, max_attempts,
max_wait_seconds, requests_per_second, max_concurrency, backoff_seconds,
max_backoff_seconds, max_response_bytes, soap_version, transport (`star`, the default: one
`WebService.asmx` with STAR ProcessMessage, as the real service's payloads show; or `per-area`:
`VehicleAPI.asmx`, `PartsAPI.asmx`, ...). A host without a scheme is completed from
`extra.scheme` (default https), port and schema (path), so URI-style connections work too.
"""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace
from typing import Any

import requests
from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed.opentrack.errors import AuthenticationError, MissingConnectionError, OpenTrackError, UnknownDealerError

CLIENT_OPTIONS: dict[str, type] = {
    "timeout": float, "max_attempts": int, "max_wait_seconds": float, "requests_per_second": float,
    "max_concurrency": int, "backoff_seconds": float, "max_backoff_seconds": float, "soap_version": str,
    "transport": str, "max_response_bytes": int,
}
"""Connection extras passed to OpenTrackClient, with their types (extras are often strings)."""


class OpenTrackHook(BaseHook):
    """Airflow hook for DealerTrack OpenTrack, shaped like HttpHook."""

    conn_name_attr = "opentrack_conn_id"
    default_conn_name = "opentrack_default"
    conn_type = "opentrack"
    hook_name = "DealerTrack OpenTrack"

    def __init__(self, opentrack_conn_id: str = default_conn_name, **client_options: Any) -> None:
        """`client_options` override the connection's extras (e.g. a shorter timeout in a check)."""
        super().__init__()
        self.opentrack_conn_id = opentrack_conn_id
        self._overrides = client_options
        self._client: OpenTrackClient | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Base URL", "login": "Vendor username", "password": "Vendor password"},
            "placeholders": {
                "host": "https://ot.dms.dealertrack.com/",
                "extra": '{"transport": "star", "timeout": 60, "max_attempts": 4, "max_wait_seconds": 120, '
                         '"requests_per_second": 20}',
            },
        }

    def client(self) -> OpenTrackClient:
        """The client for this connection (built once per hook)."""
        if self._client is None:
            try:
                conn = self.get_connection(self.opentrack_conn_id)
            except AirflowNotFoundException:
                raise MissingConnectionError(f"no Airflow connection {self.opentrack_conn_id!r} is defined "
                                             "for OpenTrack") from None
            extra = conn.extra_dejson or {}
            options = {name: kind(extra[name]) for name, kind in CLIENT_OPTIONS.items() if name in extra}
            self._client = OpenTrackClient(
                base_url(conn.host or "", extra.get("scheme"), conn.port, conn.schema),
                conn.login or "", conn.password or "", **(options | self._overrides),
            )
        return self._client

    def get_conn(self) -> requests.Session:
        """The client's keep-alive HTTP session (pool sized to max_concurrency)."""
        return self.client().session

    def test_connection(self) -> tuple[bool, str]:
        """Reachable and credentials accepted? Calls VehicleLookup for a dealer that cannot exist:
        the service checks credentials first, so UNKNOWN_DEALER proves they work."""
        try:
            client = self.client()
        except (ValueError, OpenTrackError) as exc:
            return False, str(exc)
        probe = SimpleNamespace(enterprise_code="__CONNECTION_TEST__", company_number="__", server_name="")
        try:
            client.vehicle_lookup(probe, datetime.now(timezone.utc), vin="00000000000000000")
        except UnknownDealerError:
            return True, f"OpenTrack at {client.base_url} reachable; vendor {client.username!r} credentials accepted"
        except AuthenticationError as exc:
            return False, f"OpenTrack at {client.base_url} rejected the vendor credentials: {exc.what}"
        except OpenTrackError as exc:
            return False, str(exc)
        return True, f"OpenTrack at {client.base_url} reachable; vendor {client.username!r} credentials accepted"


def base_url(host: str, scheme: str | None, port: int | None, path: str | None) -> str:
    """The service base URL from connection fields (host may already be a full URL)."""
    if "://" in host:
        return host
    netloc = f"{host}:{port}" if port else host
    return f"{scheme or 'https'}://{netloc}/{(path or '').strip('/')}".rstrip("/") + "/"
