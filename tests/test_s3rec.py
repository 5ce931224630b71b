"""models/s3rec.py: the pre-training samples (prefixes, masks, segments), that MIP and MAP never show
the encoder what they predict, each objective's loss against a hand computation, the ISP variant
without attributes, fine-tuning as SASRec."""

import math

import numpy as np
import pytest
import torch
from model_helpers import settings_for

from elcrec import ElcrecError
from elcrec.data.sequences import SequenceData
from elcrec.models.base import PRETRAINING_HEADS, PretrainingData
from elcrec.models.registry import build
from elcrec.models.s3rec import attribute_matrix, prefix_matrix, pretraining_sample

# two users; the last two items of each (validation, test) are 90+ so a leak would show
SEQUENCES = SequenceData.from_sequences([np.array([1, 2, 3, 4, 91, 92]), np.array([5, 6, 7, 93, 94])])
ATTRIBUTES = {item: [1 + item % 3, 4] for item in range(1, 95)}


def data(max_len: int = 5, attributes=ATTRIBUTES) -> PretrainingData:
    return PretrainingData.of(SEQUENCES, max_len, attributes)


def model(**overrides):
    return build("s3rec", SEQUENCES.vocab_size, settings_for("s3rec", **overrides))


def test_prefixes_are_every_prefix_of_the_last_max_len_training_items():
    rows = prefix_matrix(SEQUENCES.training_part(), max_len=3).tolist()
    # user 1's training part is 1 2 3 4, cut to its last 3 (2 3 4); user 2's is 5 6 7
    assert rows == [[0, 0, 2], [0, 2, 3], [2, 3, 4], [0, 0, 5], [0, 5, 6], [5, 6, 7]]


def test_masks_negatives_and_segments_follow_the_official_sample():
    mask_id = SEQUENCES.vocab_size - 1
    prefixes = prefix_matrix(SEQUENCES.training_part(), max_len=5)
    pool = torch.from_numpy(SEQUENCES.items.astype(np.int64))
    generator = torch.Generator().manual_seed(3)
    masked_share = []
    for _ in range(200):
        batch = pretraining_sample(prefixes, mask_id, 0.2, pool, generator)
        items, masked = batch["items"], batch["masked_items"]
        chosen = masked == mask_id
        assert torch.equal(items, prefixes)
        assert bool(chosen[:, -1].all())  # the last item is always masked
        assert not bool((chosen & (prefixes == 0)).any())  # never padding
        assert torch.equal(masked[~chosen], prefixes[~chosen])
        negatives = batch["negatives"]
        assert torch.equal(negatives[~chosen], prefixes[~chosen])  # unmasked: the item itself
        for row in range(len(prefixes)):
            for negative in negatives[row][chosen[row]].tolist():
                assert 1 <= negative <= mask_id and negative not in prefixes[row].tolist()
        masked_share.append(float(chosen[:, :-1][prefixes[:, :-1] > 0].float().mean()))
        for row, prefix in enumerate(prefixes.tolist()):
            length = sum(item > 0 for item in prefix)
            segments = {
                key: batch[key][row].tolist() for key in ("masked_segments", "positive_segments", "negative_segments")
            }
            if length < 2:
                assert all(value == prefix for value in segments.values())
                continue
            span = [i for i, item in enumerate(segments["masked_segments"]) if item == mask_id and prefix[i] > 0]
            # one contiguous span of 1..len//2 of the sequence's own items
            assert span == list(range(span[0], span[0] + len(span))) and 1 <= len(span) <= length // 2
            assert [segments["positive_segments"][i] for i in span] == [prefix[i] for i in span]
            window = [segments["negative_segments"][i] for i in span]
            starts = [s for s in range(len(pool) - len(span) + 1) if pool[s : s + len(span)].tolist() == window]
            assert starts  # a window of all users' sequences concatenated
            outside = [i for i in range(len(prefix)) if prefix[i] > 0 and i not in span]
            for key in ("positive_segments", "negative_segments"):
                assert all(segments[key][i] == mask_id for i in outside)
                assert all(segments[key][i] == 0 for i in range(len(prefix)) if prefix[i] == 0)
            assert all(segments["masked_segments"][i] == prefix[i] for i in outside)
    assert 0.15 < np.mean(masked_share) < 0.25  # mask_p 0.2 over the other items


