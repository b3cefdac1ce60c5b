"""The one error root. Every error the project raises on purpose is a `DealerFeedError`:

- `transient`: whether retrying the same call can help (service down, connection lost, the
  warehouse moved under a load). The Airflow edge retries a transient error with backoff
  and fails a permanent one at once (`AirflowFailException`); the CLI prints either as one
  line. Anything that is not a DealerFeedError is a bug: it keeps its traceback (and is
  retried by Airflow, as an unknown fault).
- `fix`: what on-call does, in one line (the failure alert and status.json show it).
"""

from __future__ import annotations


class DealerFeedError(Exception):
    """Root of the project's typed errors; see the module docstring."""

    transient: bool = False
    fix: str = ""


def fix_of(exc: BaseException | None) -> str:
    """The fix line of `exc` or of the first typed error in its cause/context chain ("" if none)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DealerFeedError) and exc.fix:
            return exc.fix.strip()
        exc = exc.__cause__ or exc.__context__
    return ""


def typed_root(exc: BaseException | None) -> DealerFeedError | None:
    """The first DealerFeedError in `exc`'s cause/context chain (Airflow wraps ours in its own)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, DealerFeedError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None
