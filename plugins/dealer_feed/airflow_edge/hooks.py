"""Airflow connections -> the clients and engines the steps use (credentials live only there).

- `warehouse_engine(conn_id)`: the warehouse Engine from Airflow's own SQL provider hook for
  the connection's type (PostgresHook / SqliteHook: their `sqlalchemy_url` / `get_uri`), or
  from a `generic` connection's extra `sqlalchemy_url`; then warehouse.engine.configure
  (SQLite pragmas and write locking, PostgreSQL pre-ping). No URL is parsed here.
- `opentrack_client(conn_id)`: the OpenTrack client of OpenTrackHook.
- `alert_webhook(conn_id)`: the http provider's HttpHook for the alert webhook.
- `landing_root()`: the landing root of DEALER_FEED_LANDING_URL: a pathlib.Path for a local
  directory / `file://`, else Airflow's ObjectStoragePath with the connection of
  DEALER_FEED_LANDING_CONN_ID (s3://: an `aws` connection, see landing_root).

OpenTrackHook builds an OpenTrackClient from an Airflow Connection.

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
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

if TYPE_CHECKING:  # the DAG factory imports this module at parse time: nothing heavy at module level
    import requests
    from dealer_feed.landing import LandingPath
    from airflow.providers.http.hooks.http import HttpHook
    from sqlalchemy.engine import Engine

    from dealer_feed.opentrack.client import OpenTrackClient

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
            from dealer_feed.opentrack.client import OpenTrackClient
            from dealer_feed.opentrack.errors import MissingConnectionError

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
        from dealer_feed.opentrack.errors import AuthenticationError, OpenTrackError, UnknownDealerError

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


def opentrack_client(conn_id: str) -> OpenTrackClient:
    """The OpenTrack client of the Airflow connection `conn_id` (the group's `connections.opentrack`)."""
    return OpenTrackHook(conn_id).client()


def warehouse_url(conn_id: str) -> Any:
    """The warehouse's SQLAlchemy URL from Airflow's SQL provider hook of the connection's type
    (postgres, sqlite), or a `generic` connection's extra `sqlalchemy_url`."""
    from dealer_feed.warehouse.errors import WarehouseError

    try:
        conn = BaseHook.get_connection(conn_id)
    except Exception as exc:  # noqa: BLE001 - Airflow raises its own not-found type
        raise WarehouseError(
            f"no Airflow connection {conn_id!r} for the warehouse ({type(exc).__name__})",
            fix=f"create it, e.g. AIRFLOW_CONN_{conn_id.upper()}='{{\"conn_type\": \"sqlite\", "
                f"\"host\": \"/path/warehouse.db\"}}' (README, 'Airflow connections it reads')",
        ) from None
    explicit = (conn.extra_dejson or {}).get("sqlalchemy_url")
    if explicit:
        return explicit
    try:
        hook = conn.get_hook()
        return hook.sqlalchemy_url
    except NotImplementedError:  # SqliteHook builds a URI string instead (as get_sqlalchemy_engine does)
        return hook.get_uri()
    except Exception as exc:  # noqa: BLE001 - no SQL hook for this connection type
        raise WarehouseError(
            f"connection {conn_id!r}: conn_type {conn.conn_type!r} is not a warehouse type ({exc})",
            fix="use conn_type postgres (host/port/schema/login/password), sqlite (host = the database file), "
                "or generic with extra {\"sqlalchemy_url\": ...}",
        ) from None


def warehouse_engine(conn_id: str) -> Engine:
    """The warehouse Engine of the Airflow connection `conn_id`. Inside a task the password is
    masked first: a password inside an extra `sqlalchemy_url` is not a connection field."""
    from dealer_feed.warehouse import make_engine

    engine = make_engine(warehouse_url(conn_id))
    if engine.url.password:
        from airflow.sdk.log import mask_secret

        mask_secret(engine.url.password)
    return engine


def alert_webhook(conn_id: str) -> HttpHook:
    """The http provider's hook for the alert webhook connection (host = base URL; extra
    `endpoint`, `headers`; login/password = basic auth)."""
    from airflow.providers.http.hooks.http import HttpHook

    return HttpHook(method="POST", http_conn_id=conn_id)


def landing_root(url: str | None = None, conn_id: str | None = None) -> LandingPath:
    """The landing root every task and `dealer-feed` command uses (dealer_feed.landing holds the
    setting: DEALER_FEED_LANDING_URL, DEALER_FEED_LANDING_CONN_ID).

    A local directory or `file://` URL is a pathlib.Path (the default: data/landing). Any other
    scheme is Airflow's ObjectStoragePath on the landing connection: for `s3://bucket/prefix`, an
    `aws` connection (login = access key id, password = secret access key, extra `endpoint_url`
    for an S3-compatible store such as MinIO, `region_name`), read by the amazon provider's
    s3fs filesystem (airflow.providers.amazon.aws.fs.s3). The credentials stay in the connection:
    the path's text is `scheme://bucket/key` (dealer_feed.landing.url_of), never a secret; inside a
    task the secret key is masked anyway (Airflow masks connection passwords).
    """
    from dealer_feed.landing import landing_conn_id, landing_url, local_path

    url = url or landing_url()
    local = local_path(url)
    if local is not None:
        return local
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(url, conn_id=conn_id or landing_conn_id())
