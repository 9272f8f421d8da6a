"""Clustering metrics that compare cluster labels with classes.

* :func:`clustering_accuracy`: the best **one-to-one** matching of clusters to classes
  (Hungarian algorithm), the "ACC" of the deep-clustering literature (GAN-EM Eq. 20, AMM Eq. 17).
* :func:`cluster_purity`: each cluster mapped to its **majority** class (many-to-one), which is
  what results with more clusters than classes (K = 20, 30) report. It can only be higher.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import make_scorer
from sklearn.metrics.cluster import contingency_matrix
from sklearn.utils.validation import check_consistent_length, column_or_1d


def _contingency(y_true, y_pred):
    y_true = column_or_1d(y_true)
    y_pred = column_or_1d(y_pred)
    check_consistent_length(y_true, y_pred)
    if y_true.shape[0] == 0:
        raise ValueError("clustering metrics need at least one sample.")
    return contingency_matrix(y_true, y_pred)  # (n_classes, n_clusters)


def clustering_accuracy(y_true, y_pred) -> float:
    """Accuracy under the best one-to-one matching of clusters to classes.

    The matching maximises the number of samples whose cluster is matched to their class
    (``scipy.optimize.linear_sum_assignment``). When the numbers of clusters and classes
    differ, the extra clusters (or classes) stay unmatched and their samples count as errors.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Ground-truth classes.
    y_pred : array-like of shape (n_samples,)
        Cluster labels.

    Returns
    -------
    accuracy : float in [0, 1]

    Examples
    --------
    >>> clustering_accuracy([0, 0, 1, 1], [1, 1, 0, 0])
    1.0
    """
    cm = _contingency(y_true, y_pred)
    rows, cols = linear_sum_assignment(cm, maximize=True)
    return float(cm[rows, cols].sum() / cm.sum())


def cluster_purity(y_true, y_pred) -> float:
    """Fraction of samples whose cluster's majority class is their class (many-to-one).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_pred : array-like of shape (n_samples,)

    Returns
    -------
    purity : float in [0, 1]

    Examples
    --------
    >>> cluster_purity([0, 0, 1, 1], [0, 1, 2, 2])
    1.0
    """
    cm = _contingency(y_true, y_pred)
    return float(cm.max(axis=0).sum() / cm.sum())


#: Scorer for ``GridSearchCV(..., scoring=clustering_accuracy_scorer)``: calls ``predict``.
clustering_accuracy_scorer = make_scorer(clustering_accuracy)
#: Scorer for cluster purity (many-to-one).
cluster_purity_scorer = make_scorer(cluster_purity)


# ----------------------------------------------------------- model selection without labels
def _flat(X):
    X = np.asarray(X, dtype=np.float64)
    return X.reshape(X.shape[0], -1)


def silhouette_scorer(estimator, X, y=None, *, space="input", sample_size=2000,
                      random_state=0):
    """Silhouette of the estimator's clusters on ``X``: a label-free score for choosing K.

    Use it as ``GridSearchCV(est, {"n_clusters": [...]}, scoring=silhouette_scorer)``; ``y``
    is ignored. The clusters are ``estimator.predict(X)``. ``space="input"`` measures the
    silhouette on the rows of ``X`` themselves, a space that is the same for every K (the
    default); ``space="transform"`` uses ``estimator.transform(X)``, which changes with K.
    The score is computed on at most ``sample_size`` rows (fixed ``random_state``). A single
    cluster scores -1 (the worst), so that a grid never picks a collapsed model.

    Parameters
    ----------
    estimator : fitted clustering estimator with ``predict`` (and ``transform`` if used)
    X : array-like of shape (n_samples, ...)
    y : ignored
    space : {"input", "transform"}, default="input"
    sample_size : int or None, default=2000
    random_state : int, default=0

    Returns
    -------
    score : float in [-1, 1], higher is better
    """
    from sklearn.metrics import silhouette_score

    labels = np.asarray(estimator.predict(X))
    if np.unique(labels).size < 2:
        return -1.0
    if space == "input":
        Z = _flat(X)
    elif space == "transform":
        Z = np.asarray(estimator.transform(X), dtype=np.float64)
    else:
        raise ValueError(f"space must be 'input' or 'transform', got {space!r}")
    n = Z.shape[0]
    if sample_size is not None and n > sample_size:
        idx = np.random.RandomState(random_state).choice(n, sample_size, replace=False)
        Z, labels = Z[idx], labels[idx]
        if np.unique(labels).size < 2:
            return -1.0
    return float(silhouette_score(Z, labels))


def confidence_scorer(estimator, X, y=None):
    """Mean assignment confidence ``mean_i max_k predict_proba(X)[i, k]``; ``y`` is ignored.

    A label-free score for ``GridSearchCV``. It tends to prefer fewer clusters (each row has
    fewer competitors), so use it to compare models with the same K (e.g. seeds or other
    parameters) rather than across K; see the benchmark in the documentation.
    """
    return float(np.asarray(estimator.predict_proba(X)).max(axis=1).mean())
