"""Deterministic vehicle inventories: the lot of a dealer on a day, from (seed, dealer, day).

Why closed form instead of simulating day by day: any day of any dealer must be
servable on its own (a backfill asks for November 3rd after December 1st), cheaply, and
always identically. So every vehicle is born with its whole life drawn at once from a
random generator seeded by (dealer seed, arrival day):

* arrival day `a`, stay length (geometric with mean 1/turnover, capped);
* optionally one absence gap inside the stay (it leaves and comes back 1-3 days later);
* optionally one stock-number change day (the DMS re-stocks it: suffix `X`).

The lot on day `d` is every vehicle whose life covers `d`, found by scanning the arrival
days that can still be present (`d - MAX_STAY .. d`). Day to day this yields arrivals,
departures, stock-number changes and returns, which exercise create, update, close and
anchor reset downstream. On top, `bad_row_rate` adds deliberately invalid rows each day
(bad VIN characters or length, missing stock number, duplicated VIN, unparseable date,
model year 1850) so that validation has something to quarantine. Bad rows never replace
a real vehicle's row, except the duplicated VIN, which copies one.

Scripted inventories (explicit rows per date) are served as written, with defaults for
the fields a row omits.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import date
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from dealer_feed_tools.simulator.world import DealerSpec, GeneratedInventory, ScriptedRow, World

VEHICLE_FIELDS: tuple[str, ...] = (
    "CompanyNumber", "VIN", "StockNumber", "Status", "TypeNU", "ModelYear", "Make", "Model", "ModelCode",
    "BodyStyle", "Color", "Trim", "Odometer", "DateInInventory", "DateInService", "DateDelivered",
    "ListPrice", "VehicleCost", "CertifiedUsedCar",
)
"""Vehicle record children written (real names; real vehicles have no DateModified), in order."""

# make code -> (make, WMIs, ((model, body style), ...))
MAKES: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, str], ...]]] = {
    "KI": ("KIA", ("KNA", "KND", "5XY"), (("TELLURIDE", "SUV"), ("SORENTO", "SUV"), ("SPORTAGE", "SUV"),
                                          ("FORTE", "SEDAN"), ("K5", "SEDAN"))),
    "SU": ("SUBARU", ("JF1", "JF2", "4S4"), (("OUTBACK", "WAGON"), ("FORESTER", "SUV"), ("CROSSTREK", "SUV"),
                                              ("ASCENT", "SUV"), ("IMPREZA", "HATCHBACK"))),
    "MZ": ("MAZDA", ("JM1", "JM3"), (("CX-5", "SUV"), ("CX-50", "SUV"), ("MAZDA3", "SEDAN"), ("CX-90", "SUV"))),
    "IS": ("ISUZU", ("JAL", "54D"), (("NPR", "TRUCK"), ("NQR", "TRUCK"), ("NRR", "TRUCK"))),
    "FO": ("FORD", ("1FA", "1FT", "1FM"), (("F-150", "PICKUP"), ("ESCAPE", "SUV"), ("EXPLORER", "SUV"),
                                            ("MUSTANG", "COUPE"))),
    "TO": ("TOYOTA", ("4T1", "JTD", "5TD"), (("CAMRY", "SEDAN"), ("RAV4", "SUV"), ("COROLLA", "SEDAN"),
                                             ("TACOMA", "PICKUP"))),
    "HO": ("HONDA", ("1HG", "5J6", "2HG"), (("CIVIC", "SEDAN"), ("CR-V", "SUV"), ("ACCORD", "SEDAN"),
                                            ("PILOT", "SUV"))),
    "CH": ("CHEVROLET", ("1G1", "1GC", "2GN"), (("MALIBU", "SEDAN"), ("EQUINOX", "SUV"), ("SILVERADO", "PICKUP"),
                                                 ("TAHOE", "SUV"))),
}
MAKE_CODES = tuple(MAKES)
COLORS = ("WHITE", "BLACK", "SILVER", "GRAY", "BLUE", "RED", "GREEN", "BROWN")
TRIMS = ("BASE", "LX", "EX", "SX", "PREMIUM", "LIMITED", "SPORT", "TOURING")

VIN_ALPHABET = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
_TRANSLIT = {**{str(i): i for i in range(10)},
             **dict(zip("ABCDEFGH", range(1, 9))), **dict(zip("JKLMN", range(1, 6))), "P": 7, "R": 9,
             **dict(zip("STUVWXYZ", range(2, 10)))}
_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_YEAR_CODES = "ABCDEFGHJKLMNPRSTVWXY123456789"  # 2010..2039

MAX_GAP_DAYS = 3
BAD_TEMPLATES = 64
BAD_KINDS = ("bad_vin_chars", "bad_vin_length", "missing_stock", "duplicate_vin", "bad_date", "model_year_1850")


@lru_cache(maxsize=4096)
def ymd(ordinal: int) -> str:
    """A day ordinal as OpenTrack writes dates: the number yyyyMMdd."""
    return date.fromordinal(ordinal).strftime("%Y%m%d")


def vin_check_digit(vin: str) -> str:
    """ISO 3779 / FMVSS 115 check digit (position 9) of a 17-character VIN."""
    total = sum(_TRANSLIT[c] * w for c, w in zip(vin, _WEIGHTS))
    return "X" if total % 11 == 10 else str(total % 11)


def make_vin(wmi: str, vds: str, year: int, plant: str, serial: int) -> str:
    year_code = _YEAR_CODES[(year - 2010) % len(_YEAR_CODES)]
    draft = f"{wmi}{vds}0{year_code}{plant}{serial:06d}"
    return draft[:8] + vin_check_digit(draft) + draft[9:]


def iter_vehicles(world: World, dealer: DealerSpec, day: date) -> Iterator[dict[str, str | None]]:
    """The rows VehicleInventory serves for `dealer` as of `day` (field -> text; None = omitted)."""
    spec = dealer.inventory
    if spec.scripted is not None:
        yield from _scripted(dealer, spec.scripted, day)
        return
    assert spec.generated is not None
    gen = spec.generated
    seed = gen.seed if gen.seed is not None else world.dealer_seed(dealer)
    makes_new = tuple(c for c in dealer.make_codes if c in MAKES) or MAKE_CODES
    d = day.toordinal()
    max_stay = math.ceil(8 / gen.turnover)
    templates: list[dict[str, str | None]] = []  # the first rows: bad rows copy them (bounded memory)
    count = 0
    for arrival in range(d - max_stay - MAX_GAP_DAYS, d + 1):
        for row in _arrivals_present(seed, gen, dealer.company_number, makes_new, arrival, d, max_stay):
            if count < BAD_TEMPLATES:
                templates.append(row)
            count += 1
            yield row
    yield from _bad_rows(seed, gen, templates, count, d)


def _arrivals_present(
    seed: int, gen: GeneratedInventory, company: str, makes_new: Sequence[str], a: int, d: int, max_stay: int
) -> Iterator[dict[str, str | None]]:
    """Vehicles that arrived on day `a` and are on the lot on day `d`.

    Every draw is made for every vehicle of the day in a fixed order before filtering,
    so a vehicle's attributes never depend on the day it is looked at.
    """
    rng = np.random.default_rng([seed, a])
    n = int(rng.poisson(gen.size * gen.turnover))
    if n == 0:
        return
    stay = np.minimum(rng.geometric(gen.turnover, n), max_stay)
    has_gap = (rng.random(n) < gen.return_share) & (stay >= 2)
    gap_len = rng.integers(1, MAX_GAP_DAYS + 1, n)
    gap_at = 1 + (rng.random(n) * (stay - 1)).astype(np.int64)
    span = stay + np.where(has_gap, gap_len, 0)
    has_change = (rng.random(n) < gen.stock_change_share) & (span >= 2)
    change_at = 1 + (rng.random(n) * (span - 1)).astype(np.int64)
    kind = rng.random(n)
    make_pick = rng.integers(0, 1 << 30, n)
    model_pick = rng.integers(0, 1 << 30, n)
    color = rng.integers(0, len(COLORS), n)
    trim = rng.integers(0, len(TRIMS), n)
    vin_chars = rng.integers(0, len(VIN_ALPHABET), (n, 6))
    serial = rng.integers(0, 1_000_000, n)
    stock = rng.integers(10000, 100000, n)
    age = rng.integers(1, 11, n)
    new_year_bump = rng.integers(0, 2, n)
    odometer_new = rng.integers(3, 60, n)
    odometer_used = rng.integers(5000, 150000, n)
    price = rng.integers(80, 650, n) * 100 - 5
    service_day = rng.integers(1, 365, n)
    certified = rng.random(n) < 0.3

    off = d - a
    gone = has_gap & (off >= gap_at) & (off < gap_at + gap_len)
    present = np.flatnonzero((off < span) & ~gone)
    arrival_year = date.fromordinal(a).year
    for i in present:
        type_nu = "N" if kind[i] < gen.new_share else "T" if kind[i] < gen.new_share + gen.trade_share else "U"
        is_new = type_nu == "N"
        code = makes_new[make_pick[i] % len(makes_new)] if is_new else MAKE_CODES[make_pick[i] % len(MAKE_CODES)]
        make, wmis, models = MAKES[code]
        model, body = models[model_pick[i] % len(models)]
        year = arrival_year + int(new_year_bump[i]) if is_new else arrival_year - int(age[i])
        chars = "".join(VIN_ALPHABET[c] for c in vin_chars[i])
        vin = make_vin(wmis[model_pick[i] % len(wmis)], chars[:5], year, chars[5], int(serial[i]))
        changed = bool(has_change[i]) and off >= change_at[i]
        list_price = int(price[i]) + (20000 if is_new else 0)
        yield {
            "CompanyNumber": company,
            "VIN": vin,
            "StockNumber": f"{type_nu}{stock[i]}{'X' if changed else ''}",
            "Status": "I",
            "TypeNU": type_nu,
            "ModelYear": str(year),
            "Make": make,
            "Model": model,
            "ModelCode": f"{model.replace('-', '')[:4]}{year % 100:02d}",
            "BodyStyle": body,
            "Color": COLORS[color[i]],
            "Trim": TRIMS[trim[i]],
            "Odometer": str(odometer_new[i] if is_new else odometer_used[i]),
            "DateInInventory": ymd(a),
            "DateInService": "0" if is_new else ymd(date(year, 1, 1).toordinal() + int(service_day[i])),
            "DateDelivered": "0",
            "ListPrice": f"{list_price}.00",
            "VehicleCost": f"{list_price * 9 // 10}.00",
            "CertifiedUsedCar": "Y" if not is_new and certified[i] else "N",
        }


def _bad_rows(
    seed: int, gen: GeneratedInventory, templates: list[dict[str, str | None]], lot_size: int, d: int
) -> Iterator[dict[str, str | None]]:
    """About `bad_row_rate` x lot size deliberately invalid rows for day `d` (expected value),
    each a copy of one of the lot's first rows with one defect (and, but for the duplicated
    VIN, a fresh VIN and stock number so that no real vehicle is shadowed)."""
    if not templates or gen.bad_row_rate == 0:
        return
    rng = np.random.default_rng([seed, d, 7])
    count = int(gen.bad_row_rate * lot_size + rng.random())
    for _ in range(count):
        kind = BAD_KINDS[int(rng.integers(len(BAD_KINDS)))]
        template = templates[int(rng.integers(len(templates)))]
        chars = "".join(VIN_ALPHABET[c] for c in rng.integers(0, len(VIN_ALPHABET), 6))
        fresh_vin = make_vin("1FT", chars[:5], 2020, chars[5], int(rng.integers(1_000_000)))
        row = dict(template, VIN=fresh_vin, StockNumber=f"B{int(rng.integers(10000, 100000))}")
        if kind == "bad_vin_chars":
            row["VIN"] = fresh_vin[:4] + "O" + fresh_vin[5:12] + "Q" + fresh_vin[13:]
        elif kind == "bad_vin_length":
            row["VIN"] = fresh_vin[:16]
        elif kind == "missing_stock":
            row["StockNumber"] = ""
        elif kind == "duplicate_vin":
            row["VIN"] = template["VIN"]
        elif kind == "bad_date":
            row["DateInInventory"] = ymd(d)[:4] + "1345"
        else:
            row["ModelYear"] = "1850"
        yield row


def _scripted(
    dealer: DealerSpec, script: dict[date, tuple[ScriptedRow, ...]], day: date
) -> Iterator[dict[str, str | None]]:
    """Rows of the latest scripted date on or before `day`, completed with defaults."""
    dates = [d for d in script if d <= day]
    if not dates:
        return
    as_of = max(dates)
    defaults: dict[str, str | None] = {f: "" for f in VEHICLE_FIELDS}
    defaults |= {"CompanyNumber": dealer.company_number, "Status": "I", "TypeNU": "U", "ModelYear": "0",
                 "Odometer": "0", "DateInInventory": "0", "DateInService": "0", "DateDelivered": "0",
                 "ListPrice": "0", "VehicleCost": "0",
                 "CertifiedUsedCar": "N"}
    for scripted in script[as_of]:
        yield defaults | {k: None if v is None else str(v) for k, v in scripted.items()}
