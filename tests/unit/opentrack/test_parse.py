"""Streaming parse: rows as delivered, batches, faults, in-band errors, truncation, hostile XML."""

from __future__ import annotations

from datetime import date

import pytest

from dealer_feed.opentrack import parse
from dealer_feed.opentrack.parse import ResponseParseError, parse_response

HEAD = (b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/">'
        b'<soap:Body><ProcessMessageResponse xmlns="http://www.starstandards.org/webservices/2005/10/transport">'
        b'<payload><content id="Content0"><VehicleInventoryResponse xmlns="">')
TAIL = b"</VehicleInventoryResponse></content></payload></ProcessMessageResponse></soap:Body></soap:Envelope>"
FIELDS = ("VIN", "StockNumber", "DateDelivered")


def spec(columns=FIELDS) -> parse.RecordSpec:
    return parse.RecordSpec("VehicleInventory", "Vehicle", FIELDS, tuple(columns), frozenset({"Options"}))


def _doc(body: bytes) -> bytes:
    return HEAD + body + TAIL


def _chunks(data: bytes, size: int = 7):
    return (data[i:i + size] for i in range(0, len(data), size))


def test_rows_kept_verbatim_absent_is_null_nested_ignored():
    body = (b"<AccessWindow><Method>Vehicle</Method><AccessBegins>20260101</AccessBegins><AccessEnds>0</AccessEnds>"
            b"</AccessWindow><Vehicle><VIN> V1 </VIN><StockNumber></StockNumber><DateDelivered>0</DateDelivered>"
            b"<Options><VehicleOption><OptionCode>X</OptionCode><Description>D</Description></VehicleOption>"
            b"</Options><Unknown>x</Unknown></Vehicle>"
            b"<Vehicle><VIN>V2 &amp; co</VIN></Vehicle>")
    parsed = parse_response(_chunks(_doc(body)), spec(("vin", "stock_number", "date_delivered")))

    assert parsed.table.to_pylist() == [
        {"vin": " V1 ", "stock_number": "", "date_delivered": "0"},
        {"vin": "V2 & co", "stock_number": None, "date_delivered": None},
    ]
    assert parsed.window == parse.AccessWindow("Vehicle", date(2026, 1, 1), None)
    assert parsed.errors == [] and parsed.fault is None
    assert parsed.unknown_fields == {"Unknown": 1}  # nested Options are known, not counted


def test_many_rows_span_batches(monkeypatch):
    monkeypatch.setattr(parse, "BATCH_ROWS", 10)
    def result(i: int) -> bytes:  # fields absent, empty, and out of order, varying by row
        stock = b"<StockNumber>S%d</StockNumber>" % i if i % 3 else b""
        delivered = b"<DateDelivered>%s</DateDelivered>" % (b"D%d" % i if i % 2 else b"")
        return b"<Vehicle>" + delivered + b"<VIN>V%d</VIN>" % i + stock + b"</Vehicle>"

    table = parse_response([_doc(b"".join(result(i) for i in range(25)))], spec()).table
    assert table.to_pylist() == [
        {"VIN": f"V{i}", "StockNumber": f"S{i}" if i % 3 else None, "DateDelivered": f"D{i}" if i % 2 else ""}
        for i in range(25)
    ]
    assert [table.column(c).num_chunks for c in FIELDS] == [3, 3, 3]


def test_in_band_errors():
    parsed = parse_response([_doc(b"<Errors><Error><Code>ACCESS_ENDED</Code><Message>m</Message></Error></Errors>")],
                            spec())
    assert parsed.errors == [parse.ServiceError("ACCESS_ENDED", "m")] and parsed.table.num_rows == 0


@pytest.mark.parametrize(("document", "fault"), [
    (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault>'
     b"<faultcode>s:Client</faultcode><faultstring>bad</faultstring></s:Fault></s:Body></s:Envelope>",
     parse.Fault("Client", None, "bad")),
    (b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><e:Fault><e:Code><e:Value>e:Sender'
     b"</e:Value><e:Subcode><e:Value>wsse:FailedAuthentication</e:Value></e:Subcode></e:Code><e:Reason>"
     b'<e:Text xml:lang="en">no</e:Text></e:Reason></e:Fault></e:Body></e:Envelope>',
     parse.Fault("Sender", "FailedAuthentication", "no")),
])
def test_soap_11_and_12_faults(document, fault):
    assert parse_response([document], spec()).fault == fault


