"""The SQL warehouse: migrations, reads for the transform, the set-based run load.

Public API (SQLAlchemy imported lazily by the submodules, not by DAG parsing):
- `make_engine(url)`, `safe_url(url)` (an Airflow connection's engine: airflow_edge.hooks.warehouse_engine)
- `migrations.apply(engine) -> list[str]`
- `reads.read_relevant_srs`, `reads.previous_good_rows`, `reads.last_applied_run`, `reads.run_is_applied`
- `load.apply_run(engine, RunToLoad) -> LoadResult`
"""

from __future__ import annotations

from typing import Any

__all__ = ["make_engine", "safe_url"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from dealer_feed.warehouse import engine

        return getattr(engine, name)
    raise AttributeError(name)
