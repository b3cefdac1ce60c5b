"""Streaming parse of OpenTrack SOAP responses into Arrow string columns.

Why streaming: OpenTrack has no paging (OPENTRACK.md), so a big dealer's inventory is
one large document. The body is fed to lxml chunk by chunk as it arrives; each record
(`Vehicle`, `Part`, `OpenRepairOrder`, `Customer`: RecordSpec.record) is turned into a row
and cleared (with its already-read siblings) at once; rows are
packed into Arrow record batches every BATCH_ROWS, so memory stays bounded by one batch
of Python strings plus the compact Arrow columns. A batch's values are kept in one flat,
row-major list of strings (no per-row list survives, so the garbage collector has
nothing to scan) and become columns in C: one Arrow string array built from the joined
values (opentrack.arrow.string_array: no pyarrow converter, so no pandas import in an
extract task), then a strided `take` per column. An absent element waits as ABSENT.

Names are matched by local name whatever their namespace: the STAR payload is unqualified
(`xmlns=""`), the per-area services qualify everything in `opentrack.dealertrack.com`.
Records are the children of the operation's container (`{Op}Response` over STAR,
`{Op}Result` per area) with the record's name; any other child of the container than a
record, `Error`, `Errors` or `AccessWindow` is schema drift (UnexpectedElementError), so a
response in an unexpected shape can never pass as "0 rows". Record children that are not
mapped are counted per name (`unknown_fields`), so field drift is visible per run.

Values are kept exactly as delivered (text, `0` dates included; an absent element is
null, an empty one is ""): typing is validation's job (opentrack.values).

Safety: the parser never resolves entities, loads DTDs or touches the network, and any
document with a DOCTYPE is refused (a SOAP message must not contain one), which rules
out XXE and entity-expansion ("billion laughs") documents before their entities are
used. `huge_tree` stays off: OpenTrack documents are long, not deep, and libxml2's
default limits (entity amplification, depth 256, a text node of 10 MB) are a further guard:
a document that hits one (e.g. entities declared past the first HEAD_BYTES, or in UTF-16,
where the byte check cannot see them) is refused as unsafe too, not as a garbled answer.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

import numpy as np
import pyarrow as pa
from lxml import etree

from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.opentrack.arrow import int64_array, string_array
from dealer_feed.opentrack.envelope import SOAP11, SOAP12

BATCH_ROWS = 8192
_UNKNOWN, _IGNORED, _LINES = -1, -2, -3
"""Field slots of tags that are not columns: counted as unknown, known and skipped, the line list."""
_CONTAINER_CHILDREN = frozenset({"Error", "Errors", "AccessWindow"})
GRANT_WARNING_DAYS = 14
"""A grant ending within this many days of a run is warned about (client log, onboarding check)."""
HEAD_BYTES = 4096
_LIMIT_ERRORS = frozenset({etree.ErrorTypes.ERR_RESOURCE_LIMIT, etree.ErrorTypes.ERR_ENTITY_LOOP})
"""libxml2 error codes of a document refused by its safety limits (entity amplification or loop,
nesting, text node size): hostile, not garbled in transit."""


@dataclass(frozen=True)
class LineSpec:
    """Nested line records of a record (repair orders: Details/OpenRepairOrderDetail), kept as a
    child table keyed by the parent's `parent_key` field (first column `parent_column`)."""

    container: str
    record: str
    parent_key: str
    parent_column: str
    fields: tuple[str, ...]
    columns: tuple[str, ...]


@dataclass(frozen=True)
class RecordSpec:
    """What the parser looks for in one operation's answer.

    `fields` are the record's child names kept, in column order, `columns` their output
    names; `nested` names known child lists that are skipped (not counted as unknown).
    """

    operation: str
    record: str
    fields: tuple[str, ...]
    columns: tuple[str, ...]
    nested: frozenset[str] = frozenset()
    lines: LineSpec | None = None

    @property
    def containers(self) -> frozenset[str]:
        """Local names of the element whose children are the records (STAR / per-area)."""
        return frozenset({f"{self.operation}Response", f"{self.operation}Result"})


class ResponseParseError(DealerFeedError, ValueError):
    """The body is not a usable SOAP answer; `unsafe` when refused for security reasons.

    The only error the parser raises, whatever the bytes (tests/integration/test_bad_input.py
    fuzzes that): the client turns it into its typed OpenTrackError (whose fix names the dealer)."""

    fix = "see the OpenTrackError the client raised for this answer (docs/OPENTRACK.md, error table)"

    def __init__(self, message: str, *, unsafe: bool = False) -> None:
        super().__init__(message)
        self.unsafe = unsafe


class UnexpectedElementError(ResponseParseError):
    """The answer's payload holds an element that is neither a record nor an error: the service
    changed shape (or the wrong operation answered). Permanent: a retry gets the same answer."""

    def __init__(self, element: str, where: str) -> None:
        super().__init__(f"unexpected element <{element}> in {where}")
        self.element = element
        self.where = where


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
    unknown_fields: dict[str, int] = field(default_factory=dict)
    """Record (and line) children that are not mapped, by local name: how many records had them."""
    lines: pa.Table | None = None
    """The records' nested lines (RecordSpec.lines), if the operation has any."""


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


