"""The engines' Gaussian mixture (``skganem._engines._gmm``) against scikit-learn's."""

import numpy as np
import torch
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score
from sklearn.mixture import GaussianMixture

from skganem._engines._gmm import fit_gmm, gmm_proba


def _anisotropic():
    """scikit-learn's example of stretched blobs, which k-means cuts across."""
    X, y = make_blobs(600, centers=3, n_features=2, random_state=170)
    return X @ np.array([[0.6, -0.64], [-0.41, 0.85]]), y


def test_fit_gmm_separates_stretched_clusters_that_kmeans_cuts():
    X, y = _anisotropic()
    start = KMeans(3, n_init=10, random_state=0).fit(X).labels_
    params = fit_gmm(torch.tensor(X), torch.tensor(start), 3)
    labels = gmm_proba(torch.tensor(X), *params).argmax(1).numpy()
    assert adjusted_rand_score(y, start) < 0.7
    assert adjusted_rand_score(y, labels) > 0.98


def test_fit_gmm_matches_scikit_learn_from_the_same_start():
    X, _ = _anisotropic()
    start = KMeans(3, n_init=10, random_state=0).fit(X).labels_
    log_w, means, prec_chol = fit_gmm(torch.tensor(X), torch.tensor(start), 3)
    reg = 1e-2 * X.var(0).mean()  # fit_gmm's diagonal term, relative to the data's scale
    w = np.bincount(start) / len(start)
    mu = np.stack([X[start == c].mean(0) for c in range(3)])
    prec = np.stack([np.linalg.inv(np.cov(X[start == c].T, bias=True) + reg * np.eye(2))
                     for c in range(3)])
    sk = GaussianMixture(3, covariance_type="full", reg_covar=reg, weights_init=w,
                         means_init=mu, precisions_init=prec, tol=1e-3).fit(X)
    np.testing.assert_allclose(means.numpy(), sk.means_, atol=1e-4)
    np.testing.assert_allclose(log_w.exp().numpy(), sk.weights_, atol=1e-4)
    np.testing.assert_allclose(gmm_proba(torch.tensor(X), log_w, means, prec_chol).numpy(),
                               sk.predict_proba(X), atol=1e-2)


def test_fit_gmm_regularises_relative_to_the_scale_of_the_features():
    # features that vary by thousandths, as a small network's sigmoid units can: an absolute
    # diagonal term would swamp their covariances and put every row in one component
    X, y = make_blobs(300, centers=3, n_features=4, cluster_std=0.5, random_state=0)
    start = KMeans(3, n_init=10, random_state=0).fit(X).labels_
    small = 0.5 + 1e-3 * X
    labels = gmm_proba(torch.tensor(small), *fit_gmm(torch.tensor(small),
                                                     torch.tensor(start), 3)).argmax(1).numpy()
    assert adjusted_rand_score(y, labels) > 0.98


def test_fit_gmm_keeps_the_start_with_the_largest_likelihood():
    # a start that merges two blobs and splits the third: EM from it stays there
    X, y = make_blobs(600, centers=3, n_features=2, cluster_std=0.6, random_state=3)
    bad = np.where(y == 2, 1 + (X[:, 0] > np.median(X[y == 2, 0])), 0)
    x = torch.tensor(X)

    def mean_log_likelihood(params):
        from skganem._engines._gmm import gmm_log_joint

        return float(torch.logsumexp(gmm_log_joint(x, *params), 1).mean())

    stuck = fit_gmm(x, torch.tensor(bad), 3)
    torch.manual_seed(0)
    best = fit_gmm(x, torch.tensor(bad), 3, n_init=5)
    assert adjusted_rand_score(y, gmm_proba(x, *stuck).argmax(1).numpy()) < 0.7
    assert adjusted_rand_score(y, gmm_proba(x, *best).argmax(1).numpy()) > 0.98
    assert mean_log_likelihood(best) > mean_log_likelihood(stuck)
    # n_init=0 is the fit from the given start alone
    torch.manual_seed(0)
    again = fit_gmm(x, torch.tensor(bad), 3, n_init=0)
    for a, b in zip(again, stuck):
        torch.testing.assert_close(a, b)
