"""Data larger than memory (memmap streaming) and parallel / distributed grid searches."""

import joblib
import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import skganem._device as device_mod
from skganem import GANEMClustering, clustering_accuracy_scorer
from conftest import ESTIMATOR_CLASSES, tiny


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_memmap_is_streamed_not_copied(cls, blobs, tmp_path, monkeypatch):
    X, _ = blobs
    mm = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="w+", shape=X.shape)
    mm[:] = X
    mm.flush()
    mm = np.memmap(tmp_path / "X.f32", dtype=np.float32, mode="r", shape=X.shape)

    seen = []
    original = device_mod.DataSource.__init__

    def spy(self, X, *args, **kwargs):
        original(self, X, *args, **kwargs)
        seen.append((device_mod.is_memory_mapped(X), self._cached is None))
    monkeypatch.setattr(device_mod.DataSource, "__init__", spy)

    streamed = tiny(cls, n_clusters=3, random_state=0).fit(mm)
    assert seen[0] == (True, True)  # fit saw the memmap itself and streamed it
    in_memory = tiny(cls, n_clusters=3, random_state=0).fit(np.array(mm))  # a copy
    assert seen[-1] == (False, False)
    np.testing.assert_array_equal(streamed.labels_, in_memory.labels_)
    np.testing.assert_allclose(streamed.predict_proba(mm), in_memory.predict_proba(X),
                               rtol=1e-5, atol=1e-6)


def _search(X, y, n_jobs=None):
    est = tiny(GANEMClustering, random_state=0)
    return GridSearchCV(est, {"n_clusters": [2, 3]}, scoring=clustering_accuracy_scorer,
                        cv=2, n_jobs=n_jobs).fit(X, y)


@pytest.fixture(scope="module")
def serial_search(blobs):
    return _search(*blobs)


def test_grid_search_with_joblib_processes(blobs, serial_search):
    parallel = _search(*blobs, n_jobs=2)
    assert parallel.best_params_ == serial_search.best_params_
    np.testing.assert_allclose(parallel.cv_results_["mean_test_score"],
                               serial_search.cv_results_["mean_test_score"])


def test_grid_search_on_dask_cluster(blobs, serial_search):
    distributed = pytest.importorskip("distributed")
    from skganem.parallel import limit_torch_threads

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        assert set(client.run(limit_torch_threads, 1).values()) == {1}
        with joblib.parallel_backend("dask"):
            search = _search(*blobs, n_jobs=-1)
    assert search.best_params_ == serial_search.best_params_
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               serial_search.cv_results_["mean_test_score"])


def test_limit_torch_threads_validates():
    from skganem.parallel import limit_torch_threads

    with pytest.raises(ValueError):
        limit_torch_threads(0)
