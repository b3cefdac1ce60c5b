"""Streaming parse of OpenTrack SOAP responses into Arrow string columns.

Why streaming: OpenTrack has no paging (OPENTRACK.md), so a big dealer's inventory is
one large document. The body is fed to lxml chunk by chunk as it arrives; each `Result`
is turned into a row and cleared (with its already-read siblings) at once; rows are
packed into Arrow record batches every BATCH_ROWS, so memory stays bounded by one batch
of Python strings plus the compact Arrow columns. A batch's values are kept in one flat,
row-major list of strings (no per-row list survives, so the garbage collector has
nothing to scan) and become columns by one Arrow conversion and a strided `take` per
column, in C: 0.84 s for 50,000 vehicles where transposing per-row lists in Python
took 0.97 s (bench/bench_parse.py).

Values are kept exactly as delivered (text, `0` dates included; an absent element is
null, an empty one is ""): typing is validation's job (opentrack.values).

Safety: the parser never resolves entities, loads DTDs or touches the network, and any
document with a DOCTYPE is refused (a SOAP message must not contain one), which rules
out XXE and entity-expansion ("billion laughs") documents before their entities are
used. `huge_tree` stays off: OpenTrack documents are long, not deep, and libxml2's
default limits (text node size, depth) are a further guard.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pyarrow as pa
from lxml import etree

from dealer_feed.opentrack.envelope import SOAP11, SOAP12, TR_NS

BATCH_ROWS = 8192
GRANT_WARNING_DAYS = 14
"""A grant ending within this many days of a run is warned about (client log, onboarding check)."""
HEAD_BYTES = 4096
_WATCHED = ("{*}Result", "{*}Error", "{*}AccessWindow", "{*}Fault")


class ResponseParseError(ValueError):
    """The body is not a usable SOAP answer; `unsafe` when refused for security reasons."""

    def __init__(self, message: str, *, unsafe: bool = False) -> None:
        super().__init__(message)
        self.unsafe = unsafe


@dataclass(frozen=True)
class ServiceError:
    """An in-band `Errors/Error{Code, Message}` (also read from a Fault's detail)."""

    code: str
    message: str


@dataclass(frozen=True)
class AccessWindow:
    """The grant window the service reported for the called method (simulator convention)."""

    method: str
    begins: date | None
    ends: date | None

    def days_left(self, run_date: date) -> int | None:
        """Days from the run date to the last granted day (None: no end set)."""
        return None if self.ends is None else (self.ends - run_date).days

    def ends_soon(self, run_date: date) -> bool:
        """Access ends within GRANT_WARNING_DAYS of the run date: time to warn the dealership."""
        days = self.days_left(run_date)
        return days is not None and 0 <= days <= GRANT_WARNING_DAYS


@dataclass(frozen=True)
class Fault:
    """A SOAP Fault: `code` is the fault code's local name (Client/Sender/Server/Receiver or a
    qualified code such as FailedAuthentication); `subcode` the SOAP 1.2 subcode's local name."""

    code: str
    subcode: str | None
    message: str


@dataclass
class ParsedResponse:
    table: pa.Table
    errors: list[ServiceError] = field(default_factory=list)
    window: AccessWindow | None = None
    fault: Fault | None = None


def _local(tag: str) -> str:
    return tag[tag.rfind("}") + 1:]


def _child_text(element: etree._Element, *path: str) -> str:
    """Text of the first descendant along local names `path` ("" if absent)."""
    for name in path:
        element = next((c for c in element if isinstance(c.tag, str) and _local(c.tag) == name), None)
        if element is None:
            return ""
    return (element.text or "").strip()


def _yyyymmdd(text: str) -> date | None:
    try:
        return datetime.strptime(text, "%Y%m%d").date() if text not in ("", "0") else None
    except ValueError:
        return None


class ResultParser:
    """Push parser for one response: `feed(chunk)` as bytes arrive, then `close()`.

    `fields` are the `Result` child names to keep, in column order; `columns` their
    output names (default: the field names).
    """

    def __init__(self, fields: Sequence[str], columns: Sequence[str] | None = None) -> None:
        columns = list(columns or fields)
        self._schema = pa.schema([pa.field(c, pa.string()) for c in columns])
        self._width = len(fields)
        self._index: dict[str, int] = {}
        for i, name in enumerate(fields):
            self._index[name] = i
            self._index[f"{{{TR_NS}}}{name}"] = i
        self._parser = etree.XMLPullParser(
            events=("end",), tag=_WATCHED, resolve_entities=False, no_network=True, load_dtd=False
        )
        self._values: list[str | None] = []
        """The pending batch's values, row-major: row r, field i at r * width + i."""
        self._columns_of: list[pa.Array] = []
        self._batches: list[pa.RecordBatch] = []
        self._checked = False
        self._head: bytearray | None = bytearray()
        self.errors: list[ServiceError] = []
        self.window: AccessWindow | None = None
        self.fault: Fault | None = None

    def feed(self, chunk: bytes) -> None:
        if self._head is not None:
            # Hold the first HEAD_BYTES back: a DOCTYPE can only come before the root element,
            # so it is refused before lxml sees it, however the body happens to be chunked.
            self._head += chunk
            if len(self._head) < HEAD_BYTES:
                return
            chunk, self._head = self._check_head(bytes(self._head)), None
        try:
            self._parser.feed(chunk)
            self._drain()
        except etree.XMLSyntaxError as exc:
            raise ResponseParseError(f"response is not well-formed XML: {exc}") from None

    @staticmethod
    def _check_head(head: bytes) -> bytes:
        if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
            raise ResponseParseError("the response contains a DOCTYPE / entity declarations (refused: a SOAP "
                                     "message must not contain a DTD)", unsafe=True)
        return head

    def close(self) -> ParsedResponse:
        if self._head is not None:
            head, self._head = self._check_head(bytes(self._head)), None
            self.feed(head)
        try:
            root = self._parser.close()
            self._drain()
        except etree.XMLSyntaxError as exc:
            raise ResponseParseError(f"response is not well-formed XML (truncated?): {exc}") from None
        self._check_doctype(root)
        if root.tag not in (f"{{{SOAP11}}}Envelope", f"{{{SOAP12}}}Envelope"):
            raise ResponseParseError(f"response is not a SOAP envelope (root element {root.tag!r})")
        self._flush()
        table = pa.Table.from_batches(self._batches, schema=self._schema)
        return ParsedResponse(table, self.errors, self.window, self.fault)

    def _check_doctype(self, element: etree._Element) -> None:
        info = element.getroottree().docinfo
        if info.internalDTD is not None or info.doctype:
            raise ResponseParseError("the response contains a DOCTYPE (refused: a SOAP message must not contain "
                                     "a DTD)", unsafe=True)
        self._checked = True

    def _drain(self) -> None:
        index, width, values = self._index, self._width, self._values
        for _event, el in self._parser.read_events():
            if not self._checked:
                self._check_doctype(el)
            name = _local(el.tag)
            if name == "Result":
                row: list[str | None] = [None] * width
                for child in el:
                    i = index.get(child.tag)
                    if i is not None:
                        row[i] = child.text or ""
                values.extend(row)
                if len(values) >= BATCH_ROWS * width:
                    self._flush()
            elif name == "Error":
                self.errors.append(ServiceError(_child_text(el, "Code"), _child_text(el, "Message")))
                continue  # keep: an enclosing Fault is read after its detail
            elif name == "AccessWindow":
                self.window = AccessWindow(_child_text(el, "Method"), _yyyymmdd(_child_text(el, "AccessBegins")),
                                           _yyyymmdd(_child_text(el, "AccessEnds")))
            else:
                self.fault = _fault(el)
            el.clear()
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]

    def _flush(self) -> None:
        if not self._values:
            return
        if not self._columns_of:  # positions of each field's values in a full batch
            self._columns_of = [pa.array(range(i, BATCH_ROWS * self._width, self._width), type=pa.int64())
                                for i in range(self._width)]
        flat = pa.array(self._values, type=pa.string())
        n_rows = len(self._values) // self._width
        self._batches.append(pa.RecordBatch.from_arrays(
            [flat.take(positions[:n_rows]) for positions in self._columns_of], schema=self._schema))
        self._values.clear()


