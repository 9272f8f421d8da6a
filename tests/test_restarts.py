"""Restarts (``n_init``): several training runs, the best-separated one kept."""

import numpy as np
import pytest
import torch

from skganem import KMGAN, AMMClustering, GANEMClustering
from skganem._base import BaseGANClustering
from conftest import ESTIMATOR_CLASSES, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

_RUN, _SCORE = BaseGANClustering._fit_run, BaseGANClustering._restart_score


def _record_runs(monkeypatch, order=None):
    """Record every run's labels and score; ``order`` replaces the scores (by restart).

    The runs go one after another in this process, where the recording sees them."""
    monkeypatch.setattr("skganem._base.restart_workers", lambda *args: 1)
    runs = []
    real_run, real_score = _RUN, _SCORE

    def fit_run(self, *args, **kw):
        out = real_run(self, *args, **kw)
        runs.append({"labels": out["labels"].copy()})
        return out

    def score(self, data, labels, *args):
        value = real_score(self, data, labels, *args)
        runs[-1]["score"] = value
        return value if order is None else (True, float(order[len(runs) - 1]))

    monkeypatch.setattr(BaseGANClustering, "_fit_run", fit_run)
    monkeypatch.setattr(BaseGANClustering, "_restart_score", score)
    return runs


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_n_init_keeps_the_run_with_the_best_score(cls, blobs, monkeypatch):
    X, _ = blobs
    runs = _record_runs(monkeypatch)
    est = tiny(cls, n_clusters=3, n_init=3, random_state=0).fit(X)
    assert len(runs) == 3
    assert est.restart_scores_.shape == (3,)
    np.testing.assert_allclose(est.restart_scores_, [r["score"][1] for r in runs])
    best = max(range(3), key=lambda i: runs[i]["score"])
    np.testing.assert_array_equal(est.labels_, runs[best]["labels"])
    np.testing.assert_array_equal(est.predict(X), est.labels_)
    assert est.n_iter_ == len(est.history_)


def test_n_init_selection_follows_the_score(blobs, monkeypatch):
    X, _ = blobs
    runs = _record_runs(monkeypatch, order=[3.0, 2.0, 1.0])
    first = tiny(KMGAN, n_clusters=3, n_init=3, random_state=0).fit(X)
    np.testing.assert_array_equal(first.labels_, runs[0]["labels"])
    runs = _record_runs(monkeypatch, order=[1.0, 2.0, 3.0])
    last = tiny(KMGAN, n_clusters=3, n_init=3, random_state=0).fit(X)
    np.testing.assert_array_equal(last.labels_, runs[2]["labels"])


def test_degenerate_runs_rank_last():
    from skganem._base import degenerate_clusters
    est = tiny(KMGAN, n_clusters=3)
    labels = np.array([0] * 50 + [1] * 49 + [2])
    assert degenerate_clusters(labels, 3)

    class _Engine:  # the identity embedding
        device = "cpu"

        def eval(self):
            return self

        @staticmethod
        def transform(x):
            return x

    from skganem._device import DataSource
    from skganem._scaling import RangeScaler
    X = np.random.RandomState(0).rand(100, 2).astype(np.float32)
    X[labels == 1] += 5
    data = DataSource(X, RangeScaler.fit(X, per_feature=True), torch.device("cpu"), (2,))
    est.engine_ = _Engine()
    ok, sil = est._restart_score(data, labels)
    assert not ok and -1 <= sil <= 1
    fine = np.array([0] * 34 + [1] * 33 + [2] * 33)
    assert est._restart_score(data, fine)[0]


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_n_init_auto_restarts_small_tables_and_small_ganem_image_sets(cls, blobs, images,
                                                                     monkeypatch):
    X, _ = blobs
    runs = _record_runs(monkeypatch)
    est = tiny(cls, n_clusters=3, n_init="auto", random_state=0).fit(X)
    assert len(runs) == 3 and est.restart_scores_.shape == (3,)
    runs.clear()
    Xi, _ = images
    est = tiny(cls, n_clusters=2, n_init="auto", random_state=0, architecture="auto").fit(Xi)
    expected = 3 if cls is GANEMClustering else 1  # GAN-EM restarts small image sets too
    assert len(runs) == expected and est.restart_scores_.shape == (expected,)
    if expected == 1:
        assert np.isnan(est.restart_scores_[0])


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_n_init_auto_keeps_one_run_above_the_row_limit(cls, blobs, images, monkeypatch):
    monkeypatch.setattr("skganem._base.AUTO_RESTART_ROWS", 50)
    runs = _record_runs(monkeypatch)
    for X in (blobs[0], images[0]):  # 150 table rows, 60 images: both above the limit
        tiny(cls, n_clusters=2, n_init="auto", random_state=0, architecture="auto").fit(X)
    assert len(runs) == 2


