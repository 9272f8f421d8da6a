"""k-means pieces in torch, for the engines (which do not import scikit-learn)."""

from __future__ import annotations

import torch

from .._losses import cluster_sums


def nearest(x: torch.Tensor, centers: torch.Tensor) -> torch.Tensor:
    """Index of the nearest center (Euclidean) for each row of ``x``."""
    return torch.cdist(x, centers).argmin(dim=1)


def kmeans_plus_plus(x: torch.Tensor, k: int, n_lloyd: int = 20, n_init: int = 1) -> torch.Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii) followed by ``n_lloyd`` Lloyd iterations.

    With ``n_init > 1`` the best of ``n_init`` runs (lowest inertia) is kept, as
    scikit-learn's ``KMeans(n_init=...)`` does. Uses torch's global RNG (the estimators seed
    it inside a fork).
    """
    best, best_inertia = None, float("inf")
    for _ in range(n_init):
        centers = _kmeans_once(x, k, n_lloyd)
        inertia = float(torch.cdist(x, centers).min(dim=1).values.pow(2).sum())
        if inertia < best_inertia:
            best, best_inertia = centers, inertia
    return best


def _kmeans_once(x: torch.Tensor, k: int, n_lloyd: int) -> torch.Tensor:
    n = x.shape[0]
    centers = x[torch.randint(n, (1,), device=x.device)]
    d2 = torch.cdist(x, centers).pow(2).squeeze(1)
    for _ in range(1, k):
        probs = d2 / d2.sum() if d2.sum() > 0 else torch.full_like(d2, 1.0 / n)
        nxt = x[torch.multinomial(probs, 1)]
        centers = torch.cat([centers, nxt])
        d2 = torch.minimum(d2, torch.cdist(x, nxt).pow(2).squeeze(1))
    return lloyd(x, centers, n_lloyd)


def lloyd(x: torch.Tensor, centers: torch.Tensor, n_iter: int) -> torch.Tensor:
    """At most ``n_iter`` Lloyd iterations from ``centers``; new centers, ``(k, d)``.

    Stops when no row changes its nearest center; a center left without rows stays put.
    """
    labels = None
    for _ in range(n_iter):
        new = nearest(x, centers)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        sums, counts = cluster_sums(x, labels, centers.shape[0])
        counts = counts.unsqueeze(1)
        centers = torch.where(counts > 0, sums / counts.clamp(min=1), centers)
    return centers


def minibatch_kmeans_update_(centers: torch.Tensor, counts: torch.Tensor, x: torch.Tensor,
                             labels: torch.Tensor) -> None:
    """Sculley's mini-batch k-means step, in place.

    Each center moves towards the mean of its batch members with the per-center learning
    rate ``n_batch / count`` where ``count`` accumulates all rows it has been assigned.
    """
    sums, n_batch = cluster_sums(x, labels, centers.shape[0])
    counts += n_batch
    has = n_batch > 0
    eta = torch.where(has, n_batch / counts.clamp(min=1), torch.zeros_like(counts)).unsqueeze(1)
    means = sums / n_batch.clamp(min=1).unsqueeze(1)
    centers.mul_(1 - eta).add_(eta * means)
