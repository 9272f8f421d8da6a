"""Behaviour every skganem estimator promises, parametrised over the estimator classes."""

import pickle

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.metrics import adjusted_rand_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from skganem import KMGAN, clustering_accuracy_scorer
from conftest import ESTIMATOR_CLASSES, RECOVERY, tiny

pytestmark = pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)


@pytest.fixture(scope="module")
def fitted(blobs):
    cache = {}

    def get(cls):
        if cls not in cache:
            cache[cls] = tiny(cls, n_clusters=3, random_state=0).fit(blobs[0])
        return cache[cls]
    return get


def test_shapes_dtypes_and_probabilities(cls, fitted, blobs):
    X, _ = blobs
    est = fitted(cls)
    proba = est.predict_proba(X)
    assert proba.shape == (X.shape[0], 3)
    assert np.all(proba >= 0)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-6)
    labels = est.predict(X)
    assert labels.shape == (X.shape[0],)
    assert np.issubdtype(labels.dtype, np.integer)
    np.testing.assert_array_equal(labels, proba.argmax(axis=1))
    Z = est.transform(X)
    assert Z.shape == (X.shape[0], est.n_components)
    assert np.all(np.isfinite(Z))
    assert est.n_features_in_ == X.shape[1]
    assert est.n_iter_ == len(est.history_) == est.n_iter
    assert {"iteration", "seconds"} <= set(est.history_[0])
    # device="auto": CUDA where the test run has it
    assert est.device_ == ("cuda" if torch.cuda.is_available() else "cpu")


def test_labels_equal_predict_and_fit_predict(cls, fitted, blobs):
    X, _ = blobs
    est = fitted(cls)
    np.testing.assert_array_equal(est.labels_, est.predict(X))
    labels = tiny(cls, n_clusters=3, random_state=0).fit_predict(X)
    np.testing.assert_array_equal(labels, est.labels_)


def test_same_random_state_same_result(cls, blobs):
    X, _ = blobs
    a = tiny(cls, n_clusters=3, random_state=42).fit(X)
    b = tiny(cls, n_clusters=3, random_state=42).fit(X)
    np.testing.assert_array_equal(a.labels_, b.labels_)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_no_global_torch_seeding(cls, blobs):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny(cls, n_clusters=3, random_state=0).fit(blobs[0])
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_inference_independent_of_batch_and_order(cls, fitted, blobs, monkeypatch):
    import skganem._base as base

    X, _ = blobs
    est = fitted(cls)
    full = est.predict_proba(X)
    monkeypatch.setattr(base, "INFERENCE_BATCH_SIZE", 7)
    np.testing.assert_allclose(est.predict_proba(X), full, rtol=1e-5, atol=1e-6)
    perm = np.random.RandomState(0).permutation(X.shape[0])
    np.testing.assert_allclose(est.predict_proba(X[perm]), full[perm], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.transform(X[perm]), est.transform(X)[perm], rtol=1e-5,
                               atol=1e-5)


def test_recovers_well_separated_clusters(cls, blobs):
    X, y = blobs
    est = tiny(cls, n_clusters=3, random_state=0, **RECOVERY[cls]).fit(X)
    assert adjusted_rand_score(y, est.labels_) > 0.9


def test_sample_in_user_units(cls, fitted, blobs):
    X, _ = blobs
    est = fitted(cls)
    Xs, c = est.sample(20, random_state=0)
    assert Xs.shape == (20, X.shape[1]) and c.shape == (20,)
    assert np.all(np.isfinite(Xs))
    # generated rows lie in the data's range (the generator's tanh range mapped back)
    assert np.all(Xs >= X.min(axis=0) - 1e-6) and np.all(Xs <= X.max(axis=0) + 1e-6)
    Xs2, c2 = est.sample(20, random_state=0)
    np.testing.assert_array_equal(Xs, Xs2)
    if cls is KMGAN:  # unconditional generator: rows are labelled by predict
        np.testing.assert_array_equal(c, est.predict(Xs))
        with pytest.raises(ValueError, match="unconditional"):
            est.sample(5, cluster=1)
    else:
        _, c3 = est.sample(5, cluster=1, random_state=0)
        np.testing.assert_array_equal(c3, 1)
        with pytest.raises(ValueError, match="cluster"):
            est.sample(5, cluster=7)
    with pytest.raises(ValueError, match="n_samples"):
        est.sample(0)


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_persistence_round_trip(cls, fitted, blobs, dump, tmp_path):
    X, _ = blobs
    est = fitted(cls)
    if dump == "pickle":
        loaded = pickle.loads(pickle.dumps(est))
    else:
        joblib.dump(est, tmp_path / "est.joblib")
        loaded = joblib.load(tmp_path / "est.joblib")
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    np.testing.assert_allclose(loaded.transform(X), est.transform(X), rtol=1e-6)
    np.testing.assert_array_equal(loaded.labels_, est.labels_)


def test_cuda_fitted_model_loads_on_cpu(cls, fitted, blobs, monkeypatch):
    X, _ = blobs
    est = fitted(cls)
    state = est.__getstate__()
    state["_engine_payload"]["device"] = "cuda:0"  # as if pickled on a GPU machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    restored = cls.__new__(cls)
    with pytest.warns(UserWarning, match="CUDA is not available"):
        restored.__setstate__(state)
    assert restored.device_ == "cpu"
    np.testing.assert_array_equal(restored.predict(X), est.predict(X))


