"""official/dssrec.py: our DSSRec against the re-implementation the paper cites (abis330/DSSRec @ eb0ca62),
fixture tests/data/official/dssrec_pretrain (workflow/scripts/official/dssrec_pretrain.py): the
pre-training losses, every gradient and the fine-tuning scores on its seeded initialisation and its
batch, with the two named departures switched off; each switch is needed, and a one-line change of our
loss is caught."""

import numpy as np
import pytest
import torch

from elcrec.data.sequences import SequenceData
from elcrec.models import dssrec as our_dssrec
from elcrec.models.dssrec import pretraining_windows, seq2seq_losses
from elcrec.official import dssrec as official_dssrec
from elcrec.official.common import load_fixture

COMMIT = "eb0ca62c7599e97ee006f344fd2a5438ba8a4408"


@pytest.fixture(scope="module")
def fixture():
    torch.set_num_threads(1)
    return load_fixture(official_dssrec.CHECK["fixture"])


def test_the_pre_training_step_and_the_scores_equal_the_re_implementation_s(fixture):
    arrays, record = fixture
    assert record["repository"] == "github.com/abis330/DSSRec" and record["commit"] == COMMIT
    found = official_dssrec.check(arrays, record, None, None, None)
    assert found["within_tolerance"]
    assert set(found["losses"]) == {"seq2item", "seq2seq", "total"}
    # 56 official parameters: the K = 4 prototype vectors are our one [4, 16] table
    assert found["gradients"] == 53 == sum(1 for key in arrays if key.startswith("grad/")) - 3
    assert found["largest_loss_share"] < 1e-5 and found["largest_score_share"] < 1e-5
    assert found["scores"]["largest"] > 0 and arrays["scores"].shape == (8, 42)


@pytest.mark.parametrize("kept", [("feed_forward",), ("position_padding",), ()])
def test_each_switched_off_departure_is_needed(fixture, kept):
    arrays, record = fixture
    found = official_dssrec.differences(official_dssrec.with_official_weights(arrays, record, kept), arrays)
    assert not found["within_tolerance"] and found["largest_loss_share"] > 1e-3


@pytest.mark.parametrize("function", ["seq2item_loss", "seq2seq_losses"])
def test_a_one_line_change_to_our_loss_is_caught(fixture, function, monkeypatch):
    arrays, record = fixture
    original = getattr(our_dssrec, function)
    monkeypatch.setattr(our_dssrec, function, lambda *args: original(*args) * 1.001)
    found = official_dssrec.check(arrays, record, None, None, None)
    assert not found["within_tolerance"] and found["largest_loss_share"] > 5e-4


@torch.no_grad()
def test_each_sequence_intent_loss_and_the_confident_ones_equal_the_re_implementation_s(fixture):
    arrays, record = fixture
    model = official_dssrec.with_official_weights(arrays, record).eval()
    batch = official_dssrec.pretraining_batch(arrays)
    inputs, future = batch["input"], batch["future"]
    input_states, future_states = model.backbone(torch.cat([inputs, future])).split(len(inputs))
    heads = model.pretraining_heads
    ours = seq2seq_losses(heads(input_states, inputs > 0, False), heads(future_states, future > 0, True)).flatten()
    theirs = torch.from_numpy(arrays["loss/seq2seq_k"])
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-6)
    kept = record["confidence_filter"]["k"]
    assert kept == 16 and set(ours.topk(kept, largest=False).indices.tolist()) == set(
        theirs.topk(kept, largest=False).indices.tolist()
    )


def test_our_windows_are_the_re_implementation_s_and_the_start_0_window_it_loses(fixture):
    arrays, record = fixture
    offsets, max_len = arrays["sequence_offsets"], record["settings"]["max_seq_length"]
    users = [arrays["sequences"][start:end] for start, end in zip(offsets[:-1], offsets[1:], strict=True)]
    usable = arrays["window_lengths"] >= 3
    theirs = {tuple(row[row > 0].tolist()) for row in arrays["windows"][usable]}
    assert not set(arrays["window_lengths"].tolist()) & {1, 2}  # its windows have 0 or >= 3 items here
    windows, _ = pretraining_windows(SequenceData.from_sequences(users).training_part(), max_len)
    mine = {tuple(row[row > 0].tolist()) for row in windows}
    # user 1 (16 items): its start-0 window slices item_seq[-2 : max_len - 2] (datasets.py:51), empty
    assert theirs <= mine and mine - theirs == {tuple(users[1][:max_len].tolist())}
    assert set(arrays["window_indices"].tolist()) <= set(np.flatnonzero(usable).tolist())
