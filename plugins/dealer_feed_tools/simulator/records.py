"""Deterministic parts inventories, open repair orders and customers.

Smaller cousins of simulator.inventory: a dealer's parts catalogue per make code is fixed
by (seed, dealer, make) and its quantities move by day; repair orders open on each day
and stay open a few days; customers exist for numbers 100000-199999. Field names are the
real records' (OpenTrack.NET's published response samples, docs/OPENTRACK.md); values
are made up. Each repair order carries 1-3 lines (`repair_order_lines`).
"""

from __future__ import annotations

import zlib
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from dealer_feed_tools.simulator.inventory import ymd

if TYPE_CHECKING:
    from dealer_feed_tools.simulator.world import DealerSpec, World

PARTS_FIELDS: tuple[str, ...] = (
    "PartNumber", "Manufacturer", "PartDescription", "QuantityOnHand", "QuantityOnOrder", "BinLocation",
    "ListPrice", "Cost", "DateInInventory", "DateLastSold", "Status",
)
REPAIR_ORDER_FIELDS: tuple[str, ...] = (
    "CompanyNumber", "OpenTransactionDate", "RepairOrderNumber", "CustomerNumber", "CustomerKey", "ROStatus",
    "ServiceWriterID", "TotalEstimate", "VIN", "StockNumber", "OdometerIn", "PromisedDateTime",
)
REPAIR_ORDER_LINE_FIELDS: tuple[str, ...] = (
    "ServiceLineNumber", "LineType", "SequenceNumber", "TransCode", "TransDate", "ServiceType", "LineStatus",
    "LinePaymentMethod", "TechnicianID", "LaborOpCode", "LaborHours", "ActualRetailAmount",
)
CUSTOMER_FIELDS: tuple[str, ...] = (
    "CustomerNumber", "LastName", "FirstName", "Address1", "City", "StateCode", "ZipCode", "PhoneNumber", "Email1",
)

PART_NAMES = ("OIL FILTER", "AIR FILTER", "CABIN FILTER", "BRAKE PAD SET", "WIPER BLADE", "SPARK PLUG",
              "ROTOR", "SERPENTINE BELT", "BATTERY", "HEADLAMP BULB", "FLOOR MAT SET", "COOLANT")
FIRST_NAMES = ("ANA", "BEN", "CARLA", "DEV", "ELI", "FAYE", "GUS", "HANA", "IVAN", "JO")
LAST_NAMES = ("SMITH", "GARCIA", "NGUYEN", "PATEL", "KIM", "JOHNSON", "LOPEZ", "MILLER")
ADVISORS = ("101", "102", "103", "104")
"""ServiceWriterID values (the real sample has numeric writer ids)."""
RO_MAX_OPEN_DAYS = 10


def _key(text: str) -> int:
    return zlib.crc32(text.encode())


def parts(world: World, dealer: DealerSpec, make_code: str, day: date) -> list[dict[str, str | None]]:
    """PartsInventory rows of one make code as of `day` (empty for a make the dealer lacks)."""
    if make_code not in dealer.make_codes:
        return []
    seed = world.dealer_seed(dealer)
    n = dealer.parts.size
    catalogue = np.random.default_rng([seed, _key(make_code)])
    numbers = catalogue.integers(100000, 999999, n)
    names = catalogue.integers(0, len(PART_NAMES), n)
    prices = catalogue.integers(300, 40000, n)
    bins = catalogue.integers(1, 400, n)
    daily = np.random.default_rng([seed, _key(make_code), day.toordinal()])
    on_hand = daily.integers(0, 25, n)
    on_order = daily.integers(0, 5, n)
    sold_ago = daily.integers(0, 90, n)
    received_ago = daily.integers(0, 180, n)
    d = day.toordinal()
    return [
        {
            "PartNumber": f"{make_code}{numbers[i]}",
            "Manufacturer": make_code,
            "PartDescription": PART_NAMES[names[i]],
            "QuantityOnHand": str(on_hand[i]),
            "QuantityOnOrder": str(on_order[i]),
            "BinLocation": f"B{bins[i]:03d}",
            "ListPrice": f"{prices[i] / 100:.2f}",
            "Cost": f"{prices[i] * 0.6 / 100:.2f}",
            "DateInInventory": ymd(d - int(received_ago[i])),
            "DateLastSold": ymd(d - int(sold_ago[i])) if sold_ago[i] < 60 else "0",
            "Status": "A",
        }
        for i in range(n)
    ]


