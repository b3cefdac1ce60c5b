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
