"""IOCRec: padding layout, prefix examples, the official views, both losses by hand, max-over-intent
scores and the model interface."""

import math

import pytest
import torch
from model_helpers import VOCAB, epoch_context, settings_for, tiny_batch, tiny_sequences
from torch.nn import functional

from elcrec import ElcrecError
from elcrec.data.batches import prefixes_ending_at
from elcrec.models import iocrec
from elcrec.models.base import RecommenderModel

MASK_ID = 99


def build(seed: int = 0, **overrides) -> iocrec.IOCRec:
    torch.manual_seed(seed)
    return iocrec.IOCRec(VOCAB, settings_for("iocrec", **overrides))


def test_right_padded_moves_each_row_to_column_zero_and_keeps_inner_zeros():
    ids = torch.tensor([[0, 0, 3, 4], [5, 6, 7, 8], [0, 0, 0, 0], [0, 3, 0, 4]])
    moved, lengths = iocrec.right_padded(ids)
    assert moved.tolist() == [[3, 4, 0, 0], [5, 6, 7, 8], [0, 0, 0, 0], [3, 0, 4, 0]]
    assert lengths.tolist() == [2, 4, 0, 3]


def test_prefix_examples_are_every_prefix_with_its_next_item():
    ids = torch.tensor([[3, 4, 5, 0], [7, 0, 0, 0], [0, 0, 0, 0]])
    targets = torch.tensor([[4, 5, 6, 0], [8, 0, 0, 0], [0, 0, 0, 0]])
    lengths = torch.tensor([3, 1, 0])
    prefixes, prefix_lengths, prefix_targets = iocrec.prefix_examples(ids, lengths, targets)
    assert prefixes.tolist() == [[3, 0, 0, 0], [3, 4, 0, 0], [3, 4, 5, 0], [7, 0, 0, 0]]
    assert prefix_lengths.tolist() == [1, 2, 3, 1] and prefix_targets.tolist() == [4, 5, 6, 8]
    last, last_lengths, last_targets = iocrec.prefix_examples(ids, lengths, targets, every_prefix=False)
    assert last.tolist() == [[3, 4, 5, 0], [7, 0, 0, 0]]
    assert last_lengths.tolist() == [3, 1] and last_targets.tolist() == [6, 8]


def _rows(count: int, items: list[int], width: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    row = items + [0] * (width - len(items))
    return torch.tensor([row] * count), torch.full((count,), len(items))


def test_official_crop_takes_int_ratio_m_items_from_any_start_up_to_m_minus_size():
    torch.manual_seed(0)
    items = list(range(1, 11))  # m = 10: size int(0.2 * 10) = 2, start uniform in [0, 8]
    views, lengths = iocrec.official_crop(*_rows(3000, items), 0.2)
    assert set(lengths.tolist()) == {2} and bool((views[:, 2:] == 0).all())
    assert bool((views[:, 1] == views[:, 0] + 1).all())  # contiguous
    assert set(views[:, 0].tolist()) == set(range(1, 10))  # start 8 (the protocol code never draws it)
    short, short_lengths = iocrec.official_crop(*_rows(3000, [5, 6, 7]), 0.2)  # int(0.6) = 0: one item
    assert set(short_lengths.tolist()) == {1} and set(short[:, 0].tolist()) == {5, 6, 7}
    counts = torch.bincount(short[:, 0], minlength=8)[5:].double() / 3000  # min(start in [0, 3], 2)
    assert torch.allclose(counts, torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64), atol=0.04)


def test_official_mask_replaces_int_ratio_m_items_with_the_mask_id():
    torch.manual_seed(0)
    items = list(range(1, 11))
    original, lengths = _rows(200, items)
    views = iocrec.official_mask(original, lengths, 0.7, MASK_ID)
    assert ((views[:, :10] == MASK_ID).sum(dim=1) == 7).all()  # int(0.7 * 10)
    kept = views[:, :10] != MASK_ID
    assert torch.equal(views[:, :10][kept], original[:, :10][kept]) and bool((views[:, 10:] == 0).all())
    assert bool((views[:, :10] == MASK_ID).any(dim=0).all())  # every position can be masked


def test_official_reorder_shuffles_one_window_of_int_ratio_m_items():
    torch.manual_seed(0)
    items = list(range(1, 11))
    original, lengths = _rows(3000, items)
    views = iocrec.official_reorder(original, lengths, 0.2)
    assert torch.equal(views.sort(dim=1).values, original.sort(dim=1).values)
    changed = views != original
    assert bool((changed.sum(dim=1) <= 2).all())  # a window of int(0.2 * 10) = 2
    swapped = changed.any(dim=1)
    first = changed.int().argmax(dim=1)[swapped]
    assert bool(changed[swapped, first + 1].all())  # the two changed positions are adjacent
    assert set(first.tolist()) == set(range(9))  # windows start anywhere in [0, 8]


