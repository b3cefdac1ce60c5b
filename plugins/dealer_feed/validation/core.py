"""Validate raw OpenTrack batches of several dealers with one Great Expectations run.

Why several dealers per call: Airflow runs one task per batch of dealers, and importing GX
costs ~3 s per process. So the raw tables of all the task's dealers are concatenated into
one *check frame*, GX validates it once (in-process, ephemeral context, pandas), and the
results are split back per dealer by row position.

Division of work, for speed at 200,000 rows: `opentrack.values` types the raw strings
with pyarrow (one pass per column) and yields, per typed column, a mask of values that
were present but did not parse; the check frame carries those as boolean `<col>__parses`
columns next to the key string columns, and GX checks every rule on that one frame
(`suites.py`). GX's `unexpected_index_list` (result_format COMPLETE) names the failing
rows of each rule.

Nothing is written here: the caller (pipeline) writes good / quarantine / status with
`landing`; `report.write_report` writes the HTML report.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from dealer_feed.config import GroupConfig
from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.contract.identity import run_id
from dealer_feed.contract.schemas import QUARANTINE_SCHEMA, VEHICLE_GOOD_SCHEMA, VEHICLE_RAW_COLUMNS
from dealer_feed.opentrack.parse import REPLACEMENT_CHARACTER
from dealer_feed.opentrack.values import (
    DATE_TIME_COLUMNS,
    _mask,
    string_array,
    type_table,
)
from dealer_feed.validation import limits, suites
from dealer_feed.validation.suites import BATCH_COLUMN, FORBIDDEN_CHARACTER_COLUMN, Rule, parses_column

# GX registers hundreds of functions at import and logs one line each at INFO.
logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)

log = logging.getLogger(__name__)

EXAMPLES_PER_RULE = 3

PART_KEY_COLUMN = "part_number"
RO_KEY_COLUMN = "repair_order_number"
# Raw column names of parts and repair orders as `opentrack.client` writes them
# (PARTS_COLUMNS, REPAIR_ORDER_COLUMNS); those suites check dealer_id, the key and every
# `date_*` column present in the raw table.



class RawSchemaError(DealerFeedError, ValueError):
    """A raw batch lacks columns of the raw contract (an extractor bug, not bad data). Permanent."""

    fix = ("the extractor wrote a raw table without the raw contract's columns (contract.schemas): fix the "
           "client's column map, delete the run's raw.parquet and clear its `extract` batch with downstream")


# --------------------------------------------------------------------------- result type


@dataclass
class DealerValidation:
    """Validation outcome of one dealer's batch of one dataset in one run."""

    dealer_id: str
    dataset: str
    group: str
    run_id: str
    logical_time: datetime
    rows: int
    good: pa.Table
    """Rows that passed every rule, typed (good schema)."""
    quarantine: pd.DataFrame
    """Rows that failed, QUARANTINE_SCHEMA columns, ordered by row_number."""
    rule_counts: dict[str, int]
    """Failures per rule, every rule of the suite (0 included), in suite order."""
    examples: dict[str, list[str]]
    """Up to EXAMPLES_PER_RULE examples per failed rule: `row N: 'raw value'`."""
    report: dict[str, Any] = field(default_factory=dict)
    """JSON-able fragments for status / report (counts, rules, GX suite facts)."""

    @property
    def good_rows(self) -> int:
        return self.good.num_rows

    @property
    def quarantined(self) -> int:
        return len(self.quarantine)

    @property
    def bad_fraction(self) -> float:
        return self.quarantined / self.rows if self.rows else 0.0

    def broken_rules(self) -> list[tuple[str, int]]:
        """(rule, failures) of the rules that failed, most failures first."""
        broken = [(r, n) for r, n in self.rule_counts.items() if n]
        return sorted(broken, key=lambda rn: (-rn[1], rn[0]))

    def quarantine_table(self) -> pa.Table:
        """The quarantine rows as an Arrow table with QUARANTINE_SCHEMA (no pandas metadata)."""
        q = self.quarantine
        arrays = [pa.array(q[f.name].to_numpy(), type=f.type) for f in QUARANTINE_SCHEMA] if len(q) else None
        if arrays is None:
            return QUARANTINE_SCHEMA.empty_table()
        return pa.Table.from_arrays(arrays, schema=QUARANTINE_SCHEMA)


