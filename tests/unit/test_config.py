"""Group config parsing: valid files load, invalid ones give one line naming file and field.

The mistakes on-call meets (unknown key, invalid cron, a settings row for a dealer outside the
group, duplicate dealers, negative days, invalid YAML) are cases of the bad-input catalogue,
tests/integration/test_bad_input.py."""

from pathlib import Path

import pytest

from dealer_feed.config import GROUPS_DIR, ConfigError, group_files, load_group


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return path


MINIMAL = "dealers:\n  - {enterprise_code: ZE, company_number: ZE7}\n"


def test_shipped_groups_all_load():
    groups = [load_group(p) for p in group_files()]
    assert {g.group for g in groups} >= {"demo", "large"}
    assert len(load_group(GROUPS_DIR / "large.yaml").dealers) == 300
    assert len(load_group(GROUPS_DIR / "demo.yaml").dealers) == 3


def test_minimal_group_gets_defaults(tmp_path):
    cfg = load_group(write(tmp_path, "tiny", MINIMAL))
    assert cfg.group == "tiny"
    assert cfg.dealer_ids == ("ZE_ZE7",)
    assert cfg.dealers[0].datasets == ("vehicles",)
    assert cfg.thresholds.max_bad_fraction == 0.05
    assert cfg.settings.auto_close.mode == "never"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (MINIMAL + "settings:\n  auto_close: {mode: sometimes}\n", "settings.auto_close.mode: Input should be 'never', 'immediately' or 'after_n_days'"),
        (MINIMAL + "settings:\n  auto_close: {mode: after_n_days}\n", "'days' is required with mode after_n_days"),
        (MINIMAL + "settings:\n  vehicle_type_mapping:\n    - {system_code: '', vehicle_type: New, sr_type: X}\n",
         "settings.vehicle_type_mapping.0.system_code"),
        (MINIMAL + "settings:\n  vehicle_type_mapping:\n    - {system_code: N, vehicle_type: New, sr_type: X}\n"
         "    - {system_code: N, vehicle_type: New, sr_type: Y}\n", "vehicle_type_mapping row 1 (system_code='N'"),
        (MINIMAL + "thresholds: {max_bad_fraction: 2}\n", "thresholds.max_bad_fraction"),
        ("dealers: []\n", "dealers: Tuple should have at least 1 item"),
        ("dealers:\n  - {enterprise_code: ZE, company_number: ZE7, datasets: [parts]}\n", "dataset 'parts' needs make_codes"),
        ("group: other\n" + MINIMAL, "must match the file name"),
    ],
)
def test_invalid_group_names_file_and_field(tmp_path, body, expected):
    path = write(tmp_path, "broken", body)
    with pytest.raises(ConfigError) as err:
        load_group(path)
    message = str(err.value)
    assert message.startswith(str(path)), message
    assert expected in message
    assert "\n" not in message


def test_dealer_batches_respect_size_and_filter(tmp_path):
    body = "dealers_per_task: 2\ndealers:\n" + "".join(
        f"  - {{enterprise_code: E, company_number: C{i}}}\n" for i in range(5)
    )
    cfg = load_group(write(tmp_path, "five", body))
    assert cfg.dealer_batches() == [["E_C0", "E_C1"], ["E_C2", "E_C3"], ["E_C4"]]
    assert cfg.dealer_batches(only=["E_C1", "E_C4"]) == [["E_C1", "E_C4"]]


def test_cron_presets_are_accepted(tmp_path):
    assert load_group(write(tmp_path, "preset", MINIMAL + "schedule: '@daily'\n")).schedule == "@daily"
