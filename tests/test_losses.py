import math

import pytest
import torch

from elcrec.models.losses import (
    cluster_loss,
    info_nce,
    nearest_centre,
    next_item_ce,
    next_item_loss,
    squared_distances,
)


def test_info_nce_by_hand():
    # two orthonormal users, identical views: each row's logits are [1 (positive), 0, -inf (self), 0]
    one = torch.eye(2)
    assert info_nce(one, one.clone()).item() == pytest.approx(math.log((math.e + 2) / math.e), rel=1e-6)


def naive_info_nce(one, two, temperature):
    samples = torch.cat([one, two])
    size = len(one)
    total = 0.0
    for i in range(2 * size):
        partner = (i + size) % (2 * size)
        logits = [samples[i] @ samples[j] / temperature for j in range(2 * size) if j != i]
        positive = samples[i] @ samples[partner] / temperature
        total += -(positive - torch.logsumexp(torch.stack(logits), dim=0))
    return total / (2 * size)


def test_info_nce_matches_a_loop_over_samples():
    generator = torch.Generator().manual_seed(3)
    one, two = torch.randn(5, 4, generator=generator), torch.randn(5, 4, generator=generator)
    assert info_nce(one, two, 0.7).item() == pytest.approx(naive_info_nce(one, two, 0.7).item(), rel=1e-5)


def test_cluster_loss_by_hand_code_and_paper():
    embeddings = torch.tensor([[1.0, 0.0]])
    centres = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # user-centre distances 0 and 2 (mean 1); centre-centre [[0, 2], [2, 0]]:
    # the mean of all 4 is 1, of the 2 off-diagonal ones 2
    assert cluster_loss(embeddings, centres, alpha=10.0, mode="code").item() == pytest.approx(0.0)
    assert cluster_loss(embeddings, centres, alpha=10.0, mode="paper").item() == pytest.approx(-10.0)
    with pytest.raises(ValueError, match="cluster_loss"):
        cluster_loss(embeddings, centres, 1.0, mode="both")


def test_cluster_loss_on_unit_vectors_reduces_to_the_means():
    # PROTOCOL.md: with unit vectors the code's loss is 2 alpha (|mean c|^2 - mean h . mean c)
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.nn.functional.normalize(torch.randn(7, 5, generator=generator), dim=1)
    centres = torch.nn.functional.normalize(torch.randn(4, 5, generator=generator), dim=1)
    mean_h, mean_c = embeddings.mean(0), centres.mean(0)
    expected = 2 * 3.0 * (mean_c @ mean_c - mean_h @ mean_c)
    assert cluster_loss(embeddings, centres, alpha=3.0).item() == pytest.approx(expected.item(), abs=1e-5)


def test_nearest_centre_is_the_euclidean_argmin():
    generator = torch.Generator().manual_seed(1)
    states, centres = torch.randn(3, 6, 4, generator=generator), torch.randn(9, 4, generator=generator)
    expected = torch.cdist(states.reshape(-1, 4), centres).argmin(dim=1).reshape(3, 6)
    assert torch.equal(nearest_centre(states, centres), expected)
    assert torch.allclose(squared_distances(states[0], centres), torch.cdist(states[0], centres) ** 2, atol=1e-5)


def ce_batch():
    generator = torch.Generator().manual_seed(5)
    outputs = torch.randn(2, 4, 3, generator=generator)
    table = torch.randn(7, 3, generator=generator)  # rows: padding 0, items 1..5, mask 6
    # padding at the first positions; user 0's history (items 2, 3) stays in the softmax
    target = torch.tensor([[0, 2, 3, 5], [0, 0, 1, 1]])
    return outputs, table, {"target": target}


def test_next_item_ce_by_hand():
    outputs, table, batch = ce_batch()
    expected = []
    for row in range(2):
        for position in range(4):
            target = int(batch["target"][row, position])
            if target == 0:
                continue  # padding positions are ignored
            logits = torch.stack([outputs[row, position] @ table[item] for item in range(1, 6)])
            expected.append(torch.logsumexp(logits, dim=0) - outputs[row, position] @ table[target])
    found = next_item_ce(outputs, table, batch)
    assert found.item() == pytest.approx(torch.stack(expected).mean().item(), rel=1e-6)


def test_sampled_ce_with_every_item_is_the_full_loss():
    outputs, table, batch = ce_batch()
    full = next_item_ce(outputs, table, batch)
    for _ in range(3):  # every draw order
        assert next_item_ce(outputs, table, batch, negatives=5).item() == pytest.approx(full.item(), rel=1e-6)


def test_sampled_ce_differs_with_fewer_items_and_keeps_gradients():
    outputs, table, batch = ce_batch()
    table.requires_grad_(True)
    torch.manual_seed(0)
    sampled = next_item_ce(outputs, table, batch, negatives=2)
    assert sampled.item() < next_item_ce(outputs, table, batch).item()
    sampled.backward()
    assert table.grad[0].abs().sum() == 0 and table.grad[6].abs().sum() == 0  # padding and mask rows: no class


def test_next_item_ce_of_padding_only_is_zero_and_kinds_are_checked():
    outputs, table, _ = ce_batch()
    assert next_item_ce(outputs, table, {"target": torch.zeros(2, 4, dtype=torch.long)}).item() == 0
    with pytest.raises(ValueError, match="next_item_loss"):
        next_item_loss("softmax", outputs, torch.nn.Embedding(7, 3), {"target": torch.zeros(2, 4)}, 10)