def test_official_views_pick_one_augmentation_per_view():
    torch.manual_seed(0)
    original, lengths = _rows(500, list(range(1, 11)))
    settings = {"augmentation": "random", "tau": 0.2, "gamma": 0.7, "beta": 0.2}
    views, view_lengths = iocrec.official_views(original, lengths, settings, MASK_ID)
    assert views.shape == (1000, 12)
    cropped = view_lengths == 2
    masked = (views == MASK_ID).any(dim=1)
    assert bool((view_lengths[~cropped] == 10).all()) and not bool((cropped & masked).any())
    for share in (cropped, masked, ~cropped & ~masked):  # about a third each
        assert 0.28 < share.double().mean() < 0.39
    with pytest.raises(ElcrecError, match="augmentation"):
        iocrec.official_views(original, lengths, settings | {"augmentation": "drop"}, MASK_ID)


def test_next_item_loss_is_cross_entropy_of_the_max_over_intents_by_hand():
    states = torch.tensor([[[1.0, 0.0], [0.0, 2.0]], [[1.0, 1.0], [-1.0, 0.0]]])  # [users 2, K 2, d 2]
    items = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # user 0: max over intents per item = (0, 1, 2); user 1: (0, 1, 1)
    by_hand = ((-1 + math.log(1 + math.e + math.e**2)) + (-1 + math.log(1 + 2 * math.e))) / 2
    loss = iocrec.max_intent_cross_entropy(states, items, torch.tensor([1, 2]))
    assert loss.item() == pytest.approx(by_hand, rel=1e-6)


def test_intent_contrastive_loss_by_hand():
    # one user, two intents, one position of one feature: rows a1, a2 (view one), b1, b2 (view two)
    a1, a2, b1, b2, t = 1.0, 2.0, 1.0, 0.0, 0.5
    one, two = torch.tensor([[[[a1]], [[a2]]]]), torch.tensor([[[[b1]], [[b2]]]])

    def term(anchor, positive, others):
        return -anchor * positive / t + math.log(sum(math.exp(anchor * x / t) for x in [positive, *others]))

    by_hand = (term(a1, b1, [a2, b2]) + term(a2, b2, [a1, b1]) + term(b1, a1, [b2, a2]) + term(b2, a2, [b1, a1])) / 4
    assert iocrec.intent_contrastive_loss(one, two, t).item() == pytest.approx(by_hand, rel=1e-6)


def test_intent_contrastive_loss_pairs_the_same_user_and_intent():
    torch.manual_seed(0)
    one, two = torch.randn(2, 3, 4, 2), torch.randn(2, 3, 4, 2)  # [users, K, L, d]
    rows = [x.flatten().tolist() for x in one.unbind(0) for x in x.unbind(0)]
    rows += [x.flatten().tolist() for x in two.unbind(0) for x in x.unbind(0)]
    half, losses = len(rows) // 2, []
    for anchor in range(len(rows)):
        sims = [sum(p * q for p, q in zip(rows[anchor], rows[other], strict=True)) for other in range(len(rows))]
        positive = (anchor + half) % len(rows)  # (user u, intent k) of the other view
        others = [sims[other] for other in range(len(rows)) if other != anchor]
        losses.append(-sims[positive] + math.log(sum(math.exp(s) for s in others)))
    assert iocrec.intent_contrastive_loss(one, two, 1.0).item() == pytest.approx(sum(losses) / len(losses), rel=1e-5)


def test_scores_are_the_max_over_each_intents_own_scores():
    model = build().eval()
    inputs = tiny_batch()["input"]
    with torch.no_grad():
        ids, lengths = iocrec.right_padded(inputs)
        local, global_ = model._encode(ids)
        every_position = model.disentangler(local, lengths) + model.disentangler(global_, lengths)  # [b, K, L, d]
        rows = torch.arange(len(ids))
        per_intent = [every_position[rows, k, lengths - 1] @ model.backbone.item_embedding.weight.T for k in range(3)]
        expected = torch.stack(per_intent).max(dim=0)
        scores = model.score({"input": inputs, "users": torch.arange(4)})
    assert torch.allclose(scores, expected.values, atol=1e-5)
    assert len(set(expected.indices.flatten().tolist())) > 1  # different intents win different items


def test_next_item_loss_runs_every_prefix_as_its_own_example():
    model = build(batch_unit="users").eval()
    batch = tiny_batch()
    width = batch["input"].shape[1]
    with torch.no_grad():
        losses = model.loss(batch)
        singles = []
        for row, targets in zip(batch["input"], batch["target"], strict=True):
            items, next_items = row[row > 0].tolist(), targets[row > 0].tolist()
            for t in range(1, len(items) + 1):
                prefix = torch.tensor([[0] * (width - t) + items[:t]])
                target = torch.tensor([next_items[t - 1]])
                singles.append(functional.cross_entropy(model.score({"input": prefix}), target))
        last_only = build(batch_unit="users", prefixes=False).eval().loss(batch)["next_item"]  # same seed, weights
        last_scores = model.score({"input": batch["input"]})
    assert len(singles) == int((batch["input"] > 0).sum())
    assert losses["next_item"].item() == pytest.approx(torch.stack(singles).mean().item(), rel=1e-5)
    expected_last = functional.cross_entropy(last_scores, batch["target"][:, -1])
    assert last_only.item() == pytest.approx(expected_last.item(), rel=1e-5)