def open_repair_orders(world: World, dealer: DealerSpec, day: date) -> list[dict[str, str | None]]:
    """Repair orders open on `day`: opened on an earlier-or-same day and not yet closed."""
    seed = world.dealer_seed(dealer)
    d = day.toordinal()
    rows: list[dict[str, str | None]] = []
    for opened in range(d - RO_MAX_OPEN_DAYS, d + 1):
        rng = np.random.default_rng([seed, opened, 11])
        n = int(rng.poisson(dealer.repair_orders.per_day))
        open_days = rng.integers(0, RO_MAX_OPEN_DAYS, n)
        vin_serial = rng.integers(0, 1_000_000, n)
        customer = rng.integers(100000, 200000, n)
        advisor = rng.integers(0, len(ADVISORS), n)
        mileage = rng.integers(1000, 150000, n)
        estimate = rng.integers(50, 3000, n)
        for i in np.flatnonzero(d - opened <= open_days):
            rows.append({
                "CompanyNumber": dealer.company_number,
                "OpenTransactionDate": ymd(opened),
                "RepairOrderNumber": f"{opened % 100000:05d}{i:02d}",
                "CustomerNumber": "",
                "CustomerKey": str(customer[i]),
                "ROStatus": "2",
                "ServiceWriterID": ADVISORS[advisor[i]],
                "TotalEstimate": f"{estimate[i]}.00",
                "VIN": f"1HGCM82633A{vin_serial[i]:06d}",
                "StockNumber": "",
                "OdometerIn": str(mileage[i]),
                "PromisedDateTime": ymd(opened + int(open_days[i])) + "1700",
            })
    return rows


def repair_order_lines(order: dict[str, str | None]) -> list[dict[str, str]]:
    """The order's Details lines: 1-3, fixed by its number (a function of the order alone)."""
    key = _key(order.get("RepairOrderNumber") or "")
    return [
        {
            "ServiceLineNumber": str(n), "LineType": "A", "SequenceNumber": "0", "TransCode": "CP",
            "TransDate": order.get("OpenTransactionDate") or "0", "ServiceType": "MR", "LineStatus": "I",
            "LinePaymentMethod": "C", "TechnicianID": "", "LaborOpCode": f"{(key >> n) % 90 + 10:02d}",
            "LaborHours": f"{(key >> (2 * n)) % 30 / 10:.1f}", "ActualRetailAmount": f"{(key >> n) % 500}.00",
        }
        for n in range(1, key % 3 + 2)
    ]


def customer(world: World, dealer: DealerSpec, number: str) -> dict[str, str | None] | None:
    """The customer with this number, or None (numbers 100000-199999 exist)."""
    if not number.isdigit() or not 100000 <= int(number) < 200000:
        return None
    rng = np.random.default_rng([world.dealer_seed(dealer), int(number), 13])
    first, last = FIRST_NAMES[rng.integers(len(FIRST_NAMES))], LAST_NAMES[rng.integers(len(LAST_NAMES))]
    return {
        "CustomerNumber": number,
        "LastName": last,
        "FirstName": first,
        "Address1": f"{rng.integers(1, 9999)} MAIN ST",
        "City": "SPRINGFIELD",
        "StateCode": "IL",
        "ZipCode": f"{rng.integers(60000, 63000)}0000",
        "PhoneNumber": f"217555{rng.integers(1000, 9999)}",
        "Email1": f"{first.lower()}.{last.lower()}@example.com",
    }