ABSENT = "\x01"
"""A field whose element is absent, while its row waits in `_Rows.values` (null in the table):
a character XML 1.0 forbids, so never a delivered value."""


@functools.lru_cache(maxsize=32)
def _layout(columns: tuple[str, ...], batch_rows: int) -> tuple[pa.Schema, tuple[pa.Array, ...]]:
    """A table shape's schema and, per column, the positions of its values in a full flat
    batch: built once per record shape (an operation's record or lines) and process, not per
    response (rebuilt per response, they cost ~20 ms, more than parsing a 600-vehicle lot)."""
    width = len(columns)
    schema = pa.schema([pa.field(c, pa.string()) for c in columns])
    return schema, tuple(int64_array(np.arange(i, batch_rows * width, width, dtype=np.int64)) for i in range(width))


class _Rows:
    """One table being built: a flat row-major value list packed into Arrow batches."""

    def __init__(self, columns: Sequence[str]) -> None:
        self.schema, self._columns_of = _layout(tuple(columns), BATCH_ROWS)
        self.width = len(columns)
        self.values: list[str] = []
        """The pending batch's values, row-major: row r, field i at r * width + i (ABSENT: null)."""
        self.batches: list[pa.RecordBatch] = []

    def flush(self) -> None:
        if not self.values:
            return
        try:
            flat = string_array(self.values, null=ABSENT)
        except ValueError as exc:  # cannot happen after replace_forbidden_characters; never lose a row silently
            raise ResponseParseError(f"a value holds a character XML 1.0 forbids ({exc})") from None
        n_rows = len(self.values) // self.width
        self.batches.append(pa.RecordBatch.from_arrays(
            [flat.take(positions[:n_rows]) for positions in self._columns_of], schema=self.schema))
        self.values.clear()

    def table(self) -> pa.Table:
        self.flush()
        return pa.Table.from_batches(self.batches, schema=self.schema)


def _field_index(fields: Sequence[str], skip: Iterable[str] = (), lines: str | None = None) -> dict[str, int]:
    """Local name -> column position, or a marker for known non-columns."""
    index = dict.fromkeys(skip, _IGNORED) | ({lines: _LINES} if lines else {})
    return index | {name: i for i, name in enumerate(fields)}


