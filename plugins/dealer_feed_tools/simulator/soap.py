"""The simulator's side of the wire: operations, request parsing, streamed responses, faults.

Responses are written as a stream of byte chunks built from an iterator of rows, so a
50,000-vehicle inventory is never a whole document in memory (the server sends the
chunks with HTTP chunked encoding as they are produced).

Two dialects from the same world (docs/OPENTRACK.md "Transport"), SOAP 1.1 or 1.2 alike:

    star (WebService.asmx; what the real service's payloads show):
    Envelope/Body/ProcessMessageResponse (STAR transport ns)/payload/content
      /{Op}Response xmlns=""
        AccessWindow{Method, AccessBegins, AccessEnds}   (simulator convention, optional)
        {Record}{field...}*                              (Vehicle, Part, OpenRepairOrder, Customer)
        Error{Code, Message}*                            (in-band errors, directly under the root)

    per-area ({Area}API.asmx; every element qualified in opentrack.dealertrack.com, as the
    per-area WSDL's elementFormDefault="qualified" declares):
    Envelope/Body/{Op}Response/{Op}Result/{AccessWindow?, {Record}*, Errors{Error*}?}

Vehicles (new ones) carry nested OptionalFields/Options lists with their own Description;
repair orders carry Details/OpenRepairOrderDetail lines, as the real records do.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from lxml import etree

from dealer_feed.contract.identity import dealer_id
from dealer_feed_tools.simulator.inventory import VEHICLE_FIELDS
from dealer_feed_tools.simulator.records import (
    CUSTOMER_FIELDS,
    PARTS_FIELDS,
    REPAIR_ORDER_FIELDS,
    REPAIR_ORDER_LINE_FIELDS,
    repair_order_lines,
)

SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
OT_NS = "opentrack.dealertrack.com"
STAR_NS = "http://www.starstandards.org/webservices/2005/10/transport"
STAR_ACTION = f"{STAR_NS}/operations/ProcessMessage"
STAR_SERVICE = "WebService"
STAR, PER_AREA = "star", "per-area"
WSSE_NS = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
CONTENT_TYPES = {"1.1": "text/xml; charset=utf-8", "1.2": "application/soap+xml; charset=utf-8"}
CHUNK_BYTES = 64 * 1024

OPTION_CODES = (("AWD", "ALL WHEEL DRIVE"), ("NAV", "NAVIGATION"), ("SUN", "SUNROOF"), ("HTS", "HEATED SEATS"),
                ("TOW", "TOW PACKAGE"), ("PRM", "PREMIUM AUDIO"))


@dataclass(frozen=True)
class OperationSpec:
    """One served operation: its endpoint, the access method it needs, its parameters."""

    name: str
    service: str
    method: str
    params: tuple[tuple[str, tuple[str, ...]], ...]
    """Body children after Dealer: (element, its children) — no children: a plain string."""
    record: str
    """The record element's name (real records are named by type)."""
    fields: tuple[str, ...]
    required: tuple[str, ...] = ()


OPERATIONS: dict[str, OperationSpec] = {
    op.name: op
    for op in (
        OperationSpec("VehicleInventory", "VehicleAPI", "Vehicle",
                      (("LookupParms", ("Type", "FromDateInInventory", "ToDateInInventory")),),
                      "Vehicle", VEHICLE_FIELDS),
        OperationSpec("VehicleLookup", "VehicleAPI", "Vehicle", (("VIN", ()), ("StockNumber", ())),
                      "Vehicle", VEHICLE_FIELDS),
        OperationSpec("CustomerLookup", "CustomerAPI", "Customer", (("CustomerNumber", ()),),
                      "Customer", CUSTOMER_FIELDS, required=("CustomerNumber",)),
        OperationSpec("OpenRepairOrderLookup", "ServiceAPI", "Service",
                      (("LookupParms", ("RepairOrderNumber", "VIN", "StockNumber", "CreatedDateTimeStart",
                                        "CreatedDateTimeEnd", "ModifiedAfter")),),
                      "OpenRepairOrder", REPAIR_ORDER_FIELDS),
        OperationSpec("PartsInventory", "PartsAPI", "Parts", (("InventoryParms", ("Manufacturer", "PartNumber")),),
                      "Part", PARTS_FIELDS, required=("Manufacturer",)),
    )
}
SERVICES: dict[str, tuple[OperationSpec, ...]] = {}
for _op in OPERATIONS.values():
    SERVICES[_op.service] = (*SERVICES.get(_op.service, ()), _op)


class SoapClientFault(ValueError):
    """The request is not one we can serve (answered with a Client/Sender SOAP fault)."""


