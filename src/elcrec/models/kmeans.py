"""k-means as the ICLRec/ELCRec code runs it: faiss, 20 iterations, best of 5 runs, run seed."""

from __future__ import annotations

import numpy as np
import torch

from elcrec import ElcrecError


def kmeans(points: torch.Tensor, clusters: int, seed: int, iterations: int = 20, redo: int = 5) -> torch.Tensor:
    """points [n, d] -> centroids [clusters, d] (not normalised), deterministic for a given seed.

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
    clustering.train(data, faiss.IndexFlatL2(data.shape[1]))
    centroids = faiss.vector_to_array(clustering.centroids).reshape(clusters, data.shape[1])
    return torch.from_numpy(centroids.copy())