def _code(text: str) -> str:
    """Local part of a QName-valued fault code (`soap:Client` -> `Client`)."""
    return text.rsplit(":", 1)[-1]


def _fault(el: etree._Element) -> Fault:
    if el.tag == f"{{{SOAP12}}}Fault":
        return Fault(_code(_child_text(el, "Code", "Value")), _code(_child_text(el, "Code", "Subcode", "Value"))
                     or None, _child_text(el, "Reason", "Text"))
    return Fault(_code(_child_text(el, "faultcode")), None, _child_text(el, "faultstring"))


REPLACEMENT_CHARACTER = "\ufffd"
"""What a character XML 1.0 forbids becomes (validation quarantines rows holding it)."""
_FORBIDDEN_BYTE = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f]")
_FORBIDDEN_REF = re.compile(rb"&#(?:0*(?:[0-8]|1[124-9]|2[0-9]|3[01])|[xX]0*(?:[0-8bBcCeEfF]|1[0-9a-fA-F]));")
_PARTIAL_REF = re.compile(rb"&(?:#(?:[xX][0-9a-fA-F]*|[0-9]*))?$")
_REF_TAIL = 16
"""Bytes at a chunk's end searched for a character reference cut by the chunking."""


def _suspect(chunk: bytes) -> tuple[bool, bool]:
    """(may hold a forbidden byte, may hold a character reference) — numpy passes over the
    chunk, ~10x faster than a regex search, so clean chunks (nearly all) cost little."""
    arr = np.frombuffer(chunk, dtype=np.uint8)
    low = arr < 0x20
    forbidden = bool(low.any()) and np.count_nonzero(low) != sum(np.count_nonzero(arr == c) for c in (9, 10, 13))
    ref = chunk.find(b"&") >= 0 and bool(np.count_nonzero((arr[:-1] == 0x26) & (arr[1:] == 0x23)))
    return forbidden, ref