# --------------------------------------------------------------------------- GX runtime


@functools.lru_cache(maxsize=1)
def gx_runtime() -> tuple[Any, Any, Any]:
    """(gx module, ephemeral context, whole-dataframe batch definition), once per process."""
    os.environ["GX_ANALYTICS_ENABLED"] = "False"
    logging.getLogger("great_expectations._docs_decorators").setLevel(logging.WARNING)
    gx_logger = logging.getLogger("great_expectations")
    if gx_logger.level == logging.NOTSET:  # GX's info lines ("Loading 'datasources'") are noise in task logs
        gx_logger.setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    asset = context.data_sources.add_pandas("dealer_feed").add_dataframe_asset("check_frame")
    batch_definition = asset.add_batch_definition_whole_dataframe("whole_frame")
    return gx, context, batch_definition


@functools.lru_cache(maxsize=64)
def _suite(name: str, rules: tuple[Rule, ...]) -> Any:
    gx, _, _ = gx_runtime()
    return suites.build_suite(gx, name, rules)


_RESULT_FORMAT = {
    "result_format": "COMPLETE",
    "partial_unexpected_count": 0,
    "include_unexpected_rows": False,
    "return_unexpected_index_query": False,
}


def run_suite(check: pd.DataFrame, suite_name: str, rules: Sequence[Rule]) -> np.ndarray:
    """Validate `check` with GX; return the failure matrix (rows x rules, bool)."""
    failed = np.zeros((len(check), len(rules)), dtype=bool)
    if not len(check):
        return failed
    _, _, batch_definition = gx_runtime()
    suite = _suite(suite_name, tuple(rules))
    try:
        # What ValidationDefinition.run uses: loads the batch once. (`batch.validate` loads
        # it a second time, and GX fingerprints the whole frame on every load: ~0.1 s at
        # 200,000 rows.)
        from great_expectations.validator.v1_validator import Validator
    except ImportError:  # pragma: no cover - older / newer GX layout
        batch = batch_definition.get_batch(batch_parameters={"dataframe": check})
        result = batch.validate(suite, result_format=_RESULT_FORMAT)
    else:
        validator = Validator(
            batch_definition=batch_definition, batch_parameters={"dataframe": check}, result_format=_RESULT_FORMAT
        )
        result = validator.validate_expectation_suite(suite)
    column_of = {rule.name: i for i, rule in enumerate(rules)}
    seen = set()
    for res in result.results:
        rule = (res.expectation_config.meta or {}).get("rule")
        if rule not in column_of:
            raise RuntimeError(f"GX returned a result for an unknown expectation: {res.expectation_config.type}")
        seen.add(rule)
        info = res.exception_info or {}
        if info.get("raised_exception"):
            raise RuntimeError(f"GX could not evaluate rule {rule}: {info.get('exception_message')}")
        if res.success:
            continue
        index = res.result.get("unexpected_index_list")
        count = res.result.get("unexpected_count")
        if index is None or len(index) != count:
            raise RuntimeError(f"GX result for rule {rule} has no complete unexpected_index_list")
        failed[np.asarray(index, dtype=np.int64), column_of[rule]] = True
    missing = set(column_of) - seen
    if missing:
        raise RuntimeError(f"GX returned no result for rules: {', '.join(sorted(missing))}")
    return failed


# --------------------------------------------------------------------------- batches


