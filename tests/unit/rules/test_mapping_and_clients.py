"""Rules (a) Vehicle Type Mapping / Include Only and (b) Client - Dealer ID."""

from __future__ import annotations

import pytest
from rules_helpers import T0, VIN_A, VIN_B, feed, one, outcome, run, settings, srs

GENERIC_N = {"system_code": "N", "vehicle_type": "New", "sr_type": "PDI"}
SPECIFIC_N = {"system_code": "N", "vehicle_type": "NewZ1", "sr_type": "PDI-Z1", "dealer_id": "Z_1"}


def test_generic_row_gives_vehicle_type_and_sr_type():
    ch = run(feed(("Z_1", VIN_A, "S1", "N")), srs(), T0, settings(mapping=[GENERIC_N]))
    r = one(ch.service_requests, vin=VIN_A)
    assert (r["vehicle_type"], r["sr_type"], r["client"]) == ("New", "PDI", "C1")


def test_unmatched_vehicle_uses_client_row_sr_type_and_no_vehicle_type():
    ch = run(feed(("Z_1", VIN_A, "S1", "U")), srs(), T0, settings(mapping=[GENERIC_N]))
    r = one(ch.service_requests, vin=VIN_A)
    assert r["sr_type"] == "Recon" and r["vehicle_type"] != r["vehicle_type"]  # NaN


def test_missing_system_code_matches_nothing():
    ch = run(feed(("Z_1", VIN_A, "S1", None)), srs(), T0, settings(mapping=[GENERIC_N]))
    assert one(ch.service_requests, vin=VIN_A)["sr_type"] == "Recon"


@pytest.mark.parametrize("rows", [[GENERIC_N, SPECIFIC_N], [SPECIFIC_N, GENERIC_N]])
def test_dealer_specific_row_wins_over_generic_whatever_the_order(rows):
    ch = run(feed(("Z_1", VIN_A, "S1", "N"), ("Z_2", VIN_B, "S2", "N")), srs(), T0, settings(mapping=rows))
    assert one(ch.service_requests, vin=VIN_A)["vehicle_type"] == "NewZ1"
    assert one(ch.service_requests, vin=VIN_B)["vehicle_type"] == "New"  # other dealer: generic row


def test_dealer_specific_row_does_not_apply_to_other_dealers():
    ch = run(feed(("Z_2", VIN_B, "S2", "N")), srs(), T0, settings(mapping=[SPECIFIC_N]))
    r = one(ch.service_requests, vin=VIN_B)
    assert r["sr_type"] == "Recon2" and r["vehicle_type"] != r["vehicle_type"]


def test_include_only_off_unmatched_vehicles_still_get_srs():
    ch = run(feed(("Z_1", VIN_A, "S1", "U")), srs(), T0, settings(mapping=[GENERIC_N]))
    assert outcome(ch) == ("created", None)


def test_generic_include_only_row_makes_every_dealer_include_only():
    rows = [{**GENERIC_N, "include_only": True}]
    ch = run(feed(("Z_1", VIN_A, "S1", "U"), ("Z_2", VIN_B, "S2", "N")), srs(), T0, settings(mapping=rows))
    assert outcome(ch, VIN_A) == ("ignored", "excluded_by_include_only")
    assert outcome(ch, VIN_B) == ("created", None)
    assert one(ch.events, vin=VIN_A)["kind"] == "ignored"


def test_dealer_specific_include_only_row_only_scopes_that_dealer():
    rows = [{**SPECIFIC_N, "include_only": True}]
    ch = run(feed(("Z_1", VIN_A, "S1", "U"), ("Z_2", VIN_B, "S2", "U")), srs(), T0, settings(mapping=rows))
    assert outcome(ch, VIN_A) == ("ignored", "excluded_by_include_only")
    assert outcome(ch, VIN_B) == ("created", None)


def test_include_only_scope_accepts_any_matching_row_of_the_scope():
    # Z_1's scope is include-only (specific row for N); a generic non-include-only row for U still matches.
    rows = [{**SPECIFIC_N, "include_only": True}, {"system_code": "U", "vehicle_type": "Used", "sr_type": "UR"}]
    ch = run(feed(("Z_1", VIN_A, "S1", "U"), ("Z_1", VIN_B, "S2", "X")), srs(), T0, settings(mapping=rows))
    assert outcome(ch, VIN_A) == ("created", None)
    assert one(ch.service_requests, vin=VIN_A)["vehicle_type"] == "Used"
    assert outcome(ch, VIN_B) == ("ignored", "excluded_by_include_only")


def test_other_dealers_specific_rows_are_not_in_my_scope():
    # Z_2 has a specific row for X; Z_1 is include-only (generic include-only row for N): X at Z_1 is excluded.
    rows = [{**GENERIC_N, "include_only": True}, {"system_code": "X", "vehicle_type": "Xt", "sr_type": "XR",
                                                  "dealer_id": "Z_2"}]
    ch = run(feed(("Z_1", VIN_A, "S1", "X"), ("Z_2", VIN_B, "S2", "X")), srs(), T0, settings(mapping=rows))
    assert outcome(ch, VIN_A) == ("ignored", "excluded_by_include_only")
    assert outcome(ch, VIN_B) == ("created", None)


def test_unmapped_dealer_is_ignored_and_counted():
    ch = run(feed(("Z_3", VIN_A, "S1", "N")), srs(), T0, settings(mapping=[GENERIC_N]))
    assert outcome(ch) == ("ignored", "unmapped_dealer")
    assert ch.counts["by_dealer"]["Z_3"]["ignored_unmapped_dealer"] == 1
    assert len(ch.service_requests) == 0


def test_include_only_reason_comes_before_unmapped_dealer():
    rows = [{**GENERIC_N, "include_only": True}]
    ch = run(feed(("Z_3", VIN_A, "S1", "U")), srs(), T0, settings(mapping=rows))
    assert outcome(ch) == ("ignored", "excluded_by_include_only")


def test_client_comes_from_the_vehicles_dealer():
    ch = run(feed(("Z_2", VIN_A, "S1")), srs(), T0, settings())
    r = one(ch.service_requests, vin=VIN_A)
    assert (r["client"], r["sr_type"], r["dealer_id"]) == ("C2", "Recon2", "Z_2")
