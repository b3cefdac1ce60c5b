"""Typed OpenTrack errors: one class per thing that can go wrong, each with a fix line.

Why typed: on-call staff read the message (which dealer, which method, what happened,
what to do), and the Airflow layer reads `transient` to decide between retrying (service
down, throttled, garbled answer) and failing at once (bad credentials, missing grant,
unknown dealer): retrying those only delays the page. Messages never contain the
password: the client scrubs any text that came from the wire before it gets here.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Protocol

from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.contract.identity import dealer_id


class DealerRef(Protocol):
    """What an error needs to name a dealer (config.Dealer satisfies it)."""

    enterprise_code: str
    company_number: str
    server_name: str


GRANT_FIX = ("the dealership must add the {method} method for this vendor under Data Exchange > OpenTrack, "
             "with Access Begins on or before {run_date}")


class OpenTrackError(DealerFeedError):
    """Base class. Attributes: dealer_id, enterprise_code, company_number, server_name,
    method, operation, code (service error code, if any), fix, attempts, transient."""

    transient: ClassVar[bool] = False
    default_fix: ClassVar[str] = "see docs/OPENTRACK.md (error table)"

    def __init__(
        self,
        what: str,
        *,
        dealer: DealerRef | None = None,
        method: str | None = None,
        operation: str | None = None,
        code: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.what = what
        self.enterprise_code = dealer.enterprise_code if dealer else None
        self.company_number = dealer.company_number if dealer else None
        self.server_name = dealer.server_name if dealer else None
        self.method = method
        self.operation = operation
        self.code = code
        self.fix = fix or self.default_fix
        self.attempts = 1
        super().__init__(what)

    @property
    def dealer_id(self) -> str | None:
        return dealer_id(self.enterprise_code, self.company_number) if self.enterprise_code else None

    def __str__(self) -> str:
        subject = f"OpenTrack {self.operation or 'call'}"
        if self.method:
            subject += f" (method {self.method})"
        if self.dealer_id:
            subject += (f" for dealer {self.dealer_id} (enterprise {self.enterprise_code}, company "
                        f"{self.company_number}, server {self.server_name or '-'})")
        tries = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        return f"{subject}: {self.what.rstrip('.')}{tries}. Fix: {self.fix}"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class AuthenticationError(OpenTrackError):
    """The service rejected the vendor username/password (SOAP Fault)."""

    default_fix = ("check the login and password of the OpenTrack Airflow connection: they must be the vendor "
                   "credentials DealerTrack issued for this vendor")


class AccessNotGrantedError(OpenTrackError):
    """The dealership has not granted this method to the vendor on the run date.

    `access_begins` / `access_ends` carry the grant window when the service told us.
    """

    def __init__(self, what: str, *, access_begins: date | None = None, access_ends: date | None = None,
                 **kwargs) -> None:
        super().__init__(what, **kwargs)
        self.access_begins = access_begins
        self.access_ends = access_ends


class UnknownDealerError(OpenTrackError):
    """The service knows no dealer with this enterprise code / company number / server name."""

    default_fix = ("check enterprise_code, company_number and server_name of this dealer in the group config "
                   "against DealerTrack (lower right corner of the DMS, or Data Exchange > information)")


class OpenTrackRequestError(OpenTrackError):
    """The service refused the request itself (malformed, wrong endpoint, unknown make code)."""

    default_fix = "check the connection's base URL and the dealer's settings in the group config"


class UnsafeResponseError(OpenTrackError):
    """The response carried a DTD / entity declarations (XXE, entity expansion), or hit the XML
    parser's safety limits (entity amplification, nesting depth, text node size); refused."""

    default_fix = ("do not retry: the answer was not a SOAP message (a SOAP message must not contain a DTD); "
                   "check that the connection's base URL points at OpenTrack and not at a proxy or another host")


class ResponseTooLargeError(OpenTrackError):
    """The answer is larger than the client's `max_response_bytes` (announced by Content-Length
    or counted while streaming): refused before it fills memory. Permanent: a retry gets the
    same answer."""

    default_fix = ("if this dealer's answer really is that large, raise max_response_bytes in the OpenTrack "
                   "connection's extra (docs/OPENTRACK.md); otherwise check that the connection's base URL points "
                   "at OpenTrack")


class MissingConnectionError(OpenTrackError):
    """The group's OpenTrack Airflow connection (`connections.opentrack`) is not defined."""

    default_fix = ("define the connection (AIRFLOW_CONN_<ID> or `airflow connections add`, conn type opentrack: "
                   "host = base URL, login / password = the vendor credentials; docs/OPENTRACK.md \"Airflow "
                   "connection\"), or name an existing one in the group file's connections.opentrack")


class SchemaDriftError(OpenTrackError):
    """The answer holds an element that is neither the operation's records nor an error (the
    service changed its payload, or another operation answered). Permanent: a retry gets the
    same document, and reading it as "0 rows" would silently load nothing."""

    default_fix = ("do not retry: the OpenTrack payload changed shape. Compare the element named above with "
                   "docs/OPENTRACK.md (record names per operation), adapt opentrack/client.py's operation table "
                   "and check the connection's transport (star / per-area) matches the base URL")

    def __init__(self, what: str, *, element: str = "", **kwargs) -> None:
        super().__init__(what, **kwargs)
        self.element = element


class TransientOpenTrackError(OpenTrackError):
    """May succeed on retry: the client retries these itself, then Airflow retries the task."""

    transient = True
    default_fix = "none needed if a retry succeeds; if it persists, check OpenTrack's status and the network"


class ServiceUnavailableError(TransientOpenTrackError):
    """HTTP 5xx, timeout, refused or dropped connection."""


class ThrottledError(TransientOpenTrackError):
    """The service answered that the vendor exceeds its request rate."""

    default_fix = "lower requests_per_second of the OpenTrack connection (extra) or run fewer dealers at once"

    def __init__(self, what: str, *, retry_after: float | None = None, **kwargs) -> None:
        super().__init__(what, **kwargs)
        self.retry_after = retry_after


class MalformedResponseError(TransientOpenTrackError):
    """The response was not a complete, well-formed OpenTrack answer (e.g. truncated XML)."""


def is_transient(exc: BaseException) -> bool:
    """True if retrying the call may help (only our transient errors say so)."""
    return isinstance(exc, OpenTrackError) and exc.transient
