"""The authors' released Beauty checkpoint, loaded into our backbone, must give Table 1's ELCRec
numbers exactly under the reference protocol: the strongest check of our evaluation."""

import pytest
import torch
from conftest import fetched

from elcrec import ElcrecError
from elcrec.data.sequences import SequenceData
from elcrec.evaluation import evaluate
from elcrec.models.backbone import Backbone, BackboneSettings
from elcrec.models.reference import convert_reference_state, reference_layout

PUBLISHED = {"HR@5": 0.0529, "NDCG@5": 0.0355, "HR@20": 0.1079, "NDCG@20": 0.0509}  # Table 1, ELCRec, Beauty


@pytest.fixture
def released(tmp_path):
    """(the released Beauty checkpoint, Beauty.txt), fetched through the pipeline's download."""
    return fetched("beauty", "ELCRec-Beauty-1.pt", tmp_path), fetched("beauty", "Beauty.txt", tmp_path)


def test_unknown_keys_are_refused():
    with pytest.raises(ElcrecError, match="unexpected key 'classifier.weight'"):
        convert_reference_state({"classifier.weight": torch.zeros(2, 2)})


def test_reference_checkpoint_reproduces_table_1_exactly(released):
    checkpoint, beauty = released
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    layout = reference_layout(state)
    assert layout == {"vocab_size": 12103, "hidden_size": 64, "layers": 1, "max_len": 50, "clusters": 256}
    backbone_state, centres = convert_reference_state(state)
    assert centres.shape == (256, 64)

    split = SequenceData.load(beauty).split(max_len=layout["max_len"])
    model = Backbone(split.vocab_size, BackboneSettings(layers=layout["layers"]))
    model.load_state_dict(backbone_state, strict=True)
    model.eval()
    result = evaluate(
        lambda batch: model.item_scores(model(batch["input"])[:, -1, :]),
        split.test_input,
        split.test_target,
        split.test_history,
        masking="zero",
    )
    assert {name: round(result.metrics[name], 4) for name in PUBLISHED} == PUBLISHED


def test_import_reference_then_evaluate_prints_table_1(released, tmp_path, capsys):
    from elcrec.cli import main

    checkpoint, beauty = released
    model_file = tmp_path / "elcrec-beauty.pt"
    assert (
        main(["import-reference", str(checkpoint), "--layers", "1", "--clusters", "256", "--output", str(model_file)])
        == 0
    )
    capsys.readouterr()
    assert main(["evaluate", str(model_file), "--sequences", str(beauty)]) == 0
    printed = dict(line.split() for line in capsys.readouterr().out.splitlines())
    assert {name: printed[name] for name in ("HR@5", "NDCG@5", "HR@20", "NDCG@20")} == {
        "HR@5": "0.0529",
        "NDCG@5": "0.0355",
        "HR@20": "0.1079",
        "NDCG@20": "0.0509",
    }
    assert (
        main(
            [
                "import-reference",
                str(checkpoint),
                "--layers",
                "2",
                "--clusters",
                "256",
                "--output",
                str(tmp_path / "x.pt"),
            ]
        )
        == 2
    )
    assert "has 1 layers, but --layers 2 was given" in capsys.readouterr().err
