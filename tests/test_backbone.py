import math

import pytest
import torch

from elcrec.models.backbone import MASKED_LOGIT, Backbone, BackboneSettings, FeedForward


def small(layers: int = 2) -> Backbone:
    torch.manual_seed(0)
    return Backbone(
        vocab_size=30, settings=BackboneSettings(hidden_size=8, heads=2, inner_size=16, layers=layers, max_len=6)
    )


def test_shapes_and_scores():
    model = small().eval()
    inputs = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]])
    outputs = model(inputs)
    assert outputs.shape == (2, 6, 8)
    assert model.item_scores(outputs[:, -1]).shape == (2, 30)


def test_initialisation_matches_the_reference():
    model = Backbone(vocab_size=5000, settings=BackboneSettings())
    weights = model.item_embedding.weight
    assert abs(weights.std().item() - 0.02) < 0.001
    assert weights[0].abs().sum() > 0  # the padding row is overwritten too, as in the reference
    assert torch.all(model.blocks[0].attention.query.bias == 0)
    assert torch.all(model.embedding_norm.weight == 1) and model.embedding_norm.eps == 1e-12


def test_additive_mask_is_causal_and_hides_padding_keys():
    mask = Backbone.additive_mask(torch.tensor([[0, 7, 8]]))[0, 0]
    expected = torch.tensor([[1, 1, 1], [1, 0, 1], [1, 0, 0]]) * MASKED_LOGIT
    assert torch.equal(mask, expected.float())


def test_outputs_do_not_see_the_future():
    # (a padding query has every key masked, so it attends to all of them, as in the reference;
    # causality holds for item positions)
    model = small().eval()
    first = model(torch.tensor([[1, 2, 3, 4, 5, 6]]))
    second = model(torch.tensor([[1, 2, 3, 4, 9, 9]]))
    assert torch.allclose(first[:, :4], second[:, :4], atol=1e-6)
    assert not torch.allclose(first[:, 4:], second[:, 4:])


def test_feed_forward_uses_exact_gelu():
    torch.manual_seed(0)
    block = FeedForward(BackboneSettings(hidden_size=4, inner_size=8, dropout=0.0))
    states = torch.randn(2, 3, 4)
    hidden = block.expand(states)
    exact = hidden * 0.5 * (1.0 + torch.erf(hidden / math.sqrt(2.0)))
    expected = block.norm(block.contract(exact) + states)
    assert torch.allclose(block(states), expected, atol=1e-6)


def test_dropout_is_active_only_in_training():
    model = small()
    inputs = torch.tensor([[1, 2, 3, 4, 5, 6]])
    assert not torch.allclose(model.train()(inputs), model(inputs))
    assert torch.equal(model.eval()(inputs), model(inputs))


@pytest.mark.parametrize("rate", [0.5, 0.2])
def test_fast_dropout_has_torch_dropout_semantics(rate):
    from elcrec.models.backbone import Dropout

    torch.manual_seed(0)
    layer = Dropout(rate)
    states = torch.ones(400, 300, requires_grad=True)
    dropped = layer(states)
    kept = dropped != 0
    assert abs(kept.float().mean().item() - (1 - rate)) < 0.01
    assert torch.allclose(dropped[kept], torch.full_like(dropped[kept], 1 / (1 - rate)))
    dropped.sum().backward()
    assert torch.equal(states.grad, dropped.detach())  # the gradient is the same mask and scale
    layer.eval()
    assert torch.equal(layer(states), states)


@pytest.mark.parametrize("layers", [1, 3])
def test_last_state_equals_the_last_column_of_forward(layers):
    torch.manual_seed(0)
    model = Backbone(30, BackboneSettings(hidden_size=16, inner_size=32, layers=layers, max_len=6))
    model.eval()
    inputs = torch.tensor([[0, 0, 3, 4, 5, 6], [1, 2, 3, 4, 5, 29], [0, 0, 0, 0, 0, 7]])
    assert torch.allclose(model.last_state(inputs), model(inputs)[:, -1], atol=1e-6)