def test_incompatible_pickle_raises(cls, fitted):
    from skganem.exceptions import IncompatibleVersionError

    state = fitted(cls).__getstate__()
    state["_engine_payload"]["format"] = 999
    with pytest.raises(IncompatibleVersionError, match="cannot read"):
        cls.__new__(cls).__setstate__(state)


def test_pipeline_and_grid_search(cls, blobs):
    X, y = blobs
    pipe = Pipeline([("scale", StandardScaler()),
                     ("clu", tiny(cls, random_state=0, **RECOVERY[cls]))])
    search = GridSearchCV(pipe, {"clu__n_clusters": [2, 3]}, scoring=clustering_accuracy_scorer,
                          cv=2)
    search.fit(X, y)
    assert search.best_params_ == {"clu__n_clusters": 3}
    assert search.predict(X).shape == (X.shape[0],)
    clone(search.best_estimator_)


def test_unsupervised_ignores_y(cls, blobs):
    X, y = blobs
    a = tiny(cls, n_clusters=3, random_state=0).fit(X)
    b = tiny(cls, n_clusters=3, random_state=0).fit(X, y)
    np.testing.assert_array_equal(a.labels_, b.labels_)


def test_image_input(cls, images):
    X, y = images
    est = tiny(cls, n_clusters=2, random_state=0, conv_channels=(4, 8), hidden_dims=(16,))
    est.fit(X)
    assert est.image_shape_ == (1, 8, 8)
    assert est.n_features_in_ == 64
    assert est.predict(X).shape == (60,)
    np.testing.assert_array_equal(est.predict(X.reshape(60, -1)), est.predict(X))
    Xs, _ = est.sample(3, random_state=0)
    assert Xs.shape == (3, 64)
    with pytest.raises(ValueError, match="image"):
        est.predict(np.zeros((2, 4, 16)))
    # flat rows with image_shape give the same networks
    flat = tiny(cls, n_clusters=2, random_state=0, conv_channels=(4, 8), hidden_dims=(16,),
                image_shape=(8, 8)).fit(X.reshape(60, -1))
    np.testing.assert_array_equal(flat.labels_, est.labels_)


# ---------------------------------------------------------------- bad input
def test_unfitted_use_raises(cls, blobs):
    est = tiny(cls)
    for method in ("predict", "predict_proba", "transform"):
        with pytest.raises(NotFittedError):
            getattr(est, method)(blobs[0])
    with pytest.raises(NotFittedError):
        est.sample(3)


@pytest.mark.parametrize("bad", ["nan", "inf"])
def test_non_finite_input_raises(cls, blobs, bad):
    X = blobs[0].copy()
    X[3, 1] = np.nan if bad == "nan" else np.inf
    with pytest.raises(ValueError, match="NaN|infinity"):
        tiny(cls).fit(X)


def test_sparse_input_raises(cls, blobs):
    with pytest.raises(ValueError, match="sparse"):
        tiny(cls).fit(sp.csr_matrix(blobs[0]))


def test_wrong_dimensions_raise(cls):
    with pytest.raises(ValueError, match="1D|2D|Expected"):
        tiny(cls).fit(np.zeros(10))


def test_too_few_samples_raise(cls, blobs):
    with pytest.raises(ValueError, match="n_clusters"):
        tiny(cls, n_clusters=10).fit(blobs[0][:5])
    with pytest.raises(ValueError, match="sample"):
        tiny(cls, n_clusters=1).fit(blobs[0][:1])


def test_feature_count_mismatch_at_predict(cls, fitted, blobs):
    with pytest.raises(ValueError, match="features"):
        fitted(cls).predict(blobs[0][:, :3])


def test_image_shape_mismatch(cls, blobs):
    with pytest.raises(ValueError, match="image_shape"):
        tiny(cls, image_shape=(2, 2)).fit(blobs[0])
    with pytest.raises(ValueError, match="architecture"):
        tiny(cls, architecture="conv").fit(blobs[0])


def test_mlp_on_images(cls):
    # architecture="mlp" on image input: the perceptrons take the flattened rows
    X = np.random.RandomState(0).rand(40, 8, 8)
    est = tiny(cls, n_clusters=2, architecture="mlp", random_state=0).fit(X)
    assert est.image_shape_ == (1, 8, 8)
    assert est.predict(X).shape == (40,)
    assert est.transform(X).shape == (40, est.n_components)
    assert est.sample(3)[0].shape == (3, 64)


def test_invalid_parameters(cls, blobs):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError):
        tiny(cls, n_clusters=0).fit(blobs[0])
    with pytest.raises(ValueError, match="hidden_dims"):
        tiny(cls, hidden_dims=(8, -1)).fit(blobs[0])
    with pytest.raises(ValueError, match="device"):
        tiny(cls, device="tpu").fit(blobs[0])


def test_pca_pipeline_and_cross_val_predict(cls, blobs):
    from sklearn.decomposition import PCA
    from sklearn.model_selection import cross_val_predict

    X, y = blobs
    pipe = Pipeline([("pca", PCA(n_components=3)), ("clu", tiny(cls, n_clusters=3,
                                                                  random_state=0))])
    labels = pipe.fit_predict(X)
    assert labels.shape == (X.shape[0],)
    assert pipe.transform(X).shape == (X.shape[0], pipe[-1].n_components)
    # inductive use: every row predicted by a model fitted on the other folds
    pred = cross_val_predict(tiny(cls, n_clusters=3, random_state=0), X, y, cv=3)
    assert pred.shape == (X.shape[0],) and set(np.unique(pred)) <= {0, 1, 2}
