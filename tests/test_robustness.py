"""Bad parameters and odd data get clear answers before training; devices; exact resume."""

import warnings

import joblib
import numpy as np
import pytest
import torch

import skganem._device as device_mod
from skganem import AMMClustering, GANEMClustering
from conftest import ESTIMATOR_CLASSES, tiny

CLASSES = pytest.mark.parametrize("cls", ESTIMATOR_CLASSES, ids=lambda c: c.__name__)


def _no_training(monkeypatch):
    """Make any training loop fail the test: errors must come before it."""
    import skganem._base as base

    def fail(*args, **kwargs):
        raise AssertionError("training started")
    monkeypatch.setattr(base, "fit_loop", fail)


@CLASSES
def test_batch_size_one_is_refused_naming_the_parameter(cls, blobs, monkeypatch):
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match="'batch_size' parameter"):
        tiny(cls, n_clusters=3, batch_size=1).fit(blobs[0])


def test_e_batch_size_one_is_refused(blobs, monkeypatch):
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match="'e_batch_size' parameter"):
        tiny(GANEMClustering, n_clusters=3, e_batch_size=1).fit(blobs[0])


@pytest.mark.parametrize("cls", [GANEMClustering, AMMClustering], ids=lambda c: c.__name__)
def test_a_single_labeled_row_trains_batch_normalised_nets(cls, images):
    X, y = images
    y_lab = np.full_like(y, -1)
    y_lab[0] = y[0]
    est = tiny(cls, n_clusters=2, semi_supervised=True, conv_channels=(4, 8),
               hidden_dims=(16,), random_state=0).fit(X, y_lab)
    assert est.predict(X).shape == (60,)


@CLASSES
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_conv_nets_whose_last_maps_are_one_pixel_fit(cls, images):
    """Three stride-2 convolutions leave 1x1 maps on 8x8 images (as the paper's networks do
    on the digits): the networks are built and trained without a batch-norm error."""
    X, _ = images
    est = tiny(cls, n_clusters=2, conv_channels=(4, 4, 4), random_state=0).fit(X)
    assert est.image_shape_ == (1, 8, 8)
    assert est.predict_proba(X).shape == (60, 2)


@CLASSES
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_auto_architecture_takes_perceptrons_for_images_too_small_to_convolve(
        cls, monkeypatch):
    """Images of 2x2 pixels leave nothing for two stride-2 convolutions: "auto" builds
    perceptrons, as it does for tables; asking for conv nets is refused before training."""
    X = np.random.RandomState(0).rand(40, 2, 2)
    est = tiny(cls, n_clusters=2, random_state=0).fit(X)
    assert est.engine_.config.spec.kind == "mlp"
    assert est.predict_proba(X).shape == (40, 2)
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match="too small for 2 stride-2 convolutions"):
        tiny(cls, n_clusters=2, architecture="conv").fit(X)


@CLASSES
@pytest.mark.parametrize("where", ["under-a-file", "a-directory"])
def test_unwritable_checkpoint_path_is_refused_before_training(cls, blobs, tmp_path, where,
                                                                monkeypatch):
    (tmp_path / "plain").write_text("x")
    path = tmp_path / "plain" / "model.joblib" if where == "under-a-file" else tmp_path
    _no_training(monkeypatch)
    with pytest.raises(ValueError, match="checkpoint_path=.*cannot be written"):
        tiny(cls, n_clusters=3, checkpoint_path=path).fit(blobs[0])
    assert (tmp_path / "plain").read_text() == "x"


@CLASSES
def test_constant_data_raise_without_numpy_warnings(cls, monkeypatch):
    _no_training(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for X in (np.ones((30, 4)), np.full((20, 6, 6), 0.5)):
            with pytest.raises(ValueError, match="no variance: all .* rows are equal"):
                tiny(cls, n_clusters=2).fit(X)


@CLASSES
def test_zero_variance_features_fit_without_runtime_warnings(cls, blobs):
    X = np.column_stack([blobs[0], np.zeros(len(blobs[0])), np.full(len(blobs[0]), 7.0)])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        est = tiny(cls, n_clusters=3, random_state=0).fit(X)
    Xs, _ = est.sample(5, random_state=0)
    np.testing.assert_allclose(Xs[:, -2:], [[0.0, 7.0]] * 5)


# ----------------------------------------------------------------- devices
def test_auto_tries_cuda_then_mps_then_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "mps_available", lambda: True)
    assert device_mod.resolve_device("auto") == torch.device("mps")
    assert device_mod.resolve_device("mps") == torch.device("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device_mod.resolve_device("auto") == torch.device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(device_mod, "mps_available", lambda: False)
    assert device_mod.resolve_device("auto") == torch.device("cpu")


def test_mps_without_mps_is_refused_and_a_mps_model_loads_on_cpu(monkeypatch):
    monkeypatch.setattr(device_mod, "mps_available", lambda: False)
    with pytest.raises(ValueError, match="MPS backend"):
        device_mod.resolve_device("mps")
    with pytest.warns(UserWarning, match="fitted on 'mps'.*loaded on the CPU"):
        assert device_mod.load_device("mps") == torch.device("cpu")


@CLASSES
def test_mps_is_a_valid_device_parameter(cls, blobs, monkeypatch):
    # the estimator accepts device="mps" where the backend exists; the fit itself then runs
    # on the Apple GPU, which this machine does not have, so only validation is checked
    monkeypatch.setattr(device_mod, "mps_available", lambda: False)
    with pytest.raises(ValueError, match="device='mps' was requested"):
        tiny(cls, n_clusters=3, device="mps").fit(blobs[0])


# ----------------------------------------------------------------- exact resume
@CLASSES
def test_checkpoint_resume_repeats_the_uninterrupted_fit(cls, blobs, tmp_path):
    X = blobs[0]
    full = tiny(cls, n_clusters=3, n_iter=4, random_state=0).fit(X)
    path = tmp_path / "ck.joblib"
    tiny(cls, n_clusters=3, n_iter=2, random_state=0, checkpoint_path=path).fit(X)
    resumed = joblib.load(path).set_params(warm_start=True, n_iter=2, checkpoint_path=None)
    resumed.fit(X)
    assert resumed.n_iter_ == 4
    np.testing.assert_array_equal(resumed.labels_, full.labels_)
    np.testing.assert_allclose(resumed.predict_proba(X), full.predict_proba(X), rtol=1e-5,
                               atol=1e-6)
    for a, b in zip(resumed.history_, full.history_):
        assert {k: v for k, v in a.items() if k != "seconds"} == \
            {k: v for k, v in b.items() if k != "seconds"}
