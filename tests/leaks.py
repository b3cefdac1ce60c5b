"""Where a secret could leak, as searchable texts (tests/dags/test_secrets.py, the landing-on-S3
tests): {"place": [texts]} maps built from database tables, files, stored objects and log
records, and `found(places, needle)`: the places holding the needle."""

from __future__ import annotations

import io
import logging
import zlib
from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa


def texts(value: object) -> list[str]:
    """A stored value as the texts a marker could hide in (bytes decoded, zlib inflated)."""
    if isinstance(value, memoryview):
        value = value.tobytes()
    if isinstance(value, bytes):
        out = [value.decode("utf-8", "replace")]
        try:
            out.append(zlib.decompress(value).decode("utf-8", "replace"))
        except zlib.error:
            pass
        return out
    return [] if value is None else [str(value)]


def tables(engine: sa.Engine, place: str, skip: tuple[str, ...] = ()) -> dict[str, list[str]]:
    """{"place table.column": texts} for every column of every table."""
    out: dict[str, list[str]] = {}
    inspector = sa.inspect(engine)
    with engine.connect() as conn:
        for table in sorted(set(inspector.get_table_names()) - set(skip)):
            result = conn.execute(sa.text(f'SELECT * FROM "{table}"'))  # noqa: S608 - names from the catalog
            columns = list(result.keys())
            for row in result:
                for column, value in zip(columns, row):
                    out.setdefault(f"{place} {table}.{column}", []).extend(texts(value))
    return out


def _file_texts(name: str, data: bytes) -> list[str]:
    """A file's bytes as texts (Parquet: every value and the metadata too; a corrupt one: its bytes)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = texts(data)
    if name.endswith(".parquet"):
        try:
            parquet = pq.ParquetFile(io.BytesIO(data))
        except pa.ArrowInvalid:
            return out
        out += [str(parquet.metadata.metadata), str(parquet.read().to_pylist())]
    return out


def files(root: Path, place: str) -> dict[str, list[str]]:
    """{"place path": texts} for every file under root."""
    return {f"{place} {path.relative_to(root)}": _file_texts(path.name, path.read_bytes())
            for path in sorted(p for p in root.rglob("*") if p.is_file())}


def objects(stored: Mapping[str, bytes], place: str) -> dict[str, list[str]]:
    """{"place key": texts} for stored objects ({key: bytes}, e.g. a bucket's)."""
    return {f"{place} {key}": _file_texts(key, data) for key, data in sorted(stored.items())}


def found(places: dict[str, list[str]], needle: str) -> list[str]:
    return [place for place, found_texts in places.items() if any(needle in text for text in found_texts)]


class Records(logging.Handler):
    """Every log record emitted while attached to the root logger, as text (message, args, traceback)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        self.lines.append(f"{record.getMessage()} {record.args!r} {record.exc_text or ''}")
