"""models/dssrec.py: the pre-training windows and splits (training items only), the intent layer and
both losses against hand computations, the confidence filter, the interface (defaults, heads only
in pre-training, a pre-training run and the fine-tuning start) and fine-tuning as SASRec."""

import math

import numpy as np
import pytest
import torch
from model_helpers import TINY, settings_for

from elcrec import ElcrecError
from elcrec.data.sequences import SequenceData
from elcrec.models.base import PRETRAINING_HEADS, PretrainingData
from elcrec.models.dssrec import (
    IntentLayer,
    pretraining_windows,
    seq2item_loss,
    seq2seq_loss,
    seq2seq_losses,
    split_sample,
)
from elcrec.models.registry import build, model_class
from elcrec.settings import model_defaults

# the last two items of each user (validation, test) are 90+, so a leak would show
SEQUENCES = SequenceData.from_sequences(
    [
        np.array([*range(1, 13), 91, 92]),  # training part of 12 items: sliding windows
        np.array([20, 21, 22, 93, 94]),  # 3 items: one window
        np.array([30, 31, 95, 96]),  # 2 items: too short, dropped
        np.array([40, 41, 42, 43, 44, 97, 98]),  # exactly max_len 5: one window
    ]
)


def data(max_len: int = 5) -> PretrainingData:
    return PretrainingData.of(SEQUENCES, max_len, None)


def model(seed: int = 0, **overrides):
    torch.manual_seed(seed)
    return build("dssrec", SEQUENCES.vocab_size, settings_for("dssrec", **overrides))


def test_windows_slide_by_half_max_len_over_the_training_part_only():
    windows, lengths = pretraining_windows(SEQUENCES.training_part(), max_len=5)
    # 12 items, step 2: starts 7, 5, 3, 1 (while positive) and 0; oldest first
    assert windows.tolist() == [
        [1, 2, 3, 4, 5],
        [2, 3, 4, 5, 6],
        [4, 5, 6, 7, 8],
        [6, 7, 8, 9, 10],
        [8, 9, 10, 11, 12],
        [0, 0, 20, 21, 22],
        [40, 41, 42, 43, 44],
    ]
    assert lengths.tolist() == [5, 5, 5, 5, 5, 3, 5]
    windows, lengths = pretraining_windows(SEQUENCES.training_part(), max_len=6)
    # step 3: starts 6, 3 and 0 (no repeated start 0 when the steps reach it exactly)
    assert windows[:3].tolist() == [[1, 2, 3, 4, 5, 6], [4, 5, 6, 7, 8, 9], [7, 8, 9, 10, 11, 12]]
    assert windows[3:].tolist() == [[0, 0, 0, 20, 21, 22], [0, 40, 41, 42, 43, 44]]
    assert lengths.tolist() == [6, 6, 6, 3, 5]


def test_split_sample_gives_input_reversed_future_and_next_item():
    windows = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 7, 8, 9], [3, 4, 5, 6, 7]])
    sample = split_sample(windows, torch.tensor([4, 3, 5]), torch.tensor([1, 1, 3]))
    assert sample["input"].tolist() == [[0, 0, 0, 0, 1], [0, 0, 0, 0, 7], [0, 0, 3, 4, 5]]
    assert sample["future"].tolist() == [[0, 0, 4, 3, 2], [0, 0, 0, 9, 8], [0, 0, 0, 7, 6]]
    assert sample["next"].tolist() == [2, 8, 6]


def _items(row: torch.Tensor) -> list[int]:
    return [item for item in row.tolist() if item > 0]


