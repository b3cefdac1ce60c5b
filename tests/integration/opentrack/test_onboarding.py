"""Onboarding check: a table of dealer x needed method, with reachability, grants and fixes."""

from __future__ import annotations

from datetime import date

from ot_support import RUN

from dealer_feed.config import GroupConfig
from dealer_feed.opentrack.onboarding import all_ok, check_group, format_table

GROUP = GroupConfig.model_validate({
    "group": "onboarding_test",
    "dealers": [
        {"enterprise_code": "T1", "company_number": "A1", "server_name": "itrack1.arkona.com",
         "make_codes": ["KI", "SU"], "datasets": ["vehicles", "parts", "repair_orders"]},
        # lacks Parts (and its Vehicle grant ends within 14 days of the run)
        {"enterprise_code": "T1", "company_number": "D4", "server_name": "itrack1.arkona.com",
         "make_codes": ["MZ"], "datasets": ["vehicles", "parts"]},
        # Vehicle grant ended 2026-11-20
        {"enterprise_code": "T1", "company_number": "B2", "server_name": "itrack1.arkona.com"},
        {"enterprise_code": "T1", "company_number": "X9", "server_name": "itrack1.arkona.com"},
    ],
})


def test_check_group_table(client):
    rows = check_group(GROUP, client, RUN.date())
    by_key = {(r.dealer_id, r.method): r for r in rows}
    table = format_table(rows)

    assert list(by_key) == [("T1_A1", "Vehicle"), ("T1_A1", "Parts"), ("T1_A1", "Service"), ("T1_D4", "Vehicle"),
                            ("T1_D4", "Parts"), ("T1_B2", "Vehicle"), ("T1_X9", "Vehicle")]
    assert all(by_key["T1_A1", m].status == "ok" for m in ("Vehicle", "Parts", "Service"))
    assert by_key["T1_A1", "Parts"].datasets == ("parts",)
    assert by_key["T1_D4", "Vehicle"].status == "ends_soon" and by_key["T1_D4", "Vehicle"].ok
    assert by_key["T1_D4", "Vehicle"].access_ends == date(2026, 11, 30)
    lacking = by_key["T1_D4", "Parts"]
    assert (lacking.reachable, lacking.granted, lacking.status) == (True, False, "not_granted")
    assert lacking.fix == ("the dealership must add the Parts method for this vendor under Data Exchange > "
                           "OpenTrack, with Access Begins on or before 2026-11-23")
    ended = by_key["T1_B2", "Vehicle"]
    assert (ended.granted, ended.access_begins, ended.access_ends) == (False, date(2026, 11, 10), date(2026, 11, 20))
    assert "it ended 2026-11-20" in ended.fix
    assert (by_key["T1_X9", "Vehicle"].reachable, by_key["T1_X9", "Vehicle"].status) == (False, "unknown_dealer")
    assert not all_ok(rows)
    assert table.splitlines()[0].split()[:3] == ["dealer", "server", "method"]
    assert "T1_D4" in table and "not_granted" in table and "it ended 2026-11-20" in table
    assert table.splitlines()[-1] == "4/7 dealer methods ok"


def test_all_ok_when_everything_granted(client):
    group = GroupConfig.model_validate({"group": "ok_group", "dealers": [GROUP.dealers[0].model_dump()]})

    rows = check_group(group, client, RUN)

    assert all_ok(rows) and len(rows) == 3


def test_unreachable_service():
    from dealer_feed.opentrack.client import OpenTrackClient

    client = OpenTrackClient("http://127.0.0.1:9/", "u", "p", timeout=0.2, max_attempts=1)
    [row] = check_group(GroupConfig.model_validate({"group": "g", "dealers": [{"enterprise_code": "T1",
                                                                            "company_number": "A1"}]}), client, RUN)

    assert (row.reachable, row.granted, row.status) == (False, False, "unreachable")
    assert "could not reach" in row.fix
