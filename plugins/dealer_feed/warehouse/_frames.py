"""Frame -> database values, column by column (vectorised; no per-row Python in the hot path).

A column spec is a list of (column, kind) with kind one of text, int, float, bool, ts, date.
Timestamps are UTC; on SQLite they are stored as 'YYYY-MM-DD HH:MM:SS.ffffff' text (the
format SQLAlchemy's own SQLite DateTime uses, so string comparison orders them), on
PostgreSQL as TIMESTAMP without time zone.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import Connection


Spec = Sequence[tuple[str, str]]

TS_FORMAT = "%Y-%m-%d %H:%M:%S.%f"
PG_NULL = "\\N"


def ts_param(conn: Connection, moment: datetime | None) -> Any:
    """A timestamp as a bind parameter for this dialect."""
    if moment is None:
        return None
    if moment.utcoffset() != timedelta(0):
        raise ValueError(f"{moment!r} is not an aware UTC time (contract.identity.as_utc normalises where times enter)")
    naive = moment.replace(tzinfo=None)
    return naive.strftime(TS_FORMAT) if conn.dialect.name == "sqlite" else naive


def _as_utc_series(s: pd.Series) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return s.dt.tz_convert("UTC").dt.tz_localize(None)
    if pd.api.types.is_datetime64_dtype(s.dtype):
        return s
    out = pd.to_datetime(s, utc=True, format="mixed")
    return out.dt.tz_localize(None)


def column_values(s: pd.Series, kind: str, dialect: str) -> pd.Series:
    """One column converted to what the driver / COPY wants; missing values are None."""
    if kind == "text":
        if not pd.api.types.is_string_dtype(s.dtype):
            s = s.astype("str")
        return s.astype(object).where(s.notna(), None)
    if kind == "int":
        out = pd.to_numeric(s).astype("Int64")
    elif kind == "float":
        out = pd.to_numeric(s).astype("float64")
    elif kind == "bool":
        b = s.astype("boolean")
        out = b.astype("Int64") if dialect == "sqlite" else b.map({True: "t", False: "f"}, na_action="ignore")
    elif kind == "ts":
        out = _as_utc_series(s).dt.strftime(TS_FORMAT)
    elif kind == "date":
        out = pd.to_datetime(s).dt.strftime("%Y-%m-%d")
    else:  # pragma: no cover - programming error
        raise ValueError(kind)
    return out.astype(object).where(out.notna(), None)


def prepare(frame: pd.DataFrame, spec: Spec, dialect: str) -> pd.DataFrame:
    """A frame with exactly the spec's columns (missing ones are all-null), converted."""
    n = len(frame)
    cols = {}
    for name, kind in spec:
        if name in frame.columns:
            cols[name] = column_values(frame[name].reset_index(drop=True), kind, dialect)
        else:
            cols[name] = pd.Series([None] * n, dtype=object)
    return pd.DataFrame(cols)


def bulk_insert(conn: Connection, table: str, prepared: pd.DataFrame, chunk_rows: int = 100_000) -> int:
    """Insert a prepared frame with the dialect's bulk path, inside the caller's transaction.

    PostgreSQL: COPY FROM STDIN (CSV) through psycopg's cursor.copy(). SQLite: one
    executemany of the whole frame. Either way, one round trip per chunk, not per row.
    """
    if prepared.empty:
        return 0
    columns = ", ".join(prepared.columns)
    dbapi = conn.connection.driver_connection
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cur:
            with cur.copy(f"COPY {table} ({columns}) FROM STDIN (FORMAT csv, NULL '{PG_NULL}')") as copy:
                for start in range(0, len(prepared), chunk_rows):
                    buf = io.StringIO()
                    prepared.iloc[start : start + chunk_rows].to_csv(buf, index=False, header=False, na_rep=PG_NULL)
                    copy.write(buf.getvalue())
    else:
        marks = ", ".join("?" for _ in prepared.columns)
        rows = list(zip(*(prepared[c].tolist() for c in prepared.columns), strict=True))
        cur = dbapi.cursor()
        try:
            cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
        finally:
            cur.close()
    return len(prepared)
