"""The simulator's world: vendors, dealers, grants, inventories and faults, from one YAML file.

Why a file: the tests, the demo and the benchmarks describe the OpenTrack service they
need (who may log in, which dealer granted which method when, what each dealer's lot
holds on each day, which calls fail) in the same format, and a scenario is reviewable as
data. The format is documented in docs/OPENTRACK.md ("World file").

`defaults:` is merged into every dealer (its `grants` key by method, a `null` grant
removing a default one), so a 300-dealer world stays one line per dealer.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from datetime import date
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SecretStr, model_validator

from dealer_feed.contract.identity import dealer_id
from dealer_feed.yaml_files import read_mapping, validate

Method = Literal["Vehicle", "Customer", "Service", "Parts"]
DEMO_WORLD = Path(__file__).resolve().parents[3] / "include" / "simulator" / "demo_world.yaml"
"""The demo dealerships (`make demo`, the simulator's and the CLI's default world)."""

FaultKind = Literal["http_500", "http_503", "slow", "drop", "truncate", "throttle", "forbidden_bytes",
                    "auth_failed", "not_granted", "grant_ended", "unknown_dealer"]
"""Every fault a rule can inject (docs/OPENTRACK.md "Faults"); the fault matrix test has one row per kind."""


class WorldError(ValueError):
    """A world file is invalid; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Vendor(_Strict):
    """A vendor account: one username/password (WS-Security UsernameToken) and its rate limit."""

    username: str = Field(min_length=1)
    password: SecretStr
    name: str = ""
    requests_per_second: float = Field(default=30.0, gt=0)


class Grant(_Strict):
    """One method granted by a dealership: usable on days begins..ends, both inclusive."""

    begins: date
    ends: date | None = None

    def covers(self, day: date) -> bool:
        return self.begins <= day and (self.ends is None or day <= self.ends)


class GeneratedInventory(_Strict):
    """Parameters of a generated lot; see simulator.inventory for how they are used.

    `turnover` is the daily probability that a vehicle leaves (arrivals balance it, so the
    lot hovers around `size`); `stock_change_share` / `return_share` are the fractions of
    vehicles whose stock number changes once / that leave and come back once during their
    stay; `bad_row_rate` adds that fraction of deliberately invalid rows each day.
    """

    seed: int | None = None
    size: int = Field(default=50, ge=0)
    turnover: float = Field(default=0.05, gt=0, le=1)
    stock_change_share: float = Field(default=0.1, ge=0, le=1)
    return_share: float = Field(default=0.1, ge=0, le=1)
    bad_row_rate: float = Field(default=0.01, ge=0, le=1)
    new_share: float = Field(default=0.5, ge=0, le=1)
    trade_share: float = Field(default=0.1, ge=0, le=1)


ScriptedRow = dict[str, str | int | float | None]


class InventorySpec(_Strict):
    """Either `generated` parameters or `scripted` rows per date (exactly one).

    Scripted: on a day without its own list, the latest earlier list stands (the lot does
    not change between scripted dates); before the first date the lot is empty.
    """

    generated: GeneratedInventory | None = None
    scripted: dict[date, tuple[ScriptedRow, ...]] | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> InventorySpec:
        if (self.generated is None) == (self.scripted is None):
            raise ValueError("inventory needs exactly one of 'generated' or 'scripted'")
        return self


class PartsSpec(_Strict):
    size: int = Field(default=40, ge=0)


class RepairOrderSpec(_Strict):
    per_day: float = Field(default=3.0, ge=0)


class DealerSpec(_Strict):
    """A rooftop as OpenTrack identifies it, with its grants (for every vendor) and data."""

    enterprise_code: str = Field(min_length=1)
    company_number: str = Field(min_length=1)
    server_name: str = ""
    make_codes: tuple[str, ...] = ()
    grants: dict[Method, Grant] = {}
    inventory: InventorySpec = InventorySpec(generated=GeneratedInventory())
    parts: PartsSpec = PartsSpec()
    repair_orders: RepairOrderSpec = RepairOrderSpec()

    @property
    def dealer_id(self) -> str:
        return dealer_id(self.enterprise_code, self.company_number)


