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