def test_every_epoch_splits_every_window_once_and_never_shows_held_out_items():
    dssrec = model()
    windows, lengths = pretraining_windows(SEQUENCES.training_part(), max_len=5)
    expected = sorted(_items(row) for row in windows)
    generator = torch.Generator().manual_seed(4)
    splits: dict[tuple, set[int]] = {}
    for _ in range(40):
        seen = []
        for batch in dssrec.pretraining_batches(data(), 3, generator):
            assert set(batch) == {"input", "future", "next"} and len(batch["next"]) <= 3
            for key, value in batch.items():
                assert not bool((value > 90).any()), key
            for inputs, future, item in zip(batch["input"], batch["future"], batch["next"].tolist(), strict=True):
                past, later = _items(inputs), _items(future)[::-1]  # the future un-reversed
                window = past + later
                assert later[0] == item  # next = seq[t], the future's last column
                assert 1 <= len(past) <= len(window) - 2  # t in [1, len - 2]
                splits.setdefault(tuple(window), set()).add(len(past))
                seen.append(window)
        assert sorted(seen) == expected  # each window once per epoch
    # every split point is drawn: 1..3 for a 5-item window, only 1 for a 3-item one
    assert splits[(20, 21, 22)] == {1}
    assert all(points == {1, 2, 3} for window, points in splits.items() if len(window) == 5)


def _layer_norm(vector: list[float], gain: list[float], bias: list[float]) -> list[float]:
    mean = sum(vector) / len(vector)
    variance = sum((x - mean) ** 2 for x in vector) / len(vector)
    return [g * (x - mean) / math.sqrt(variance + 1e-12) + b for x, g, b in zip(vector, gain, bias, strict=True)]


def _softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    return [x / sum(exps) for x in exps]


def _dot(one: list[float], two: list[float]) -> float:
    return sum(a * b for a, b in zip(one, two, strict=True))


@torch.no_grad()
def test_intent_layer_against_a_hand_computation():
    hidden, intents, length = 4, 2, 3
    torch.manual_seed(1)
    layer = IntentLayer(hidden, intents, length)
    # every parameter set by hand; each LayerNorm gets its own gain so a swapped one would show
    layer.prototypes.copy_(torch.tensor([[1.0, -0.5, 0.2, 0.0], [-0.3, 0.8, 0.1, 0.6]]))
    layer.key_transform.weight.copy_(torch.arange(16.0).reshape(4, 4) / 20 - 0.4)
    layer.key_transform.bias.copy_(torch.tensor([0.1, -0.2, 0.0, 0.3]))
    layer.position_bias.copy_(torch.tensor([[0.5, 0.0, 0.0, -0.5], [0.1, 0.2, 0.3, 0.4], [-0.2, 0.0, 0.4, 0.1]]))
    layer.query_bias.copy_(torch.tensor([0.3, -0.1, 0.2, 0.0]))
    layer.input_bias.copy_(torch.tensor([[0.1, 0.0, -0.1, 0.2], [0.0, 0.3, 0.0, -0.2]]))
    layer.future_bias.copy_(torch.tensor([[-0.4, 0.1, 0.0, 0.0], [0.2, 0.2, -0.2, 0.1]]))
    norms = [layer.state_norm, layer.prototype_norm, layer.key_norm, layer.query_norm, layer.output_norm]
    for index, norm in enumerate(norms):
        norm.weight.copy_(torch.tensor([1.0, 1.5, 0.5, 2.0]).roll(index))
        norm.bias.copy_(torch.tensor([0.0, 0.1, -0.1, 0.05]) * (index + 1))
    states = torch.tensor([[[9.0, -9.0, 4.0, 1.0], [0.2, -1.0, 0.7, 0.4], [1.1, 0.3, -0.6, 0.9]]])
    is_item = torch.tensor([[False, True, True]])  # position 0 is padding

    def ln(norm, vector):
        return _layer_norm(vector, norm.weight.tolist(), norm.bias.tolist())

    z = states[0].tolist()
    alpha, scale = layer.position_bias.tolist(), math.sqrt(hidden)
    prototypes = [ln(layer.prototype_norm, c) for c in layer.prototypes.tolist()]
    p_intent = [_softmax([_dot(ln(layer.state_norm, z_i), c) / scale for c in prototypes]) for z_i in z]
    w, w_bias = layer.key_transform.weight.tolist(), layer.key_transform.bias.tolist()
    keys = []
    for i in range(length):
        tilde = ln(layer.key_norm, [a + b for a, b in zip(z[i], alpha[i], strict=True)])
        keys.append([t + max(0.0, _dot(row, tilde) + b) for t, row, b in zip(tilde, w, w_bias, strict=True)])
    query = ln(
        layer.query_norm, [b + a + x for b, a, x in zip(layer.query_bias.tolist(), alpha[-1], z[-1], strict=True)]
    )
    p_position = [0.0] + _softmax([_dot(keys[i], query) / scale for i in (1, 2)])  # items only
    for future, beta in ((False, layer.input_bias.tolist()), (True, layer.future_bias.tolist())):
        phi = [
            ln(
                layer.output_norm,
                [
                    beta[k][d] + sum(p_position[i] * p_intent[i][k] * z[i][d] for i in range(length))
                    for d in range(hidden)
                ],
            )
            for k in range(intents)
        ]
        assert torch.allclose(layer(states, is_item, future=future)[0], torch.tensor(phi), atol=1e-5)
    assert torch.allclose(layer.intent_probabilities(states)[0], torch.tensor(p_intent), atol=1e-6)
    weights = layer.position_weights(states, is_item)[0]
    assert float(weights[0]) == 0.0  # padding gets no weight
    assert torch.allclose(weights, torch.tensor(p_position), atol=1e-6)
    # so the padding position's state changes nothing
    changed = states.clone()
    changed[0, 0] = torch.tensor([-5.0, 3.0, 0.0, 2.0])
    assert torch.allclose(layer(changed, is_item, future=False), layer(states, is_item, future=False), atol=1e-6)


