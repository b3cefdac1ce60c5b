"""Arrow table -> database values, column by column (vectorised in Arrow; no pandas, no
per-row Python on the PostgreSQL path).

A column spec is a list of (column, kind) with kind one of text, int, float, bool, ts, date.
Timestamps are UTC; they are sent as 'YYYY-MM-DD HH:MM:SS.ffffff' text (the format
SQLAlchemy's own SQLite DateTime uses, so string comparison orders them on SQLite;
PostgreSQL parses it into TIMESTAMP without time zone).

PostgreSQL: the prepared table goes to COPY as CSV written by Arrow's C++ CSV writer (a
null is an empty unquoted field, an empty string a quoted one: COPY's CSV defaults).
SQLite: the driver needs Python values, so the columns become lists, one executemany per
slice of EXECUTEMANY_CHUNK_ROWS rows: a whole 200,000-row feed as Python tuples held the load's
process at ~1 GB peak RSS; a slice at a time holds one slice's.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
from sqlalchemy import Connection

from dealer_feed.contract.schemas import as_table

__all__ = ["bulk_insert", "prepare", "ts_param", "with_columns"]

Spec = Sequence[tuple[str, str]]

TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
COPY_CHUNK_ROWS = 100_000
EXECUTEMANY_CHUNK_ROWS = 20_000


def ts_param(conn: Connection, moment: datetime | None) -> Any:
    """A timestamp as a bind parameter for this dialect (aware UTC in: contract.identity)."""
    if moment is None:
        return None
    if moment.utcoffset() != timedelta(0):
        raise ValueError(f"{moment!r} is not an aware UTC time (contract.identity.as_utc normalises where times enter)")
    naive = moment.replace(tzinfo=None)
    return naive.strftime(TS_FORMAT) if conn.dialect.name == "sqlite" else naive


def with_columns(table: pa.Table, **values: Any) -> pa.Table:
    """`table` with columns added or replaced: an Arrow array as it is, any other value as a
    constant column (run_id, dealer_group, logical time...)."""
    for name, value in values.items():
        if isinstance(value, (pa.Array, pa.ChunkedArray)):
            column = value
        elif value is None:
            column = pa.nulls(table.num_rows)
        else:
            column = pa.repeat(pa.scalar(value), table.num_rows)
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    return table


def _timestamps(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Any time-like column as text in TS_FORMAT, in UTC (a naive one is UTC already).

    A zoned timestamp cast to a naive one keeps its UTC value, and Arrow casts a naive
    microsecond timestamp to string as exactly TS_FORMAT ('2026-06-01 06:00:00.000000'):
    about 20x cheaper than pc.strftime, which was most of the load's client CPU."""
    if pa.types.is_null(column.type):
        return column.cast(pa.string())
    if not pa.types.is_timestamp(column.type):  # text (e.g. an ISO string): rare, small frames
        column = pa.array([None if v is None else datetime.fromisoformat(v) for v in column.to_pylist()],
                          pa.timestamp("us", tz="UTC"))
    return column.cast(pa.timestamp("us"), safe=False).cast(pa.string())


def column_values(column: pa.ChunkedArray, kind: str, dialect: str) -> pa.ChunkedArray:
    """One column converted to what COPY / the driver wants (nulls stay null)."""
    if kind == "text":
        return column.cast(pa.string())
    if kind == "int":
        return column.cast(pa.int64())
    if kind == "float":
        return column.cast(pa.float64())
    if kind == "bool":
        return column.cast(pa.bool_()).cast(pa.int64()) if dialect == "sqlite" else column.cast(pa.bool_())
    if kind == "ts":
        return _timestamps(column)
    if kind == "date":
        if pa.types.is_timestamp(column.type):
            column = column.cast(pa.timestamp("us"), safe=False).cast(pa.date32())
        return column.cast(pa.date32()).cast(pa.string())
    raise ValueError(kind)  # pragma: no cover - programming error


def prepare(frame: Any, spec: Spec, dialect: str) -> pa.Table:
    """A table with exactly the spec's columns (missing ones all-null), converted."""
    table = as_table(frame)
    n = table.num_rows
    columns = {}
    for name, kind in spec:
        if name in table.column_names:
            columns[name] = column_values(table.column(name), kind, dialect)
        else:
            columns[name] = pa.nulls(n, pa.string())
    return pa.table(columns)


def bulk_insert(conn: Connection, table: str, prepared: pa.Table, chunk_rows: int = COPY_CHUNK_ROWS) -> int:
    """Insert a prepared table with the dialect's bulk path, inside the caller's transaction.

    PostgreSQL: COPY FROM STDIN (CSV written by Arrow) through psycopg's cursor.copy().
    SQLite: one executemany per slice of EXECUTEMANY_CHUNK_ROWS rows (the driver needs Python
    values; a slice at a time bounds the memory they take).
    """
    if prepared.num_rows == 0:
        return 0
    columns = ", ".join(prepared.column_names)
    dbapi = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        import pyarrow.csv as pacsv

        options = pacsv.WriteOptions(include_header=False)
        with dbapi.cursor() as cur:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                for start in range(0, prepared.num_rows, chunk_rows):
                    buf = io.BytesIO()
                    pacsv.write_csv(prepared.slice(start, chunk_rows), buf, options)
                    copy.write(buf.getbuffer())
    else:
        marks = ", ".join("?" for _ in prepared.column_names)
        cur = dbapi.cursor()
        try:
            for start in range(0, prepared.num_rows, EXECUTEMANY_CHUNK_ROWS):
                part = prepared.slice(start, EXECUTEMANY_CHUNK_ROWS)
                rows = zip(*(column.to_pylist() for column in part.columns), strict=True)
                cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        finally:
            cur.close()
    return prepared.num_rows