def test_ganem_auto_restarts_by_image_set_size():
    est = GANEMClustering()
    est.image_shape_ = (1, 28, 28)
    assert [est._resolve_n_init(n) for n in (1797, 5000, 5001, 10000, 60000)] == [3, 3, 1, 1, 1]
    est.image_shape_ = None  # tables
    assert [est._resolve_n_init(n) for n in (5000, 5001, 10000)] == [3, 1, 1]
    est.set_params(n_init=2)  # an explicit count holds for any data
    assert est._resolve_n_init(10000) == 2


def test_ganem_ranks_image_runs_by_confidence_and_table_runs_by_silhouette(blobs, images,
                                                                          monkeypatch):
    from sklearn.metrics import silhouette_score
    runs = _record_runs(monkeypatch)
    Xi = images[0]
    est = tiny(GANEMClustering, n_clusters=2, n_init=2, random_state=0).fit(Xi)
    assert len(runs) == 2
    kept = int(np.argmax(est.restart_scores_))
    # the kept run's score is its mean largest cluster probability on the training images
    np.testing.assert_allclose(est.restart_scores_[kept],
                               est.predict_proba(Xi).max(axis=1).mean(), rtol=1e-5)
    assert np.all((est.restart_scores_ >= 0.5) & (est.restart_scores_ <= 1))
    runs.clear()
    X = blobs[0]
    est = tiny(GANEMClustering, n_clusters=3, n_init=2, random_state=0).fit(X)
    kept = int(np.argmax(est.restart_scores_))
    np.testing.assert_allclose(est.restart_scores_[kept],
                               silhouette_score(est.transform(X), est.labels_), rtol=1e-5)


def test_n_init_and_checkpoint(blobs, tmp_path, monkeypatch):
    X, _ = blobs
    with pytest.raises(ValueError, match="n_init=3"):
        tiny(GANEMClustering, n_clusters=3, n_init=3,
             checkpoint_path=tmp_path / "ck.joblib").fit(X)
    runs = _record_runs(monkeypatch)
    tiny(GANEMClustering, n_clusters=3, n_init="auto",
         checkpoint_path=tmp_path / "ck.joblib").fit(X)
    assert len(runs) == 1


def test_warm_start_continues_the_kept_run(blobs, monkeypatch):
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, n_init=2, random_state=0).fit(X)
    scores = est.restart_scores_.copy()
    runs = _record_runs(monkeypatch)
    est.set_params(warm_start=True, n_iter=1).fit(X)
    assert len(runs) == 1 and est.n_iter_ == 3
    np.testing.assert_array_equal(est.restart_scores_, scores)


def test_n_init_is_validated(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="n_init"):
        tiny(KMGAN, n_clusters=3, n_init=0).fit(X)