def _as_table(raw: pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(raw, pd.DataFrame):
        return pa.Table.from_pandas(raw, preserve_index=False)
    return raw


def _string_column(table: pa.Table, name: str) -> pa.Array:
    """The column as delivered, as strings; all null when the DMS did not send it."""
    if name not in table.column_names:
        return pa.nulls(table.num_rows, pa.string())
    return string_array(table.column(name))


def _normalise(dealer_id: str, raw: pa.Table, columns: Sequence[str], required: Sequence[str], dataset: str) -> pa.Table:
    missing = [c for c in required if c not in raw.column_names]
    if missing and raw.num_rows:
        raise RawSchemaError(
            f"{dataset} batch of dealer {dealer_id}: raw table lacks columns {', '.join(missing)} "
            f"(has: {', '.join(raw.column_names)}); the extractor must write the raw contract of ARCHITECTURE.md"
        )
    return pa.table({c: _string_column(raw, c) for c in columns})


def _blank_to_null(arr: pa.Array) -> pa.Array:
    """Verbatim strings, with null where blank (empty or whitespace only)."""
    blank = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0)
    return pc.if_else(pc.fill_null(blank, False), pa.scalar(None, pa.string()), arr)


def _rule_strings(failed_bad: np.ndarray, names: Sequence[str]) -> np.ndarray:
    """';'-joined sorted rule names per row of a (bad rows x rules) matrix, vectorized."""
    if not len(failed_bad):
        return np.array([], dtype=object)
    order = np.argsort(np.asarray(names))
    sorted_names = [names[i] for i in order]
    bits = failed_bad[:, order]
    weights = np.left_shift(np.int64(1), np.arange(bits.shape[1], dtype=np.int64))
    codes = bits.astype(np.int64) @ weights
    uniq, inverse = np.unique(codes, return_inverse=True)
    labels = np.array(
        [";".join(n for j, n in enumerate(sorted_names) if code >> j & 1) for code in uniq.tolist()], dtype=object
    )
    return labels[inverse]


def _may_hold_fffd(arr: pa.Array) -> bool:
    """Cheap pre-check: the array's UTF-8 data holds a 0xEF byte (U+FFFD's first). One numpy
    pass; the exact per-value search then runs only where this is true (rarely)."""
    data = arr.buffers()[2]
    return data is not None and bool((np.frombuffer(data, dtype=np.uint8) == 0xEF).any())


def forbidden_character_fields(table: pa.Table) -> pd.Series:
    """Per row, the ';'-joined names of the string columns holding U+FFFD (what the parser
    put where the DMS sent a character XML 1.0 forbids), null when none; vectorized."""
    names = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    hits = np.zeros((table.num_rows, len(names)), dtype=bool)
    for j, name in enumerate(names):
        column = table.column(name)
        if any(_may_hold_fffd(chunk) for chunk in column.chunks):
            hits[:, j] = _mask(pc.match_substring(column, REPLACEMENT_CHARACTER))
    fields = np.full(table.num_rows, None, dtype=object)
    rows = np.flatnonzero(hits.any(axis=1))
    fields[rows] = _rule_strings(hits[rows], names)
    return pd.Series(fields, dtype="str")


_JSON_ESCAPES = (("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t"))
_OTHER_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"
_NEEDS_ESCAPE = r"[\\\\\"\x00-\x1f]"


def _json_string(arr: pa.Array) -> pa.Array:
    """JSON literal per value, vectorized: `"escaped text"`, or `null`."""
    for old, new in _JSON_ESCAPES:
        arr = pc.replace_substring(arr, old, new)
    quoted = pc.binary_join_element_wise('"', arr, '"', "")
    return pc.fill_null(quoted, "null")


def rows_as_json(table: pa.Table, positions: np.ndarray) -> list[str]:
    """The given rows of `table` as JSON objects with sorted keys, one string per row.

    Vectorized with Arrow string kernels (only the bad rows are encoded); values are JSON
    strings or null, as in raw.parquet. The rare row holding a control character other
    than \\n, \\r, \\t is encoded by `json.dumps` instead (same meaning).
    """
    if not len(positions):
        return []
    rows = table.take(pa.array(positions, type=pa.int64()))
    names = sorted(rows.column_names)
    parts: list[Any] = []
    strings: dict[str, pa.Array] = {}
    odd = np.zeros(len(positions), dtype=bool)
    for k, name in enumerate(names):
        arr = strings[name] = _string_column(rows, name)
        parts.append(("{" if k == 0 else ",") + json.dumps(name) + ":")
        if pc.any(pc.match_substring_regex(arr, _NEEDS_ESCAPE)).as_py():
            odd |= _mask(pc.match_substring_regex(arr, _OTHER_CONTROL))
            parts.append(_json_string(arr))
        else:  # the common case: nothing to escape
            parts.append(pc.fill_null(pc.binary_join_element_wise('"', arr, '"', ""), "null"))
    parts.append("}")
    text = pc.binary_join_element_wise(*parts, "").to_pylist()
    for i in np.flatnonzero(odd).tolist():
        text[i] = json.dumps({n: strings[n][i].as_py() for n in names}, sort_keys=True, separators=(",", ":"))
    return text


