"""Typing of OpenTrack values, vectorized (pyarrow compute), from the raw strings.

OpenTrack delivers every value as text (OPENTRACK.md "Values"): dates are `yyyyMMdd`
numbers with `0` meaning empty, flags are `Y`/`N`, numbers are plain digits. raw.parquet
keeps those strings exactly as delivered; good.parquet holds the typed values
(ARCHITECTURE.md "Frames"). This module is the one place that turns the one into the
other.

Every converter returns `(typed, invalid)`:

* `typed` — the typed values; null where the value was absent *or* did not parse;
* `invalid` — a boolean mask, True where a value was present but did not parse, so that
  validation can quarantine the row instead of silently loading a null.

"Absent" means null, empty or whitespace only (and, for dates, `0` / `00000000`).
Surrounding whitespace is ignored; flags are case-insensitive. Everything else is strict:
`20261332`, `20260230`, `2026011`, `12.5` as an integer, `1e3` as a decimal, `yes` as a
flag are all invalid.

The converters accept a pandas Series, a pyarrow Array/ChunkedArray or a plain list and
return pandas Series (pyarrow-backed dtypes, index kept) — `*_array` variants work on
pyarrow arrays and return `(pa.Array, numpy bool array)` for table-level code.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dealer_feed.contract.schemas import VEHICLE_GOOD_SCHEMA

DATE_TIME_COLUMNS: frozenset[str] = frozenset({"date_promised"})
"""Raw `date_*` columns that carry a date with time, `yyyyMMddHHmm` (repair orders'
PromisedDateTime): typed as timestamp[s] (UTC) in good.parquet instead of date32."""

_INT_RE = r"^[+-]?[0-9]{1,18}$"
_DECIMAL_RE = r"^[+-]?([0-9]{1,30}(\.[0-9]*)?|\.[0-9]{1,30})$"
_DATE_RE = r"^[0-9]{8}$"
_EMPTY_DATES = ("0", "00000000")
_DATE_TIME_RE = r"^[0-9]{12}$"
_EMPTY_DATE_TIMES = ("0", "000000000000")


# --------------------------------------------------------------------------- helpers


def _as_array(values: Any) -> pa.Array:
    """Any 1-d input as a pyarrow string Array (one chunk)."""
    if isinstance(values, pd.Series):
        arr = pa.array(values, from_pandas=True)
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
    elif isinstance(values, pa.ChunkedArray):
        arr = values.combine_chunks() if values.num_chunks != 1 else values.chunk(0)
    elif isinstance(values, pa.Array):
        arr = values
    else:
        arr = pa.array(list(values), type=pa.string(), from_pandas=True)
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    if not pa.types.is_string(arr.type):  # null, large_string, string_view, numbers, ...
        arr = arr.cast(pa.string())
    return arr


def _mask(arr: pa.Array) -> np.ndarray:
    """Boolean pyarrow array (nulls = False) as a numpy bool array."""
    return pc.fill_null(arr, False).to_numpy(zero_copy_only=False).astype(bool, copy=False)


def _clean(arr: pa.Array, empty: Iterable[str] = ()) -> pa.Array:
    """Trimmed strings, with empty (and the given placeholders) turned into null."""
    trimmed = pc.utf8_trim_whitespace(arr)
    absent = pc.equal(pc.utf8_length(trimmed), 0)
    for token in empty:
        absent = pc.or_(absent, pc.equal(trimmed, token))
    return pc.if_else(absent, pa.scalar(None, pa.string()), trimmed)


def _split(clean: pa.Array, ok: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(values where ok, else null; mask of present-but-not-ok)."""
    ok = pc.fill_null(ok, False)
    present = pc.is_valid(clean)
    invalid = pc.and_(present, pc.invert(ok))
    kept = pc.if_else(ok, clean, pa.scalar(None, pa.string()))
    return kept, _mask(invalid)


def _series(typed: pa.Array, invalid: np.ndarray, like: Any) -> tuple[pd.Series, pd.Series]:
    index = like.index if isinstance(like, pd.Series) else None
    name = like.name if isinstance(like, pd.Series) else None
    values = pd.Series(pd.arrays.ArrowExtensionArray(typed), index=index, name=name)
    return values, pd.Series(invalid, index=index, name=name, dtype=bool)


