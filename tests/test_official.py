"""official.py: ours against the official code's numbers (tests/data/official): S3-Rec's pre-training
on its official Beauty weights, ELCRec's training step on the released Beauty checkpoint."""

import json

import numpy as np
import pytest
import torch
from conftest import FIXTURES, fetched

from elcrec import ElcrecError
from elcrec.models.reference import convert_s3rec_state
from elcrec.official import OFFICIAL_CODE, check, checks
from elcrec.official import elcrec as official_elcrec
from elcrec.official import s3rec as official_s3rec
from elcrec.official.common import compare_scores, load_fixture

S3REC_FILES = ("S3Rec-Beauty-epochs-150.pt", "Beauty.txt", "Beauty_item2attributes.json")


@pytest.fixture
def s3rec_files(tmp_path):
    """The official S3-Rec Beauty weights and the Beauty files, fetched and verified from a mirror."""
    return [fetched("beauty", name, tmp_path) for name in S3REC_FILES]


@pytest.fixture
def elcrec_files(tmp_path):
    return [fetched("beauty", name, tmp_path) for name in ("ELCRec-Beauty-1.pt", "Beauty.txt")]


def test_the_four_pre_training_losses_and_every_gradient_equal_the_official_code_s(s3rec_files):
    record = check("s3rec", *s3rec_files)
    assert record["status"] == "equal within float32 rounding" and record["within_tolerance"]
    assert record["official_code"] == "github.com/aHuiWang/CIKM2020-S3Rec @ 49a890dcb516c9ed3126564495234ea74d5cd566"
    assert set(record["losses"]) == {"aap", "mip", "map", "sp", "total"} and record["gradients"] == 45
    assert record["largest_loss_share"] < 1e-5


def test_elcrec_s_training_step_equals_the_official_code_s(elcrec_files):
    record = check("elcrec", *elcrec_files, None)
    assert record["status"] == "equal within float32 rounding" and record["within_tolerance"]
    assert record["official_code"] == "yueliu1999/ELCRec @ ad6e1c806c43df406f92e5671149ef28a705180f"
    assert set(record["losses"]) == {"next_item", "instance_cl", "cluster", "intent_cl", "total"}
    assert record["gradients"] == 21 and record["losses"]["cluster"]["official"] == pytest.approx(-4.8857, abs=1e-4)


@pytest.mark.parametrize(
    ("model", "module", "function", "changed"),
    [
        ("s3rec", "elcrec.models.s3rec", "bce_against_one", lambda distance: -torch.log(distance) * 1.001),
        ("elcrec", "elcrec.models.elcrec", "cluster_loss", None),
    ],
)
def test_a_one_line_change_to_our_loss_is_caught(
    model, module, function, changed, s3rec_files, elcrec_files, monkeypatch
):
    import importlib

    side, files = (official_s3rec, s3rec_files) if model == "s3rec" else (official_elcrec, elcrec_files)
    fixture, _ = load_fixture(side.CHECK["fixture"])
    assert side.differences(side.with_official_weights(*files), fixture)["within_tolerance"]
    target = importlib.import_module(module)
    if changed is None:  # ELCRec: the cluster loss over the k(k-1) distinct pairs, the paper's reading
        original = target.cluster_loss
        changed = lambda *args, **kwargs: original(*args[:3], mode="paper")  # noqa: E731
    monkeypatch.setattr(target, function, changed)
    found = side.differences(side.with_official_weights(*files), fixture)
    assert not found["within_tolerance"] and found["largest_loss_share"] > 5e-4


def test_the_smoke_run_s_stand_in_weights_are_not_compared():
    stand_in = [FIXTURES / "benchmark" / name for name in S3REC_FILES]
    record = check("s3rec", *stand_in)
    assert record["status"].startswith("not compared: S3Rec-Beauty-epochs-150.pt is not the official file")
    assert "losses" not in record


def test_the_fixtures_name_their_code_and_every_model_has_its_official_code():
    for model, spec in checks().items():
        fixture, record = load_fixture(spec["fixture"])
        code = OFFICIAL_CODE[spec.get("model", model)]  # a variant's check names its model
        assert record["commit"] in code and any(key.startswith("grad/") for key in fixture)
    assert len(OFFICIAL_CODE) == 13
    renamed = convert_s3rec_state({"sp_norm.bias": torch.zeros(2), "attribute_embeddings.weight": torch.zeros(3, 2)})
    assert set(renamed) == {"pretraining_heads.sp_norm.bias", "pretraining_heads.attribute_embedding.weight"}
    with pytest.raises(ElcrecError, match="unexpected key 'classifier.weight'"):
        convert_s3rec_state({"classifier.weight": torch.zeros(2, 2)})
    with pytest.raises(ElcrecError, match="no such fixture"):
        load_fixture("nonexistent")
    with pytest.raises(ElcrecError, match="no check against the official code for 'nosuch'"):
        check("nosuch", FIXTURES, FIXTURES, None)


def test_scores_are_compared_against_the_largest_official_score():
    official = np.array([[10.0, -20.0], [5.0, 0.0]], dtype=np.float32)
    same = compare_scores(torch.from_numpy(official) + 1e-4, official)
    assert same["within"] and same["share"] == pytest.approx(1e-4 / 20, rel=1e-2)
    assert not compare_scores(torch.from_numpy(official) * 1.001, official)["within"]
    with pytest.raises(ElcrecError, match="scores: ours are"):
        compare_scores(torch.zeros(3, 2), official)


def test_the_report_table_puts_a_variant_s_check_under_its_model_and_names_the_unchecked(tmp_path):
    from elcrec.official import table

    for name in ("sasrec", "sasrec_kang205"):
        record = check(name)
        (tmp_path / "fixture").mkdir(exist_ok=True)
        (tmp_path / "fixture" / f"{name}.json").write_text(json.dumps(record))
    rows = table(tmp_path)
    sasrec = rows[rows["model"].str.startswith("sasrec")]
    assert list(sasrec["model"]) == ["sasrec", "sasrec (kang205)"]
    assert set(sasrec["status"]) == {"equal within float32 rounding"}
    assert rows.loc[rows["model"] == "dcrec", "status"].item().startswith("not run here")  # it has a check