def test_losses_against_a_direct_computation_of_the_formulas():
    generator = torch.Generator().manual_seed(5)
    size, intents, hidden = 3, 2, 4
    phi_in = torch.randn(size, intents, hidden, generator=generator)
    phi_fut = torch.randn(size, intents, hidden, generator=generator)
    next_items = torch.randn(size, hidden, generator=generator)
    scale = math.sqrt(hidden)

    def s(one, two):
        return math.exp(float(one @ two) / scale)

    seq2item = sum(
        -math.log2(
            max(s(phi_in[b, k], next_items[b]) for k in range(intents))
            / sum(s(phi_in[b, k], next_items[c]) for k in range(intents) for c in range(size))
        )
        for b in range(size)
    )
    assert float(seq2item_loss(phi_in, next_items)) == pytest.approx(seq2item, rel=1e-5)
    losses = [
        [
            -math.log2(
                s(phi_in[b, k], phi_fut[b, k])
                / sum(s(phi_in[b, k], phi_fut[c, j]) for j in range(intents) for c in range(size))
            )
            for k in range(intents)
        ]
        for b in range(size)
    ]
    assert torch.allclose(seq2seq_losses(phi_in, phi_fut), torch.tensor(losses), rtol=1e-5)
    ordered = sorted(value for row in losses for value in row)
    # floor(confidence * B * K) of the 6 smallest (at least one)
    for confidence, kept in ((0.5, 3), (0.7, 4), (1.0, 6), (0.1, 1)):
        assert float(seq2seq_loss(phi_in, phi_fut, confidence)) == pytest.approx(sum(ordered[:kept]), rel=1e-5)
    # the actual batch size: two rows keep floor(0.5 * 2 * 2) = 2
    own = seq2seq_losses(phi_in[:2], phi_fut[:2]).flatten().sort().values
    assert float(seq2seq_loss(phi_in[:2], phi_fut[:2], 0.5)) == pytest.approx(float(own[:2].sum()), rel=1e-6)