class ResultParser:
    """Push parser for one response: `feed(chunk)` as bytes arrive, then `close()`."""

    def __init__(self, spec: RecordSpec) -> None:
        self.spec = spec
        self._rows = _Rows(spec.columns)
        self._by_local = _field_index(spec.fields, spec.nested, spec.lines.container if spec.lines else None)
        self._index: dict[object, int] = {}
        """Tag as lxml reports it (any namespace) -> slot; filled on first sight from `_by_local`."""
        self._line_rows = _Rows((spec.lines.parent_column, *spec.lines.columns)) if spec.lines else None
        self._line_by_local = _field_index(spec.lines.fields) if spec.lines else {}
        self._line_index: dict[object, int] = {}
        self._key = spec.fields.index(spec.lines.parent_key) if spec.lines else -1
        self._allowed = _CONTAINER_CHILDREN | {spec.record} | spec.containers
        self._parser = etree.XMLPullParser(
            events=("end",), tag=(f"{{*}}{spec.record}", "{*}Error", "{*}AccessWindow", "{*}Fault",
                                  *(f"{{*}}{name}" for name in spec.containers)),
            resolve_entities=False, no_network=True, load_dtd=False,
        )
        self._container_seen = False
        self._checked = False
        self._head: bytearray | None = bytearray()
        self.errors: list[ServiceError] = []
        self.window: AccessWindow | None = None
        self.fault: Fault | None = None
        self.unknown: dict[object, int] = {}

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
            raise _syntax_error(exc, "") from None

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
            raise _syntax_error(exc, " (truncated?)") from None
        self._check_doctype(root)
        if root.tag not in (f"{{{SOAP11}}}Envelope", f"{{{SOAP12}}}Envelope"):
            raise ResponseParseError(f"response is not a SOAP envelope (root element {root.tag!r})")
        if not self._container_seen and self.fault is None:
            raise UnexpectedElementError(_payload_name(root),
                                         f"the SOAP Body (expected <{self.spec.operation}Response>)")
        unknown: dict[str, int] = {}
        for tag, n in self.unknown.items():  # one name whatever its namespace
            unknown[_local(str(tag))] = unknown.get(_local(str(tag)), 0) + n
        lines = self._line_rows.table() if self._line_rows is not None else None
        return ParsedResponse(self._rows.table(), self.errors, self.window, self.fault, unknown, lines)

    def _check_doctype(self, element: etree._Element) -> None:
        info = element.getroottree().docinfo
        if info.internalDTD is not None or info.doctype:
            raise ResponseParseError("the response contains a DOCTYPE (refused: a SOAP message must not contain "
                                     "a DTD)", unsafe=True)
        self._checked = True

    def _slot(self, tag: object, by_local: dict[str, int], index: dict[object, int]) -> int:
        """First sight of a tag: its column by local name, else unknown (comments, PIs: ignored)."""
        slot = by_local.get(_local(tag), _UNKNOWN) if isinstance(tag, str) else _IGNORED
        index[tag] = slot
        return slot

    def _check_children(self, container: etree._Element, before: etree._Element | None = None) -> None:
        """Every child of the container (up to `before`) is a record, an error or a window."""
        for child in container:
            if child is before:
                return
            if isinstance(child.tag, str) and _local(child.tag) not in self._allowed:
                raise UnexpectedElementError(_local(child.tag), f"<{_local(container.tag)}>")

    def _drain(self) -> None:
        index, by_local, values, width = self._index, self._by_local, self._rows.values, self._rows.width
        record, containers = self.spec.record, self.spec.containers
        for _event, el in self._parser.read_events():
            if not self._checked:
                self._check_doctype(el)
            name = _local(el.tag)
            if name == record:
                parent = el.getparent()
                if parent is None or _local(parent.tag) not in containers:
                    continue  # nested in something else: its ancestor is checked as a container child
                row = [ABSENT] * width
                lines = None
                for child in el:
                    i = index.get(child.tag)
                    if i is None:
                        i = self._slot(child.tag, by_local, index)
                    if i >= 0:
                        row[i] = child.text or ""
                    elif i == _UNKNOWN:
                        self.unknown[child.tag] = self.unknown.get(child.tag, 0) + 1
                    elif i == _LINES:
                        lines = child
                if lines is not None:
                    self._read_lines(lines, row[self._key])
                values.extend(row)
                if len(values) >= BATCH_ROWS * width:
                    self._rows.flush()
                self._check_children(parent, before=el)
            elif name in containers:
                self._container_seen = True
                self._check_children(el)
                continue
            elif name == "Error":
                self.errors.append(ServiceError(_child_text(el, "Code"), _child_text(el, "Message")))
                continue  # keep: an enclosing Fault is read after its detail
            elif name == "AccessWindow":
                self.window = AccessWindow(_child_text(el, "Method"), _yyyymmdd(_child_text(el, "AccessBegins")),
                                           _yyyymmdd(_child_text(el, "AccessEnds")))
                continue  # kept for the container check; one small element
            else:
                self.fault = _fault(el)
            el.clear()
            parent = el.getparent()
            if parent is not None:
                while el.getprevious() is not None:
                    del parent[0]

    def _read_lines(self, container: etree._Element, key: str) -> None:
        """The record's nested lines, each a row of the child table led by the parent's key
        (ABSENT while it waits, like any value)."""
        spec, index, by_local = self.spec.lines, self._line_index, self._line_by_local
        assert spec is not None and self._line_rows is not None
        values = self._line_rows.values
        for line in container:
            if not isinstance(line.tag, str):
                continue
            if _local(line.tag) != spec.record:
                raise UnexpectedElementError(_local(line.tag), f"<{spec.container}> of a <{self.spec.record}>")
            row = [key] + [ABSENT] * len(spec.fields)
            for child in line:
                i = index.get(child.tag)
                if i is None:
                    i = self._slot(child.tag, by_local, index)
                if i >= 0:
                    row[i + 1] = child.text or ""
                elif i == _UNKNOWN:
                    tag = f"{spec.record}/{_local(child.tag)}"
                    self.unknown[tag] = self.unknown.get(tag, 0) + 1
            values.extend(row)
            if len(values) >= BATCH_ROWS * self._line_rows.width:
                self._line_rows.flush()


def _syntax_error(exc: etree.XMLSyntaxError, hint: str) -> ResponseParseError:
    if exc.code in _LIMIT_ERRORS:
        return ResponseParseError(f"the response exceeds the XML parser's safety limits (refused: {exc})", unsafe=True)
    return ResponseParseError(f"response is not well-formed XML{hint}: {exc}")


_STAR_WRAPPERS = frozenset({"ProcessMessageResponse", "payload", "content"})


def _payload_name(root: etree._Element) -> str:
    """Local name of the first element under the Body (below the STAR wrappers), for drift errors."""
    el = next((c for c in root if isinstance(c.tag, str) and _local(c.tag) == "Body"), None)
    while el is not None:
        child = next((c for c in el if isinstance(c.tag, str)), None)
        if child is None:
            return f"(empty {_local(el.tag)})"
        if _local(child.tag) not in _STAR_WRAPPERS:
            return _local(child.tag)
        el = child
    return "(no Body)"


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


def parse_response(chunks: Iterable[bytes], spec: RecordSpec) -> ParsedResponse:
    """Parse a whole response body given as an iterable of byte chunks (forbidden characters
    replaced first: `replace_forbidden_characters`)."""
    parser = ResultParser(spec)
    for chunk in replace_forbidden_characters(chunks):
        parser.feed(chunk)
    return parser.close()
