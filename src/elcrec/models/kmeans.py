"""k-means as the ICLRec/ELCRec code runs it: faiss, 20 iterations, best of 5 runs, run seed."""

from __future__ import annotations

import numpy as np
import torch

from elcrec import ElcrecError


def kmeans(
    points: torch.Tensor,
    clusters: int,
    seed: int,
    iterations: int = 20,
    redo: int = 5,
    start: torch.Tensor | None = None,
) -> torch.Tensor:
    """points [n, d] -> centroids [clusters, d] (not normalised), deterministic for a given seed.

    `start` ([clusters, d]) is where faiss begins instead of k sampled points: faiss keeps the
    centroids already in a `Clustering` as its starting point, and then every redo continues from
    the one before (no redo draws new points). Loading them into a new `Clustering` is exactly a
    second `train` call on the first one (tests/test_kmeans.py checks it), which is what the
    authors' ICLRec does every epoch with its one long-lived clustering (salesforce/ICLRec
    src/models.py:34 builds it once, :60 trains it again each call); passing the centroids in
    lets a model keep them in a buffer that its checkpoint saves.

    The reference skips k-means when n <= k and keeps uninitialised memory as centres; we stop
    with an error instead, since no sensible run has fewer users than intents.
    """
    import faiss

    data = np.ascontiguousarray(points.detach().cpu().numpy(), dtype=np.float32)
    if data.shape[0] <= clusters:
        raise ElcrecError(f"k-means: {data.shape[0]} users cannot form {clusters} clusters; lower `clusters`")
    if not np.isfinite(data).all():
        raise ElcrecError("k-means: the user embeddings contain NaN or inf")
    clustering = faiss.Clustering(data.shape[1], clusters)
    clustering.niter = iterations
    clustering.nredo = redo
    clustering.seed = seed
    clustering.max_points_per_centroid = 4096
    clustering.min_points_per_centroid = 0
    clustering.verbose = False
    if start is not None:
        initial = np.ascontiguousarray(start.detach().cpu().numpy(), dtype=np.float32)
        expected = (clusters, data.shape[1])
        if initial.shape != expected:
            raise ElcrecError(f"k-means: start centroids of shape {initial.shape}, expected {expected}")
        if not np.isfinite(initial).all():
            raise ElcrecError("k-means: the start centroids contain NaN or inf")
        faiss.copy_array_to_vector(initial.ravel(), clustering.centroids)
    clustering.train(data, faiss.IndexFlatL2(data.shape[1]))
    centroids = faiss.vector_to_array(clustering.centroids).reshape(clusters, data.shape[1])
    return torch.from_numpy(centroids.copy())