def test_pretraining_loss_is_the_weighted_sum_over_one_encoder_pass():
    dssrec = model(s2i_weight=0.3, s2s_weight=2.0, confidence=0.5)
    dssrec.prepare_pretraining(data())
    batch = next(dssrec.pretraining_batches(data(), 4, torch.Generator().manual_seed(0)))
    dssrec.eval()  # no dropout: the pass over input and future together equals two passes
    with torch.no_grad():
        losses = dssrec.pretraining_loss(batch)
        heads = dssrec.pretraining_heads
        phi_in = heads(dssrec.backbone(batch["input"]), batch["input"] > 0, future=False)
        phi_fut = heads(dssrec.backbone(batch["future"]), batch["future"] > 0, future=True)
        seq2item = seq2item_loss(phi_in, dssrec.backbone.item_embedding(batch["next"]))
        seq2seq = seq2seq_loss(phi_in, phi_fut, 0.5)
    assert set(losses) == {"seq2item", "seq2seq", "total"}
    assert float(losses["seq2item"]) == pytest.approx(float(seq2item), rel=1e-5)
    assert float(losses["seq2seq"]) == pytest.approx(float(seq2seq), rel=1e-5)
    assert float(losses["total"]) == pytest.approx(0.3 * float(seq2item) + 2.0 * float(seq2seq), rel=1e-5)
    dssrec.train()
    losses = dssrec.pretraining_loss(batch)
    assert all(bool(torch.isfinite(value)) for value in losses.values())
    losses["total"].backward()
    for name, parameter in [
        ("prototypes", heads.prototypes),
        ("item_embedding", dssrec.backbone.item_embedding.weight),
    ]:
        assert parameter.grad is not None and bool(torch.isfinite(parameter.grad).all()), name
        assert float(parameter.grad.abs().sum()) > 0, name


def test_defaults_and_settings_of_the_pretraining():
    defaults = model_defaults("dssrec")
    assert (defaults["hidden_size"], defaults["layers"], defaults["heads"], defaults["inner_size"]) == (64, 2, 1, 256)
    assert (defaults["dropout"], defaults["attention_dropout"], defaults["epochs"], defaults["patience"]) == (
        0.5,
        0.5,
        200,
        10,
    )
    assert (defaults["pretrain_epochs"], defaults["pretrain_batch_size"], defaults["pretrain_lr"]) == (30, 256, 1e-3)
    assert (defaults["pretrain_seed"], defaults["intents"], defaults["confidence"]) == (42, 4, 0.5)
    assert (defaults["s2i_weight"], defaults["s2s_weight"], defaults["batch_size"]) == (1.0, 1.0, 256)
    identity = model_class("dssrec").pretraining_identity(defaults)
    assert {"intents", "confidence", "heads", "pretrain_seed", "s2s_weight"} <= set(identity)
    assert "epochs" not in identity and "patience" not in identity  # fine-tuning only
    with pytest.raises(ElcrecError, match="confidence"):
        model(confidence=0)
    with pytest.raises(ElcrecError, match="intents"):
        model(intents=0)


def test_heads_exist_only_for_pretraining_and_fine_tuning_is_sasrec():
    dssrec = model(max_len=3)
    assert not any(key.startswith(PRETRAINING_HEADS) for key in dssrec.state_dict())
    batch = {
        "input": torch.tensor([[0, 1, 2], [0, 0, 5]]),
        "target": torch.tensor([[0, 2, 3], [0, 0, 6]]),
        "negative": torch.tensor([[0, 8, 9], [0, 0, 8]]),
    }
    dssrec.eval()
    losses = dssrec.loss(batch)
    assert set(losses) == {"next_item", "total"} and bool(torch.isfinite(losses["total"]))
    scores = dssrec.score(batch)
    assert scores.shape == (2, SEQUENCES.vocab_size)
    expected = dssrec.backbone(batch["input"])[:, -1] @ dssrec.backbone.item_embedding.weight.T
    assert torch.allclose(scores, expected, atol=1e-6)
    dssrec.prepare_pretraining(data(max_len=3))
    heads = {key for key in dssrec.state_dict() if key.startswith(PRETRAINING_HEADS)}
    assert f"{PRETRAINING_HEADS}.prototypes" in heads and dssrec.pretraining_heads.prototypes.shape == (
        4,
        TINY["hidden_size"],
    )


def test_pretrained_weights_without_the_heads_load_strictly_into_the_fine_tuning_model():
    pretrained = model(seed=1)
    pretrained.prepare_pretraining(data())
    heads = f"{PRETRAINING_HEADS}."
    state = {key: value for key, value in pretrained.state_dict().items() if not key.startswith(heads)}
    assert len(state) < len(pretrained.state_dict())
    fresh = model(seed=2)
    fresh.load_state_dict(state)  # strict: what pretraining.fine_tuning_start hands the fine-tuning run
    assert all(torch.equal(fresh.state_dict()[key], value) for key, value in state.items())
