"""official/sasrec_kang205.py: SASRec's variant `kang205` against a training step of the code the
paper's Table 12 names for SASRec (kang205/SASRec, TensorFlow 1; tests/data/official/sasrec_kang205_train)."""

import pytest
import torch

import elcrec.models.base as base
import elcrec.models.kang205 as kang205
from elcrec.models.backbone import split_heads
from elcrec.official import OFFICIAL_CODE
from elcrec.official import sasrec_kang205 as official_kang205
from elcrec.official.common import load_fixture


@pytest.fixture(scope="module")
def fixture():
    return load_fixture(official_kang205.CHECK["fixture"])


def test_the_bce_every_gradient_and_every_score_equal_the_official_code_s(fixture):
    arrays, record = fixture
    assert record["commit"] in OFFICIAL_CODE[official_kang205.CHECK["model"]]
    assert record["settings"]["is_training"] is False and record["settings"]["num_heads"] == 2
    result = official_kang205.check(arrays, record)
    assert result["within_tolerance"] and result["scores"]["within"]
    assert result["gradients"] == 32 and result["losses"]["total"]["official"] == pytest.approx(1.55439, abs=1e-5)
    assert (arrays["test/seq"][:, 0] > 0).any() and (arrays["batch/seq"] == 0).any()  # cut inputs and padding


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch, fixture):
    original = base.next_item_loss
    monkeypatch.setattr(base, "next_item_loss", lambda *args: original(*args) * 1.001)
    result = official_kang205.check(*fixture)
    assert not result["within_tolerance"] and result["largest_loss_share"] > 5e-4


def test_the_residual_to_the_unnormalised_states_is_caught(monkeypatch, fixture):
    """The usual pre-LN residual (x + attention(LN(x))) instead of the official one (to LN(x))."""

    def forward(self, states, additive_mask, padding):
        queries = self.attention_norm(states)
        query = split_heads(self.query(queries), self.heads)
        key, value = split_heads(self.key(states), self.heads), split_heads(self.value(states), self.heads)
        logits = query @ key.transpose(-1, -2) / query.shape[-1] ** 0.5 + additive_mask
        context = (torch.softmax(logits, dim=-1) @ value).transpose(1, 2).reshape(states.shape)
        inputs = self.feed_forward_norm(context + states)
        return (self.contract(torch.relu(self.expand(inputs))) + inputs) * padding

    monkeypatch.setattr(kang205.Kang205Block, "forward", forward)
    assert not official_kang205.check(*fixture)["within_tolerance"]


def test_embeddings_not_scaled_by_sqrt_d_are_caught(monkeypatch, fixture):
    original = kang205.Kang205Encoder.forward

    def unscaled(self, input_ids):
        with torch.no_grad():
            self.item_embedding.weight /= self.item_embedding.embedding_dim**0.5
        try:
            return original(self, input_ids)
        finally:
            with torch.no_grad():
                self.item_embedding.weight *= self.item_embedding.embedding_dim**0.5

    monkeypatch.setattr(kang205.Kang205Encoder, "forward", unscaled)
    assert not official_kang205.check(*fixture)["scores"]["within"]