@dataclass
class SoapRequest:
    version: str
    operation: OperationSpec
    transport: str = PER_AREA
    username: str = ""
    password: str = field(default="", repr=False)
    enterprise_code: str = ""
    company_number: str = ""
    server_name: str = ""
    params: dict[str, str] = field(default_factory=dict)

    @property
    def dealer_id(self) -> str:
        return dealer_id(self.enterprise_code, self.company_number)


_SAFE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _local(tag: object) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def soap_version(content_type: str) -> str:
    """The SOAP version a request's Content-Type announces (1.2: application/soap+xml)."""
    return "1.2" if "application/soap+xml" in content_type else "1.1"


def parse_request(body: bytes, content_type: str) -> SoapRequest:
    """Parse a SOAP 1.1/1.2 request; SoapClientFault says what is wrong with it."""
    version = soap_version(content_type)
    try:
        root = etree.fromstring(body, _SAFE_PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapClientFault(f"request is not well-formed XML: {exc}") from None
    if root.getroottree().docinfo.internalDTD is not None:
        raise SoapClientFault("a SOAP message must not contain a document type declaration")
    envelope_ns = SOAP12 if version == "1.2" else SOAP11
    if root.tag != f"{{{envelope_ns}}}Envelope":
        raise SoapClientFault(f"expected a SOAP {version} Envelope (content type {content_type!r}), got {root.tag}")
    body_el = root.find(f"{{{envelope_ns}}}Body")
    if body_el is None or len(body_el) == 0:
        raise SoapClientFault("SOAP Body is missing or empty")
    call = body_el[0]
    transport = PER_AREA
    if _local(call.tag) == "ProcessMessage":
        transport = STAR
        content = call.find(f"{{{STAR_NS}}}payload/{{{STAR_NS}}}content")
        if call.tag != f"{{{STAR_NS}}}ProcessMessage" or content is None or len(content) == 0:
            raise SoapClientFault("ProcessMessage needs payload/content with the request element (STAR transport "
                                  "namespace)")
        call = content[0]
        if etree.QName(call).namespace:
            raise SoapClientFault(f"the STAR payload's request element must be unqualified, got {call.tag}")
    op = OPERATIONS.get(_local(call.tag))
    if op is None:
        raise SoapClientFault(f"unknown operation {_local(call.tag)!r} (served: {', '.join(OPERATIONS)})")
    request = SoapRequest(version=version, operation=op, transport=transport)
    header = root.find(f"{{{envelope_ns}}}Header")
    if header is not None:
        for el in header.iter(f"{{{WSSE_NS}}}Username", f"{{{WSSE_NS}}}Password"):
            setattr(request, _local(el.tag).lower(), _text(el))
    for child in call:
        name = _local(child.tag)
        if name == "Dealer":
            for part in child:
                key = {"EnterpriseCode": "enterprise_code", "CompanyNumber": "company_number",
                       "ServerName": "server_name"}.get(_local(part.tag))
                if key:
                    setattr(request, key, _text(part))
        elif len(child):
            request.params.update({_local(p.tag): _text(p) for p in child if _text(p)})
        elif _text(child):
            request.params[name] = _text(child)
    if not request.enterprise_code or not request.company_number:
        raise SoapClientFault("Dealer/EnterpriseCode and Dealer/CompanyNumber are required")
    missing = [p for p in op.required if not request.params.get(p)]
    if missing:
        raise SoapClientFault(f"{op.name}: required parameter(s) missing: {', '.join(missing)}")
    return request


def _envelope_open(version: str) -> str:
    ns = SOAP12 if version == "1.2" else SOAP11
    return f'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="{ns}"><soap:Body>'


_ENVELOPE_CLOSE = "</soap:Body></soap:Envelope>"


def _element(name: str, value: str | None) -> str:
    return "" if value is None else f"<{name}>{escape(value)}</{name}>"


def _options(vin: str | None) -> str:
    """Nested OptionalFields and Options lists on new vehicles, each entry with its own Description
    (clients must not let it leak into the vehicle)."""
    key = zlib.crc32((vin or "").encode())
    picks = {OPTION_CODES[key % len(OPTION_CODES)], OPTION_CODES[(key >> 8) % len(OPTION_CODES)]}
    optional = ("<OptionalFields><VehicleOptionalField><OptionNumber>3</OptionNumber><Description>Pack</Description>"
                "<FieldType>N</FieldType><NumericFieldValue>0.00</NumericFieldValue></VehicleOptionalField>"
                "</OptionalFields>")
    return optional + "<Options>" + "".join(
        f"<VehicleOption><OptionCode>{code}</OptionCode><Description>{text}</Description></VehicleOption>"
        for code, text in sorted(picks)
    ) + "</Options>"


def _details(order: dict[str, str | None]) -> str:
    """A repair order's Details/OpenRepairOrderDetail lines."""
    return "<Details>" + "".join(
        "<OpenRepairOrderDetail>" + "".join(_element(k, line[k]) for k in REPAIR_ORDER_LINE_FIELDS)
        + "</OpenRepairOrderDetail>" for line in repair_order_lines(order)
    ) + "</Details>"


def result_chunks(
    version: str,
    op: OperationSpec,
    rows: Iterable[dict[str, str | None]],
    *,
    transport: str = STAR,
    window: tuple[str, str, str] | None = None,
    errors: Iterable[tuple[str, str]] = (),
    counter: list[int] | None = None,
) -> Iterator[bytes]:
    """The response document as UTF-8 chunks of about CHUNK_BYTES, rows written as they come.

    `window` = (method, begins yyyyMMdd, ends yyyyMMdd or "0"); `counter[0]` counts rows.
    """
    if transport == STAR:
        parts = [_envelope_open(version), f'<tran:ProcessMessageResponse xmlns:tran="{STAR_NS}"><tran:payload>'
                 f'<tran:content id="Content0"><{op.name}Response xmlns="">']
        close = f"</{op.name}Response></tran:content></tran:payload></tran:ProcessMessageResponse>"
    else:
        parts = [_envelope_open(version), f'<{op.name}Response xmlns="{OT_NS}"><{op.name}Result>']
        close = f"</{op.name}Result></{op.name}Response>"
    if window:
        method, begins, ends = window
        parts.append(f"<AccessWindow><Method>{method}</Method><AccessBegins>{begins}</AccessBegins>"
                     f"<AccessEnds>{ends}</AccessEnds></AccessWindow>")
    size = sum(map(len, parts))
    record = op.record
    with_options, with_lines = record == "Vehicle", record == "OpenRepairOrder"
    for row in rows:
        text = f"<{record}>" + "".join(_element(k, v) for k, v in row.items())
        if with_options and row.get("TypeNU") == "N":
            text += _options(row.get("VIN"))
        elif with_lines:
            text += _details(row)
        text += f"</{record}>"
        parts.append(text)
        size += len(text)
        if counter is not None:
            counter[0] += 1
        if size >= CHUNK_BYTES:
            yield "".join(parts).encode()
            parts, size = [], 0
    errors = "".join(f"<Error>{_element('Code', code)}{_element('Message', message)}</Error>"
                     for code, message in errors)
    if errors:
        parts.append(errors if transport == STAR else f"<Errors>{errors}</Errors>")
    parts.append(close + _ENVELOPE_CLOSE)
    yield "".join(parts).encode()


def fault_document(version: str, code: str, message: str, *, sender: bool, subcode: str | None = None) -> bytes:
    """A SOAP Fault (HTTP 500) in the request's SOAP version, with our Error{Code,Message} in the detail.

    `sender`: the caller is at fault (1.1 `Client` / 1.2 `Sender`) rather than the service
    (`Server` / `Receiver`). `subcode` (e.g. `wsse:FailedAuthentication`) refines it: in
    SOAP 1.1 it replaces the fault code, in 1.2 it is the Subcode value.
    """
    detail = f'<Error xmlns="{OT_NS}">{_element("Code", code)}{_element("Message", message)}</Error>'
    wsse = f' xmlns:wsse="{WSSE_NS}"' if subcode and subcode.startswith("wsse:") else ""
    if version == "1.2":
        value = "soap:Sender" if sender else "soap:Receiver"
        sub = f"<soap:Subcode><soap:Value{wsse}>{subcode}</soap:Value></soap:Subcode>" if subcode else ""
        fault = (f"<soap:Fault><soap:Code><soap:Value>{value}</soap:Value>{sub}</soap:Code>"
                 f'<soap:Reason><soap:Text xml:lang="en">{escape(message)}</soap:Text></soap:Reason>'
                 f"<soap:Detail>{detail}</soap:Detail></soap:Fault>")
    else:
        faultcode = subcode or ("soap:Client" if sender else "soap:Server")
        fault = (f"<soap:Fault><faultcode{wsse}>{faultcode}</faultcode><faultstring>{escape(message)}</faultstring>"
                 f"<detail>{detail}</detail></soap:Fault>")
    return (_envelope_open(version) + fault + _ENVELOPE_CLOSE).encode()