def test_training_negatives_option_keeps_held_out_items_out_of_every_segment():
    s3rec = model(segment_negatives="training")
    batches = [b for _ in range(30) for b in s3rec.pretraining_batches(data(), 2, torch.Generator().manual_seed(1))]
    for batch in batches:
        for key, value in batch.items():
            assert not bool(((value > 90) & (value < SEQUENCES.vocab_size - 1)).any()), key
    official = model()
    seen_held_out = any(
        bool((batch["negative_segments"] > 90).any() & (batch["negative_segments"] < SEQUENCES.vocab_size - 1).any())
        for _ in range(30)
        for batch in official.pretraining_batches(data(), 2, torch.Generator().manual_seed(_))
    )
    assert seen_held_out  # the official pool holds every user's whole sequence


def test_mip_and_map_never_show_the_encoder_a_masked_item():
    s3rec = model()
    s3rec.prepare_pretraining(data())
    inputs = []
    s3rec.backbone.register_forward_hook(lambda module, args, output: inputs.append(args[0].clone()))
    mask_id = SEQUENCES.vocab_size - 1
    for batch in s3rec.pretraining_batches(data(), 4, torch.Generator().manual_seed(2)):
        inputs.clear()
        s3rec.pretraining_loss(batch)
        predicted = batch["masked_items"] == mask_id  # where MIP and MAP predict the item and its attributes
        item_pass = inputs[0]
        assert torch.equal(item_pass, batch["masked_items"])
        assert bool((item_pass[predicted] == mask_id).all())
        # the predicted item appears nowhere else in what the encoder saw, unless the user repeats it
        for row in range(len(item_pass)):
            hidden = set(batch["items"][row][predicted[row]].tolist())
            assert not hidden & set(item_pass[row].tolist())


def _fixed_model(**overrides):
    s3rec = model(hidden_size=2, heads=1, inner_size=4, max_len=3, **overrides)
    s3rec.prepare_pretraining(data(max_len=3))
    s3rec.eval()  # no dropout: the hand computation below is deterministic
    return s3rec


@torch.no_grad()
def test_each_objective_against_a_hand_computation():
    s3rec = _fixed_model()
    mask_id = SEQUENCES.vocab_size - 1
    batch = {
        "items": torch.tensor([[0, 2, 3]]),
        "masked_items": torch.tensor([[0, 2, mask_id]]),
        "negatives": torch.tensor([[0, 2, 7]]),
        "masked_segments": torch.tensor([[0, mask_id, 3]]),
        "positive_segments": torch.tensor([[0, 2, mask_id]]),
        "negative_segments": torch.tensor([[0, 6, mask_id]]),
    }
    losses = s3rec.pretraining_loss(batch)
    heads = s3rec.pretraining_heads
    hidden = s3rec.backbone(batch["masked_items"], causal=False)[0]
    table = heads["attribute_embedding"].weight
    targets = attribute_matrix(ATTRIBUTES, SEQUENCES.vocab_size).float()

    def bce(p, y):
        return -(y * max(math.log(p), -100) + (1 - y) * max(math.log(1 - p), -100))

    def attribute_loss(norm, position):
        projected = heads[norm](hidden[position])
        item = int(batch["items"][0, position])
        return sum(
            bce(float(torch.sigmoid(table[a] @ projected)), float(targets[item, a])) for a in range(table.shape[0])
        )

    sigmoid = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert float(losses["aap"]) == pytest.approx(attribute_loss("aap_norm", 1), rel=1e-5)  # the one unmasked item
    assert float(losses["map"]) == pytest.approx(attribute_loss("map_norm", 2), rel=1e-5)  # the one masked item
    projected = heads["mip_norm"](hidden[2])
    embedding = s3rec.backbone.item_embedding.weight
    mip = -math.log(sigmoid(sigmoid(float(projected @ embedding[3])) - sigmoid(float(projected @ embedding[7]))))
    assert float(losses["mip"]) == pytest.approx(mip, rel=1e-5)
    last = [
        s3rec.backbone(batch[key], causal=False)[0, -1]
        for key in ("masked_segments", "positive_segments", "negative_segments")
    ]
    context = heads["sp_norm"](last[0])
    sp = -math.log(sigmoid(sigmoid(float(context @ last[1])) - sigmoid(float(context @ last[2]))))
    assert float(losses["sp"]) == pytest.approx(sp, rel=1e-5)
    expected = 0.2 * float(losses["aap"]) + float(losses["mip"]) + float(losses["map"]) + 0.5 * float(losses["sp"])
    assert float(losses["total"]) == pytest.approx(expected, rel=1e-6)


