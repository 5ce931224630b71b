import pytest

from elcrec import ElcrecError
from elcrec.settings import model_defaults, package_defaults, resolve, variants_of

CONFIG = {
    "training": {"epochs": 7, "threads": 1},
    "models": {
        "elcrec": {
            "settings": {"alpha": 2.0, "epochs": 8},
            "datasets": {"beauty": {"alpha": 10.0, "fusion": "shift"}},
            "variants": {"ELCRec": {}, "B": {"ablation": "B", "alpha": 0.5}},
        },
        "sasrec": {"variants": {"default": None}},
    },
}


def test_layers_apply_in_order():
    assert resolve(CONFIG, "toys", "elcrec", "ELCRec")["alpha"] == 2.0
    beauty = resolve(CONFIG, "beauty", "elcrec", "ELCRec")
    assert (beauty["alpha"], beauty["fusion"], beauty["epochs"], beauty["threads"]) == (10.0, "shift", 8, 1)
    assert resolve(CONFIG, "beauty", "elcrec", "B")["alpha"] == 0.5
    plain = resolve(CONFIG, "beauty", "sasrec", "default")
    assert plain == model_defaults("sasrec") | {"epochs": 7, "threads": 1}
    assert set(model_defaults("sasrec")) - set(package_defaults()) == {"next_item_loss", "ce_negatives"}
    assert set(model_defaults("elcrec")) > set(package_defaults())


def test_unknown_keys_name_the_layer():
    config = {"models": {"sasrec": {"datasets": {"beauty": {"alpah": 1}}}}}
    with pytest.raises(ElcrecError, match="models.sasrec.datasets.beauty: unknown setting\\(s\\) \\['alpah'\\]"):
        resolve(config, "beauty", "sasrec", "default")


def test_unknown_model_or_variant():
    with pytest.raises(ElcrecError, match="not configured"):
        resolve(CONFIG, "beauty", "iclrec", "default")
    with pytest.raises(ElcrecError, match="no variant 'C'"):
        resolve(CONFIG, "beauty", "elcrec", "C")
    assert variants_of(CONFIG, "elcrec") == ["ELCRec", "B"]
    assert variants_of({"models": {"sasrec": {}}}, "sasrec") == ["default"]
