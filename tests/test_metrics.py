import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.model_selection import GridSearchCV
from sklearn.cluster import KMeans

from skganem.metrics import (cluster_purity, clustering_accuracy, cluster_purity_scorer,
                             clustering_accuracy_scorer)


def test_accuracy_is_permutation_invariant():
    y = np.array([0, 0, 1, 1, 2, 2])
    assert clustering_accuracy(y, np.array([2, 2, 0, 0, 1, 1])) == 1.0
    assert clustering_accuracy(y, np.array([2, 2, 0, 0, 1, 0])) == pytest.approx(5 / 6)


def test_accuracy_with_more_clusters_than_classes_is_one_to_one():
    y = np.array([0, 0, 0, 0, 1, 1])
    pred = np.array([0, 0, 1, 1, 2, 2])  # class 0 split in two clusters
    # one-to-one: only one of the two clusters of class 0 can be matched
    assert clustering_accuracy(y, pred) == pytest.approx(4 / 6)
    # many-to-one purity maps both clusters to class 0
    assert cluster_purity(y, pred) == 1.0


def test_accuracy_with_fewer_clusters_than_classes():
    y = np.array([0, 0, 1, 1, 2, 2])
    pred = np.zeros(6, dtype=int)
    assert clustering_accuracy(y, pred) == pytest.approx(2 / 6)
    assert cluster_purity(y, pred) == pytest.approx(2 / 6)


def test_string_labels_and_errors():
    assert clustering_accuracy(["a", "b", "b"], [1, 0, 0]) == 1.0
    with pytest.raises(ValueError):
        clustering_accuracy([0, 1], [0, 1, 1])
    with pytest.raises(ValueError):
        clustering_accuracy([], [])


def test_scorers_in_grid_search():
    X, y = make_blobs(n_samples=90, centers=3, random_state=0)
    for scorer in (clustering_accuracy_scorer, cluster_purity_scorer):
        search = GridSearchCV(KMeans(n_init=2, random_state=0), {"n_clusters": [2, 3]},
                              scoring=scorer, cv=3).fit(X, y)
        assert search.best_params_ == {"n_clusters": 3}
