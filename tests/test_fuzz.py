"""Property-based fuzzing of the public methods with malformed input (hypothesis).

Every call must either succeed with outputs of the right shape and finite values, or raise
ValueError / TypeError / NotFittedError with a message. Nothing else may escape, and a
``RuntimeWarning`` (numpy's "invalid value" and the like) fails the test.
"""

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from sklearn.exceptions import NotFittedError

from conftest import ESTIMATOR_CLASSES, tiny

ALLOWED = (ValueError, TypeError, NotFittedError)
FUZZ = settings(max_examples=25, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])

_FITTED = {}


def fitted(cls):
    if cls not in _FITTED:
        X = np.random.RandomState(0).randn(40, 3)
        _FITTED[cls] = tiny(cls, n_clusters=2, random_state=0, n_iter=1).fit(X)
    return _FITTED[cls]


@st.composite
def arrays(draw):
    kind = draw(st.sampled_from(["float", "int", "bool", "object", "complex", "float16",
                                 "nan", "inf", "huge", "empty", "constant", "list",
                                 "dataframe", "1d", "3d", "string"]))
    n = draw(st.integers(0, 12))
    d = draw(st.sampled_from([1, 2, 3, 4]))
    rng = np.random.RandomState(draw(st.integers(0, 1000)))
    base = rng.randn(n, d)
    if kind == "int":
        return rng.randint(-5, 5, size=(n, d))
    if kind == "bool":
        return base > 0
    if kind == "object":
        return base.astype(object)
    if kind == "complex":
        return base + 1j
    if kind == "float16":
        return base.astype(np.float16)
    if kind == "nan":
        base[...] = np.nan
        return base
    if kind == "inf":
        return np.where(base > 0, np.inf, base)
    if kind == "huge":
        return base * 1e300
    if kind == "empty":
        return np.empty((0, d))
    if kind == "constant":
        return np.ones((n, d))
    if kind == "list":
        return base.tolist()
    if kind == "dataframe":
        pd = pytest.importorskip("pandas")
        return pd.DataFrame(base, columns=[f"c{i}" for i in range(d)])
    if kind == "1d":
        return base.ravel()
    if kind == "3d":
        return base.reshape(n, d, 1)
    if kind == "string":
        return np.full((n, d), "a")
    return base


def _check_call(fn, n_expected, width):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            warnings.simplefilter("error", RuntimeWarning)
            out = fn()
    except ALLOWED as exc:
        assert str(exc), "errors must carry a message"
        return
    out = out[0] if isinstance(out, tuple) else out
    out = np.asarray(out)
    if n_expected is not None:
        assert out.shape[0] == n_expected
    if width is not None:
        assert out.shape[1] == width
    assert np.all(np.isfinite(out.astype(float)))


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
@FUZZ
@given(X=arrays(), method=st.sampled_from(["predict", "predict_proba", "transform"]))
def test_fuzz_inference(cls, X, method):
    est = fitted(cls)
    n = len(X) if hasattr(X, "__len__") else None
    width = {"predict": None, "predict_proba": 2, "transform": est.n_components}[method]
    _check_call(lambda: getattr(est, method)(X), n if n else None, width)


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
@FUZZ
@given(X=arrays(), k=st.integers(1, 4))
def test_fuzz_fit(cls, X, k):
    est = tiny(cls, n_clusters=k, random_state=0, n_iter=1)

    def run():
        est.fit(X)
        return est.predict_proba(X)
    n = len(X) if hasattr(X, "__len__") else None
    _check_call(run, n, k)


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
@FUZZ
@given(n=st.one_of(st.integers(-3, 5), st.floats(allow_nan=True), st.text(max_size=2)),
       cluster=st.one_of(st.none(), st.integers(-2, 3), st.floats(allow_nan=True)))
def test_fuzz_sample(cls, n, cluster):
    est = fitted(cls)
    expected = n if isinstance(n, int) and not isinstance(n, bool) and n > 0 else None
    _check_call(lambda: est.sample(n, cluster=cluster, random_state=0), expected, 3)


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
def test_unfitted_fuzz(cls):
    est = tiny(cls)
    for method in ("predict", "predict_proba", "transform"):
        with pytest.raises(NotFittedError):
            getattr(est, method)(np.zeros((2, 3)))


_LR = {"GANEMClustering": ("lr_d", "lr_g", "lr_e"), "KMGAN": ("lr",), "AMMClustering": ("lr",)}


@pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)
@FUZZ
@given(batch_size=st.one_of(st.integers(-2, 70), st.floats(allow_nan=True), st.none()),
       k=st.integers(-1, 45),
       lr=st.one_of(st.sampled_from([0.0, -1e-3, 1e-3, 1e3, float("nan"), float("inf")]),
                    st.floats(1e-6, 1.0)),
       path=st.sampled_from(["none", "file", "dir", "under-a-file", "deep"]))
def test_fuzz_parameters(cls, tmp_path_factory, batch_size, k, lr, path):
    tmp = tmp_path_factory.mktemp("ck")
    (tmp / "plain").write_text("x")
    (tmp / "folder").mkdir()
    checkpoint = {"none": None, "file": tmp / "model.joblib", "dir": tmp / "folder",
                  "under-a-file": tmp / "plain" / "model.joblib",
                  "deep": tmp / "a" / "b" / "model.joblib"}[path]
    X = np.random.RandomState(0).randn(40, 3)
    params = dict(n_clusters=k, random_state=0, n_iter=1, checkpoint_path=checkpoint,
                  **{name: lr for name in _LR[cls.__name__]})
    if batch_size is not None:
        params["batch_size"] = batch_size
    est = tiny(cls, **params)

    def run():
        est.fit(X)
        return est.predict_proba(X)
    _check_call(run, 40, k)
