"""Hand-built, Changes-shaped frames for warehouse tests (no rules engine needed)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd

from dealer_feed.contract.identity import run_key
from dealer_feed.warehouse.load import RunToLoad

T0 = datetime(2026, 3, 1, 6, tzinfo=timezone.utc)
DAY = timedelta(days=1)

SR_TS = ("created_at", "closed_at", "anchor_at", "absent_since", "last_seen_at")


def vin(n: int) -> str:
    return f"1HGCM{n:012d}"


def sr_id(group: str, v: str, created: datetime) -> str:
    return f"{group}:{v}:{run_key(created)}"


def sr_frame(rows: list[dict]) -> pd.DataFrame:
    cols = ["sr_id", "dealer_id", "vin", "stock_number", "client", "vehicle_type", "sr_type", "status",
            *SR_TS, "close_reason", "is_new"]
    frame = pd.DataFrame(rows, columns=cols)
    for c in SR_TS:
        frame[c] = pd.to_datetime(frame[c], utc=True).astype("datetime64[us, UTC]")
    frame["is_new"] = frame["is_new"].astype(bool)
    return frame


def events_frame(rows: list[dict]) -> pd.DataFrame:
    cols = ["sr_id", "dealer_id", "vin", "kind", "reason", "old_stock_number", "new_stock_number",
            "old_client", "new_client", "old_anchor_at"]
    frame = pd.DataFrame(rows, columns=cols)
    frame["old_anchor_at"] = pd.to_datetime(frame["old_anchor_at"], utc=True).astype("datetime64[us, UTC]")
    return frame


def feed_frame(rows: list[dict]) -> pd.DataFrame:
    """Feed rows as the pipeline builds them: good.parquet columns + outcome, reason, sr_id."""
    base = {"company_number": "1", "status": "I", "type_nu": "N", "model_year": 2024, "make": "KIA",
            "model": "EV6", "odometer": 10, "date_modified": datetime(2026, 2, 1).date(), "list_price": 41000.5,
            "certified_used_car": False, "reason": None, "sr_id": None}
    return pd.DataFrame([base | r for r in rows])


def statuses_frame(dealers: dict[str, tuple[str, int]]) -> pd.DataFrame:
    """{dealer_id: (status, good rows)} -> dealer_statuses frame (vehicles dataset)."""
    return pd.DataFrame([
        {"dealer_id": d, "dataset": "vehicles", "status": s, "rows": n, "good": n, "quarantined": 0,
         "error": None if s == "ok" else "extract failed"}
        for d, (s, n) in dealers.items()
    ])


def quarantine_frame(group: str, t: datetime, rows: list[tuple[str, int, str]]) -> pd.DataFrame:
    return pd.DataFrame([
        {"dealer_group": group, "dealer_id": d, "run_id": f"{group}:{run_key(t)}", "dataset": "vehicles",
         "row_number": n, "rules": rule, "row_json": '{"vin": "BAD"}'}
        for d, n, rule in rows
    ], columns=["dealer_group", "dealer_id", "run_id", "dataset", "row_number", "rules", "row_json"])


def empty_run(group: str, t: datetime) -> RunToLoad:
    return RunToLoad(group=group, logical_time=t, service_requests=sr_frame([]), events=events_frame([]),
                     feed_vehicles=feed_frame([]).iloc[0:0], quarantine=None, dealer_statuses=None)


class RunBuilder:
    """Builds consecutive RunToLoad objects of one group by hand, keeping SR state between runs.

        b = RunBuilder("g")
        b.begin(T0); b.create("D1", vin(1), "S1"); b.dealer_ok("D1"); run = b.finish()
    """

    def __init__(self, group: str, client: str = "ACME") -> None:
        self.group = group
        self.client = client
        self.srs: dict[str, dict] = {}  # vin -> current state of its latest SR
        self.t: datetime | None = None

    def begin(self, t: datetime) -> RunBuilder:
        self.t = t
        self._changed: dict[str, dict] = {}
        self._events: list[dict] = []
        self._feed: list[dict] = []
        self._statuses: dict[str, tuple[str, int]] = {}
        self._quarantine: list[tuple[str, int, str]] = []
        return self

    def _touch(self, v: str) -> dict:
        state = self.srs[v]
        self._changed[state["sr_id"]] = state
        return state

    def create(self, dealer: str, v: str, stock: str, client: str | None = None) -> str:
        sid = sr_id(self.group, v, self.t)
        state = dict(sr_id=sid, dealer_id=dealer, vin=v, stock_number=stock, client=client or self.client,
                     vehicle_type="New", sr_type="Inspection", status="active", created_at=self.t, closed_at=None,
                     close_reason=None, anchor_at=self.t, absent_since=None, last_seen_at=self.t, is_new=True)
        self.srs[v] = state
        self._changed[sid] = state
        self._events.append(dict(sr_id=sid, dealer_id=dealer, vin=v, kind="created", new_stock_number=stock,
                                 new_client=state["client"]))
        self._feed.append(dict(dealer_id=dealer, vin=v, stock_number=stock, outcome="created", sr_id=sid))
        return sid

    def seen(self, v: str, stock: str | None = None, client: str | None = None) -> None:
        """Vehicle present again; with a new stock number / client the SR is updated."""
        state = self.srs[v]
        outcome = "unchanged"
        if (stock and stock != state["stock_number"]) or (client and client != state["client"]):
            state = self._touch(v) | {}
            self._events.append(dict(sr_id=state["sr_id"], dealer_id=state["dealer_id"], vin=v, kind="updated",
                                     old_stock_number=state["stock_number"], new_stock_number=stock or state["stock_number"],
                                     old_client=state["client"], new_client=client or state["client"]))
            state.update(stock_number=stock or state["stock_number"], client=client or state["client"], is_new=False)
            self.srs[v] = state
            self._changed[state["sr_id"]] = state
            outcome = "updated"
        if state["absent_since"] is not None:
            state = self._touch(v)
            self._events.append(dict(sr_id=state["sr_id"], dealer_id=state["dealer_id"], vin=v, kind="anchor_reset",
                                     old_anchor_at=state["anchor_at"]))
            state.update(anchor_at=self.t, absent_since=None, is_new=False)
        if state["last_seen_at"] != self.t:
            state = self._touch(v)
            state.update(last_seen_at=self.t, is_new=state["created_at"] == self.t)
        self._feed.append(dict(dealer_id=state["dealer_id"], vin=v, stock_number=state["stock_number"],
                               outcome=outcome, sr_id=state["sr_id"]))

    def absent(self, v: str, close: bool = False) -> None:
        state = self._touch(v)
        state["is_new"] = False
        if close:
            state.update(status="closed", closed_at=self.t, close_reason="auto_close_immediately")
            self._events.append(dict(sr_id=state["sr_id"], dealer_id=state["dealer_id"], vin=v, kind="auto_closed",
                                     reason="auto_close_immediately"))
        elif state["absent_since"] is None:
            state["absent_since"] = self.t
            self._events.append(dict(sr_id=state["sr_id"], dealer_id=state["dealer_id"], vin=v, kind="went_absent"))

    def ignored(self, dealer: str, v: str, reason: str = "unmapped_dealer") -> None:
        self._events.append(dict(sr_id=None, dealer_id=dealer, vin=v, kind="ignored", reason=reason))
        self._feed.append(dict(dealer_id=dealer, vin=v, stock_number="X" + v[-3:], outcome="ignored", reason=reason))

    def dealer(self, dealer: str, status: str = "ok") -> None:
        n = sum(1 for f in self._feed if f["dealer_id"] == dealer)
        self._statuses[dealer] = (status, n)

    def quarantined(self, dealer: str, row_number: int, rule: str = "vin_format") -> None:
        self._quarantine.append((dealer, row_number, rule))

    def finish(self, status: str | None = None, **extra) -> RunToLoad:
        for d in {f["dealer_id"] for f in self._feed} - set(self._statuses):
            self.dealer(d)
        failed = any(s == "failed" for s, _ in self._statuses.values())
        run = RunToLoad(
            group=self.group, logical_time=self.t,
            service_requests=sr_frame([dict(s) for s in self._changed.values()]),
            events=events_frame(self._events),
            feed_vehicles=feed_frame(self._feed) if self._feed else feed_frame([]).iloc[0:0],
            quarantine=quarantine_frame(self.group, self.t, self._quarantine),
            dealer_statuses=statuses_frame(self._statuses),
            counts={"events": len(self._events)},
            status=status or ("partial" if failed else "success"),
            airflow_run_id=f"scheduled__{self.t.isoformat()}",
            started_at=self.t + timedelta(minutes=1),
            **extra,
        )
        for state in self.srs.values():
            state["is_new"] = False
        return run


def scenario(group: str = "g") -> list[RunToLoad]:
    """Five runs of two dealers, the story the view and load tests check (docs/WAREHOUSE.md).

    run0 T0-40d: D2 only: v4 created.
    run1 T0:     D1: v1, v2, v3 created (v1 has an inspection and a work order, added by the test);
                 D2: v4 seen, v5 ignored (unmapped dealer); one row quarantined.
    run2 T0+1d:  D1: v1 stock S1 -> S1b (updated), v3 seen, v2 absent -> auto-closed;
                 D2: v4, v5 ignored, v6 created.
    run3 T0+2d:  D1: v1, v2 back (new SR), v3 absent (went_absent); D2 extract failed (partial run).
    run4 T0+3d:  D1: v1, v2, v3 back (anchor reset); D2: v4, v6 (v5 gone).
    """
    b = RunBuilder(group)
    v1, v2, v3, v4, v5, v6 = (vin(i) for i in range(1, 7))
    runs = []

    b.begin(T0 - 40 * DAY)
    b.create("D2", v4, "S4")
    runs.append(b.finish())

    b.begin(T0)
    for v, s in ((v1, "S1"), (v2, "S2"), (v3, "S3")):
        b.create("D1", v, s)
    b.seen(v4)
    b.ignored("D2", v5)
    b.quarantined("D1", 7)
    runs.append(b.finish())

    b.begin(T0 + DAY)
    b.seen(v1, stock="S1b")
    b.seen(v3)
    b.absent(v2, close=True)
    b.seen(v4)
    b.ignored("D2", v5)
    b.create("D2", v6, "S6")
    runs.append(b.finish())

    b.begin(T0 + 2 * DAY)
    b.seen(v1)
    b.create("D1", v2, "S2")
    b.absent(v3)
    b.dealer("D2", "failed")
    runs.append(b.finish())

    b.begin(T0 + 3 * DAY)
    b.seen(v1)
    b.seen(v2)
    b.seen(v3)
    b.seen(v4)
    b.seen(v6)
    runs.append(b.finish())
    return runs
