import math

import numpy as np
import pytest
import torch

from elcrec.data.sequences import SequenceData
from elcrec.evaluation import _reference_ranks, evaluate, metrics_from_ranks


def test_metrics_from_ranks_by_hand():
    metrics = metrics_from_ranks(np.array([0, 4, 5, 19, 100]))
    assert metrics["HR@5"] == pytest.approx(2 / 5)
    assert metrics["NDCG@5"] == pytest.approx((1 + 1 / math.log2(6)) / 5)
    assert metrics["HR@20"] == pytest.approx(4 / 5)
    assert metrics["MRR"] == pytest.approx((1 + 1 / 5 + 1 / 6 + 1 / 20 + 1 / 101) / 5)


def scored(scores: list[list[float]]):
    table = torch.tensor(scores)
    return lambda batch: table[batch["input"][:, 0]].clone()


def history_of(sequences: list[list[int]]):
    data = SequenceData.from_sequences([np.array(s) for s in sequences])
    split = data.split(max_len=4)
    return split.test_history


def test_zero_masking_keeps_negative_targets_below_zeroed_history():
    # vocab of 24 rows; the user's history is items 1, 2, 3 (scores set to 0), the target 4
    # scores -0.5, every other row scores -1 except two positive ones
    row = [-1.0] * 24
    row[1], row[2], row[3], row[4], row[7], row[9] = 5.0, 6.0, 7.0, -0.5, 0.3, 0.2
    scores_of = scored([row])
    history = history_of([[1, 2, 3, 4]])
    inputs, targets = torch.tensor([[0]]), torch.tensor([4])
    zero = evaluate(scores_of, inputs, targets, history, masking="zero")
    assert zero.ranks.tolist() == [5]  # behind 7, 9 and the three zeroed history items
    exclude = evaluate(scores_of, inputs, targets, history, masking="exclude")
    assert exclude.ranks.tolist() == [2]  # behind 7 and 9 only
    assert zero.metrics["HR@5"] == 0.0 and exclude.metrics["HR@5"] == 1.0


def test_exclude_masks_padding_and_mask_rows():
    row = [0.0] * 10
    row[0], row[9], row[5] = 9.0, 8.0, 1.0
    scores_of = scored([row])
    history = history_of([[1, 2, 3, 5]])
    zero = evaluate(scores_of, torch.tensor([[0]]), torch.tensor([5]), history, "zero")
    exclude = evaluate(scores_of, torch.tensor([[0]]), torch.tensor([5]), history, "exclude")
    assert zero.ranks.tolist() == [2] and exclude.ranks.tolist() == [0]


def test_batching_does_not_change_ranks():
    generator = torch.Generator().manual_seed(0)
    table = torch.randn(7, 40, generator=generator)
    scores_of = lambda batch: table[batch["input"][:, 0]].clone()  # noqa: E731
    sequences = [[(3 * u + k) % 37 + 1 for k in range(5)] for u in range(7)]
    history = history_of(sequences)
    inputs, targets = torch.arange(7)[:, None], torch.tensor([s[-1] for s in sequences])
    whole = evaluate(scores_of, inputs, targets, history, "zero", batch_size=7)
    pieces = evaluate(scores_of, inputs, targets, history, "zero", batch_size=3)
    assert whole.ranks.tolist() == pieces.ranks.tolist()


@pytest.mark.parametrize("kind", ["integer", "float"])
def test_ranks_equal_the_reference_selection_on_the_whole_matrix(kind):
    # integer scores tie often (as pop's counts); repeated items put targets among the zeroed history
    generator = torch.Generator().manual_seed(1)
    n_users, vocab = 80, 30
    sequences = [torch.randint(1, vocab - 1, (6,), generator=generator).tolist() for _ in range(n_users)]
    if kind == "integer":
        table = torch.randint(-3, 4, (n_users, vocab), generator=generator).float()
    else:
        table = torch.randn(n_users, vocab, generator=generator)
    scores_of = lambda batch: table[batch["input"][:, 0]].clone()  # noqa: E731
    history = history_of(sequences)
    inputs, targets = torch.arange(n_users)[:, None], torch.tensor([s[-1] for s in sequences])
    result = evaluate(scores_of, inputs, targets, history, "zero", batch_size=16)
    masked = table.clone()
    masked[history.rows, history.items] = 0.0
    expected = _reference_ranks(masked.numpy(), targets.numpy())
    assert result.ranks.tolist() == expected.tolist()
    target_scores = masked.gather(1, targets[:, None])
    tied_rows = int(((masked == target_scores).sum(dim=1) > 1).sum())
    assert tied_rows > 0  # the tie path was taken (the zeroed targets tie in both kinds)


def test_unknown_masking_mode():
    with pytest.raises(ValueError, match="masking"):
        evaluate(None, torch.zeros(1, 1), torch.zeros(1), history_of([[1, 2, 3]]), masking="none")
