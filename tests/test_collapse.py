"""Degenerate clusterings: the collapse on flat data, its warning, and flat rows of images."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits, make_blobs, make_classification
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import MinMaxScaler, StandardScaler

from skganem import GANEMClustering, clustering_accuracy
from skganem._base import degenerate_clusters, infer_image_shape
from skganem._scaling import RangeScaler
from conftest import ESTIMATOR_CLASSES, tiny

# Small networks, enough GAN-EM iterations for the mixture to settle (about 3 s on 2 cores).
SMALL_GANEM = dict(hidden_dims=(64, 64), n_iter=6, min_m_steps=100, e_steps=100, n_init=1)


@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def test_unequal_clusters_on_standardized_table_do_not_collapse(cancer):
    # 212 / 357 rows, standardized, with z-values up to 12. With min/max scaling and the
    # E-net's classes drawn from phi this fit ended with 4 and 565 rows (ACC 0.634).
    X, y = cancer
    est = GANEMClustering(2, random_state=0, **SMALL_GANEM).fit(X)
    sizes = np.bincount(est.labels_, minlength=2)
    assert sizes.min() >= 100, sizes
    assert clustering_accuracy(y, est.labels_) >= 0.85


def test_unequal_synthetic_clusters_do_not_collapse():
    # 400 + 80 rows in 8 dimensions, plus a heavy-tailed feature that sets a min/max range.
    rng = np.random.RandomState(0)
    X, y = make_blobs(n_samples=[400, 80], n_features=8, centers=[[0] * 8, [3] * 8],
                      random_state=0)
    X = np.column_stack([X, rng.standard_t(1.5, size=X.shape[0])])
    X = StandardScaler().fit_transform(X)
    est = GANEMClustering(2, random_state=0, **SMALL_GANEM).fit(X)
    assert clustering_accuracy(y, est.labels_) >= 0.9
    assert not degenerate_clusters(est.labels_, 2)


def test_history_records_cluster_sizes_and_phi(cancer):
    X, _ = cancer
    est = tiny(GANEMClustering, n_clusters=2, random_state=0).fit(X)
    for record in est.history_:
        assert sum(record["cluster_sizes"]) == X.shape[0]
        assert len(record["phi"]) == 2
        assert sum(record["phi"]) == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_every_estimator_records_cluster_sizes(cls, blobs):
    est = tiny(cls, n_clusters=3, random_state=0).fit(blobs[0])
    sizes = est.history_[-1]["cluster_sizes"]
    assert len(sizes) == 3 and all(isinstance(s, int) for s in sizes) and sum(sizes) > 0


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_degenerate_result_warns_naming_the_clusters(cls):
    # Two distinct rows repeated: identical rows get identical labels, so at least two of
    # four clusters must stay empty.
    X = np.repeat(np.array([[0.0, 1.0, 2.0], [5.0, -1.0, 0.5]]), 20, axis=0)
    with pytest.warns(ConvergenceWarning, match=r"empty or near-empty cluster.*cluster \d "
                                                r"\(0 rows\).*cluster sizes \["):
        tiny(cls, n_clusters=4, random_state=0).fit(X)


def test_no_warning_for_a_sound_result(cancer):
    X, _ = cancer
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        GANEMClustering(2, random_state=0, **SMALL_GANEM).fit(X)


def test_degenerate_clusters_threshold():
    labels = np.array([0] * 95 + [1] * 4 + [2] * 1)
    # an even split is 33.3 rows; 5 % of it is 1.67: cluster 2 (1 row) and cluster 3 (empty)
    assert degenerate_clusters(labels, 4) == [(2, 1), (3, 0)]
    assert degenerate_clusters(np.array([0, 1, 0, 1]), 2) == []


# ----------------------------------------------------------------- flat rows of images
def test_flat_digits_are_recognised_as_images():
    X, _ = load_digits(return_X_y=True)
    assert infer_image_shape(X) == (8, 8)
    assert infer_image_shape(X / 16.0) == (8, 8)
    # the same pixels with their columns shuffled have no grid: tabular
    assert infer_image_shape(X[:, np.random.RandomState(0).permutation(64)]) is None
    # standardized pixels have negative values: not intensities
    assert infer_image_shape(StandardScaler().fit_transform(X)) is None


@pytest.mark.parametrize("X", [
    MinMaxScaler().fit_transform(make_classification(500, 64, random_state=0)[0]),
    MinMaxScaler().fit_transform(make_classification(500, 100, n_informative=50,
                                                     n_redundant=40, random_state=0)[0]),
    (np.random.RandomState(0).rand(300, 64) > 0.5).astype(float),
    np.ones((50, 64)),
    np.zeros((50, 64)),
    np.random.RandomState(0).rand(50, 63),
], ids=["minmax-64", "minmax-100", "binary-64", "constant", "zeros", "not-square"])
def test_tabular_data_is_not_taken_for_images(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert infer_image_shape(X) is None


def test_flat_image_rows_fit_like_images():
    X, _ = load_digits(return_X_y=True)
    X = X[:200]
    kw = dict(n_clusters=3, random_state=0, conv_channels=(8, 16))
    flat = tiny(GANEMClustering, **kw).fit(X)
    assert flat.image_shape_ == (1, 8, 8)
    images = tiny(GANEMClustering, **kw).fit(X.reshape(-1, 8, 8))
    np.testing.assert_array_equal(flat.labels_, images.labels_)
    np.testing.assert_allclose(flat.predict_proba(X), images.predict_proba(X.reshape(-1, 8, 8)),
                               rtol=1e-5, atol=1e-6)
    # architecture="mlp" keeps the perceptrons on the flat rows
    mlp = tiny(GANEMClustering, architecture="mlp", **kw).fit(X)
    assert mlp.image_shape_ is None


# ----------------------------------------------------------------- scaling of flat features
def test_outliers_do_not_set_the_range_of_flat_features():
    rng = np.random.RandomState(0)
    X = rng.randn(1000, 2)
    X[0, 0] = 50.0  # one outlier
    scaler = RangeScaler.fit(X, per_feature=True)
    Z = scaler.transform(X)
    assert Z.min() >= -1.0 and Z.max() <= 1.0
    # the bulk of the first feature spreads over the range instead of a narrow band
    assert np.percentile(Z[:, 0], 95) - np.percentile(Z[:, 0], 5) == pytest.approx(2.0, abs=1e-3)
    assert Z[0, 0] == 1.0  # clipped


def test_feature_mostly_one_value_falls_back_to_min_max():
    X = np.zeros((100, 2))
    X[:3, 0] = [4.0, 8.0, 16.0]  # a rarely lit pixel
    X[:, 1] = 3.0  # constant
    scaler = RangeScaler.fit(X, per_feature=True)
    Z = scaler.transform(X)
    assert Z[0, 0] == pytest.approx(-0.5) and Z[2, 0] == pytest.approx(1.0)
    assert np.all(Z[:, 1] == 0.0)
    np.testing.assert_allclose(scaler.inverse_transform(Z), X, atol=1e-5)
