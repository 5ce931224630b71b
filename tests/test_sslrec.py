"""models/sslrec.py: SSLRec's Transformer (CL4SRec's `architecture: sslrec`); its equality with the
official code is tests/test_official_cl4srec_sslrec.py's."""

import pytest
import torch
from model_helpers import settings_for, tiny_batch

from elcrec import ElcrecError
from elcrec.models.registry import build


def sslrec(**overrides):
    torch.manual_seed(0)
    return build("cl4srec", 12, settings_for("cl4srec", architecture="sslrec", dropout=0.1, **overrides))


def test_every_weight_n_0_002_the_padding_row_too_and_layer_norm_eps_1e_5():
    encoder = sslrec().backbone.requires_grad_(False)
    assert encoder.item_embedding.weight[0].abs().sum() > 0  # cl4srec.py _init_weights re-draws it
    assert 0.01 < float(encoder.layers[0].query.weight.std()) < 0.03 and not encoder.layers[0].query.bias.any()
    assert encoder.layers[0].attention_norm.eps == 1e-5 and not hasattr(encoder, "final_norm")


def test_no_causal_mask_padding_keys_ignored_and_the_last_state_is_the_last_position():
    model = sslrec().eval()
    inputs = torch.tensor([[0, 0, 3, 4, 5]])
    outputs = model.backbone(inputs)
    changed_last = model.backbone(torch.tensor([[0, 0, 3, 4, 9]]))
    assert not torch.allclose(outputs[0, 2], changed_last[0, 2])  # a later item changes an earlier output
    with torch.no_grad():
        model.backbone.item_embedding.weight[0] += 1.0  # the padding row: its keys are masked
    assert torch.allclose(model.backbone(inputs)[0, 2:], outputs[0, 2:], atol=1e-6)
    assert torch.allclose(model.backbone.last_state(inputs), model.backbone(inputs)[:, -1])


def test_the_loss_is_the_last_position_s_cross_entropy_plus_the_weighted_info_nce():
    model = sslrec().eval()
    batch = tiny_batch()
    losses = model.loss(batch)
    logits = model.backbone.last_state(batch["input"]) @ model.backbone.item_embedding.weight[:-1].T
    expected = torch.nn.functional.cross_entropy(logits, batch["target"][:, -1])
    assert torch.allclose(losses["next_item"], expected)
    assert torch.allclose(losses["total"], losses["next_item"] + 0.1 * losses["instance_cl"])
    losses["total"].backward()
    assert model.backbone.item_embedding.weight.grad[0].abs().sum() > 0  # row 0 is a class of the softmax


def test_another_next_item_loss_with_the_sslrec_architecture_is_refused():
    with pytest.raises(ElcrecError, match="architecture sslrec has its own next-item loss"):
        sslrec(next_item_loss="ce")
