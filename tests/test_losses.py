import math

import pytest
import torch

from elcrec.models.losses import cluster_loss, info_nce, nearest_centre, squared_distances


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