class FaultRule(_Strict):
    """Make matching calls fail: `kind` for the first `times` matching calls (null: every call, permanent).

    `dealer` is a dealer id or `*`; `method` an OpenTrack method or `*`; `date` (one date;
    not `on`, which YAML 1.1 reads as `true`) or `dates` (a list) restrict the rule to
    calls whose as-of date (the simulator's convention: the operation's 'to' date, else the
    X-OpenTrack-As-Of header) is one of them: a per-date fault, e.g. a DMS that fails on
    one day's data only (a call without a readable date never matches a dated rule).
    `slow` waits `delay_seconds` before answering normally (past a client's timeout).
    `forbidden_bytes` answers normally but writes `payload` (default one NUL; also e.g.
    `"&#0;"`) at the start of the first `<field>` element (default `Model`: one vehicle's
    model). `auth_failed`,
    `not_granted`, `grant_ended` and `unknown_dealer` answer what the service answers for
    bad credentials, a missing grant (311), a grant that ended the day before (312) and an
    unknown dealer, without changing the world's vendors, grants or dealers.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    dealer: str = "*"
    method: Literal["*"] | Method = "*"
    kind: FaultKind
    times: int | None = Field(default=None, ge=1)
    day: date | None = Field(default=None, alias="date")
    dates: tuple[date, ...] = ()
    delay_seconds: float = Field(default=5.0, ge=0)
    field: str = Field(default="Model", pattern=r"^[A-Za-z][A-Za-z0-9]*$")
    payload: str = Field(default="\x00", min_length=1)

    @model_validator(mode="after")
    def _one_date_filter(self) -> FaultRule:
        if self.day is not None and self.dates:
            raise ValueError("a fault takes 'date' (one date) or 'dates' (a list), not both")
        return self

    @property
    def days(self) -> frozenset[date]:
        """The as-of dates the rule is restricted to (empty: every date)."""
        return frozenset(self.dates) | ({self.day} if self.day is not None else set())

    def matches(self, dealer_id: str | None, method: str | None, day: date | None = None) -> bool:
        days = self.days
        return (self.dealer in ("*", dealer_id) and self.method in ("*", method)
                and (not days or day in days))


class World(_Strict):
    """Everything the simulated service knows. Build with `load_world` or `World.model_validate`."""

    seed: int = 0
    vendors: tuple[Vendor, ...] = Field(min_length=1)
    dealers: tuple[DealerSpec, ...] = ()
    faults: tuple[FaultRule, ...] = ()

    _by_id: dict[str, DealerSpec] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _apply_defaults(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or "defaults" not in data:
            return data
        data = dict(data)
        defaults = dict(data.pop("defaults") or {})
        data["dealers"] = [_merge_dealer(defaults, d) for d in data.get("dealers") or ()]
        return data

    @model_validator(mode="after")
    def _unique(self) -> World:
        for dealer in self.dealers:
            if self._by_id.setdefault(dealer.dealer_id, dealer) is not dealer:
                raise ValueError(f"dealer {dealer.dealer_id} listed twice")
        names = [v.username for v in self.vendors]
        if len(set(names)) != len(names):
            raise ValueError("vendor usernames must be unique")
        return self

    # ----------------------------------------------------------------- lookups

    def vendor(self, username: str, password: str) -> Vendor | None:
        """The vendor these credentials authenticate, else None (never says which part was wrong)."""
        for vendor in self.vendors:
            if vendor.username == username and vendor.password.get_secret_value() == password:
                return vendor
        return None

    def dealer(self, dealer_id: str) -> DealerSpec:
        try:
            return self._by_id[dealer_id]
        except KeyError:
            raise KeyError(f"no dealer {dealer_id!r} in this world") from None

    def find_dealer(self, enterprise_code: str, company_number: str) -> DealerSpec | None:
        return self._by_id.get(dealer_id(enterprise_code, company_number))

    def dealer_seed(self, dealer: DealerSpec) -> int:
        """Stable per-dealer seed: the world seed mixed with the dealer id (not Python's hash)."""
        return (self.seed * 1_000_003 + zlib.crc32(dealer.dealer_id.encode())) & 0xFFFFFFFF

    # ----------------------------------------------------------------- data served

    def iter_vehicles(self, dealer_id: str, day: date) -> Iterator[dict[str, str | None]]:
        """The VehicleInventory rows served for `dealer_id` as of `day`, generated lazily."""
        from dealer_feed_tools.simulator.inventory import iter_vehicles

        return iter_vehicles(self, self.dealer(dealer_id), day)

    def vehicles(self, dealer_id: str, day: date) -> list[dict[str, str | None]]:
        """Exactly the vehicle rows the simulator serves for (dealer, day): OpenTrack field
        name -> text as written (None: element omitted). For tests that compare end to end."""
        return list(self.iter_vehicles(dealer_id, day))

    def parts(self, dealer_id: str, make_code: str, day: date) -> list[dict[str, str | None]]:
        from dealer_feed_tools.simulator.records import parts

        return parts(self, self.dealer(dealer_id), make_code, day)

    def repair_orders(self, dealer_id: str, day: date) -> list[dict[str, str | None]]:
        from dealer_feed_tools.simulator.records import open_repair_orders

        return open_repair_orders(self, self.dealer(dealer_id), day)


def _merge_dealer(defaults: Mapping[str, Any], dealer: Mapping[str, Any]) -> dict[str, Any]:
    grants = {**(defaults.get("grants") or {}), **(dealer.get("grants") or {})}
    merged = {**defaults, **dealer}
    merged["grants"] = {method: grant for method, grant in grants.items() if grant is not None}
    return merged


def load_world(path: str | Path) -> World:
    """Parse and validate a world file; WorldError names the file and the offending field."""
    path = Path(path)
    return validate(World, read_mapping(path, "world file", WorldError), path, "world file", WorldError)