def _threads(n):
    """Set torch's thread count; returns the previous one."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    return previous


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES)
def test_runs_in_worker_processes_equal_runs_in_this_process(cls, blobs, monkeypatch):
    """With one torch thread per run, the runs of a fit give the same result one after
    another in the fitting process (1 thread) and side by side in three workers (2 threads;
    ``here=False`` keeps the fitting process from taking runs itself)."""
    from skganem import _base

    X, _ = blobs
    calls = []
    real = _base.run_in_workers
    monkeypatch.setattr(_base, "run_in_workers",
                        lambda *args: calls.append(args[-1]) or real(*args, here=False))
    previous = _threads(1)
    try:
        here = tiny(cls, n_clusters=3, n_init=3, random_state=0).fit(X)
        assert calls == []
        _threads(2)
        workers = tiny(cls, n_clusters=3, n_init=3, random_state=0).fit(X)
        assert calls == [3]  # three worker processes of one thread each
    finally:
        torch.set_num_threads(previous)
    np.testing.assert_array_equal(workers.restart_scores_, here.restart_scores_)
    np.testing.assert_array_equal(workers.labels_, here.labels_)
    np.testing.assert_array_equal(workers.predict_proba(X), here.predict_proba(X))
    assert workers.history_ == [
        {**r, "seconds": w["seconds"]} for r, w in zip(here.history_, workers.history_)]
    if cls is not AMMClustering:  # (two iterations of tiny AMM nets score -1 every run)
        assert len(set(map(float, here.restart_scores_))) == 3  # three different runs
    if hasattr(here, "schedule_"):
        assert workers.schedule_ == here.schedule_


class _IdleExecutor:
    """A worker pool whose workers start too late to take any run."""

    def __init__(self, max_workers, **kw):
        self.max_workers, self.shut_down = max_workers, []

    def submit(self, fn, *args):
        from concurrent.futures import Future
        future = Future()
        future.set_result([])
        return future

    def shutdown(self, wait=True, kill_workers=False):
        self.shut_down.append(kill_workers)


@pytest.mark.parametrize("workers_take_runs", [False, True])
def test_short_runs_end_in_this_process(blobs, monkeypatch, workers_take_runs):
    """The fitting process takes runs while the workers start: where each run goes does not
    change the fit, and workers that took no run are stopped without waiting for them."""
    from joblib.externals import loky

    X, _ = blobs
    previous = _threads(1)
    try:
        here = tiny(GANEMClustering, n_clusters=3, n_init=3, random_state=0).fit(X)
        _threads(2)
        pools = []
        if not workers_take_runs:
            monkeypatch.setattr(loky, "ProcessPoolExecutor",
                                lambda **kw: pools.append(_IdleExecutor(**kw)) or pools[-1])
        split = tiny(GANEMClustering, n_clusters=3, n_init=3, random_state=0).fit(X)
    finally:
        torch.set_num_threads(previous)
    assert torch.get_num_threads() == previous
    if not workers_take_runs:  # every run in this process, at one thread each
        assert [(p.max_workers, p.shut_down) for p in pools] == [(2, [True])]
    np.testing.assert_array_equal(split.restart_scores_, here.restart_scores_)
    np.testing.assert_array_equal(split.labels_, here.labels_)
    np.testing.assert_array_equal(split.predict_proba(X), here.predict_proba(X))


def test_a_failed_run_in_this_process_stops_the_workers(blobs, monkeypatch):
    from joblib.externals import loky

    pools = []
    monkeypatch.setattr(loky, "ProcessPoolExecutor",
                        lambda **kw: pools.append(_IdleExecutor(**kw)) or pools[-1])

    def fail(*args, **kw):
        raise RuntimeError("run failed")

    monkeypatch.setattr(BaseGANClustering, "_restart", fail)
    previous = _threads(2)
    try:
        with pytest.raises(RuntimeError, match="run failed"):
            tiny(KMGAN, n_clusters=3, n_init=3, random_state=0).fit(blobs[0])
    finally:
        torch.set_num_threads(previous)
    assert pools[0].shut_down == [True]


class _FailingExecutor(_IdleExecutor):
    """Two workers: one busy with a long run (done after 10 s), one whose run failed."""

    def __init__(self, max_workers, **kw):
        super().__init__(max_workers, **kw)
        self.futures = []

    def submit(self, fn, *args):
        import threading
        from concurrent.futures import Future
        future = Future()
        if self.futures:
            future.set_exception(RuntimeError("run failed in a worker"))
        else:
            threading.Timer(10.0, future.set_result, args=([],)).start()
        self.futures.append(future)
        return future


def test_a_failed_run_in_a_worker_ends_the_fit_without_waiting_for_the_others(
        blobs, monkeypatch):
    import time

    from joblib.externals import loky

    pools = []
    monkeypatch.setattr(loky, "ProcessPoolExecutor",
                        lambda **kw: pools.append(_FailingExecutor(**kw)) or pools[-1])
    previous = _threads(2)
    start = time.perf_counter()
    try:
        with pytest.raises(RuntimeError, match="failed in a worker"):
            tiny(KMGAN, n_clusters=3, n_init=3, random_state=0).fit(blobs[0])
    finally:
        torch.set_num_threads(previous)
    assert time.perf_counter() - start < 5.0  # not after the busy worker's 10 s
    assert pools[0].shut_down == [True]


def test_runs_in_workers_raise_their_warnings_and_show_progress(blobs, capsys):
    X, _ = blobs
    previous = _threads(2)
    try:
        with pytest.warns(UserWarning, match="d_round"):
            tiny(KMGAN, n_clusters=3, n_init=2, d_round=1e6, random_state=0,
                 verbose=1).fit(X)
    finally:
        torch.set_num_threads(previous)
    err = capsys.readouterr().err
    assert "KMGAN run 1/2" in err and "KMGAN run 2/2" in err


def test_restart_workers_follow_the_thread_budget():
    from skganem._restarts import restart_workers
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    previous = _threads(2)
    try:
        assert restart_workers(3, cpu, False) == 3
        assert restart_workers(8, cpu, False) == 4  # two per thread at most
        assert restart_workers(1, cpu, False) == 1
        assert restart_workers(3, cpu, True) == 1  # compiled networks stay here
        assert restart_workers(3, cuda, False) == 1  # a GPU runs them one after another
        assert restart_workers(3, cpu, False, True) == 1  # memory-mapped rows stay streamed
        torch.set_num_threads(1)
        assert restart_workers(3, cpu, False) == 1
    finally:
        torch.set_num_threads(previous)


def test_restarts_stay_in_a_daemonic_process(monkeypatch):
    """A daemonic process (a ``multiprocessing.Pool`` worker) may not start workers."""
    from types import SimpleNamespace

    from skganem import _restarts
    monkeypatch.setattr(_restarts.multiprocessing, "current_process",
                        lambda: SimpleNamespace(daemon=True))
    previous = _threads(2)
    try:
        assert _restarts.restart_workers(3, torch.device("cpu"), False) == 1
    finally:
        torch.set_num_threads(previous)



def test_network_errors_come_before_the_runs_start(blobs, monkeypatch):
    from skganem import _base

    X, _ = blobs
    monkeypatch.setattr(_base, "run_in_workers", lambda *args: pytest.fail("runs started"))
    previous = _threads(2)
    try:
        with pytest.raises(ValueError, match="too small"):  # 2x2 pixels, two convolutions
            tiny(KMGAN, n_clusters=3, n_init=3, architecture="conv",
                 image_shape=(2, 2)).fit(X[:, :4])
    finally:
        torch.set_num_threads(previous)