@dataclass(frozen=True)
class _Plan:
    dataset: str
    schema: pa.Schema
    """good schema (column order of good.parquet)."""
    required: tuple[str, ...]
    key_columns: tuple[str, ...]
    """Columns the check frame carries as strings (blank -> null)."""
    range_columns: tuple[str, ...]
    """Typed columns the check frame carries as typed values."""
    rules: tuple[Rule, ...]
    suite_name: str
    limits: tuple[limits.Limit, ...] = ()
    """What the warehouse columns accept (validation/limits.py); their rules are the last of `rules`."""


def _vehicle_plan(group: GroupConfig, run_year: int) -> _Plan:
    typed = {f.name: str(f.type) for f in VEHICLE_GOOD_SCHEMA if not pa.types.is_string(f.type)}
    rules = tuple(suites.vehicle_rules(group.dealer_ids, run_year, typed))
    fit = limits.limits_for("vehicles", VEHICLE_GOOD_SCHEMA)
    return _Plan(
        dataset="vehicles",
        schema=VEHICLE_GOOD_SCHEMA,
        required=VEHICLE_RAW_COLUMNS,
        key_columns=("dealer_id", "vin", "stock_number", "type_nu"),
        range_columns=("model_year",),
        rules=rules + limits.limit_rules(fit),
        suite_name=f"vehicles.{group.group}.{run_year}",
        limits=fit,
    )


def _date_type(column: str) -> pa.DataType:
    """date32, or a UTC timestamp for the columns OpenTrack delivers as yyyyMMddHHmm."""
    return pa.timestamp("s", tz="UTC") if column in DATE_TIME_COLUMNS else pa.date32()


def _keyed_plan(dataset: str, key: str, group: GroupConfig, tables: Mapping[str, pa.Table]) -> _Plan:
    columns: dict[str, None] = {"dealer_id": None, key: None}
    for table in tables.values():
        columns.update(dict.fromkeys(table.column_names))
    dates = [c for c in columns if c.startswith("date_")]
    schema = pa.schema([pa.field(c, _date_type(c) if c in dates else pa.string()) for c in columns])
    rules = tuple(suites.keyed_rules(group.dealer_ids, key, dates))
    fit = limits.limits_for(dataset, schema)
    return _Plan(
        dataset=dataset,
        schema=schema,
        required=("dealer_id", key),
        key_columns=("dealer_id", key),
        range_columns=(),
        rules=rules + limits.limit_rules(fit),
        suite_name=f"{dataset}.{group.group}.{'.'.join(dates)}",
        limits=fit,
    )


