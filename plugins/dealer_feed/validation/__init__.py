"""Validation and quarantine of raw OpenTrack batches with Great Expectations (docs/VALIDATION.md).

Public API (GX itself is imported lazily, at the first validation in a process):

* `validate_vehicle_batches(raw_by_dealer, *, group, logical_time) -> {dealer_id: DealerValidation}`
  (also `validate_part_batches`, `validate_repair_order_batches`, `validate_batches(dataset, ...)`)
* `check_batch_guards(validation, *, max_bad_fraction, previous_good_rows, force)` raising
  `BadBatchError` / `EmptyFeedError` (both `BatchGuardError`)
* `summary_text(validation)`, `write_report(validation, path)`
"""

from dealer_feed.validation.core import (
    QUARANTINE_SCHEMA,
    DealerValidation,
    RawSchemaError,
    gx_runtime,
    validate_batches,
    validate_part_batches,
    validate_repair_order_batches,
    validate_vehicle_batches,
)
from dealer_feed.validation.guards import (
    BadBatchError,
    BatchGuardError,
    EmptyFeedError,
    check_batch_guards,
)
from dealer_feed.validation.report import REPORT_NAME, render_html, summary_text, write_report

__all__ = [
    "QUARANTINE_SCHEMA",
    "REPORT_NAME",
    "BadBatchError",
    "BatchGuardError",
    "DealerValidation",
    "EmptyFeedError",
    "RawSchemaError",
    "check_batch_guards",
    "gx_runtime",
    "render_html",
    "summary_text",
    "validate_batches",
    "validate_part_batches",
    "validate_repair_order_batches",
    "validate_vehicle_batches",
    "write_report",
]
