"""The Arrow schemas of the files and frames passed between steps (docs/ARCHITECTURE.md,
"Frames"), and the one conversion into Arrow.

- raw.parquet of the vehicles dataset: VEHICLE_RAW_COLUMNS, all strings as delivered;
- good.parquet: VEHICLE_GOOD_SCHEMA (the same names, typed);
- quarantine.parquet and the warehouse's `quarantine` rows: QUARANTINE_SCHEMA;
- status.json rows as a table (changes/dealer_statuses.parquet, `etl_run_dealers`): DEALER_STATUS_SCHEMA;
- feed_vehicles: good.parquet's names, renamed by FEED_RENAMES where the warehouse differs.

Validation, the pipeline and the load read these names from here; the warehouse's column
types (lengths, ranges) stay in the migration DDL (warehouse.schema reads them).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

VEHICLE_RAW_COLUMNS: tuple[str, ...] = (
    "dealer_id", "company_number", "vin", "stock_number", "status", "type_nu", "model_year", "make", "model",
    "model_code", "body_style", "color", "trim", "odometer", "date_in_inventory", "date_in_service",
    "date_delivered", "date_modified", "list_price", "vehicle_cost", "certified_used_car",
)
"""raw.parquet columns of the vehicles dataset, in order (all strings)."""

VEHICLE_TYPED_COLUMNS: dict[str, pa.DataType] = {
    "model_year": pa.int32(),
    "odometer": pa.int64(),
    "date_in_inventory": pa.date32(),
    "date_in_service": pa.date32(),
    "date_delivered": pa.date32(),
    "date_modified": pa.date32(),
    "list_price": pa.float64(),
    "vehicle_cost": pa.float64(),
    "certified_used_car": pa.bool_(),
}
"""Columns that good.parquet types; every other column stays a string."""

VEHICLE_GOOD_SCHEMA = pa.schema([pa.field(c, VEHICLE_TYPED_COLUMNS.get(c, pa.string())) for c in VEHICLE_RAW_COLUMNS])
"""good.parquet schema of the vehicles dataset."""

FEED_RENAMES: dict[str, str] = {"type_nu": "system_code", "status": "vehicle_status", "trim": "trim_level"}
"""good.parquet column -> warehouse feed_vehicles column, where the names differ (the rules
engine's feed input takes `system_code` too)."""

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("dealer_group", pa.string(), nullable=False),
        pa.field("dealer_id", pa.string(), nullable=False),
        pa.field("run_id", pa.string(), nullable=False),
        pa.field("dataset", pa.string(), nullable=False),
        pa.field("row_number", pa.int64(), nullable=False),
        pa.field("rules", pa.string(), nullable=False),
        pa.field("row_json", pa.string(), nullable=False),
    ]
)
"""quarantine.parquet / warehouse `quarantine` columns. row_number is 0-based in raw.parquet."""

DEALER_STATUS_SCHEMA = pa.schema(
    [
        pa.field("dealer_id", pa.string()),
        pa.field("dataset", pa.string()),
        pa.field("status", pa.string()),  # ok | failed | skipped
        pa.field("rows", pa.int64()),
        pa.field("good", pa.int64()),
        pa.field("quarantined", pa.int64()),
        pa.field("error", pa.string()),
        pa.field("fix", pa.string()),
        pa.field("warning", pa.string()),
        pa.field("run_id", pa.string()),
    ]
)
"""One status.json per dealer and dataset, as a table (changes/dealer_statuses.parquet, etl_run_dealers)."""


_TS = pa.timestamp("us", tz="UTC")


def _strings(*names: str) -> list[pa.Field]:
    return [pa.field(n, pa.string()) for n in names]


ENGINE_FEED_SCHEMA = pa.schema(_strings("dealer_id", "vin", "stock_number", "system_code"))
"""The rules engine's `feed` input: good.parquet's columns renamed (FEED_RENAMES)."""

SERVICE_REQUEST_SCHEMA = pa.schema([
    *_strings("sr_id", "dealer_id", "vin", "stock_number", "client", "vehicle_type", "sr_type", "status"),
    pa.field("created_at", _TS), pa.field("closed_at", _TS), pa.field("close_reason", pa.string()),
    pa.field("anchor_at", _TS), pa.field("absent_since", _TS), pa.field("last_seen_at", _TS),
])
"""A service request as the rules engine reads it (`srs`) and the warehouse holds it."""

SERVICE_REQUEST_CHANGE_SCHEMA = SERVICE_REQUEST_SCHEMA.append(pa.field("is_new", pa.bool_()))
"""changes/service_requests.parquet: an SR in its new state, `is_new` for a created one."""

EVENT_SCHEMA = pa.schema([
    *_strings("sr_id", "dealer_id", "vin", "kind", "reason", "old_stock_number", "new_stock_number", "old_client",
              "new_client"),
    pa.field("old_anchor_at", _TS),
])
"""changes/events.parquet: one service-request event (warehouse service_request_events adds the run columns)."""

OUTCOME_SCHEMA = pa.schema(_strings("dealer_id", "vin", "outcome", "reason", "sr_id"))
"""The rules engine's per-vehicle outcome (joined onto good.parquet for feed_vehicles)."""

RUN_COLUMNS = pa.schema([pa.field("run_id", pa.string()), pa.field("dealer_group", pa.string())])
"""What the load adds to every row it writes (feed and status rows also get `logical_time`)."""


def load_spec(*schemas: pa.Schema, renames: dict[str, str] | None = None) -> list[tuple[str, str]]:
    """The load's column spec (warehouse._frames) of the columns of `schemas`, in order, first
    occurrence wins, names renamed by `renames`: (column, text|int|float|bool|ts|date)."""
    spec: dict[str, str] = {}
    for schema in schemas:
        for field in schema:
            name = (renames or {}).get(field.name, field.name)
            spec.setdefault(name, _kind(field.type))
    return list(spec.items())


def _kind(kind: pa.DataType) -> str:
    if pa.types.is_timestamp(kind):
        return "ts"
    if pa.types.is_date(kind):
        return "date"
    if pa.types.is_boolean(kind):
        return "bool"
    if pa.types.is_integer(kind):
        return "int"
    if pa.types.is_floating(kind):
        return "float"
    return "text"


def as_table(frame: Any, schema: pa.Schema | None = None) -> pa.Table:
    """An Arrow table of `frame`: an Arrow table as it is, a pandas DataFrame (the rules
    engine's output) converted once, None or a list of records (status.json rows, with
    `schema`) as such. The only place frames become Arrow."""
    if frame is None:
        return schema.empty_table() if schema is not None else pa.table({})
    if isinstance(frame, pa.Table):
        return frame
    if isinstance(frame, list):
        return pa.Table.from_pylist(frame, schema=schema)
    return pa.Table.from_pandas(frame, preserve_index=False)
