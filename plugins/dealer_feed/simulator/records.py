"""Deterministic parts inventories, open repair orders and customers.

Smaller cousins of simulator.inventory: a dealer's parts catalogue per make code is fixed
by (seed, dealer, make) and its quantities move by day; repair orders open on each day
and stay open a few days; customers exist for numbers 100000-199999. Field names are our
guesses where OPENTRACK.md has none (documented in docs/OPENTRACK.md).
"""

from __future__ import annotations

import zlib
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from dealer_feed.simulator.inventory import ymd

if TYPE_CHECKING:
    from dealer_feed.simulator.world import DealerSpec, World

PARTS_FIELDS: tuple[str, ...] = (
    "PartNumber", "Manufacturer", "Description", "QuantityOnHand", "QuantityOnOrder", "BinLocation",
    "ListPrice", "Cost", "DateLastSold", "DateLastReceived", "Status",
)
REPAIR_ORDER_FIELDS: tuple[str, ...] = (
    "RepairOrderNumber", "CompanyNumber", "VIN", "StockNumber", "CustomerNumber", "ServiceAdvisor", "Status",
    "OpenDate", "PromisedDate", "MileageIn", "TotalEstimate",
)
CUSTOMER_FIELDS: tuple[str, ...] = (
    "CustomerNumber", "FirstName", "LastName", "Address", "City", "State", "ZipCode", "PhoneNumber", "Email",
)

PART_NAMES = ("OIL FILTER", "AIR FILTER", "CABIN FILTER", "BRAKE PAD SET", "WIPER BLADE", "SPARK PLUG",
              "ROTOR", "SERPENTINE BELT", "BATTERY", "HEADLAMP BULB", "FLOOR MAT SET", "COOLANT")
FIRST_NAMES = ("ANA", "BEN", "CARLA", "DEV", "ELI", "FAYE", "GUS", "HANA", "IVAN", "JO")
LAST_NAMES = ("SMITH", "GARCIA", "NGUYEN", "PATEL", "KIM", "JOHNSON", "LOPEZ", "MILLER")
ADVISORS = ("ADV01", "ADV02", "ADV03", "ADV04")
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
            "Description": PART_NAMES[names[i]],
            "QuantityOnHand": str(on_hand[i]),
            "QuantityOnOrder": str(on_order[i]),
            "BinLocation": f"B{bins[i]:03d}",
            "ListPrice": f"{prices[i] / 100:.2f}",
            "Cost": f"{prices[i] * 0.6 / 100:.2f}",
            "DateLastSold": ymd(d - int(sold_ago[i])) if sold_ago[i] < 60 else "0",
            "DateLastReceived": ymd(d - int(received_ago[i])),
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
                "RepairOrderNumber": f"{opened % 100000:05d}{i:02d}",
                "CompanyNumber": dealer.company_number,
                "VIN": f"1HGCM82633A{vin_serial[i]:06d}",
                "StockNumber": "",
                "CustomerNumber": str(customer[i]),
                "ServiceAdvisor": ADVISORS[advisor[i]],
                "Status": "OPEN",
                "OpenDate": ymd(opened),
                "PromisedDate": ymd(opened + int(open_days[i])),
                "MileageIn": str(mileage[i]),
                "TotalEstimate": f"{estimate[i]}.00",
            })
    return rows


def customer(world: World, dealer: DealerSpec, number: str) -> dict[str, str | None] | None:
    """The customer with this number, or None (numbers 100000-199999 exist)."""
    if not number.isdigit() or not 100000 <= int(number) < 200000:
        return None
    rng = np.random.default_rng([world.dealer_seed(dealer), int(number), 13])
    first, last = FIRST_NAMES[rng.integers(len(FIRST_NAMES))], LAST_NAMES[rng.integers(len(LAST_NAMES))]
    return {
        "CustomerNumber": number,
        "FirstName": first,
        "LastName": last,
        "Address": f"{rng.integers(1, 9999)} MAIN ST",
        "City": "SPRINGFIELD",
        "State": "IL",
        "ZipCode": f"{rng.integers(60000, 63000)}",
        "PhoneNumber": f"217555{rng.integers(1000, 9999)}",
        "Email": f"{first.lower()}.{last.lower()}@example.com",
    }
