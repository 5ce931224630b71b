"""official/cl4srec_sslrec.py: CL4SRec's `architecture: sslrec` against a step of the code the paper's
Table 12 names for CL4SRec (HKUDS/SSLRec; tests/data/official/cl4srec_sslrec_train)."""

import inspect
import textwrap

import numpy as np
import pytest
import torch

import elcrec.data.batches as batches
import elcrec.models.cl4srec as our_cl4srec
import elcrec.models.sslrec as sslrec
from elcrec.official import OFFICIAL_CODE
from elcrec.official import cl4srec_sslrec as official_sslrec
from elcrec.official.common import load_fixture


@pytest.fixture(scope="module")
def fixture():
    return load_fixture(official_sslrec.CHECK["fixture"])


def test_each_loss_every_gradient_and_the_scores_equal_the_official_code_s(fixture):
    arrays, record = fixture
    assert record["commit"] in OFFICIAL_CODE[official_sslrec.CHECK["model"]] and record["mode"].startswith("eval")
    result = official_sslrec.check(arrays, record)
    assert result["within_tolerance"] and result["scores"]["within"] and result["gradients"] == 34
    assert set(result["losses"]) == {"next_item", "weighted_cl", "total"}
    assert result["losses"]["total"]["official"] == pytest.approx(3.70625, abs=1e-5)
    assert (arrays["views/one"] != arrays["batch/seqs"]).any()  # its own augmentations, handed to ours


def test_a_one_line_change_to_our_loss_is_caught(monkeypatch, fixture):
    original = our_cl4srec.info_nce
    monkeypatch.setattr(our_cl4srec, "info_nce", lambda *args: original(*args) * 1.001)
    result = official_sslrec.check(*fixture)
    assert not result["within_tolerance"] and result["largest_loss_share"] > 5e-5


def test_the_mask_row_as_a_class_is_caught(monkeypatch, fixture):
    """The cross-entropy over every row (the mask id a class too), not rows 0..items."""

    def over_every_row(self, batch):
        size = batch["input"].shape[0]
        states = self.backbone(torch.cat([batch["input"], batch["views"]]))[:, -1]
        logits = states[:size] @ self.backbone.item_embedding.weight.T
        next_item = torch.nn.functional.cross_entropy(logits, batch["target"][:, -1])
        instance = our_cl4srec.info_nce(*states[size:].chunk(2), self.temperature)
        return {"next_item": next_item, "instance_cl": instance, "total": next_item + self.instance_weight * instance}

    monkeypatch.setattr(our_cl4srec.CL4SRec, "sslrec_loss", over_every_row)
    assert not official_sslrec.check(*fixture)["within_tolerance"]


def test_a_causal_mask_is_caught(monkeypatch, fixture):
    """SSLRec masks padded keys only; a causal mask as well changes every score."""
    original = sslrec.SSLRecLayer.forward

    def causal(self, states, key_padding):
        length = states.shape[1]
        future = torch.ones(length, length, dtype=torch.bool).triu(1)[None, None]
        return original(self, states, key_padding | future)

    monkeypatch.setattr(sslrec.SSLRecLayer, "forward", causal)
    assert not official_sslrec.check(*fixture)["scores"]["within"]


def test_its_views_from_its_draws_and_its_training_examples_are_ours(fixture):
    arrays, record = fixture
    assert official_sslrec.views_equal(arrays, record) and official_sslrec.examples_equal(arrays)
    assert record["augmentations"]["retried_after_value_error"] > 0  # full rows' last reorder start raised
    assert record["augmentations"]["full_row_last_reorder_start"].startswith("ValueError")
    views = np.concatenate([arrays["augment/one"], arrays["augment/two"]])
    mask_id = record["settings"]["item_num"] + 1
    assert (views == mask_id).any() and len(arrays["examples/targets"]) > len(arrays["examples/lengths"])


def edited(function, old: str, new: str):
    """`function` with one line of its source changed, compiled in its module's namespace."""
    source = textwrap.dedent(inspect.getsource(function))
    assert source.count(old) == 1, old
    namespace = dict(vars(inspect.getmodule(function)))
    exec(compile(source.replace(old, new), "<edited>", "exec"), namespace)
    return namespace[function.__name__]


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("first = (width - (start + 1 + moved))", "first = (width - (start + moved))"),  # the reorder aligned
        ("source.gather(1, (width - offsets) % width)", "source.gather(1, (width - offsets).clamp(0, width - 1))"),
        ("two = view(torch.where(draws.ops[:, :1] == 0, rows, one), 1)", "two = view(rows, 1)"),  # no aliasing
    ],
)
def test_a_one_line_change_to_our_views_is_caught(monkeypatch, fixture, old, new):
    """SSLRec's reorder writes two columns early and reads a -0 index as the row's first column; its
    second view is made from the first's in-place result: each undone is caught."""
    monkeypatch.setattr(official_sslrec, "sslrec_views", edited(batches.sslrec_views, old, new))
    assert not official_sslrec.views_equal(*fixture)


def test_every_prefix_as_an_example_is_caught(monkeypatch, fixture):
    """SSLRec leaves out the prefix one item short of the whole input: all of them is not its set."""
    original = batches.prefix_batches
    monkeypatch.setattr(
        batches,
        "prefix_batches",
        lambda *args, **options: original(*args, **(options | {"skip_second_last": False})),
    )
    assert not official_sslrec.examples_equal(fixture[0])


def test_where_its_reorder_raises_ours_leaves_the_row():
    """A full row, reorder first with the last start (its ValueError): both views are the row."""
    width = 12
    rows = torch.arange(1, width + 1)[None]
    size = width * 6 // 10
    draws = batches.SSLRecDraws(
        ops=torch.tensor([[2, 2]]),
        starts=torch.tensor([[width - size, width - size]]),
        masked=torch.zeros(1, 2, width, dtype=torch.bool),
        order=torch.arange(width).repeat(1, 2, 1),
    )
    assert torch.equal(batches.sslrec_views(rows, 99, draws, 0.6, 0.6), rows.repeat(2, 1))
