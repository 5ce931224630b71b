import pytest
import torch

from elcrec import ElcrecError
from elcrec.models.kmeans import kmeans


def blobs(seed=0):
    generator = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[10.0, 0.0], [0.0, 10.0], [-10.0, -10.0]])
    return (centres[:, None, :] + 0.1 * torch.randn(3, 40, 2, generator=generator)).reshape(-1, 2), centres


def test_kmeans_finds_separated_blobs_and_is_deterministic():
    points, truth = blobs()
    found = kmeans(points, 3, seed=1)
    assert torch.equal(found, kmeans(points, 3, seed=1))
    nearest = torch.cdist(truth, found).min(dim=1).values
    assert (nearest < 0.2).all()


def test_fewer_users_than_clusters_is_an_error():
    with pytest.raises(ElcrecError, match="3 users cannot form 4 clusters"):
        kmeans(torch.zeros(3, 2), 4, seed=1)
    with pytest.raises(ElcrecError, match="NaN"):
        kmeans(torch.full((10, 2), float("nan")), 2, seed=1)
