"""World files: defaults, validation errors, and the shipped worlds match their dealer groups."""

from __future__ import annotations

from datetime import date

import pytest

from dealer_feed.config import METHOD_OF_DATASET, PROJECT_ROOT, load_group
from dealer_feed_tools.simulator.world import World, WorldError, load_world

WORLDS = PROJECT_ROOT / "include" / "simulator"
GROUPS = PROJECT_ROOT / "include" / "dealer_groups"


@pytest.mark.parametrize("name", ["demo", "large"])
def test_shipped_world_serves_every_dealer_and_dataset_of_its_group(name):
    group = load_group(GROUPS / f"{name}.yaml")
    world = load_world(WORLDS / f"{name}_world.yaml")
    run = group.start_date.date()

    assert world.vendor("dealer-feed-vendor", "demo-secret") is not None
    for dealer in group.dealers:
        spec = world.dealer(dealer.dealer_id)
        assert spec.server_name == dealer.server_name
        assert set(dealer.make_codes) <= set(spec.make_codes)
        for dataset in dealer.datasets:
            assert spec.grants[METHOD_OF_DATASET[dataset]].covers(run), (dealer.dealer_id, dataset)


def test_large_world_is_about_200k_vehicles():
    world = load_world(WORLDS / "large_world.yaml")
    sample = [len(world.vehicles(d.dealer_id, date(2026, 11, 23))) for d in world.dealers[:10]]
    assert 600 * 10 <= sum(sample) <= 740 * 10


def test_defaults_merge_and_null_removes_a_default_grant():
    world = World.model_validate({
        "vendors": [{"username": "v", "password": "p"}],
        "defaults": {"grants": {"Vehicle": {"begins": "2026-01-01"}, "Parts": {"begins": "2026-01-01"}},
                     "make_codes": ["KI"]},
        "dealers": [{"enterprise_code": "A", "company_number": "1"},
                    {"enterprise_code": "A", "company_number": "2", "grants": {"Parts": None}}],
    })
    assert set(world.dealer("A_1").grants) == {"Vehicle", "Parts"}
    assert set(world.dealer("A_2").grants) == {"Vehicle"}
    assert world.dealer("A_2").make_codes == ("KI",)


def test_vendor_password_is_secret_in_repr():
    world = World.model_validate({"vendors": [{"username": "v", "password": "hunter22"}]})
    assert "hunter22" not in repr(world) and world.vendor("v", "hunter22") and not world.vendor("v", "x")


def test_invalid_world_names_file_and_field(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("vendors: [{username: v, password: p}]\ndealers:\n  - {enterprise_code: A, company_number: C1, "
                    "grants: {Vehicle: {begins: someday}}}\n")
    with pytest.raises(WorldError, match=r"w\.yaml: invalid world file: dealers\.0\.grants\.Vehicle\.begins"):
        load_world(path)


def test_fault_rule_date_filter_and_permanent_rule():
    """`date` / `dates` restrict a rule to calls of those as-of dates; no `times` = every call."""
    from dealer_feed_tools.simulator.faults import FaultBook

    world = World.model_validate({
        "vendors": [{"username": "v", "password": "p"}],
        "faults": [{"dealer": "A_1", "method": "Vehicle", "kind": "http_503", "date": "2026-11-20"},
                   {"dealer": "A_2", "kind": "grant_ended", "dates": ["2026-11-21", "2026-11-23"], "times": 1}],
    })
    book = FaultBook(world.faults)
    day, other = date(2026, 11, 20), date(2026, 11, 21)

    assert [book.take("A_1", "Vehicle", day).kind for _ in range(5)] == ["http_503"] * 5  # permanent
    assert book.take("A_1", "Vehicle", other) is None
    assert book.take("A_1", "Vehicle", None) is None  # a call without a date never matches a dated rule
    assert book.take("A_1", "Parts", day) is None
    assert book.take("A_2", "Parts", date(2026, 11, 22)) is None
    assert book.take("A_2", "Parts", date(2026, 11, 23)).kind == "grant_ended"
    assert book.take("A_2", "Parts", other) is None  # its one call is used
    assert [f["date"] for f in book.snapshot()] == ["2026-11-20", None]


def test_fault_rule_takes_date_or_dates_not_both(tmp_path):
    path = tmp_path / "w.yaml"
    path.write_text("vendors: [{username: v, password: p}]\nfaults:\n"
                    "  - {kind: http_500, date: 2026-11-20, dates: [2026-11-21]}\n")
    with pytest.raises(WorldError, match=r"w\.yaml: invalid world file: faults\.0.*'date' \(one date\) or 'dates'"):
        load_world(path)