# --------------------------------------------------------------------------- array converters


def date_array(values: Any) -> tuple[pa.Array, np.ndarray]:
    """`yyyyMMdd` strings -> date32; `0`, `00000000`, empty -> null; bad calendar dates invalid.

    Vectorized integer arithmetic (no strptime: it rolls 20260230 over to March, and its
    round trip through strftime is slow): split yyyyMMdd into year, month, day and check
    the day against the month's length.
    """
    clean = _clean(_as_array(values), _EMPTY_DATES)
    shaped = pc.fill_null(pc.match_substring_regex(clean, _DATE_RE), False)
    number = pc.cast(pc.if_else(shaped, clean, pa.scalar(None, pa.string())), pa.int64())
    n = number.fill_null(0).to_numpy(zero_copy_only=False)
    year, month, day = n // 10000, n // 100 % 100, n % 100
    ok = shaped.to_numpy(zero_copy_only=False) & (month >= 1) & (month <= 12) & (day >= 1) & (year >= 1)
    # months since 1970 -> first day of the month and of the next one
    months = np.where(ok, (year - 1970) * 12 + (month - 1), 0).astype("datetime64[M]")
    first = months.astype("datetime64[D]")
    length = ((months + 1).astype("datetime64[D]") - first).astype(np.int64)
    ok &= day <= length
    days = (first.astype(np.int64) + day - 1).astype(np.int32)
    typed = pa.array(days, type=pa.int32(), mask=~ok).cast(pa.date32())
    invalid = _mask(pc.is_valid(clean)) & ~ok
    return typed, invalid


def date_time_array(values: Any) -> tuple[pa.Array, np.ndarray]:
    """`yyyyMMddHHmm` strings -> timestamp[s] (UTC); `0`, empty -> null; a bad date, hour > 23 or
    minute > 59 is invalid. The date part is checked by date_array (one calendar rule)."""
    clean = _clean(_as_array(values), _EMPTY_DATE_TIMES)
    shaped = pc.fill_null(pc.match_substring_regex(clean, _DATE_TIME_RE), False)
    kept = pc.if_else(shaped, clean, pa.scalar(None, pa.string()))
    day, bad_day = date_array(pc.utf8_slice_codeunits(kept, 0, 8))
    minutes = pc.cast(pc.utf8_slice_codeunits(kept, 8, 12), pa.int64()).fill_null(0).to_numpy(zero_copy_only=False)
    hour, minute = minutes // 100, minutes % 100
    ok = _mask(pc.is_valid(day)) & (hour <= 23) & (minute <= 59)
    seconds = (day.cast(pa.int32()).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64) * 86400
               + hour * 3600 + minute * 60)
    typed = pa.array(seconds, type=pa.int64(), mask=~ok).cast(pa.timestamp("s", tz="UTC"))
    invalid = _mask(pc.is_valid(clean)) & ~ok
    return typed, invalid


def flag_array(values: Any) -> tuple[pa.Array, np.ndarray]:
    """`Y` -> True, `N` -> False (case-insensitive), empty -> null, anything else invalid."""
    clean = pc.utf8_upper(_clean(_as_array(values)))
    is_y = pc.equal(clean, "Y")
    ok = pc.or_(is_y, pc.equal(clean, "N"))
    _, invalid = _split(clean, ok)
    typed = pc.if_else(pc.fill_null(ok, False), is_y, pa.scalar(None, pa.bool_()))
    return typed, invalid