def test_pre_training_attends_both_ways_and_fine_tuning_causally():
    s3rec = model(max_len=3)  # 8 dims: a 2-dim LayerNorm output is always (-1, 1) or (1, -1)
    s3rec.eval()
    items = torch.tensor([[0, 2, 3]])
    changed = torch.tensor([[0, 2, 4]])
    # causal: the second position's output ignores the third item; bidirectional: it does not
    assert torch.allclose(s3rec.backbone(items)[0, 1], s3rec.backbone(changed)[0, 1])
    assert not torch.allclose(s3rec.backbone(items, causal=False)[0, 1], s3rec.backbone(changed, causal=False)[0, 1])


def test_isp_needs_no_attributes_and_the_default_names_the_missing_attributes():
    isp = model(aap_weight=0, map_weight=0)
    isp.prepare_pretraining(data(attributes=None))
    assert "attribute_embedding" not in isp.pretraining_heads
    batch = next(isp.pretraining_batches(data(attributes=None), 8, torch.Generator().manual_seed(0)))
    losses = {name: value.detach() for name, value in isp.pretraining_loss(batch).items()}
    assert set(losses) == {"mip", "sp", "total"}
    assert float(losses["total"]) == pytest.approx(float(losses["mip"]) + 0.5 * float(losses["sp"]))
    with pytest.raises(ElcrecError, match="no item attributes.*ISP"):
        model().prepare_pretraining(data(attributes=None))


def test_attribute_matrix_is_multi_hot_with_zero_rows_for_padding_and_the_mask():
    matrix = attribute_matrix({1: [2, 3], 2: [], 3: [1]}, vocab_size=5)
    assert matrix.tolist() == [[0, 0, 0, 0], [0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 0]]


def test_fine_tuning_is_sasrec_and_carries_no_pre_training_head():
    s3rec = model()
    assert not any(key.startswith(PRETRAINING_HEADS) for key in s3rec.state_dict())
    batch = {
        "input": torch.tensor([[0, 1, 2], [0, 0, 5]]),
        "target": torch.tensor([[0, 2, 3], [0, 0, 6]]),
        "negative": torch.tensor([[0, 8, 9], [0, 0, 8]]),
    }
    s3rec = model(max_len=3)
    s3rec.eval()
    losses = s3rec.loss(batch)
    assert set(losses) == {"next_item", "total"} and torch.isfinite(losses["total"])
    scores = s3rec.score(batch)
    assert scores.shape == (2, SEQUENCES.vocab_size)
    assert torch.allclose(
        scores, s3rec.backbone(batch["input"])[:, -1] @ s3rec.backbone.item_embedding.weight.T, atol=1e-6
    )


def test_official_settings_are_the_defaults():
    settings = settings_for("s3rec")
    assert (settings["mask_p"], settings["aap_weight"], settings["mip_weight"], settings["map_weight"]) == (
        0.2,
        0.2,
        1.0,
        1.0,
    )
    assert (settings["sp_weight"], settings["pretrain_batch_size"], settings["pretrain_seed"]) == (0.5, 100, 42)
    assert (settings["pretrain_epochs"], settings["epochs"], settings["patience"]) == (150, 200, 10)
    with pytest.raises(ElcrecError, match="segment_negatives"):
        model(segment_negatives="elsewhere")
