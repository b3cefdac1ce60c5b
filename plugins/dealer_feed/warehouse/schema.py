"""What the warehouse columns accept, read from the migration DDL (the one place it is written).

Validation must quarantine a value the warehouse would reject: a stock number longer than
`VARCHAR(64)` loads on SQLite (which ignores declared lengths) but fails PostgreSQL's
COPY. Rather than restating the limits by hand, `warehouse_columns()` replays the
`CREATE TABLE` / `ALTER TABLE ... ADD|ALTER|DROP COLUMN` statements of the migration files
(PostgreSQL's set: it is the dialect that enforces them) and returns each column's type,
its length for `VARCHAR(n)` / `CHAR(n)` and its value range for integer and `NUMERIC(p, s)`
types. `validation.limits` turns those into rules.

No database is needed: only the SQL files are read (once per process).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

from dealer_feed.warehouse.migrations import MIGRATIONS_DIR, discover, split_statements

ENFORCING_DIALECT = "postgresql"
"""The dialect whose DDL decides what fits (SQLite accepts any length)."""

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "SMALLINT": (-(2**15), 2**15 - 1),
    "INTEGER": (-(2**31), 2**31 - 1),
    "INT": (-(2**31), 2**31 - 1),
    "BIGINT": (-(2**63), 2**63 - 1),
}

_CREATE_RE = re.compile(
    r"^CREATE\s+(?:TEMPORARY\s+|TEMP\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<table>\w+)\s*\((?P<body>.*)\)\s*$",
    re.I | re.S,
)
_ALTER_RE = re.compile(r"^ALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(?P<table>\w+)\s+(?P<actions>.*)$", re.I | re.S)
_ADD_RE = re.compile(r"^ADD\s+(?:COLUMN\s+)?(?:IF\s+NOT\s+EXISTS\s+)?(?P<definition>.*)$", re.I | re.S)
_RETYPE_RE = re.compile(r"^ALTER\s+(?:COLUMN\s+)?(?P<column>\w+)\s+(?:SET\s+DATA\s+)?TYPE\s+(?P<type>.*)$", re.I | re.S)
_DROP_RE = re.compile(r"^DROP\s+(?:COLUMN\s+)?(?:IF\s+EXISTS\s+)?(?P<column>\w+)", re.I)
_TYPE_RE = re.compile(
    r"^(?P<name>DOUBLE\s+PRECISION|CHARACTER\s+VARYING|[A-Z]+)\s*(?:\(\s*(?P<p>\d+)\s*(?:,\s*(?P<s>\d+)\s*)?\))?",
    re.I,
)
_CONSTRAINT_WORDS = ("PRIMARY", "CONSTRAINT", "CHECK", "UNIQUE", "FOREIGN", "EXCLUDE")


@dataclass(frozen=True)
class ColumnType:
    """One warehouse column's declared type, as the DDL spells it."""

    table: str
    column: str
    type_name: str
    """Upper case, without arguments: VARCHAR, INTEGER, BIGINT, NUMERIC, DOUBLE PRECISION, TEXT..."""
    length: int | None = None
    """Maximum characters of VARCHAR(n) / CHAR(n); None when unlimited."""
    precision: int | None = None
    scale: int | None = None

    @property
    def value_range(self) -> tuple[float, float] | None:
        """Inclusive range of numbers the column accepts; None when not a bounded numeric type."""
        if self.type_name in INTEGER_RANGES:
            return INTEGER_RANGES[self.type_name]
        if self.type_name in ("NUMERIC", "DECIMAL") and self.precision is not None:
            scale = self.scale or 0
            bound = 10.0 ** (self.precision - scale) - 10.0 ** (-scale)
            return (-bound, bound)
        return None


def parse_type(table: str, column: str, spelled: str) -> ColumnType:
    """A column type from its DDL spelling, e.g. `VARCHAR(64) NOT NULL` -> VARCHAR, length 64."""
    m = _TYPE_RE.match(spelled.strip())
    if not m:
        raise ValueError(f"{table}.{column}: cannot read the column type {spelled!r}")
    name = " ".join(m["name"].upper().split())
    name = {"CHARACTER VARYING": "VARCHAR", "INT4": "INTEGER", "INT8": "BIGINT", "INT2": "SMALLINT"}.get(name, name)
    p = int(m["p"]) if m["p"] else None
    if name in ("VARCHAR", "CHAR", "CHARACTER"):
        return ColumnType(table, column, "VARCHAR" if name == "VARCHAR" else "CHAR", length=p)
    return ColumnType(table, column, name, precision=p, scale=int(m["s"]) if m["s"] else None)


def _split_top_level(body: str) -> list[str]:
    """Split a table body on commas outside parentheses."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(body):
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(body[start:i])
            start = i + 1
    parts.append(body[start:])
    return [p.strip() for p in parts if p.strip()]


def _column_definition(table: str, definition: str) -> ColumnType | None:
    words = definition.split(None, 1)
    if not words or words[0].upper() in _CONSTRAINT_WORDS or len(words) < 2:
        return None
    return parse_type(table, words[0].lower(), words[1])


def columns_from_sql(statements: list[str], into: dict[str, dict[str, ColumnType]] | None = None
                     ) -> dict[str, dict[str, ColumnType]]:
    """Replay CREATE TABLE / ALTER TABLE column statements: {table: {column: ColumnType}}."""
    tables = {} if into is None else into
    for statement in statements:
        create = _CREATE_RE.match(statement.strip())
        if create:
            table = create["table"].lower()
            cols = tables.setdefault(table, {})
            for definition in _split_top_level(create["body"]):
                col = _column_definition(table, definition)
                if col is not None:
                    cols.setdefault(col.column, col)  # IF NOT EXISTS: a second CREATE changes nothing
            continue
        alter = _ALTER_RE.match(statement.strip())
        if not alter:
            continue
        table = alter["table"].lower()
        cols = tables.setdefault(table, {})
        for action in _split_top_level(alter["actions"]):
            if m := _RETYPE_RE.match(action):
                cols[m["column"].lower()] = parse_type(table, m["column"].lower(), m["type"])
            elif m := _DROP_RE.match(action):
                cols.pop(m["column"].lower(), None)
            elif m := _ADD_RE.match(action):
                col = _column_definition(table, m["definition"])
                if col is not None:
                    cols[col.column] = col
    return tables


@functools.lru_cache(maxsize=4)
def warehouse_columns(dialect: str = ENFORCING_DIALECT, directory: Path = MIGRATIONS_DIR
                      ) -> dict[str, dict[str, ColumnType]]:
    """Every warehouse table's columns after all migrations of `dialect`, from the SQL files."""
    tables: dict[str, dict[str, ColumnType]] = {}
    for migration in discover(dialect, directory):
        columns_from_sql(split_statements(migration.sql), tables)
    return tables


def column(table: str, name: str) -> ColumnType:
    """One column's type; KeyError naming the table and column when the DDL has no such column."""
    try:
        return warehouse_columns()[table][name]
    except KeyError:
        raise KeyError(f"the warehouse DDL (include/sql/migrations) has no column {table}.{name}") from None
