"""SOAP request envelopes for OpenTrack (1.1 or 1.2) with a WS-Security UsernameToken.

Two transports (docs/OPENTRACK.md "Transport"):

* `star` (default, what the real service's payloads show): one endpoint `WebService.asmx`,
  SOAPAction STAR_ACTION, header = Security + STAR `PayloadManifest`, body
  `ProcessMessage/payload/content/<{Op}>` with the operation element unqualified;
* `per-area`: `{Area}API.asmx`, SOAPAction `opentrack.dealertrack.com/{Op}`, body
  `<{Op} xmlns="opentrack.dealertrack.com">`.

Why hand-written templates instead of a SOAP toolkit at run time: the requests are tiny
and fixed in shape, the responses must be parsed streaming (which toolkits do not do),
and a template makes it obvious where the password goes (one element, never logged).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from xml.sax.saxutils import escape

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
OT_NS = "opentrack.dealertrack.com"
TR_NS = "opentrack.dealertrack.com/transitional"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
PASSWORD_TEXT = ("http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0"
                 "#PasswordText")
SOAP_VERSIONS = ("1.1", "1.2")
STAR_NS = "http://www.starstandards.org/webservices/2005/10/transport"
STAR_ACTION = f"{STAR_NS}/operations/ProcessMessage"
STAR_ENDPOINT = "WebService.asmx"
STAR, PER_AREA = "star", "per-area"
TRANSPORTS = (STAR, PER_AREA)
CONTENT_ID = "Content0"


def request_date_time(moment: datetime) -> str:
    """OpenTrack's request date-time format, yyyy-MM-ddTHH:mm:ssZ (UTC)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _elements(values: Mapping[str, str | Mapping[str, str] | None]) -> str:
    out = []
    for name, value in values.items():
        if value is None:
            continue
        inner = _elements(value) if isinstance(value, Mapping) else escape(value)
        out.append(f"<{name}>{inner}</{name}>")
    return "".join(out)


def build_envelope(
    version: str,
    operation: str,
    dealer: Mapping[str, str],
    params: Mapping[str, str | Mapping[str, str] | None],
    *,
    username: str,
    password: str,
    now: datetime,
    transport: str = STAR,
) -> bytes:
    """The request document: Header/Security{Timestamp, UsernameToken} (+ STAR PayloadManifest),
    Body/{operation}{Dealer, params} (inside ProcessMessage/payload/content over STAR)."""
    env = SOAP12 if version == "1.2" else SOAP11
    must = "true" if version == "1.2" else "1"
    body = _elements({"Dealer": dealer, **params})
    if transport == STAR:
        manifest = (f'<tran:PayloadManifest xmlns:tran="{STAR_NS}"><tran:manifest contentID="{CONTENT_ID}" '
                    f'namespaceURI="" element="{operation}" version="1.0"/></tran:PayloadManifest>')
        call = (f'<tran:ProcessMessage xmlns:tran="{STAR_NS}"><tran:payload><tran:content id="{CONTENT_ID}">'
                f'<{operation} xmlns="">{body}</{operation}></tran:content></tran:payload></tran:ProcessMessage>')
    else:
        manifest, call = "", f'<{operation} xmlns="{OT_NS}">{body}</{operation}>'
    return (
        f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{env}">'
        f'<soap:Header><wsse:Security soap:mustUnderstand="{must}" xmlns:wsse="{WSSE_NS}" xmlns:wsu="{WSU_NS}">'
        f"<wsu:Timestamp><wsu:Created>{request_date_time(now)}</wsu:Created>"
        f"<wsu:Expires>{request_date_time(now + timedelta(minutes=5))}</wsu:Expires></wsu:Timestamp>"
        f"<wsse:UsernameToken><wsse:Username>{escape(username)}</wsse:Username>"
        f'<wsse:Password Type="{PASSWORD_TEXT}">{escape(password)}</wsse:Password></wsse:UsernameToken>'
        f"</wsse:Security>{manifest}</soap:Header>"
        f"<soap:Body>{call}</soap:Body></soap:Envelope>"
    ).encode()


def headers(version: str, operation: str, transport: str = STAR) -> dict[str, str]:
    """HTTP headers of a call: SOAPAction for 1.1, the action parameter of the content type for 1.2."""
    action = STAR_ACTION if transport == STAR else f"{OT_NS}/{operation}"
    if version == "1.2":
        return {"Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"'}
    return {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{action}"'}
