"""Helpers for the validation tests: a small group, a valid raw vehicle row, raw tables."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import pyarrow as pa
from dealer_feed.config import GroupConfig
from dealer_feed.contract.schemas import VEHICLE_RAW_COLUMNS

T = datetime(2026, 11, 24, 6, 0, tzinfo=timezone.utc)
RUN_ID = "zen:20261124T060000Z"
D7, D8, D9 = "ZE_ZE7", "ZE_ZE8", "ZE_ZE9"


def vin(n: int) -> str:
    """A valid, distinct VIN per n."""
    return f"1HGCM82633A{n:06d}"


def row(n: int = 0, **overrides: Any) -> dict[str, str | None]:
    """One valid raw vehicle row of dealer ZE_ZE7 (all strings, as OpenTrack delivers)."""
    base: dict[str, str | None] = {
        "dealer_id": D7,
        "company_number": "ZE7",
        "vin": vin(n),
        "stock_number": f"S{n}",
        "status": "I",
        "type_nu": "U",
        "model_year": "2021",
        "make": "KIA",
        "model": "Sorento",
        "model_code": "SOR",
        "body_style": "SUV",
        "color": "Red",
        "trim": "",
        "odometer": "12000",
        "date_in_inventory": "20261101",
        "date_in_service": "0",
        "date_delivered": "0",
        "date_modified": "20261120",
        "list_price": "25999.00",
        "vehicle_cost": "21000",
        "certified_used_car": "N",
    }
    base.update(overrides)
    return base


def table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.table({c: pa.array([r[c] for r in rows], type=pa.string()) for c in VEHICLE_RAW_COLUMNS})


def make_group() -> GroupConfig:
    return GroupConfig.model_validate(
        {
            "group": "zen",
            "dealers": [
                {"enterprise_code": "ZE", "company_number": "ZE7"},
                {"enterprise_code": "ZE", "company_number": "ZE8"},
                {"enterprise_code": "ZE", "company_number": "ZE9"},
            ],
        }
    )
