"""models/kang205.py: kang205/SASRec's encoder (SASRec's `architecture: kang205`); its equality with the
official TensorFlow code is tests/test_official_sasrec_kang205.py's."""

import math

import pytest
import torch
from model_helpers import settings_for, tiny_batch

from elcrec.models.registry import build

SIZE = {"hidden_size": 8, "heads": 2, "layers": 2, "max_len": 5}


def kang205(vocab: int = 12, **overrides):
    torch.manual_seed(0)
    return build("sasrec", vocab, settings_for("sasrec", architecture="kang205", **(SIZE | overrides)))


def test_tf1_initialisation_glorot_weights_zero_biases_and_a_zero_padding_row():
    encoder = kang205(vocab=40).backbone.requires_grad_(False)
    bound = math.sqrt(6 / (40 + 8))
    assert float(encoder.item_embedding.weight.abs().max()) <= bound
    assert torch.equal(encoder.item_embedding.weight[0], torch.zeros(8))
    block = encoder.blocks[0]
    assert float(block.query.weight.abs().max()) <= math.sqrt(6 / 16) and not block.query.bias.any()
    assert torch.equal(block.attention_norm.weight, torch.ones(8)) and encoder.final_norm.eps == 1e-8
    assert float(block.query.weight.std()) > 0.3 * math.sqrt(6 / 16) / math.sqrt(3)  # uniform, not N(0, 0.02)


def test_padding_and_later_items_do_not_change_a_position_s_output():
    model = kang205().eval()
    short = torch.tensor([[0, 0, 3, 4, 5]])
    longer = torch.tensor([[0, 7, 3, 4, 5]])  # one more item in front: outputs from position 2 on change
    outputs = model.backbone(short)
    assert torch.equal(outputs[0, 2:].isfinite(), torch.ones(3, 8, dtype=torch.bool))
    assert not torch.allclose(outputs[0, 2:], model.backbone(longer)[0, 2:])
    later = torch.tensor([[0, 0, 3, 4, 9]])  # a changed last item: earlier positions (causal) unchanged
    assert torch.allclose(outputs[0, :4], model.backbone(later)[0, :4], atol=1e-6)
    assert torch.allclose(model.backbone.last_state(short), outputs[:, -1])


def test_scores_are_the_last_state_against_every_item_row_and_padding_scores_0():
    model = kang205().eval()
    batch = tiny_batch()
    scores = model.score(batch)
    assert scores.shape == (len(batch["input"]), 12) and torch.equal(scores[:, 0], torch.zeros(len(scores)))
    loss = model.loss(batch)
    loss["total"].backward()
    assert set(loss) == {"next_item", "total"} and model.backbone.item_embedding.weight.grad[0].abs().max() == 0


def test_heads_must_divide_the_size_and_the_default_architecture_is_the_iclrec_code_base_s():
    with pytest.raises(ValueError, match="not a multiple of heads"):
        kang205(heads=3)
    torch.manual_seed(0)
    assert not hasattr(build("sasrec", 12, settings_for("sasrec", **SIZE)).backbone, "final_norm")
