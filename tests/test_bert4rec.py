"""models/bert4rec.py: the cloze mask, the model never sees a target it predicts, the loss by hand,
the mask token at prediction time."""

import math

import pytest
import torch
from model_helpers import VOCAB, settings_for

from elcrec.models.bert4rec import cloze_mask
from elcrec.models.registry import build


def test_cloze_mask_counts_and_positions():
    torch.manual_seed(0)
    items = torch.tensor([[0] * 9 + [1], [0] * 5 + [1, 2, 3, 4, 5], list(range(1, 11))])
    for _ in range(20):
        masked = cloze_mask(items, probability=0.6, max_predictions=5)
        # round(m * 0.6), at least 1, at most 5: 1 item -> 1, 5 -> 3, 10 -> 6 capped at 5
        assert masked.sum(dim=1).tolist() == [1, 3, 5]
        assert not bool((masked & (items == 0)).any())  # padding is never masked
    picks = torch.stack([cloze_mask(items, 0.6, 5)[2] for _ in range(200)]).float().mean(dim=0)
    assert bool((picks > 0.3).all() and (picks < 0.7).all())  # every position gets masked, uniformly


def test_the_model_never_sees_what_it_predicts():
    torch.manual_seed(1)
    model = build("bert4rec", VOCAB, settings_for("bert4rec"))
    mask_id = VOCAB - 1
    batch = {
        "input": torch.tensor([[0, 1, 2, 3, 4], [0, 0, 0, 5, 6]]),
        "target": torch.tensor([[0, 2, 3, 4, 7], [0, 0, 0, 6, 8]]),
    }
    seen, drawn = [], []
    model.backbone.register_forward_hook(lambda module, args, output: seen.append(args[0].clone()))
    draw = model.masked_input
    model.masked_input = lambda batch: drawn.append(draw(batch)) or drawn[-1]
    whole = torch.tensor([[1, 2, 3, 4, 7], [0, 0, 5, 6, 8]])  # s_1..s_{n-2}, the last max_len
    for _ in range(10):
        model.loss(batch)
        inputs, masked, labels = drawn[-1]
        assert labels.tolist() == whole[masked].tolist()
        assert bool((inputs[masked] == mask_id).all()) and torch.equal(inputs[~masked], whole[~masked])
        assert torch.equal(seen[-1], inputs)  # what the encoder got: no predicted item among it
    assert not bool((model.masked_input(batch)[0] == mask_id).all())  # unmasked items stay visible


def test_cloze_loss_by_hand():
    model = build("bert4rec", 4, settings_for("bert4rec", hidden_size=2, heads=1))
    with torch.no_grad():
        model.transform.weight.zero_()  # dense -> GELU(0) -> LayerNorm: its bias, 0; logits = output bias
        model.output_bias.copy_(torch.tensor([0.0, 1.0, 2.0, 0.0]))
    batch = {"input": torch.tensor([[0, 0, 1]]), "target": torch.tensor([[0, 0, 2]])}
    # items 1, 2: round(2 * 0.6) = 1 masked item, 1 or 2
    torch.manual_seed(5)
    expected_label = int(model.masked_input(batch)[2][0])
    torch.manual_seed(5)
    loss = float(model.loss(batch)["cloze"].detach())
    log_total = math.log(1 + math.e + math.e**2 + 1)
    assert loss == pytest.approx(log_total - (1.0 if expected_label == 1 else 2.0))


def test_scores_come_from_an_appended_mask_token():
    torch.manual_seed(2)
    model = build("bert4rec", VOCAB, settings_for("bert4rec")).eval()
    seen = []
    original = model.backbone.last_state
    model.backbone.last_state = lambda ids: seen.append(ids.clone()) or original(ids)
    scores = model.score({"input": torch.tensor([[0, 1, 2, 3, 4], [0, 0, 0, 0, 6]])})
    assert scores.shape == (2, VOCAB)
    assert seen[0].tolist() == [[1, 2, 3, 4, VOCAB - 1], [0, 0, 0, 6, VOCAB - 1]]


def test_the_encoder_is_bidirectional():
    torch.manual_seed(3)
    model = build("bert4rec", VOCAB, settings_for("bert4rec")).eval()
    first = model.backbone(torch.tensor([[0, 1, 2, 3, 4]]))
    changed = model.backbone(torch.tensor([[0, 1, 2, 3, 5]]))
    assert not torch.allclose(first[0, 1], changed[0, 1])  # an early position sees a later item
    defaults = settings_for("bert4rec")
    assert (defaults["mask_prob"], defaults["max_predictions"], defaults["lr"]) == (0.6, 30, 1e-4)
