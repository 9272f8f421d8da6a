"""Initial cluster assignments shared by the estimators (k-means on a PCA of the data)."""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.decomposition import PCA


class ScaledView:
    """Row-indexable view of ``X`` through the fitted scaler (scales on access, no copy)."""

    def __init__(self, X, scaler):
        self.X, self.scaler = X, scaler
        self.shape = X.shape

    def __getitem__(self, index):
        return self.scaler.transform(self.X[index])


def kmeans_pca_labels(X_scaled, n_clusters: int, rng, *, given=None, n_components: int = 50,
                      max_rows: int = 10000) -> np.ndarray:
    """Cluster index per row from k-means on a PCA of the data.

    PCA and k-means (``n_init=4``) are fitted on at most ``max_rows`` rows of ``X_scaled``
    (an array or a :class:`ScaledView`) and applied to all rows in chunks. ``given``
    (semi-supervised labels, -1 = unlabeled) overrides the k-means cluster of labeled rows.
    """
    n = X_scaled.shape[0]
    fit_idx = np.sort(rng.choice(n, size=max_rows, replace=False)) if n > max_rows else slice(None)
    X_fit = np.asarray(X_scaled[fit_idx], dtype=np.float32)
    n_comp = max(1, min(n_components, X_fit.shape[1], X_fit.shape[0] - 1))
    pca = PCA(n_components=n_comp, random_state=rng).fit(X_fit)
    km = KMeans(n_clusters, n_init=4, random_state=rng).fit(pca.transform(X_fit))
    labels = np.concatenate([
        km.predict(pca.transform(np.asarray(X_scaled[s:s + 8192], dtype=np.float32)))
        for s in range(0, n, 8192)]).astype(np.int64)
    if given is not None:
        labels[given >= 0] = given[given >= 0]
    return labels