def test_truncated_document_is_malformed_not_unsafe():
    data = _doc(b"<Vehicle><VIN>V1</VIN></Vehicle>")
    with pytest.raises(ResponseParseError) as caught:
        parse_response(_chunks(data[: len(data) // 2]), spec())
    assert not caught.value.unsafe


@pytest.mark.parametrize("prolog", [
    b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>',
    b'<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    b'<!DOCTYPE x SYSTEM "http://example.invalid/x.dtd">',
])
@pytest.mark.parametrize("chunk", [3, 1 << 16])
def test_doctype_refused_whatever_the_chunking(prolog, chunk):
    data = b'<?xml version="1.0"?>' + prolog + _doc(b"<Vehicle><VIN>&b;</VIN></Vehicle>")[len(b'<?xml version="1.0" '
                                                                                            b'encoding="utf-8"?>'):]
    with pytest.raises(ResponseParseError) as caught:
        parse_response(_chunks(data, chunk), spec())
    assert caught.value.unsafe and "DOCTYPE" in str(caught.value)


def test_qualified_fields_match_by_local_name_and_lines_span_batches(monkeypatch):
    """Per-area answers qualify every element (opentrack.dealertrack.com); repair order lines
    (more lines than orders) are kept whole across batches, each with its order's number."""
    monkeypatch.setattr(parse, "BATCH_ROWS", 4)
    lines = parse.LineSpec("Details", "OpenRepairOrderDetail", "RepairOrderNumber", "ro", ("ServiceLineNumber",),
                           ("line",))
    ro_spec = parse.RecordSpec("OpenRepairOrderLookup", "OpenRepairOrder", ("RepairOrderNumber", "ROStatus"),
                               ("ro", "status"), lines=lines)

    def order(i: int) -> bytes:
        details = b"".join(b"<OpenRepairOrderDetail><ServiceLineNumber>%d</ServiceLineNumber><Extra/>"
                           b"</OpenRepairOrderDetail>" % n for n in range(3))
        return b"<OpenRepairOrder><RepairOrderNumber>R%d</RepairOrderNumber><ROStatus>2</ROStatus>" % i + \
            b"<x:CustomerNumber xmlns:x='urn:other'/><Details>" + details + b"</Details></OpenRepairOrder>"

    document = (b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
                b'<OpenRepairOrderLookupResponse xmlns="opentrack.dealertrack.com"><OpenRepairOrderLookupResult>'
                + b"".join(order(i) for i in range(5))
                + b"</OpenRepairOrderLookupResult></OpenRepairOrderLookupResponse></s:Body></s:Envelope>")
    parsed = parse_response(_chunks(document, 50), ro_spec)

    assert parsed.table.to_pylist() == [{"ro": f"R{i}", "status": "2"} for i in range(5)]
    assert parsed.lines.to_pylist() == [{"ro": f"R{i}", "line": str(n)} for i in range(5) for n in range(3)]
    assert parsed.unknown_fields == {"CustomerNumber": 5, "OpenRepairOrderDetail/Extra": 15}

# --------------------------------------------------------------- characters XML 1.0 forbids

FFFD = parse.REPLACEMENT_CHARACTER


@pytest.mark.parametrize(("wire", "value"), [
    (b"Sor\x00ento", f"Sor{FFFD}ento"),
    (b"A\x01\x08\x0b\x0c\x0e\x1fB", f"A{FFFD * 6}B"),
    (b"Sor&#0;ento", f"Sor{FFFD}ento"),
    (b"&#x1;&#X1F;&#0000011;&#31;&#x0b;", FFFD * 5),
    (b"keep\ttab&#9;&#10;&#x0D;&#32;&#x20;&amp;", "keep\ttab\t\n\r  &"),
])
@pytest.mark.parametrize("size", [1, 3, 7, 1 << 20])
def test_forbidden_characters_become_fffd_however_the_body_is_chunked(wire, value, size):
    body = b"<Vehicle><VIN>V1</VIN><StockNumber>" + wire + b"</StockNumber></Vehicle><Vehicle><VIN>V2</VIN></Vehicle>"
    table = parse_response(_chunks(_doc(body), size), spec()).table
    assert table.to_pylist() == [{"VIN": "V1", "StockNumber": value, "DateDelivered": None},
                                 {"VIN": "V2", "StockNumber": None, "DateDelivered": None}]


def test_chunk_filter_passes_clean_bodies_unchanged_and_leaves_other_markup_alone():
    doc = _doc(b"<Vehicle><VIN>caf\xc3\xa9 &lt;&#233;&#x10FFFF;</VIN></Vehicle>")
    assert b"".join(parse.replace_forbidden_characters(_chunks(doc, 5))) == doc
    utf16 = "\ufeff<a>\x00</a>".encode("utf-16-le")
    assert b"".join(parse.replace_forbidden_characters([utf16[:3], utf16[3:]])) == utf16


def test_a_record_shape_is_laid_out_once_and_reused_by_later_responses():
    """The schema and column positions of a shape are built at its first response only
    (rebuilt per response they cost more than parsing a few hundred vehicles)."""
    document = _doc(b"<Vehicle><VIN>V1</VIN><DateDelivered>0</DateDelivered></Vehicle>")
    first = parse_response([document], spec(("v", "s", "d"))).table
    before = parse._layout.cache_info()

    later = [parse_response([document], spec(("v", "s", "d"))).table for _ in range(3)]

    after = parse._layout.cache_info()
    assert (after.misses, after.hits) == (before.misses, before.hits + 3)
    assert all(table.equals(first) for table in later)
    assert first.to_pylist() == [{"v": "V1", "s": None, "d": "0"}]
