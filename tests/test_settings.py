import pytest

from elcrec import ElcrecError
from elcrec.settings import check, model_defaults, package_defaults, resolve, variants_of

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
    assert set(model_defaults("sasrec")) - set(package_defaults()) == {"next_item_loss", "ce_negatives", "architecture"}
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


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        ({"epochs": "three"}, "config training.epochs: 'three' is not a whole number"),
        ({"epochs": 2.5}, "config training.epochs: 2.5 is not a whole number"),
        ({"epochs": 0}, "config training.epochs: 0 must be greater than 0"),
        ({"device": "gpu"}, "config training.device: 'gpu' is not auto, cpu, cuda or cuda:N"),
        ({"lr": -0.001}, "config training.lr: -0.001 must be greater than 0"),
        ({"lr": "1e-3"}, "'1e-3' is not a number (YAML reads 1e-3 as text"),
        ({"amp": "yes"}, "config training.amp: 'yes' is not true or false"),
        ({"masking": "drop"}, "config training.masking: 'drop' is not one of ['zero', 'exclude']"),
        ({"dropout": 1.0}, "config training.dropout: 1.0 must be in [0, 1)"),
        ({"adam_betas": [0.9]}, "config training.adam_betas: [0.9] is not a list of two numbers in [0, 1)"),
        ({"threads": "two"}, "config training.threads: 'two' is not a whole number"),
        ({"instance_weight": -1}, "config training.instance_weight: -1 must be 0 or more"),
        ({"next_item_loss": "softmax"}, "config training.next_item_loss: 'softmax' is not one of ['bce', 'ce'"),
    ],
)
def test_bad_values_are_errors_naming_the_layer_and_key(layer, expected):
    with pytest.raises(ElcrecError) as error:
        resolve({"training": layer, "models": {"elcrec": {"variants": {"ELCRec": {}}}}}, "beauty", "elcrec", "ELCRec")
    assert expected in str(error.value)


def test_good_values_pass_and_each_model_s_choices_are_its_own():
    config = {"training": {"device": "cuda:1", "threads": None, "lr": 1, "weight_decay": 0}, "models": {"gru4rec": {}}}
    assert resolve(config, "beauty", "gru4rec", "default")["device"] == "cuda:1"
    check({"loss": "ce"}, "--settings", "gru4rec")
    with pytest.raises(ElcrecError, match=r"--settings.loss: 'hinge' is not one of \['bpr', 'ce'\]"):
        check({"loss": "hinge"}, "--settings", "gru4rec")
    with pytest.raises(ElcrecError, match=r"models.elcrec.variants.x.fusion: 'sum' is not one of"):
        resolve({"models": {"elcrec": {"variants": {"x": {"fusion": "sum"}}}}}, "beauty", "elcrec", "x")
