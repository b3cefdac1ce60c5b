"""Rules that keep a row out of the warehouse when a value does not fit its column.

PostgreSQL rejects a `VARCHAR(64)` value of 65 characters (SQLite stores it), so a row
that passed validation could fail the whole run's load on one database and load on the
other. These rules quarantine such a row instead, with the same result on both.

The limits are not written here: `warehouse.schema` reads them from the migration DDL,
and `HOMES` below says which warehouse column(s) each feed column is stored in (for the
vehicles, the load's own FEED_RENAMES). A feed column gets

- `<column>_too_long` when it lands in a `VARCHAR(n)` column: more than n characters
  (PostgreSQL counts characters, as `utf8_length` does);
- `<column>_out_of_range` when it is typed to a number and lands in a column narrower than
  its Arrow type (e.g. a SMALLINT); today's DDL has none: every typed column's Arrow type
  fits its column (tests/unit/validation/test_limits.py asserts both).

Columns whose existing rule already implies the limit get no second rule: `vin`
(`vin_format`: exactly 17 characters, the column is VARCHAR(17)) and `dealer_id`
(`dealer_id_known`: one of the group's dealer ids).

What GX sees: one boolean `<column>__fits` column per limited column in the check frame
(False where a value is present and does not fit), computed here with Arrow kernels, and
one `ExpectColumnValuesToBeInSet [True]` per rule, like the `__parses` columns. A limit
rule whose column has no False in the batch cannot fail, so GX is not asked for it
(`rules_that_can_fail`): the rules cost nothing until a value is too long.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from dealer_feed.validation.suites import Rule, _rule

COVERED_BY_OTHER_RULES = {"vin": "vin_format", "dealer_id": "dealer_id_known"}
"""Feed columns whose existing rule already keeps them within their warehouse column."""


def _vehicle_homes() -> dict[str, tuple[tuple[str, str], ...]]:
    from dealer_feed.contract.schemas import VEHICLE_RAW_COLUMNS
    from dealer_feed.contract.schemas import FEED_RENAMES

    homes = {c: (("feed_vehicles", FEED_RENAMES.get(c, c)),) for c in VEHICLE_RAW_COLUMNS}
    # The stock number also becomes the service request's (and its events' and children's).
    homes["stock_number"] += (
        ("service_requests", "stock_number"),
        ("service_request_events", "new_stock_number"),
        ("inspections", "stock_number"),
        ("work_orders", "stock_number"),
    )
    return homes


@functools.lru_cache(maxsize=1)
def homes() -> dict[str, dict[str, tuple[tuple[str, str], ...]]]:
    """dataset -> feed column -> the (table, column)s of the warehouse the value is stored in.

    Parts and repair orders keep the whole row as JSON text; only their key has a column.
    """
    return {
        "vehicles": _vehicle_homes(),
        "parts": {"dealer_id": (("parts_inventory", "dealer_id"),), "part_number": (("parts_inventory", "part_number"),)},
        "repair_orders": {
            "dealer_id": (("repair_orders", "dealer_id"),),
            "repair_order_number": (("repair_orders", "ro_number"),),
        },
    }


def fits_column(column: str) -> str:
    """Check-frame column: True where the value is null or fits the warehouse."""
    return f"{column}__fits"


@dataclass(frozen=True)
class Limit:
    """What one feed column's warehouse home(s) accept (the narrowest of them)."""

    column: str
    homes: tuple[str, ...]
    """`table.column` of every warehouse column the value is stored in."""
    max_length: int | None = None
    low: float | None = None
    high: float | None = None

    @property
    def rule_name(self) -> str:
        return f"{self.column}_too_long" if self.max_length is not None else f"{self.column}_out_of_range"

    @property
    def rule(self) -> Rule:
        where = ", ".join(self.homes)
        what = (f"at most {self.max_length} characters" if self.max_length is not None
                else f"within {self.low:.15g}..{self.high:.15g}")
        return _rule(
            self.rule_name,
            f"{self.column}, when present, is {what} (what the warehouse column {where} accepts)",
            "ExpectColumnValuesToBeInSet",
            self.column,
            column=fits_column(self.column),
            value_set=[True],
        )

    def fits(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """True where the value is null or fits (vectorized)."""
        if self.max_length is not None:
            ok = pc.less_equal(pc.utf8_length(values), self.max_length)
        else:
            ok = pc.and_(pc.greater_equal(values, self.low), pc.less_equal(values, self.high))
        return np.asarray(pc.fill_null(ok, True), dtype=bool)


def _arrow_range(type_: pa.DataType) -> tuple[float, float] | None:
    if pa.types.is_integer(type_):
        info = np.iinfo(type_.to_pandas_dtype())
        return (int(info.min), int(info.max))
    if pa.types.is_floating(type_):
        return (-np.inf, np.inf)
    return None


def _limit(column: str, type_: pa.DataType, places: tuple[tuple[str, str], ...]) -> Limit | None:
    from dealer_feed.warehouse import schema

    targets = [schema.column(t, c) for t, c in places]
    names = tuple(f"{t}.{c}" for t, c in places)
    if pa.types.is_string(type_) or pa.types.is_large_string(type_):
        lengths = [t.length for t in targets if t.length is not None]
        return Limit(column, names, max_length=min(lengths)) if lengths else None
    ranges = [t.value_range for t in targets if t.value_range is not None]
    have = _arrow_range(type_)
    if not ranges or have is None:
        return None
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    if low <= have[0] and have[1] <= high:
        return None  # every value of the Arrow type fits: nothing to check
    return Limit(column, names, low=low, high=high)


def limits_for(dataset: str, schema: pa.Schema) -> tuple[Limit, ...]:
    """The limits of the columns of `schema` (a dataset's good schema), in schema order."""
    places = homes().get(dataset, {})
    found = []
    for field in schema:
        if field.name in COVERED_BY_OTHER_RULES or field.name not in places:
            continue
        limit = _limit(field.name, field.type, places[field.name])
        if limit is not None:
            found.append(limit)
    return tuple(found)


def limit_rules(limits: tuple[Limit, ...]) -> tuple[Rule, ...]:
    return tuple(limit.rule for limit in limits)


EXAMPLE_CHARS = 80


def shown(value: Any) -> str:
    """A failing value as an example in logs and reports: its repr, cut after EXAMPLE_CHARS
    characters with its length (a 10,240-character stock number must not flood the log)."""
    if isinstance(value, str) and len(value) > EXAMPLE_CHARS:
        return f"{value[:EXAMPLE_CHARS]!r}... ({len(value):,} characters)"
    return repr(value)


def rules_that_can_fail(rules: tuple[Rule, ...], limits: tuple[Limit, ...], check: dict[str, Any]) -> list[int]:
    """Positions in `rules` of the rules GX must evaluate: all but the limit rules whose
    `__fits` column holds no False (the common case: no value is too long)."""
    vacuous = {lim.rule_name for lim in limits if bool(np.all(check[fits_column(lim.column)]))}
    return [i for i, rule in enumerate(rules) if rule.name not in vacuous]


def add_fits_columns(check: dict[str, Any], typed: pa.Table, limits: tuple[Limit, ...]) -> None:
    """Add each limit's `<column>__fits` column (from the typed, verbatim values) to the check frame."""
    for limit in limits:
        check[fits_column(limit.column)] = limit.fits(typed.column(limit.column))