def test_a_batch_of_prefix_examples_is_one_example_a_row():
    """The default (official) batches hold one prefix a row: the same examples as a batch of users
    expanded in the model give the same next-item loss."""
    batch = tiny_batch()
    rows, ends = (batch["input"] > 0).nonzero(as_tuple=True)
    examples = {key: prefixes_ending_at(batch[key][rows], ends) for key in ("input", "target")} | {"users": rows}
    with torch.no_grad():
        per_row = build().eval().loss(examples)["next_item"]
        expanded = build(batch_unit="users").eval().loss(batch)["next_item"]
        doubled = build().eval().loss(batch)["next_item"]  # whole inputs as examples: their last items only
    assert per_row.item() == pytest.approx(expanded.item(), rel=1e-5)
    assert doubled.item() != pytest.approx(expanded.item(), rel=1e-3)


def test_views_of_a_whole_prefix_are_made_uncut_then_cut_to_the_input_width():
    model = build(augmentation="crop", tau=0.5)
    whole = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 0, 3, 4]])
    batch = {"input": whole[:, -5:], "target": whole[:, -5:] % 9 + 1, "whole": whole, "users": torch.arange(2)}
    ids, lengths = iocrec.right_padded(batch["input"])
    torch.manual_seed(0)
    views, view_lengths = model._views(batch, ids, lengths)
    assert views.shape == (4, 5) and view_lengths.tolist()[1::2] == [1, 1]  # crop 0.5 of 2 items: 1
    # a crop of 4 from the 8 uncut items: 4 consecutive ones of 1..8 (not only of the cut 4..8)
    for row in (0, 2):
        items = views[row, : view_lengths[row]].tolist()
        assert len(items) == 4 and items == list(range(items[0], items[0] + 4)) and 1 <= items[0] <= 5
    starts = set()
    for seed in range(40):
        torch.manual_seed(seed)
        starts.add(int(model._views(batch, ids, lengths)[0][0, 0]))
    assert min(starts) < 4  # windows that start before the cut input's first item


def test_official_views_ignore_the_batch_views_and_protocol_views_use_them():
    batch = tiny_batch()
    other = batch | {"views": batch["views"].flip(0)}
    for views, differs in (("official", False), ("protocol", True)):
        model = build(views=views)
        assert model.needs_views == differs
        torch.manual_seed(5)
        first = model.loss(batch)["intent_cl"]
        torch.manual_seed(5)
        second = model.loss(other)["intent_cl"]
        assert torch.equal(first, second) != differs
    with pytest.raises(ElcrecError, match="views"):
        build(views="mine")


def test_linear_biases_keep_torch_default_initialisation():
    model = build()
    linears = [module for module in model.modules() if isinstance(module, torch.nn.Linear)]
    assert len(linears) == 4 * 1 + 2 + 2 + 1  # attention q/k/v/out, FFN in/out, global K/V, disentangling W
    for linear in linears:
        bound = 1 / math.sqrt(linear.in_features)
        assert bool((linear.bias.abs() <= bound).all()) and bool((linear.bias != 0).all())
        assert linear.weight.std().item() == pytest.approx(0.02, rel=0.5)


@pytest.mark.parametrize("views", ["official", "protocol"])
def test_interface_conformance(views):
    torch.manual_seed(0)
    model = iocrec.IOCRec(VOCAB, settings_for("iocrec", views=views))
    assert isinstance(model, RecommenderModel) and model.name == "iocrec"
    model.prepare(tiny_sequences())
    model.on_epoch_start(epoch_context())
    model.train()
    losses = model.loss(tiny_batch())
    assert set(losses) == {"next_item", "intent_cl", "total"}
    assert all(value.ndim == 0 and torch.isfinite(value) for value in losses.values())
    losses["total"].backward()
    assert [name for name, parameter in model.named_parameters() if parameter.grad is None] == []
    model.eval()
    score_batch = {"input": tiny_batch()["input"], "users": torch.arange(4)}
    assert model.score(score_batch).shape == (4, VOCAB)
    embeddings, intents = model.user_snapshot(score_batch)
    assert embeddings.shape == (4, settings_for("iocrec")["hidden_size"]) and intents.shape == (4,)
    assert int(intents.max()) < settings_for("iocrec")["clusters"]


def test_empty_inputs_give_finite_losses():
    model = build().train()
    batch = tiny_batch()
    batch = {key: value.clone() for key, value in batch.items()}
    for key in ("input", "target", "negative"):
        batch[key][1] = 0
    assert all(torch.isfinite(value) for value in model.loss(batch).values())
    empty = {key: torch.zeros_like(value) for key, value in batch.items()} | {"users": torch.arange(4)}
    losses = model.loss(empty)
    assert losses["next_item"].item() == 0 and torch.isfinite(losses["total"])


def test_deterministic_under_a_seed():
    def run(seed):
        model = build(seed)
        losses = model.loss(tiny_batch())
        losses["total"].backward()
        return losses["total"].detach(), model.global_encoder.queries.grad.clone()

    first, second, other = run(7), run(7), run(8)
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert not torch.equal(first[0], other[0])
