"""Group config parsing: valid files load, invalid ones give one line naming file and field."""

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
        (MINIMAL + "settings:\n  auto_close: {mode: after_n_days, days: -1}\n", "settings.auto_close.days"),
        (MINIMAL + "settings:\n  auto_close: {mode: after_n_days}\n", "'days' is required with mode after_n_days"),
        (MINIMAL + "settings:\n  vehicle_type_mapping:\n    - {system_code: '', vehicle_type: New, sr_type: X}\n",
         "settings.vehicle_type_mapping.0.system_code"),
        (MINIMAL + "settings:\n  vehicle_type_mapping:\n    - {system_code: N, vehicle_type: New, sr_type: X}\n"
         "    - {system_code: N, vehicle_type: New, sr_type: Y}\n", "vehicle_type_mapping row 1 (system_code='N'"),
        (MINIMAL + "thresholds: {max_bad_fraction: 2}\n", "thresholds.max_bad_fraction"),
        (MINIMAL + "colour: red\n", "colour: Extra inputs are not permitted"),
        ("dealers: []\n", "dealers: Tuple should have at least 1 item"),
        (MINIMAL + "  - {enterprise_code: ZE, company_number: ZE7}\n", "dealers listed twice: ZE_ZE7"),
        ("dealers:\n  - {enterprise_code: ZE, company_number: ZE7, datasets: [parts]}\n", "dataset 'parts' needs make_codes"),
        ("group: other\n" + MINIMAL, "must match the file name"),
        ("dealers: [\n", "not valid YAML"),
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


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (MINIMAL + "schedule: '61 * * * *'\n", "schedule: '61 * * * *' is not a cron expression"),
        (MINIMAL + "schedule: every day\n", "schedule: 'every day' is not a cron expression"),
        (MINIMAL + "colour: red\n", "(allowed keys: group, description, schedule,"),
        (MINIMAL + "settings:\n  auto_close: {mode: never, dayz: 3}\n",
         "settings.auto_close.dayz: Extra inputs are not permitted (allowed keys: mode, days)"),
        ("dealers:\n  - {enterprise_code: ZE, company_number: ZE7, make: KI}\n",
         "dealers.0.make: Extra inputs are not permitted (allowed keys: enterprise_code, company_number, server_name,"),
        (MINIMAL + "settings:\n  client_dealer:\n    - {client: C, sr_type: R, dealer_id: ZE_ZE8}\n",
         "settings.client_dealer row 0 names dealer 'ZE_ZE8', which is not one of the group's dealers (ZE_ZE7)"),
        (MINIMAL + "settings:\n  vehicle_type_mapping:\n    - {system_code: N, vehicle_type: New, sr_type: X, dealer_id: ZZ_1}\n",
         "settings.vehicle_type_mapping row 0 names dealer 'ZZ_1'"),
        (MINIMAL + "settings:\n  client_dealer:\n    - {client: C, sr_type: R, dealer_id: ZE_ZE7, ignore_days: -3}\n",
         "settings.client_dealer.0.ignore_days: Input should be greater than or equal to 0"),
    ],
)
def test_on_call_config_mistakes_are_named(tmp_path, body, expected):
    """Mistakes found by on-call (issue 14): an invalid cron, a settings row for a dealer outside
    the group, negative days, and an unknown key (answered with the keys that would work)."""
    path = write(tmp_path, "broken", body)
    with pytest.raises(ConfigError) as err:
        load_group(path)
    assert expected in str(err.value)
    assert "\n" not in str(err.value)


def test_cron_presets_are_accepted(tmp_path):
    assert load_group(write(tmp_path, "preset", MINIMAL + "schedule: '@daily'\n")).schedule == "@daily"
