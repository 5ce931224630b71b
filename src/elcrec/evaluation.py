"""Full-ranking evaluation (PROTOCOL.md "Evaluation").

Masking modes:
- `zero` (the reference, default): scores of the user's input-history items are set to 0, not
  -inf, and every vocabulary row is ranked (padding row 0 and the mask row too). The reference
  chooses top-20 with numpy (argpartition, then a descending argsort of those 20). Its rank of
  the target is the number of higher scores unless another row ties with the target (a target
  also in the user's history is zeroed like the other history items; `pop`'s counts tie often):
  ranks are counted on the model's device, and only the rows with such a tie go through the
  reference's numpy selection on the host, so they fall the same way and HR/NDCG match the
  paper's code exactly.
- `exclude` (corrected): history items, the padding row and the mask row get -inf.

HR@k = target among the top k; NDCG@k = 1 / log2(rank + 2) there (rank from 0); MRR over the
full ranking. The per-user rank of the target is kept for paired significance tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from elcrec.data.sequences import History

MASKING_MODES = ("zero", "exclude")
KS = (5, 10, 20)
TOP = max(KS)


@dataclass(frozen=True)
class EvaluationResult:
    metrics: dict[str, float]
    ranks: np.ndarray  # per user, 0 = first


def metrics_from_ranks(ranks: np.ndarray, ks: tuple[int, ...] = KS) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=np.float64)
    metrics = {}
    for k in ks:
        hit = ranks < k
        metrics[f"HR@{k}"] = float(hit.mean())
        metrics[f"NDCG@{k}"] = float(np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0).mean())
    metrics["MRR"] = float((1.0 / (ranks + 1.0)).mean())
    return metrics


def _reference_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """The reference's top-20 selection; a target outside it gets its full-ranking rank (>= 20)."""
    rows = np.arange(scores.shape[0])[:, None]
    top_n = min(TOP, scores.shape[1])
    candidates = np.argpartition(scores, -top_n)[:, -top_n:]
    order = np.argsort(scores[rows, candidates])[:, ::-1]
    top = candidates[rows, order]
    found = top == targets[:, None]
    in_top = found.any(axis=1)
    target_scores = scores[np.arange(len(targets)), targets]
    beyond = np.maximum((scores > target_scores[:, None]).sum(axis=1), top_n)
    return np.where(in_top, found.argmax(axis=1), beyond)


def _history_slices(history: History) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(history.lengths.numpy())])


@torch.no_grad()
def evaluate(
    scores_of: Callable[[dict[str, torch.Tensor]], torch.Tensor],
    inputs: torch.Tensor,
    targets: torch.Tensor,
    history: History,
    masking: str = "zero",
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> EvaluationResult:
    """`scores_of({"input": rows, "users": user indices}) -> [b, vocab]`: a model's scores over every
    vocabulary row (a model's `score`; the rows are users in file order, so users = row numbers)."""
    if masking not in MASKING_MODES:
        raise ValueError(f"masking must be one of {MASKING_MODES}, got {masking!r}")
    slices = _history_slices(history)
    ranks = np.empty(len(targets), dtype=np.int64)
    for start in range(0, len(targets), batch_size):
        stop = min(start + batch_size, len(targets))
        batch = {"input": inputs[start:stop].to(device), "users": torch.arange(start, stop, device=device)}
        scores = scores_of(batch).float()
        rows = (history.rows[slices[start] : slices[stop]] - start).to(scores.device)
        items = history.items[slices[start] : slices[stop]].to(scores.device)
        batch_targets = targets[start:stop]
        if masking == "zero":
            scores[rows, items] = 0.0
        else:
            scores[rows, items] = -torch.inf
            scores[:, 0] = -torch.inf
            scores[:, -1] = -torch.inf
        target_scores = scores.gather(1, batch_targets.to(scores.device)[:, None])
        above = (scores > target_scores).sum(dim=1)
        tied = (scores == target_scores).sum(dim=1) > 1
        # one read per batch: the ranks and which rows tie with their target
        above, tied = torch.stack([above, tied.long()]).cpu().numpy()
        if masking == "zero" and tied.any():
            rows_tied = np.flatnonzero(tied)
            above[rows_tied] = _reference_ranks(
                scores[torch.as_tensor(rows_tied, device=scores.device)].cpu().numpy(),
                batch_targets.numpy()[rows_tied],
            )
        ranks[start:stop] = above
    return EvaluationResult(metrics=metrics_from_ranks(ranks), ranks=ranks)
