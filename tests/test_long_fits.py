"""Long-fit features of every estimator: warm start, interruption, checkpoints, divergence."""

import joblib
import numpy as np
import pytest

from conftest import ESTIMATOR_CLASSES, tiny

pytestmark = pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)


def test_warm_start_continues(cls, blobs):
    X, _ = blobs
    est = tiny(cls, n_clusters=3, random_state=0, n_iter=2).fit(X)
    weights = {k: v.clone() for k, v in est.engine_.nets["D"].state_dict().items()}
    engine = est.engine_
    est.set_params(warm_start=True, n_iter=1).fit(X)
    assert est.engine_ is engine                     # the same networks, trained further
    assert est.n_iter_ == 3 and len(est.history_) == 3
    assert [h["iteration"] for h in est.history_] == [1, 2, 3]
    changed = any(not np.allclose(weights[k].numpy(), v.numpy())
                  for k, v in est.engine_.nets["D"].state_dict().items() if v.is_floating_point())
    assert changed
    np.testing.assert_array_equal(est.labels_, est.predict(X))
    # warm start keeps the fitted feature count
    with pytest.raises(ValueError, match="features"):
        est.fit(X[:, :3])
    # without warm_start, fit starts anew
    est.set_params(warm_start=False, n_iter=2).fit(X)
    assert est.n_iter_ == 2 and est.engine_ is not engine


def test_keyboard_interrupt_keeps_last_completed_iteration(cls, blobs, monkeypatch):
    X, _ = blobs
    est = tiny(cls, n_clusters=3, random_state=0, n_iter=4)
    calls = {"n": 0}
    engine_cls = type(est._make_engine((5,), est._net_spec(None), "cpu"))
    original = engine_cls.run_iteration

    def run(self, data, it, rng):
        calls["n"] += 1
        if calls["n"] == 3:
            original(self, data, it, rng)  # partial work of iteration 3 must be rolled back
            raise KeyboardInterrupt
        return original(self, data, it, rng)

    monkeypatch.setattr(engine_cls, "run_iteration", run)
    with pytest.warns(UserWarning, match="interrupted during iteration 3"):
        est.fit(X)
    assert est.n_iter_ == 2
    assert est.predict_proba(X).shape == (X.shape[0], 3)
    # rolled back: equal to a clean 2-iteration fit
    monkeypatch.setattr(engine_cls, "run_iteration", original)
    ref = tiny(cls, n_clusters=3, random_state=0, n_iter=2).fit(X)
    np.testing.assert_allclose(est.predict_proba(X), ref.predict_proba(X), rtol=1e-5, atol=1e-6)


def test_interrupt_in_first_iteration_propagates(cls, blobs, monkeypatch):
    est = tiny(cls, n_clusters=3, random_state=0)
    engine_cls = type(est._make_engine((5,), est._net_spec(None), "cpu"))

    def run(self, data, it, rng):
        raise KeyboardInterrupt
    monkeypatch.setattr(engine_cls, "run_iteration", run)
    with pytest.raises(KeyboardInterrupt):
        est.fit(blobs[0])


def test_checkpoint_and_resume(cls, blobs, tmp_path):
    X, _ = blobs
    path = tmp_path / "ckpt" / "model.joblib"
    est = tiny(cls, n_clusters=3, random_state=0, n_iter=3, checkpoint_path=str(path),
               checkpoint_every=2).fit(X)
    ckpt = joblib.load(path)
    assert ckpt.n_iter_ == 2 and not hasattr(ckpt, "labels_")
    assert ckpt.predict(X).shape == (X.shape[0],)
    assert est.n_iter_ == 3 and hasattr(est, "labels_")
    ckpt.set_params(warm_start=True, n_iter=1, checkpoint_path=None).fit(X)
    assert ckpt.n_iter_ == 3
    np.testing.assert_array_equal(ckpt.labels_, ckpt.predict(X))
