"""Batch guards: a batch that looks broken fails the task before anything is loaded.

* BadBatchError — the dealer's bad fraction (quarantined / rows) exceeds
  `thresholds.max_bad_fraction` of the group config.
* EmptyFeedError — the batch is empty while the dealer had vehicles in its last validated
  run (an empty feed is far more often an outage or a revoked grant than an empty lot).

Both are overridden by the run parameter `force_guards=true` (passed here as `force`).
Messages name the dealer, the figures and the fix, for on-call staff reading a task log.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from dealer_feed.contract.errors import DealerFeedError
from dealer_feed.config import FORCE_PARAM

if TYPE_CHECKING:
    from dealer_feed.validation.core import DealerValidation

TOP_RULES = 5


class BatchGuardError(DealerFeedError):
    """A batch guard failed; the message says why, `fix` how to proceed. Permanent."""

    def __init__(self, message: str, *, dealer_id: str, dataset: str, fix: str) -> None:
        super().__init__(message)
        self.fix = fix
        self.dealer_id = dealer_id
        self.dataset = dataset


class BadBatchError(BatchGuardError):
    """Too large a fraction of a dealer's batch failed validation."""


class EmptyFeedError(BatchGuardError):
    """A dealer's feed is empty although its last validated run had rows."""


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def check_batch_guards(
    validation: DealerValidation,
    *,
    max_bad_fraction: float,
    previous_good_rows: int | None,
    force: bool = False,
    report_path: str | Path | None = None,
) -> None:
    """Raise BadBatchError / EmptyFeedError when the batch must not be loaded.

    `previous_good_rows`: good rows of the dealer's last validated run of this dataset
    (None when there is none). `force`: the run parameter `force_guards`; when True the
    guards are skipped (the caller should log that it did). The bad-fraction guard fails
    when the fraction is strictly above `max_bad_fraction`.
    """
    if force:
        return
    v = validation
    where = f"{v.dataset} batch of dealer {v.dealer_id} (run {v.run_id})"
    see = f" Report: {report_path}." if report_path else ""
    if v.rows == 0:
        if previous_good_rows:
            raise EmptyFeedError(
                f"{where} is empty, but the dealer's last validated run had {previous_good_rows:,} good rows. "
                "An empty feed is far more often an outage (OpenTrack down, a revoked Vehicle grant, a wrong "
                "company number) than a dealer with no stock, so nothing was loaded and no service request was "
                "auto-closed. Check the extract log and the dealer's OpenTrack access (`dealer-feed check GROUP`). "
                f"If the dealer really has no vehicles now, trigger the run with run parameter "
                f"{FORCE_PARAM}=true (trigger form, or `airflow dags trigger dealer_feed_{v.group} "
                f"--conf '{{\"{FORCE_PARAM}\": true}}'`).",
                dealer_id=v.dealer_id,
                dataset=v.dataset,
                fix=f"check the extract log and `dealer-feed check {v.group}`; if the dealer really has no vehicles "
                    f"now, trigger the run with run parameter {FORCE_PARAM}=true",
            )
        return
    if v.bad_fraction > max_bad_fraction:
        top = ", ".join(f"{rule} {n:,}" for rule, n in v.broken_rules()[:TOP_RULES])
        fix = (f"correct the data in the DMS (or the extractor, if every row breaks the same rule), then clear the "
               f"task; if these rows are expected, raise thresholds.max_bad_fraction in the group config; to load "
               f"the {v.good_rows:,} good rows of this run anyway, trigger the run with run parameter "
               f"{FORCE_PARAM}=true.")
        raise BadBatchError(
            f"{where}: {v.quarantined:,} of {v.rows:,} rows failed validation ({_pct(v.bad_fraction)}), above "
            f"the limit max_bad_fraction={_pct(max_bad_fraction)}; nothing was loaded. "
            f"Top broken rules: {top}.{see} Fix: {fix}",
            dealer_id=v.dealer_id,
            dataset=v.dataset,
            fix=fix,
        )
