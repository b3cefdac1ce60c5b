"""The service-request rules engine: one pure function, `compute_changes`.

No Airflow, no database, no I/O, no wall clock: the run's logical time T is the only
"now". Every rule is one named function in its own module (docs/RULES.md lists them):

=====================  ============================================  =====================
rule                   function                                      module
=====================  ============================================  =====================
one row per VIN        `choose_one_row_per_vin`                      engine (this file)
(a) mapping            `match_vehicle_type_mapping`                  rules/mapping.py
(b) client             `match_client_dealer`                         rules/clients.py
(d) ignore if exists   `sr_with_vin_exists`                          rules/ignore.py
(c) tracking           `track_stock_and_client`                      rules/tracking.py
(d) creating           `create_service_requests`                     rules/create.py
presence / auto close  `judge_absence`, `apply_absence`              rules/autoclose.py
mass-close guard       `check_mass_close`                            rules/guards.py
=====================  ============================================  =====================

Everything is vectorised: VINs and dealer ids are joined with hash lookups
(`frames.positions_in`, pyarrow `index_in`), rules are boolean numpy masks, and frames are
built column by column. There is no Python loop over vehicles or service requests.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow.compute as pc

from dealer_feed.config import IntegrationSettings
from dealer_feed.rules.autoclose import apply_absence, judge_absence, quarantined_presence
from dealer_feed.rules.clients import UNMAPPED_DEALER, match_client_dealer
from dealer_feed.rules.create import any_id_taken, create_service_requests, new_sr_ids
from dealer_feed.rules.frames import (
    ACTIVE, EVENT_COLUMNS, EVENT_DTYPES, EVENT_KINDS, FEED_DTYPES, IGNORE_REASONS, OUTCOME_COLUMNS, OUTCOMES,
    SR_DTYPES, SR_OUT_COLUMNS, STR, TS, arrow_of, coerce, empty_sr_changes, positions_in, take, utc_timestamp,
)
from dealer_feed.rules.ignore import SR_WITH_VIN_EXISTS, as_us, latest_created_by_vin, sr_with_vin_exists
from dealer_feed.rules.mapping import EXCLUDED_BY_INCLUDE_ONLY, match_vehicle_type_mapping
from dealer_feed.rules.tracking import differs, track_stock_and_client

DUPLICATE_VIN_IN_GROUP = "duplicate_vin_in_group"
COUNT_KEYS = (
    "created", "updated", "unchanged", "ignored", "closed", "anchor_reset", "went_absent",
    *(f"ignored_{r}" for r in IGNORE_REASONS),
)
"""Keys of every per-dealer counts dict (and of the totals), always all present."""
MUTABLE_SR_COLUMNS = (
    "stock_number", "client", "status", "closed_at", "close_reason", "anchor_at", "absent_since", "last_seen_at",
)
"""Columns the engine may change on an existing SR (dealer_id, VIN, types, created_at never change)."""


@dataclass(frozen=True)
class Changes:
    """What one run changes (docs/ARCHITECTURE.md "Engine output"; dtypes in rules/frames.py).

    * `service_requests` — SR_OUT_COLUMNS: every SR that is new or whose state changed in
      any column (a `last_seen_at`-only change included), full new state, `is_new` bool.
    * `events` — EVENT_COLUMNS, sorted by (dealer_id, vin, kind order of EVENT_KINDS).
    * `outcomes` — OUTCOME_COLUMNS, one row per feed vehicle, in the feed's row order.
    * `counts` — {"by_dealer": {dealer_id: {COUNT_KEYS...}}, "totals": {COUNT_KEYS...}}, JSON-ready ints.
    """

    service_requests: pd.DataFrame
    events: pd.DataFrame
    outcomes: pd.DataFrame
    counts: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- helpers


def _labels(codes: np.ndarray, names: Iterable[str]) -> pd.Series:
    """Small-int codes (-1 = missing) as a "str" column of the names."""
    table = np.array([*names, None], dtype=object)
    return pd.Series(table[np.where(codes >= 0, codes, len(table) - 1)], dtype=STR)


def _const(value: Any, n: int, dtype: str) -> pd.Series:
    return pd.Series([value] * n if n and value is None else value, index=range(n), dtype=dtype)


def _event_block(kind: str, n: int, **columns: pd.Series) -> pd.DataFrame:
    cols = {}
    for c in EVENT_COLUMNS:
        if c == "kind":
            cols[c] = _const(kind, n, STR)
        elif c in columns:
            cols[c] = columns[c].reset_index(drop=True).astype(EVENT_DTYPES[c])
        else:
            cols[c] = _const(None, n, EVENT_DTYPES[c]) if EVENT_DTYPES[c] == STR else _const(pd.NaT, n, TS)
    return pd.DataFrame(cols)


def _check_inputs(feed: pd.DataFrame, active: pd.DataFrame, extracted: pd.Series) -> None:
    for c in ("dealer_id", "vin"):
        if feed[c].isna().any():
            raise ValueError(f"feed: {int(feed[c].isna().sum())} row(s) without {c}; the feed must be validated rows")
    foreign = positions_in(feed["dealer_id"], extracted) < 0
    if foreign.any():
        bad = ", ".join(sorted(set(feed.loc[foreign, "dealer_id"].tolist()))[:10])
        raise ValueError(f"feed has rows of dealer(s) not in extracted_dealers: {bad}")
    vins = arrow_of(active["vin"])
    if len(pc.unique(vins)) != len(vins):
        dup = active["vin"][active["vin"].duplicated(keep=False)]
        raise ValueError(
            f"srs: {dup.nunique()} VIN(s) with more than one active service request in the group "
            f"(e.g. {dup.iloc[0]}); one active SR per VIN per group is an invariant — fix the warehouse rows"
        )


def choose_one_row_per_vin(
    dealer_id: pd.Series, vin_code: np.ndarray, active_dealer_id: pd.Series
) -> np.ndarray:
    """Rule 2: bool per feed row — ignored as `duplicate_vin_in_group`.

    When a VIN is in the feed at several dealers of the group, the row used is the one from
    the dealer of the VIN's active SR if it is among them, else the one with the lowest
    dealer_id. `active_dealer_id`: per feed row, the dealer of its VIN's active SR (missing
    when none). Raises ValueError when one dealer lists a VIN twice (validation forbids it).
    """
    counts = np.bincount(vin_code, minlength=int(vin_code.max()) + 1 if len(vin_code) else 0)
    multi = np.flatnonzero(counts[vin_code] > 1) if len(vin_code) else np.zeros(0, dtype=np.int64)
    duplicate = np.zeros(len(vin_code), dtype=bool)
    if not len(multi):
        return duplicate
    sub_dealer = dealer_id.iloc[multi].reset_index(drop=True)
    own = (sub_dealer == active_dealer_id.iloc[multi].reset_index(drop=True)).fillna(False).to_numpy(dtype=bool)
    dealer_rank, _ = pd.factorize(sub_dealer, sort=True)
    order = np.lexsort((dealer_rank, ~own, vin_code[multi]))
    sorted_codes = vin_code[multi][order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = sorted_codes[1:] != sorted_codes[:-1]
    same_dealer = np.zeros(len(order), dtype=bool)
    same_dealer[1:] = (sorted_codes[1:] == sorted_codes[:-1]) & (dealer_rank[order][1:] == dealer_rank[order][:-1])
    if same_dealer.any():
        i = multi[order][np.flatnonzero(same_dealer)[0]]
        raise ValueError(f"feed: dealer {dealer_id.iloc[i]} lists VIN {vin_code[i]!r} twice; validation must reject it")
    duplicate[multi[order[~first]]] = True
    return duplicate


def _counts(outcomes: pd.DataFrame, events: pd.DataFrame, extracted: pd.Series) -> dict[str, Any]:
    keyed = [
        pd.DataFrame({"dealer_id": outcomes["dealer_id"], "key": outcomes["outcome"]}),
        pd.DataFrame({"dealer_id": outcomes["dealer_id"], "key": "ignored_" + outcomes["reason"]}).dropna(),
    ]
    ev = events[events["kind"].isin(["auto_closed", "anchor_reset", "went_absent"])]
    keyed.append(pd.DataFrame({"dealer_id": ev["dealer_id"], "key": ev["kind"].replace("auto_closed", "closed")}))
    table = pd.concat(keyed, ignore_index=True).value_counts()
    dealers = sorted(set(extracted.tolist()) | set(table.index.get_level_values(0).tolist()))
    by_dealer = {d: dict.fromkeys(COUNT_KEYS, 0) for d in dealers}
    for (dealer, key), n in table.items():  # one entry per (dealer, key): at most ~300 x 11
        by_dealer[dealer][key] = int(n)
    totals = {k: sum(d[k] for d in by_dealer.values()) for k in COUNT_KEYS}
    return {"by_dealer": by_dealer, "totals": totals}


# --------------------------------------------------------------------------- engine


def compute_changes(
    feed: pd.DataFrame,
    srs: pd.DataFrame,
    *,
    extracted_dealers: Iterable[str],
    settings: IntegrationSettings,
    group: str,
    logical_time: datetime,
    quarantined_vins: Iterable[str | None] | pd.Series = (),
) -> Changes:
    """Apply the integration settings to one run's validated feed and the group's SRs.

    `feed`: FEED_COLUMNS (rows of the dealers in `extracted_dealers` only); `srs`: SR_COLUMNS
    (every active SR of the group plus SRs of any status created within the largest Ignore
    Days before T); timestamps may be naive (taken as UTC) or aware. `quarantined_vins`: the
    VINs (as delivered) of the quarantined vehicle rows of the extracted dealers; the
    well-formed ones make their SR present (rule 4) and nothing else. Returns `Changes`.
    Raises ValueError when an input breaks its contract.
    """
    T = utc_timestamp(logical_time)
    t_us = int(T.value // 1000)
    feed = coerce(feed, FEED_DTYPES, "feed")
    srs = coerce(srs, SR_DTYPES, "srs")
    extracted = pd.Series(sorted(set(extracted_dealers)), dtype=STR)

    # VINs as small ints: position in the feed's distinct VINs (-1: VIN absent from the feed).
    vin_set = pd.Series(pc.unique(arrow_of(feed["vin"])), dtype=STR) if len(feed) else feed["vin"]
    feed_code = positions_in(feed["vin"], vin_set)
    sr_code = positions_in(srs["vin"], vin_set)
    n_codes = len(vin_set)

    active_idx = np.flatnonzero((srs["status"] == ACTIVE).to_numpy(dtype=bool))
    active = srs.iloc[active_idx].reset_index(drop=True)
    _check_inputs(feed, active, extracted)
    active_code = sr_code[active_idx]
    active_of_code = np.full(n_codes, -1, dtype=np.int64)
    in_feed = active_code >= 0
    active_of_code[active_code[in_feed]] = np.flatnonzero(in_feed)
    feed_active = active_of_code[feed_code] if n_codes else np.zeros(0, dtype=np.int64)
    has_active = feed_active >= 0

    # Rule 2, then (a) mapping, (b) client: the reasons to ignore, first one wins.
    duplicate = choose_one_row_per_vin(feed["dealer_id"], feed_code, take(active["dealer_id"], feed_active))
    mapping = match_vehicle_type_mapping(feed["dealer_id"], feed["system_code"], settings.vehicle_type_mapping)
    client = match_client_dealer(feed["dealer_id"], settings.client_dealer)
    excluded = ~duplicate & mapping.excluded
    unmapped = ~duplicate & ~excluded & ~client.mapped
    passes = ~duplicate & ~excluded & ~unmapped

    # (d) no active SR: ignore if a recent SR with the VIN exists, else create.
    candidates = passes & ~has_active & client.ignore_if_sr_with_vin_exists
    if candidates.any():
        latest = latest_created_by_vin(sr_code, srs["created_at"], n_codes, t_us)
        recent = sr_with_vin_exists(candidates, feed_code, client.ignore_days, latest, t_us)
    else:
        recent = np.zeros(len(feed), dtype=bool)
    create = passes & ~has_active & ~recent

    # (c) active SR: Track Stock No and Client.
    tracked = passes & has_active
    t_rows = np.flatnonzero(tracked)
    t_pos = feed_active[t_rows]
    new_stock = feed["stock_number"].iloc[t_rows].reset_index(drop=True)
    new_client = client.client.iloc[t_rows].reset_index(drop=True)
    old_stock = take(active["stock_number"], t_pos)
    old_client = take(active["client"], t_pos)
    upd = track_stock_and_client(
        settings.track_stock_and_client, take(active["created_at"], t_pos), old_stock, new_stock, old_client,
        new_client, t_us,
    )
    updated = np.zeros(len(feed), dtype=bool)
    updated[t_rows[upd]] = True

    # Outcomes, one per feed vehicle.
    outcome_code = np.select([create, updated, tracked], [0, 1, 2], default=3)
    reason_code = np.select(
        [duplicate, excluded, unmapped, recent], [IGNORE_REASONS.index(r) for r in (
            DUPLICATE_VIN_IN_GROUP, EXCLUDED_BY_INCLUDE_ONLY, UNMAPPED_DEALER, SR_WITH_VIN_EXISTS)], default=-1,
    )
    all_new_ids = new_sr_ids(group, feed["vin"], T)
    sr_id = take(active["sr_id"], feed_active).mask(pd.Series(create), all_new_ids)
    outcomes = pd.DataFrame({
        "dealer_id": feed["dealer_id"], "vin": feed["vin"], "outcome": _labels(outcome_code, OUTCOMES),
        "reason": _labels(reason_code, IGNORE_REASONS), "sr_id": sr_id,
    })[list(OUTCOME_COLUMNS)]

    # New service requests.
    c_rows = np.flatnonzero(create)
    created = create_service_requests(
        sr_id=all_new_ids.iloc[c_rows], dealer_id=feed["dealer_id"].iloc[c_rows], vin=feed["vin"].iloc[c_rows],
        stock_number=feed["stock_number"].iloc[c_rows], client=client.client.iloc[c_rows],
        vehicle_type=mapping.vehicle_type.iloc[c_rows],
        sr_type=mapping.sr_type.where(mapping.matched, client.sr_type).iloc[c_rows], T=T,
    )
    if any_id_taken(created["sr_id"], srs["sr_id"], T):
        raise ValueError(f"run {T.isoformat()}: a new sr_id already exists in srs; was this run already applied?")

    # Existing active SRs: presence, anchor, absence, auto close, then tracking updates.
    dealer_extracted = positions_in(active["dealer_id"], extracted) >= 0
    present = (active_code >= 0) | quarantined_presence(active["vin"], pd.Series(quarantined_vins, dtype=STR))
    absence = judge_absence(active, present, dealer_extracted, settings.auto_close, t_us)
    after = apply_absence(active, absence, T)
    src = np.full(len(active), -1, dtype=np.int64)
    src[t_pos[upd]] = t_rows[upd]
    has_src = pd.Series(src >= 0)
    after["stock_number"] = after["stock_number"].mask(has_src, take(feed["stock_number"], src))
    after["client"] = after["client"].mask(has_src, take(client.client, src))
    changed = np.zeros(len(active), dtype=bool)
    for c in MUTABLE_SR_COLUMNS:  # a loop over 8 columns, not rows
        if SR_DTYPES[c] == TS:
            changed |= as_us(after[c]) != as_us(active[c])
        else:
            changed |= differs(active[c], after[c])
    existing = after[changed].assign(is_new=False)
    parts = [p for p in (existing, created) if len(p)]
    service_requests = (
        pd.concat(parts, ignore_index=True)[list(SR_OUT_COLUMNS)] if parts else empty_sr_changes()
    )

    # Events.
    u_pos = t_pos[upd]
    ignored_rows = np.flatnonzero(outcome_code == 3)
    blocks = [
        _event_block(
            "created", len(c_rows), sr_id=created["sr_id"], dealer_id=created["dealer_id"], vin=created["vin"],
            new_stock_number=created["stock_number"], new_client=created["client"],
        ),
        _event_block(
            "updated", len(u_pos), sr_id=take(active["sr_id"], u_pos), dealer_id=take(active["dealer_id"], u_pos),
            vin=take(active["vin"], u_pos), old_stock_number=old_stock[upd], new_stock_number=new_stock[upd],
            old_client=old_client[upd], new_client=new_client[upd],
        ),
    ]
    for kind, mask, extra in (
        ("anchor_reset", absence.anchor_reset, lambda a: {"old_anchor_at": a["anchor_at"]}),
        ("went_absent", absence.went_absent, lambda a: {}),
        ("auto_closed", absence.closed, lambda a: {"reason": _const(absence.close_reason, len(a), STR)}),
    ):
        a = active[mask]
        blocks.append(_event_block(kind, len(a), sr_id=a["sr_id"], dealer_id=a["dealer_id"], vin=a["vin"], **extra(a)))
    blocks.append(
        _event_block(
            "ignored", len(ignored_rows), sr_id=take(active["sr_id"], feed_active[ignored_rows]),
            dealer_id=feed["dealer_id"].iloc[ignored_rows], vin=feed["vin"].iloc[ignored_rows],
            reason=outcomes["reason"].iloc[ignored_rows],
        )
    )
    events = pd.concat(blocks, ignore_index=True)
    rank = np.repeat(np.arange(len(blocks)), [len(b) for b in blocks])
    events = (
        events.assign(_rank=rank).sort_values(["dealer_id", "vin", "_rank"], kind="stable", ignore_index=True)
        .drop(columns="_rank")
    )
    assert tuple(b["kind"].iloc[0] for b in blocks if len(b)) == tuple(
        k for k, b in zip(EVENT_KINDS, blocks) if len(b)
    )
    return Changes(
        service_requests=service_requests, events=events, outcomes=outcomes,
        counts=_counts(outcomes, events, extracted),
    )
