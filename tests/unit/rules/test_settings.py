"""Integration settings validation: each mistake gives a clear error naming the row."""

from __future__ import annotations

import pytest

from dealer_feed.config import ConfigError, GroupConfig, IntegrationSettings, load_group

BASE = {"group": "g", "dealers": [{"enterprise_code": "Z", "company_number": "1"}]}


def _write(tmp_path, settings_yaml: str):
    p = tmp_path / "g.yaml"
    p.write_text("dealers:\n  - {enterprise_code: Z, company_number: '1'}\nsettings:\n" + settings_yaml)
    return p


@pytest.mark.parametrize(
    "yaml_text, needle",
    [
        ("  auto_close: {mode: sometimes}\n", "settings.auto_close.mode"),
        ("  track_stock_and_client: {mode: always}\n", "settings.track_stock_and_client.mode"),
        ("  auto_close: {mode: after_n_days, days: -1}\n", "settings.auto_close.days"),
        ("  track_stock_and_client: {mode: for_n_days, days: -3}\n", "settings.track_stock_and_client.days"),
        ("  auto_close: {mode: after_n_days}\n", "'days' is required with mode after_n_days"),
        ("  track_stock_and_client: {mode: never, days: 3}\n", "'days' is required with mode for_n_days"),
        ("  vehicle_type_mapping:\n    - {system_code: '', vehicle_type: V, sr_type: S}\n",
         "settings.vehicle_type_mapping.0.system_code"),
        ("  client_dealer:\n    - {client: C, sr_type: S, dealer_id: Z_1, ignore_days: -2}\n",
         "settings.client_dealer.0.ignore_days"),
        ("  client_dealer:\n    - {client: '', sr_type: S, dealer_id: Z_1}\n", "settings.client_dealer.0.client"),
        ("  vehicle_type_mapping:\n    - {system_code: N, vehicle_type: V, sr_type: S}\n"
         "    - {system_code: N, vehicle_type: W, sr_type: S}\n",
         "vehicle_type_mapping row 1 (system_code='N', dealer_id=None) conflicts"),
        ("  vehicle_type_mapping:\n    - {system_code: N, vehicle_type: V, sr_type: S, dealer_id: Z_1}\n"
         "    - {system_code: N, vehicle_type: V, sr_type: S, dealer_id: Z_1, include_only: true}\n",
         "vehicle_type_mapping row 1 (system_code='N', dealer_id='Z_1') conflicts"),
        ("  client_dealer:\n    - {client: A, sr_type: S, dealer_id: Z_1}\n"
         "    - {client: B, sr_type: S, dealer_id: Z_1}\n",
         "client_dealer row 1 (dealer_id='Z_1') maps a dealer already mapped to client 'A'"),
        ("  auto_close: {mode: never, dayz: 3}\n", "settings.auto_close.dayz"),
    ],
)
def test_bad_settings_give_one_clear_error_naming_the_row(tmp_path, yaml_text, needle):
    with pytest.raises(ConfigError) as err:
        load_group(_write(tmp_path, yaml_text))
    assert needle in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "g.yaml"))


def test_identical_duplicate_rows_are_accepted_and_used_once():
    row = {"system_code": "N", "vehicle_type": "V", "sr_type": "S"}
    s = IntegrationSettings.model_validate({"vehicle_type_mapping": [row, row]})
    assert len(s.vehicle_type_mapping) == 2


def test_generic_and_specific_rows_for_one_code_do_not_conflict():
    rows = [{"system_code": "N", "vehicle_type": "V", "sr_type": "S"},
            {"system_code": "N", "vehicle_type": "W", "sr_type": "S", "dealer_id": "Z_1"}]
    assert len(IntegrationSettings.model_validate({"vehicle_type_mapping": rows}).vehicle_type_mapping) == 2


def test_valid_full_settings_parse():
    cfg = GroupConfig.model_validate({**BASE, "settings": {
        "track_stock_and_client": {"mode": "for_n_days", "days": 3},
        "auto_close": {"mode": "after_n_days", "days": 0},
        "client_dealer": [{"client": "C", "sr_type": "S", "dealer_id": "Z_1", "ignore_if_sr_with_vin_exists": True,
                           "ignore_days": 7}],
    }})
    assert cfg.settings.max_ignore_days == 7
