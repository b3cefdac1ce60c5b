"""Batch guards (bad fraction, empty feed), the task-log summary and the HTML report."""

from __future__ import annotations

import pytest
from validation_helpers import D7, T, row, table

from dealer_feed.validation import (
    BadBatchError,
    BatchGuardError,
    EmptyFeedError,
    check_batch_guards,
    summary_text,
    validate_vehicle_batches,
    write_report,
)


@pytest.fixture(scope="module")
def results(group):
    """D7: 20 rows, 3 bad (15%); D8: empty."""
    rows = [row(i) for i in range(20)]
    rows[2]["vin"] = "1HGCM82633A00435I"
    rows[5]["vin"] = "1HGCM82633AO04352"
    rows[9]["stock_number"] = ""
    return validate_vehicle_batches({D7: table(rows), "ZE_ZE8": table([])}, group=group, logical_time=T)


def test_bad_fraction_above_the_limit_fails_with_a_clear_message(results):
    with pytest.raises(BadBatchError) as err:
        check_batch_guards(results[D7], max_bad_fraction=0.05, previous_good_rows=100, force=False)
    msg = str(err.value)
    assert "dealer ZE_ZE7" in msg
    assert "3 of 20 rows failed validation (15.00%)" in msg
    assert "max_bad_fraction=5.00%" in msg
    assert "Top broken rules: vin_format 2, stock_number_present 1." in msg
    assert "force_guards=true" in msg and "thresholds.max_bad_fraction" in msg
    assert isinstance(err.value, BatchGuardError) and err.value.dealer_id == D7


def test_bad_fraction_at_or_under_the_limit_passes(results):
    check_batch_guards(results[D7], max_bad_fraction=0.15, previous_good_rows=100, force=False)
    check_batch_guards(results[D7], max_bad_fraction=0.5, previous_good_rows=None, force=False)


def test_bad_fraction_passes_when_forced(results):
    check_batch_guards(results[D7], max_bad_fraction=0.0, previous_good_rows=100, force=True)


def test_report_path_is_named_in_the_bad_batch_message(results):
    with pytest.raises(BadBatchError, match="Report: /x/report.html"):
        check_batch_guards(results[D7], max_bad_fraction=0.05, previous_good_rows=None, report_path="/x/report.html")


def test_empty_feed_after_vehicles_fails_and_names_the_fix(results):
    with pytest.raises(EmptyFeedError) as err:
        check_batch_guards(results["ZE_ZE8"], max_bad_fraction=0.05, previous_good_rows=1234, force=False)
    msg = str(err.value)
    assert "dealer ZE_ZE8" in msg and "is empty" in msg and "1,234" in msg
    assert "far more often an outage" in msg
    assert "force_guards=true" in msg


@pytest.mark.parametrize("previous", [None, 0])
def test_empty_feed_without_previous_vehicles_passes(results, previous):
    check_batch_guards(results["ZE_ZE8"], max_bad_fraction=0.05, previous_good_rows=previous, force=False)


def test_empty_feed_passes_when_forced(results):
    check_batch_guards(results["ZE_ZE8"], max_bad_fraction=0.05, previous_good_rows=10, force=True)


def test_all_rows_bad_is_a_bad_batch(group):
    result = validate_vehicle_batches({D7: table([row(0, vin="x")])}, group=group, logical_time=T)[D7]
    with pytest.raises(BadBatchError, match="1 of 1 rows failed validation \\(100.00%\\)"):
        check_batch_guards(result, max_bad_fraction=0.99, previous_good_rows=1)


def test_summary_text_lists_every_rule_with_counts_and_examples(results):
    text = summary_text(results[D7])
    lines = text.splitlines()
    assert "dealer=ZE_ZE7" in lines[0] and "run=zen:20261124T060000Z" in lines[0]
    assert "rows=20 passed=17 quarantined=3 bad_fraction=15.00%" in lines[1]
    vin_line = next(line for line in lines if " vin_format " in line)
    assert vin_line.split()[:3] == ["FAIL", "vin_format", "2"]
    assert "row 2: '1HGCM82633A00435I'" in vin_line and "row 5: '1HGCM82633AO04352'" in vin_line
    assert any(line.split()[:3] == ["ok", "vin_unique", "0"] for line in lines)
    assert len(lines) == 2 + len(results[D7].rule_counts) <= 40


def test_write_report_is_static_html_and_deterministic(results, tmp_path):
    path = write_report(results[D7], tmp_path / "run=x")
    assert path == tmp_path / "run=x" / "report.html"
    first = path.read_bytes()
    write_report(results[D7], path)
    assert path.read_bytes() == first
    html = first.decode()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html
    assert "vin_format" in html and "1HGCM82633A00435I" in html and "stock_number_present" in html
    assert "zen:20261124T060000Z" in html
    empty = write_report(results["ZE_ZE8"], tmp_path / "e.html").read_text()
    assert "passed" in empty
