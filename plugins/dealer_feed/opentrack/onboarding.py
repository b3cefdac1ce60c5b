"""Onboarding check: is every dealer of a group reachable, with every method it needs granted?

Why a probe per (dealer, method) rather than a real extract: the answer must come in
seconds for a 300-dealer group and must say exactly what the dealership has to do, row
by row. Each probe is a lookup that matches nothing (client.check_access), so the
service checks credentials, dealer and grant and returns no data.

Methods needed: Vehicle always; Parts if the dealer's datasets include `parts` (probed
once per make code); Service if they include `repair_orders` (config.METHOD_OF_DATASET).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from dealer_feed.config import METHOD_OF_DATASET, Dealer, GroupConfig
from dealer_feed.contract.identity import as_utc
from dealer_feed.opentrack.client import OpenTrackClient
from dealer_feed.opentrack.errors import (
    AccessNotGrantedError,
    AuthenticationError,
    OpenTrackError,
    TransientOpenTrackError,
    UnknownDealerError,
)
from dealer_feed.opentrack.parse import AccessWindow


@dataclass(frozen=True)
class CheckRow:
    """One (dealer, method) line of the onboarding table.

    status: `ok` | `ends_soon` (granted, Access Ends within 14 days) | `not_granted` |
    `unknown_dealer` | `auth_failed` | `unreachable` | `error`.
    """

    dealer_id: str
    server_name: str
    method: str
    datasets: tuple[str, ...]
    reachable: bool
    granted: bool
    access_begins: date | None
    access_ends: date | None
    status: str
    fix: str = ""

    @property
    def ok(self) -> bool:
        return self.reachable and self.granted


def _methods(dealer: Dealer) -> dict[str, tuple[str, ...]]:
    """Method -> the datasets that need it, in dataset order (vehicles first)."""
    needed: dict[str, tuple[str, ...]] = {}
    for dataset in dealer.datasets:
        method = METHOD_OF_DATASET[dataset]
        needed[method] = (*needed.get(method, ()), dataset)
    return needed


def _probe(client: OpenTrackClient, dealer: Dealer, method: str, as_of: datetime) -> AccessWindow | None:
    makes = dealer.make_codes if method == "Parts" else (None,)
    windows = [client.check_access(dealer, method, as_of, make_code=make) for make in makes]
    return windows[0] if windows else None


def check_dealer_method(client: OpenTrackClient, dealer: Dealer, method: str, datasets: tuple[str, ...],
                        as_of: date | datetime) -> CheckRow:
    """Probe one method of one dealer and describe the outcome as a CheckRow."""
    moment = as_utc(as_of)
    row = dict(dealer_id=dealer.dealer_id, server_name=dealer.server_name, method=method, datasets=datasets)
    try:
        window = _probe(client, dealer, method, moment)
    except AccessNotGrantedError as exc:
        return CheckRow(**row, reachable=True, granted=False, access_begins=exc.access_begins,
                        access_ends=exc.access_ends, status="not_granted", fix=exc.fix)
    except UnknownDealerError as exc:
        return CheckRow(**row, reachable=False, granted=False, access_begins=None, access_ends=None,
                        status="unknown_dealer", fix=exc.fix)
    except AuthenticationError as exc:
        return CheckRow(**row, reachable=True, granted=False, access_begins=None, access_ends=None,
                        status="auth_failed", fix=exc.fix)
    except TransientOpenTrackError as exc:
        return CheckRow(**row, reachable=False, granted=False, access_begins=None, access_ends=None,
                        status="unreachable", fix=f"{exc.what}; {exc.fix}")
    except OpenTrackError as exc:
        return CheckRow(**row, reachable=True, granted=False, access_begins=None, access_ends=None,
                        status="error", fix=f"{exc.what}; {exc.fix}")
    begins = window.begins if window else None
    ends = window.ends if window else None
    if window is not None and window.ends_soon(moment.date()):
        return CheckRow(**row, reachable=True, granted=True, access_begins=begins, access_ends=ends,
                        status="ends_soon", fix=f"the dealership should extend Access Ends ({ends}) of the {method} "
                        "method for this vendor under Data Exchange > OpenTrack")
    return CheckRow(**row, reachable=True, granted=True, access_begins=begins, access_ends=ends, status="ok")


def check_group(group: GroupConfig, client: OpenTrackClient, as_of: date | datetime) -> list[CheckRow]:
    """One row per dealer of the group and method it needs, in config order."""
    return [
        check_dealer_method(client, dealer, method, datasets, as_of)
        for dealer in group.dealers
        for method, datasets in _methods(dealer).items()
    ]


def all_ok(rows: Sequence[CheckRow]) -> bool:
    """True if every needed method of every dealer is reachable and granted (ends_soon counts as ok)."""
    return all(row.ok for row in rows)


def verdict(group: str, rows: Sequence[CheckRow]) -> str | None:
    """One line saying what stops the group, by cause (None when everything is ok): an
    unreachable service is a connection or network problem, not access the dealership must add."""
    bad = [r for r in rows if not r.ok]
    if not bad:
        return None
    causes = {
        "unreachable": "OpenTrack did not answer: check the connection's host and the network",
        "auth_failed": "the vendor's credentials were refused: check the connection's login and password",
        "unknown_dealer": "OpenTrack does not know the dealer: check enterprise code, company number and server",
        "not_granted": "missing access: the dealership must grant the method",
    }
    found = [f"{sum(r.status == s for r in bad)} {s} ({why})" for s, why in causes.items() if any(r.status == s for r in bad)]
    others = sum(r.status not in causes for r in bad)
    found += [f"{others} error(s)"] if others else []
    return f"group {group}: {len(bad)} of {len(rows)} dealer methods not ok: {'; '.join(found)}; see the fix column"


def _day(value: date | None, empty: str) -> str:
    return value.isoformat() if value else empty


def format_table(rows: Sequence[CheckRow]) -> str:
    """A plain-text table (dealer x method) for a terminal or a log."""
    header = ("dealer", "server", "method", "needed for", "reachable", "granted", "begins", "ends", "status", "fix")
    lines = [
        (r.dealer_id, r.server_name or "-", r.method, ",".join(r.datasets), "yes" if r.reachable else "NO",
         "yes" if r.granted else "NO", _day(r.access_begins, "-"), _day(r.access_ends, "open" if r.granted else "-"),
         r.status, r.fix or "-")
        for r in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines)]
    widths[-1] = 0  # the fix column is last and not padded

    def fmt(cells: Sequence[str]) -> str:
        return "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()

    rule = "  ".join("-" * max(w, 3) for w in widths[:-1]) + "  ---"
    ok = sum(r.ok for r in rows)
    return "\n".join([fmt(header), rule, *map(fmt, lines), f"{ok}/{len(rows)} dealer methods ok"])