def replace_forbidden_characters(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The body's chunks with every character XML 1.0 forbids replaced by U+FFFD.

    Why: one NUL (or other C0 control but tab, LF, CR; raw or as a reference like `&#0;` /
    `&#x1;`) in one DMS value makes the whole document not well-formed, so the dealer
    would fail on every run. Replaced, the document parses and the value carries U+FFFD,
    which validation's `forbidden_character` rule quarantines with its field named.
    Raw bytes become U+FFFD's UTF-8 bytes (OpenTrack answers in UTF-8; such bytes never
    occur inside a multi-byte UTF-8 sequence), references `&#xFFFD;`. A reference split
    between two chunks is carried over to the next one. A UTF-16 body (BOM) is passed as is.
    """
    carry = b""
    first = True
    stream = iter(chunks)
    for chunk in stream:
        if first and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
            yield chunk
            yield from stream
            return
        first = False
        chunk = carry + chunk
        cut = _PARTIAL_REF.search(chunk, max(0, len(chunk) - _REF_TAIL))
        chunk, carry = (chunk[:cut.start()], chunk[cut.start():]) if cut else (chunk, b"")
        forbidden, ref = _suspect(chunk)
        if forbidden:
            chunk = _FORBIDDEN_BYTE.sub(REPLACEMENT_CHARACTER.encode(), chunk)
        if ref:
            chunk = _FORBIDDEN_REF.sub(b"&#xFFFD;", chunk)
        yield chunk
    if carry:
        yield carry


def parse_response(chunks: Iterable[bytes], fields: Sequence[str], columns: Sequence[str] | None = None
                   ) -> ParsedResponse:
    """Parse a whole response body given as an iterable of byte chunks (forbidden characters
    replaced first: `replace_forbidden_characters`)."""
    parser = ResultParser(fields, columns)
    for chunk in replace_forbidden_characters(chunks):
        parser.feed(chunk)
    return parser.close()