def _validate(
    plan: _Plan,
    tables: Mapping[str, pa.Table],
    group: GroupConfig,
    logical_time: datetime,
    *,
    runner: Callable[[pd.DataFrame, str, Sequence[Rule]], np.ndarray] | None = None,
    timings: dict[str, float] | None = None,
) -> dict[str, DealerValidation]:
    """Validate `tables` by `plan`. `runner` replaces GX (benchmark baseline); `timings`
    receives seconds per phase (benchmark)."""
    clock = _Clock(timings)
    T = logical_time
    this_run = run_id(group.group, T)
    unknown = [d for d in tables if d not in group.dealer_ids]
    if unknown:
        raise ValueError(f"group {group.group}: batches given for unknown dealers {', '.join(unknown)}")
    dealers = list(tables)
    columns = [f.name for f in plan.schema]
    normalised = [_normalise(d, tables[d], columns, plan.required, plan.dataset) for d in dealers]
    sizes = np.array([t.num_rows for t in normalised], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    raw_all = pa.concat_tables(normalised) if normalised else pa.table({c: pa.array([], pa.string()) for c in columns})
    raw_all = raw_all.combine_chunks()
    clock("normalise")

    typed, invalid = type_table(raw_all, plan.schema)
    clock("type")

    check: dict[str, Any] = {
        BATCH_COLUMN: pd.array(np.repeat(np.array(dealers, dtype=object), sizes), dtype="str")
        if dealers
        else pd.array([], dtype="str")
    }
    for c in plan.key_columns:
        check[c] = pd.array(_blank_to_null(_string_column(raw_all, c)).to_pandas(), dtype="str")
    for c in plan.range_columns:
        check[c] = typed.column(c).to_pandas()
    for c, bad in invalid.items():
        check[parses_column(c)] = ~bad
    limits.add_fits_columns(check, typed, plan.limits)
    check[FORBIDDEN_CHARACTER_COLUMN] = forbidden_character_fields(raw_all).array
    check_frame = pd.DataFrame(check)
    clock("check_frame")

    # A warehouse-fit rule whose `__fits` column is all True cannot fail: GX is not asked (each costs
    # ~50 ms per 200,000 rows); its column of the failure matrix stays False (validation/limits.py).
    asked = limits.rules_that_can_fail(plan.rules, plan.limits, check)
    failed = np.zeros((len(check_frame), len(plan.rules)), dtype=bool)
    failed[:, asked] = (runner or run_suite)(check_frame, plan.suite_name, [plan.rules[i] for i in asked])
    clock("rules")
    names = [r.name for r in plan.rules]
    bad_any = failed.any(axis=1)
    bad_rows = np.flatnonzero(bad_any)
    labels_all = _rule_strings(failed[bad_rows], names)

    out: dict[str, DealerValidation] = {}
    for k, dealer in enumerate(dealers):
        lo, hi = int(offsets[k]), int(offsets[k + 1])
        n = hi - lo
        bad_slice = bad_any[lo:hi]
        good = typed.slice(lo, n).filter(pa.array(~bad_slice)) if n else plan.schema.empty_table()
        good = good.combine_chunks()
        sel = (bad_rows >= lo) & (bad_rows < hi)
        positions = bad_rows[sel] - lo
        labels = labels_all[sel]
        row_json = rows_as_json(_as_table(tables[dealer]), positions)
        quarantine = pd.DataFrame(
            {
                "dealer_group": pd.array([group.group] * len(positions), dtype="str"),
                "dealer_id": pd.array([dealer] * len(positions), dtype="str"),
                "run_id": pd.array([this_run] * len(positions), dtype="str"),
                "dataset": pd.array([plan.dataset] * len(positions), dtype="str"),
                "row_number": positions.astype(np.int64),
                "rules": pd.array(labels, dtype="str"),
                "row_json": pd.array(row_json, dtype="str"),
            }
        )
        counts_arr = failed[lo:hi].sum(axis=0)
        rule_counts = {name: int(c) for name, c in zip(names, counts_arr, strict=True)}
        examples: dict[str, list[str]] = {}
        for j, rule in enumerate(plan.rules):
            if not rule_counts[rule.name]:
                continue
            first = np.flatnonzero(failed[lo:hi, j])[:EXAMPLES_PER_RULE]
            if rule.example_column in raw_all.column_names:
                values = [raw_all.column(rule.example_column)[lo + int(i)].as_py() for i in first]
            else:  # a check-frame column, e.g. the fields holding a forbidden character
                values = [check_frame[rule.example_column].iloc[lo + int(i)] for i in first]
            examples[rule.name] = [f"row {i}: {limits.shown(v)}" for i, v in zip(first, values, strict=True)]
        v = DealerValidation(
            dealer_id=dealer,
            dataset=plan.dataset,
            group=group.group,
            run_id=this_run,
            logical_time=T,
            rows=n,
            good=good,
            quarantine=quarantine,
            rule_counts=rule_counts,
            examples=examples,
        )
        v.report = _report_fragment(v, plan)
        out[dealer] = v
    clock("split")
    return out


class _Clock:
    """Adds the seconds since the previous call to `timings[phase]` (no-op without timings)."""

    def __init__(self, timings: dict[str, float] | None) -> None:
        self.timings = timings
        self.last = time.perf_counter()

    def __call__(self, phase: str) -> None:
        if self.timings is None:
            return
        now = time.perf_counter()
        self.timings[phase] = self.timings.get(phase, 0.0) + now - self.last
        self.last = now


def _report_fragment(v: DealerValidation, plan: _Plan) -> dict[str, Any]:
    rules = []
    for rule in plan.rules:
        rules.append(
            {
                "rule": rule.name,
                "description": rule.description,
                "expectation": rule.expectation,
                "kwargs": rule.kwargs_dict(),
                "failed": v.rule_counts[rule.name],
                "success": v.rule_counts[rule.name] == 0,
                "examples": v.examples.get(rule.name, []),
            }
        )
    return {
        "dealer_group": v.group,
        "dealer_id": v.dealer_id,
        "dataset": v.dataset,
        "run_id": v.run_id,
        "rows": v.rows,
        "good": v.good_rows,
        "quarantined": v.quarantined,
        "bad_fraction": round(v.bad_fraction, 6),
        "suite": plan.suite_name,
        "rules": rules,
    }


# --------------------------------------------------------------------------- public API


def validate_vehicle_batches(
    raw_by_dealer: Mapping[str, pa.Table | pd.DataFrame], *, group: GroupConfig, logical_time: datetime
) -> dict[str, DealerValidation]:
    """Validate the raw vehicle batches of several dealers in one GX run.

    `raw_by_dealer` maps each dealer id (of `group`) to its raw.parquet table (all strings).
    Returns, per dealer in the given order, the typed good rows, the quarantine rows and
    the rule counts. Model years are checked against `logical_time`'s year + 2.
    """
    tables = {d: _as_table(t) for d, t in raw_by_dealer.items()}
    plan = _vehicle_plan(group, logical_time.year)
    return _validate(plan, tables, group, logical_time)


def validate_part_batches(
    raw_by_dealer: Mapping[str, pa.Table | pd.DataFrame], *, group: GroupConfig, logical_time: datetime
) -> dict[str, DealerValidation]:
    """Parts: dealer_id present / known / the batch's dealer, part_number present, dates parse."""
    tables = {d: _as_table(t) for d, t in raw_by_dealer.items()}
    return _validate(_keyed_plan("parts", PART_KEY_COLUMN, group, tables), tables, group, logical_time)


def validate_repair_order_batches(
    raw_by_dealer: Mapping[str, pa.Table | pd.DataFrame], *, group: GroupConfig, logical_time: datetime
) -> dict[str, DealerValidation]:
    """Repair orders: dealer_id present / known / the batch's dealer, repair_order_number present, dates parse."""
    tables = {d: _as_table(t) for d, t in raw_by_dealer.items()}
    return _validate(_keyed_plan("repair_orders", RO_KEY_COLUMN, group, tables), tables, group, logical_time)


VALIDATORS = {
    "vehicles": validate_vehicle_batches,
    "parts": validate_part_batches,
    "repair_orders": validate_repair_order_batches,
}


def validate_batches(
    dataset: str,
    raw_by_dealer: Mapping[str, pa.Table | pd.DataFrame],
    *,
    group: GroupConfig,
    logical_time: datetime,
) -> dict[str, DealerValidation]:
    """Dispatch on the dataset name (`vehicles`, `parts`, `repair_orders`)."""
    try:
        validator = VALIDATORS[dataset]
    except KeyError:
        raise ValueError(f"no validation suite for dataset {dataset!r} (known: {', '.join(VALIDATORS)})") from None
    return validator(raw_by_dealer, group=group, logical_time=logical_time)
