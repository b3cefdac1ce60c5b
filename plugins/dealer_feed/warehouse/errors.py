"""Warehouse errors that deserve one clear line, not a traceback (the CLI and DAG print them)."""

from __future__ import annotations


class WarehouseError(RuntimeError):
    """An expected warehouse failure: bad URL, not migrated, run refused. The message says what to do."""

    transient = False
    """Retrying the same call cannot help (Airflow fails the task at once)."""


class RunOrderError(WarehouseError):
    """A run older than the group's last applied run was asked to load."""


class NotMigratedError(WarehouseError):
    """The warehouse lacks its tables: run `dealer-feed migrate` (the DAG's first task does)."""


class LoadDataError(WarehouseError):
    """A run's frames do not fit the warehouse (missing column, unknown SR to update...)."""


class StaleChangesError(WarehouseError):
    """A run's changes were computed against a warehouse state that has moved since (another
    run, or a late dealer of the last run, applied in between). Transient: the load
    recomputes the changes against the current state and tries again."""

    transient = True

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message} Fix: {fix}")
        self.fix = fix
