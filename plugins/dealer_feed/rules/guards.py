"""Mass-close guard (SPEC.md "Auto Close": safety guard).

A run that would auto-close more than `thresholds.max_close_fraction` of a dealer's
active service requests fails before anything is loaded, unless the run is triggered with
the run parameter `force_guards=true`. An extract that silently returns a fraction of the
lot (a revoked grant, a filter on the DMS side) would otherwise close real work.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.config import FORCE_PARAM
from dealer_feed.rules.frames import ACTIVE


@dataclass(frozen=True)
class DealerCloseCount:
    dealer_id: str
    would_close: int
    active: int

    @property
    def fraction(self) -> float:
        return self.would_close / self.active if self.active else 0.0


class MassCloseError(DealerFeedError):
    """The run would auto-close too many of some dealers' active SRs; nothing was loaded.
    Permanent: fix the feed, or rerun with force_guards (Airflow fails at once)."""

    fix = (f"check the dealer's raw feed and `dealer-feed check GROUP`; if the vehicles really left, rerun with "
           f"run parameter {FORCE_PARAM}=true")

    def __init__(self, message: str, *, breaches: tuple[DealerCloseCount, ...], max_close_fraction: float) -> None:
        super().__init__(message)
        self.breaches = breaches
        self.max_close_fraction = max_close_fraction


def close_counts(changes, srs: pd.DataFrame) -> list[DealerCloseCount]:
    """Per dealer with at least one auto-close this run: (would close, active before the run)."""
    ev = changes.events
    closing = ev.loc[ev["kind"] == "auto_closed", "dealer_id"].value_counts()
    if closing.empty:
        return []
    active = srs.loc[srs["status"] == ACTIVE, "dealer_id"].value_counts()
    return [
        DealerCloseCount(str(d), int(n), int(active.get(d, 0))) for d, n in sorted(closing.items())
    ]


def check_mass_close(changes, srs: pd.DataFrame, max_close_fraction: float, force: bool = False) -> list[DealerCloseCount]:
    """Raise MassCloseError when a dealer would lose more than `max_close_fraction` of its active SRs.

    The limit is strict: closing exactly the fraction passes. `force` (the run parameter
    `force_guards`) skips the check. Returns the per-dealer close counts (for logging).
    """
    counts = close_counts(changes, srs)
    if force:
        return counts
    breaches = tuple(c for c in counts if c.would_close > max_close_fraction * c.active)
    if breaches:
        lines = "; ".join(
            f"dealer {c.dealer_id} would close {c.would_close:,} of {c.active:,} active "
            f"({c.fraction * 100:.1f}%)" for c in breaches
        )
        raise MassCloseError(
            f"mass-close guard: {lines}, limit {max_close_fraction * 100:g}% "
            f"(thresholds.max_close_fraction={max_close_fraction:g}); nothing was loaded. "
            "A feed that suddenly lacks many vehicles is more often a partial extract (revoked grant, DMS-side "
            "filter, outage) than a sold lot: check the dealer's raw feed and `dealer-feed check GROUP`. "
            f"If the vehicles really left, rerun with run parameter {FORCE_PARAM}=true "
            f"(trigger form, or `airflow dags trigger DAG_ID --conf '{{\"{FORCE_PARAM}\": true}}'`).",
            breaches=breaches,
            max_close_fraction=max_close_fraction,
        )
    return counts
