"""elcrec.cli.common: the `--settings` argument of train, pretrain and bench."""

import pytest

from elcrec import ElcrecError
from elcrec.cli.common import full_settings, settings_argument
from elcrec.settings import model_defaults


def test_settings_are_json_or_an_at_file(tmp_path):
    assert settings_argument('{"lr": 0.01}') == {"lr": 0.01}
    (tmp_path / "s.json").write_text('{"epochs": 3}\n')
    assert settings_argument(f"@{tmp_path / 's.json'}") == {"epochs": 3}
    with pytest.raises(ElcrecError, match="not valid JSON"):
        settings_argument("{lr: 1}")
    with pytest.raises(ElcrecError, match="expected a JSON object"):
        settings_argument("[1]")


def test_full_settings_complete_the_defaults_and_refuse_unknown_or_bad_values():
    settings = full_settings("sasrec", {"lr": 0.01})
    assert settings == model_defaults("sasrec") | {"lr": 0.01}
    with pytest.raises(ElcrecError, match=r"unknown setting\(s\) \['alpah'\] for model 'sasrec'"):
        full_settings("sasrec", {"alpah": 1})
    with pytest.raises(ElcrecError, match="must be greater than 0"):
        full_settings("sasrec", {"lr": -0.001})
