"""Typed dealer-group configuration: one YAML file per group under include/dealer_groups/.

Why pydantic: the DAG factory parses every group file at DAG-parse time, and a data
engineer who mistypes a setting must get one clear line naming the file, the field and
the allowed values, not a KeyError deep inside a task. This module imports nothing heavy
(no pandas, no Airflow) so that parsing stays fast.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.contract import identity
from dealer_feed.yaml_files import read_mapping, validate

PROJECT_ROOT = Path(__file__).resolve().parents[2]
GROUPS_DIR_ENV = "DEALER_FEED_GROUPS_DIR"
GROUPS_DIR = PROJECT_ROOT / "include" / "dealer_groups"
"""The shipped group files; the environment variable DEALER_FEED_GROUPS_DIR overrides it (groups_dir())."""
SQL_DIR = PROJECT_ROOT / "include" / "sql"

FORCE_PARAM = "force_guards"
"""The run parameter that loads past the empty-feed, bad-batch and mass-close guards."""

DATASETS = ("vehicles", "parts", "repair_orders")
"""Datasets the pipeline can extract; `vehicles` is required for every dealer."""

METHOD_OF_DATASET = {"vehicles": "Vehicle", "parts": "Parts", "repair_orders": "Service"}
"""OpenTrack access method each dataset needs (what the dealership grants)."""


IMPORT_ERROR_TRACEBACKS = "False"
"""Airflow shows a DAG file's import error as the exception's one line, not a traceback: our DAG
files are two-line stubs, so the line (a ConfigError naming file, field and allowed values) is all
on-call needs; the dag-processor's log keeps the full traceback. Makefile, docker-compose and the
tests set the same value."""


def airflow_defaults() -> None:
    """Project-local Airflow settings unless the caller (Makefile, tests, a deployment) set them,
    so that no command of the project writes outside it (Airflow's own default is ~/airflow)."""
    os.environ.setdefault("AIRFLOW_HOME", str(PROJECT_ROOT / ".airflow"))
    os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(PROJECT_ROOT / "dags"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
    os.environ.setdefault("AIRFLOW__CORE__DAGBAG_IMPORT_ERROR_TRACEBACKS", IMPORT_ERROR_TRACEBACKS)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")


class ConfigError(DealerFeedError, ValueError):
    """A dealer-group file is invalid. The message names the file and the field. Permanent."""

    fix = ("correct what the message names in the dealer-group file (include/dealer_groups/; docs/RULES.md "
           "explains every setting); the DAG processor reads the file again on its next parse")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Dealer(_Strict):
    """One rooftop as OpenTrack identifies it (seed: opentrack-*-authorization)."""

    enterprise_code: str = Field(min_length=1)
    company_number: str = Field(min_length=1)
    server_name: str = ""
    make_codes: tuple[str, ...] = ()
    datasets: tuple[Literal["vehicles", "parts", "repair_orders"], ...] = ("vehicles",)

    @property
    def dealer_id(self) -> str:
        """Stable id `{EnterpriseCode}_{CompanyNumber}` (OPENTRACK.md), the feed's DealerID."""
        return identity.dealer_id(self.enterprise_code, self.company_number)

    @field_validator("datasets")
    @classmethod
    def _vehicles_always(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if "vehicles" not in value:
            value = ("vehicles", *value)
        return tuple(dict.fromkeys(value))

    @model_validator(mode="after")
    def _parts_need_make_codes(self) -> Dealer:
        if "parts" in self.datasets and not self.make_codes:
            raise ValueError(f"dealer {self.dealer_id}: dataset 'parts' needs make_codes (e.g. [KI, SU])")
        return self


class TrackStockAndClient(_Strict):
    """Track Stock No and Client: `never` | `for_n_days` (with `days`)."""

    mode: Literal["never", "for_n_days"] = "never"
    days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _days_iff_for_n_days(self) -> TrackStockAndClient:
        if (self.mode == "for_n_days") != (self.days is not None):
            raise ValueError("track_stock_and_client: 'days' is required with mode for_n_days and not allowed otherwise")
        return self


class AutoClose(_Strict):
    """Auto Close: `never` | `immediately` | `after_n_days` (with `days`)."""

    mode: Literal["never", "immediately", "after_n_days"] = "never"
    days: int | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _days_iff_after_n_days(self) -> AutoClose:
        if (self.mode == "after_n_days") != (self.days is not None):
            raise ValueError("auto_close: 'days' is required with mode after_n_days and not allowed otherwise")
        return self


class VehicleTypeMapping(_Strict):
    """One Vehicle Type Mapping row (seed: dealer-feed-integration-settings)."""

    system_code: str = Field(min_length=1)
    vehicle_type: str = Field(min_length=1)
    sr_type: str = Field(min_length=1)
    dealer_id: str | None = None
    include_only: bool = False


class ClientDealer(_Strict):
    """One Client - Dealer ID row."""

    client: str = Field(min_length=1)
    sr_type: str = Field(min_length=1)
    dealer_id: str = Field(min_length=1)
    ignore_if_sr_with_vin_exists: bool = False
    ignore_days: int = Field(default=0, ge=0)


class IntegrationSettings(_Strict):
    track_stock_and_client: TrackStockAndClient = TrackStockAndClient()
    auto_close: AutoClose = AutoClose()
    vehicle_type_mapping: tuple[VehicleTypeMapping, ...] = ()
    client_dealer: tuple[ClientDealer, ...] = ()

    @model_validator(mode="after")
    def _no_conflicting_rows(self) -> IntegrationSettings:
        seen: dict[tuple[str, str | None], VehicleTypeMapping] = {}
        for i, row in enumerate(self.vehicle_type_mapping):
            key = (row.system_code, row.dealer_id)
            other = seen.setdefault(key, row)
            if other != row:
                raise ValueError(
                    f"vehicle_type_mapping row {i} (system_code={row.system_code!r}, dealer_id={row.dealer_id!r}) "
                    "conflicts with an earlier row for the same code and dealer"
                )
        clients: dict[str, ClientDealer] = {}
        for i, row in enumerate(self.client_dealer):
            other = clients.setdefault(row.dealer_id, row)
            if other != row:
                raise ValueError(
                    f"client_dealer row {i} (dealer_id={row.dealer_id!r}) maps a dealer already mapped to "
                    f"client {other.client!r}; one client per dealer id"
                )
        return self

    @property
    def max_ignore_days(self) -> int:
        """Largest Ignore Days: how far back the transform must read SR history."""
        return max((r.ignore_days for r in self.client_dealer if r.ignore_if_sr_with_vin_exists), default=0)


class Thresholds(_Strict):
    """Batch guards. Fractions are in [0, 1]."""

    max_bad_fraction: float = Field(default=0.05, ge=0, le=1)
    max_close_fraction: float = Field(default=0.5, ge=0, le=1)


class Connections(_Strict):
    """Airflow connection ids this group reads (credentials never live in this file)."""

    opentrack: str = "opentrack_default"
    warehouse: str = "dealer_feed_warehouse"


class GroupConfig(_Strict):
    """A dealer group: one Airflow DAG."""

    group: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    schedule: str = "0 * * * *"
    start_date: datetime = datetime(2026, 1, 1, tzinfo=timezone.utc)
    paused: bool = False
    dealers_per_task: int = Field(default=10, ge=1)
    connections: Connections = Connections()
    thresholds: Thresholds = Thresholds()
    settings: IntegrationSettings = IntegrationSettings()
    dealers: tuple[Dealer, ...] = Field(min_length=1)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        """The schedule feeds CronDataIntervalTimetable: refuse here, naming the field, what
        would otherwise fail inside Airflow (croniter is Airflow's own cron parser)."""
        from croniter import croniter

        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a cron expression (five fields, UTC, e.g. '0 6 * * *', or @daily)")
        return value

    @model_validator(mode="after")
    def _unique_dealers(self) -> GroupConfig:
        ids = [d.dealer_id for d in self.dealers]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"dealers listed twice: {', '.join(dupes)}")
        return self

    @model_validator(mode="after")
    def _settings_name_own_dealers(self) -> GroupConfig:
        """A settings row for a dealer outside the group can never match: a typo, caught here."""
        known = set(self.dealer_ids)
        rows = [("client_dealer", i, r.dealer_id) for i, r in enumerate(self.settings.client_dealer)]
        rows += [("vehicle_type_mapping", i, r.dealer_id) for i, r in enumerate(self.settings.vehicle_type_mapping)]
        for table, i, dealer_id in rows:
            if dealer_id is not None and dealer_id not in known:
                raise ValueError(f"settings.{table} row {i} names dealer {dealer_id!r}, which is not one of the "
                                 f"group's dealers ({', '.join(self.dealer_ids)})")
        return self

    @property
    def dealer_ids(self) -> tuple[str, ...]:
        return tuple(d.dealer_id for d in self.dealers)

    def dealer(self, dealer_id: str) -> Dealer:
        for d in self.dealers:
            if d.dealer_id == dealer_id:
                return d
        raise ConfigError(f"group {self.group}: no dealer {dealer_id!r} (known: {', '.join(self.dealer_ids)})")

    def dealer_batches(self, only: Iterable[str] = ()) -> list[list[str]]:
        """Dealer ids cut into batches of `dealers_per_task`: one mapped task per batch."""
        wanted = set(only)
        ids = [i for i in self.dealer_ids if not wanted or i in wanted]
        n = self.dealers_per_task
        return [ids[i : i + n] for i in range(0, len(ids), n)]


def load_group(path: str | Path) -> GroupConfig:
    """Parse and validate one group file; raise ConfigError naming the file and field."""
    path = Path(path)
    raw = read_mapping(path, "dealer-group file", ConfigError)
    raw.setdefault("group", path.stem)
    if raw["group"] != path.stem:
        raise ConfigError(f"{path}: group {raw['group']!r} must match the file name {path.stem!r}")
    return validate(GroupConfig, raw, path, "dealer-group config", ConfigError)


def groups_dir() -> Path:
    """The groups directory, read from DEALER_FEED_GROUPS_DIR at call time (default GROUPS_DIR)."""
    return Path(os.environ.get(GROUPS_DIR_ENV) or GROUPS_DIR)


def group_files(directory: Path | None = None) -> list[Path]:
    return sorted((directory or groups_dir()).glob("*.yaml"))


def find_group(name: str, directory: Path | None = None) -> GroupConfig:
    """Load group `name` from the groups directory, with a clear error listing known groups."""
    directory = directory or groups_dir()
    path = directory / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(p.stem for p in group_files(directory)) or "none"
        raise ConfigError(f"no dealer group {name!r} in {directory} (known: {known})")
    return load_group(path)