def int_array(values: Any, type: pa.DataType = pa.int64()) -> tuple[pa.Array, np.ndarray]:
    """Decimal digits (optional sign) -> integer of `type`; out of range for `type` is invalid."""
    clean = _clean(_as_array(values))
    kept, invalid = _split(clean, pc.match_substring_regex(clean, _INT_RE))
    wide = pc.cast(pc.replace_substring_regex(kept, r"^\+", ""), pa.int64())
    if type != pa.int64():
        info = np.iinfo(type.to_pandas_dtype())
        fits = pc.fill_null(pc.and_(pc.greater_equal(wide, info.min), pc.less_equal(wide, info.max)), True)
        invalid = invalid | ~_mask(fits) & _mask(pc.is_valid(wide))
        wide = pc.if_else(fits, wide, pa.scalar(None, pa.int64()))
        return pc.cast(wide, type), invalid
    return wide, invalid


def decimal_array(values: Any) -> tuple[pa.Array, np.ndarray]:
    """Plain decimal numbers (`123`, `-4.50`, `.5`) -> float64; exponents, `nan`, `1,000` invalid."""
    clean = _clean(_as_array(values))
    kept, invalid = _split(clean, pc.match_substring_regex(clean, _DECIMAL_RE))
    return pc.cast(pc.replace_substring_regex(kept, r"^\+", ""), pa.float64()), invalid


def string_array(values: Any) -> pa.Array:
    """As delivered, as a pyarrow string array (no trimming: strings are kept verbatim)."""
    return _as_array(values)


# --------------------------------------------------------------------------- Series converters


def parse_dates(values: Any) -> tuple[pd.Series, pd.Series]:
    """`yyyyMMdd` -> date32 Series (`date32[pyarrow]`), plus the invalid mask."""
    return _series(*date_array(values), values)


def parse_flags(values: Any) -> tuple[pd.Series, pd.Series]:
    """`Y`/`N` -> nullable bool Series (`bool[pyarrow]`), plus the invalid mask."""
    return _series(*flag_array(values), values)


def parse_ints(values: Any, type: pa.DataType = pa.int64()) -> tuple[pd.Series, pd.Series]:
    """Integers -> `int64[pyarrow]` (or `type`, e.g. `pa.int32()`), plus the invalid mask."""
    return _series(*int_array(values, type), values)


def parse_decimals(values: Any) -> tuple[pd.Series, pd.Series]:
    """Decimals -> `double[pyarrow]`, plus the invalid mask."""
    return _series(*decimal_array(values), values)


# --------------------------------------------------------------------------- tables


def convert_array(values: Any, type: pa.DataType) -> tuple[pa.Array, np.ndarray]:
    """Dispatch on the target type: the converter good.parquet uses for a column of `type`."""
    if pa.types.is_date32(type):
        return date_array(values)
    if pa.types.is_timestamp(type):
        return date_time_array(values)
    if pa.types.is_boolean(type):
        return flag_array(values)
    if pa.types.is_integer(type):
        return int_array(values, type)
    if pa.types.is_floating(type):
        typed, invalid = decimal_array(values)
        return pc.cast(typed, type), invalid
    arr = string_array(values)
    return arr, np.zeros(len(arr), dtype=bool)


def type_table(raw: pa.Table | pd.DataFrame, schema: pa.Schema) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Type the raw string table into `schema` (columns in schema order).

    Returns the typed table and, per typed (non-string) column, the invalid mask. Columns
    of `schema` missing from `raw` raise KeyError (callers check the raw contract first).
    """
    if isinstance(raw, pd.DataFrame):
        raw = pa.Table.from_pandas(raw, preserve_index=False)
    arrays: list[pa.Array] = []
    invalid: dict[str, np.ndarray] = {}
    for field in schema:
        typed, bad = convert_array(raw.column(field.name), field.type)
        arrays.append(typed)
        if not pa.types.is_string(field.type):
            invalid[field.name] = bad
    return pa.Table.from_arrays(arrays, schema=schema), invalid


def type_vehicles(raw: pa.Table | pd.DataFrame) -> tuple[pa.Table, dict[str, np.ndarray]]:
    """Type a raw vehicle table into the good schema (VEHICLE_GOOD_SCHEMA, ARCHITECTURE.md).

    Returns `(typed table, {column: invalid mask})` for model_year, odometer, date_*,
    list_price, vehicle_cost and certified_used_car. Invalid values are null in the table.
    """
    return type_table(raw, VEHICLE_GOOD_SCHEMA)
