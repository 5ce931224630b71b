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


def unclustered(seed):
    """Points without blobs, so few iterations leave the start visible in the result."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(200, 4, generator=generator)


def faiss_clustering(iterations, redo):
    import faiss

    clustering = faiss.Clustering(4, 5)
    clustering.niter, clustering.nredo, clustering.seed = iterations, redo, 7
    clustering.max_points_per_centroid, clustering.min_points_per_centroid = 4096, 0
    return clustering


def centroids_of(clustering):
    import faiss

    return torch.from_numpy(faiss.vector_to_array(clustering.centroids).reshape(5, 4).copy())


def test_a_start_continues_as_a_second_train_call_on_one_faiss_clustering():
    import faiss

    first_points, second_points = unclustered(0), unclustered(0) + 0.5 * unclustered(1)
    # the authors' pattern: one Clustering, trained again on the next epoch's points
    clustering = faiss_clustering(iterations=2, redo=3)
    clustering.train(first_points.numpy(), faiss.IndexFlatL2(4))
    after_first = centroids_of(clustering)
    clustering.train(second_points.numpy(), faiss.IndexFlatL2(4))
    after_second = centroids_of(clustering)

    first = kmeans(first_points, 5, seed=7, iterations=2, redo=3)
    assert torch.equal(first, after_first)
    continued = kmeans(second_points, 5, seed=7, iterations=2, redo=3, start=first)
    assert torch.equal(continued, after_second)
    fresh = kmeans(second_points, 5, seed=7, iterations=2, redo=3)
    assert not torch.allclose(continued, fresh, atol=1e-3)
    # the redos continue from each other: 3 redos of 2 iterations are 6 iterations from the start
    six = kmeans(second_points, 5, seed=7, iterations=6, redo=1, start=first)
    assert torch.allclose(continued, six, atol=1e-6)


def test_a_start_of_the_wrong_shape_is_an_error():
    points = unclustered(0)
    with pytest.raises(ElcrecError, match=r"start centroids of shape \(4, 4\), expected \(5, 4\)"):
        kmeans(points, 5, seed=1, start=torch.zeros(4, 4))
    with pytest.raises(ElcrecError, match="start centroids contain NaN"):
        kmeans(points, 5, seed=1, start=torch.full((5, 4), float("nan")))
