"""Deskewing of images (skganem._deskew) and the estimators' ``deskew`` parameter."""

import numpy as np
import pytest
from scipy.ndimage import affine_transform
from sklearn.utils._param_validation import InvalidParameterError

from conftest import tiny
from skganem import AMMClustering, GANEMClustering, KMGAN
from skganem._deskew import MAX_SHEAR, DeskewThenScale, deskew_images, deskew_shear


def _strokes(n, size=20, seed=0):
    """``n`` images of one straight stroke each, of random slant between -0.6 and 0.6."""
    rng = np.random.RandomState(seed)
    X = np.zeros((n, size, size), dtype=np.float32)
    slants = rng.uniform(-0.6, 0.6, size=n)
    for img, s in zip(X, slants):
        for r in range(3, size - 3):
            c = size / 2 + s * (r - size / 2)
            img[r, int(np.floor(c)):int(np.floor(c)) + 2] = 1.0
    return X, slants


def test_shear_is_the_slant_of_the_ink():
    X, slants = _strokes(50)
    shear, mr = deskew_shear(X)
    # for ink of one value the shear is the least-squares slope of column on row
    slopes = [np.polyfit(*np.nonzero(img), 1)[0] for img in X]
    np.testing.assert_allclose(shear, slopes, atol=1e-6)
    np.testing.assert_allclose(shear, slants, atol=0.1)  # the drawn strokes are pixelated
    np.testing.assert_allclose(mr, 9.5, atol=1e-6)  # rows 3-16 carry equal ink


def test_deskewed_strokes_are_upright():
    X, _ = _strokes(50)
    out = deskew_images(X.reshape(50, -1), (1, 20, 20)).reshape(X.shape)
    shear, _ = deskew_shear(out)
    assert np.abs(deskew_shear(X)[0]).max() > 0.5
    assert np.abs(shear).max() < 0.05


def test_resampling_matches_scipy_affine_transform():
    rng = np.random.RandomState(1)
    X = rng.rand(20, 9, 11).astype(np.float32)
    shear, mr = deskew_shear(X)
    out = deskew_images(X.reshape(20, -1), (1, 9, 11)).reshape(X.shape)
    for img, a, m, got in zip(X, shear, mr, out):
        # output (r, c) reads the input at (r, c + a (r - m)); beyond the border: the edge
        want = affine_transform(img.astype(np.float64), np.array([[1.0, 0.0], [a, 1.0]]),
                                offset=(0.0, -a * m), order=1, mode="nearest")
        np.testing.assert_allclose(got, want, atol=1e-5)


def test_dark_ink_on_a_light_background_gets_the_same_shear():
    X, _ = _strokes(10)
    flat = X.reshape(10, -1)
    np.testing.assert_allclose(deskew_shear(1.0 - X)[0], deskew_shear(X)[0], atol=1e-9)
    np.testing.assert_allclose(deskew_images(1.0 - flat, (1, 20, 20)),
                               1.0 - deskew_images(flat, (1, 20, 20)), atol=1e-5)


def test_blank_images_and_horizontal_strokes_are_left_alone():
    X = np.zeros((3, 8, 8), dtype=np.float32)
    X[1] = 0.5  # constant
    X[2, 4, 1:7] = 1.0  # one row of ink: no slant to measure
    with np.errstate(all="raise"):
        out = deskew_images(X.reshape(3, -1), (1, 8, 8))
    np.testing.assert_allclose(out, X.reshape(3, -1), atol=1e-6)  # resampled in place


def test_shear_is_bounded():
    X = np.zeros((1, 10, 10), dtype=np.float32)
    X[0, 4, :] = 1.0
    X[0, 5, 9] = 1.0  # nearly horizontal: slope far beyond 45 degrees
    assert abs(deskew_shear(X)[0][0]) == MAX_SHEAR


def test_channels_share_one_shear():
    X, _ = _strokes(5)
    rgb = np.stack([X, 0.5 * X, X], axis=1).reshape(5, -1)
    out = deskew_images(rgb, (3, 20, 20)).reshape(5, 3, 20, 20)
    gray = deskew_images(X.reshape(5, -1), (1, 20, 20)).reshape(5, 20, 20)
    np.testing.assert_allclose(out[:, 0], gray, atol=1e-6)
    np.testing.assert_allclose(out[:, 1], 0.5 * gray, atol=1e-6)


@pytest.fixture(scope="module")
def strokes16():
    """60 images of 16x16 pixels: upright strokes (class 0) and crosses (class 1), slanted."""
    X, _ = _strokes(60, size=16, seed=2)
    y = np.arange(60) % 2
    X[y == 1, 7:9, 3:13] = 1.0
    return X, y


@pytest.mark.parametrize("cls", [GANEMClustering, KMGAN, AMMClustering])
def test_auto_deskews_single_channel_images(strokes16, cls):
    X, _ = strokes16
    est = tiny(cls, n_clusters=2, n_iter=1, random_state=0).fit(X)
    assert est.deskew_ is True
    data = est._data(X.reshape(len(X), -1)).rows(slice(None)).cpu().numpy().reshape(len(X), -1)
    want = est.scaler_.transform(deskew_images(X.reshape(len(X), -1), (1, 16, 16)))
    np.testing.assert_allclose(data, want, atol=1e-6)


def test_auto_leaves_small_images_tables_and_colour_images_alone(blobs, images, strokes16):
    X, _ = blobs
    assert tiny(GANEMClustering, n_clusters=3, random_state=0).fit(X).deskew_ is False
    Xi, _ = images  # 8x8: deskewing lowered ACC on the 8x8 digits
    assert tiny(GANEMClustering, n_clusters=2, random_state=0).fit(Xi).deskew_ is False
    rgb = np.repeat(strokes16[0][:, None], 3, axis=1)
    assert tiny(GANEMClustering, n_clusters=2, random_state=0).fit(rgb).deskew_ is False
    est = tiny(GANEMClustering, n_clusters=2, deskew=True, random_state=0).fit(rgb)
    assert est.deskew_ is True and isinstance(est._input_map, DeskewThenScale)
    assert tiny(GANEMClustering, n_clusters=2, deskew=True, random_state=0).fit(Xi).deskew_


def test_flat_rows_recognised_as_images_are_deskewed(strokes16):
    X, _ = strokes16
    est = tiny(GANEMClustering, n_clusters=2, random_state=0).fit(X.reshape(len(X), -1))
    assert est.image_shape_ == (1, 16, 16) and est.deskew_ is True


@pytest.mark.parametrize("cls", [GANEMClustering, KMGAN, AMMClustering])
def test_deskew_true_needs_images(blobs, cls, monkeypatch):
    X, _ = blobs
    est = tiny(cls, n_clusters=3, deskew=True)
    monkeypatch.setattr(type(est), "_fit_run", lambda *a, **k: pytest.fail("trained"))
    with pytest.raises(ValueError, match="deskew=True needs images"):
        est.fit(X)


def test_deskew_false_and_bad_values(images):
    X, _ = images
    est = tiny(GANEMClustering, n_clusters=2, deskew=False, random_state=0).fit(X)
    assert est.deskew_ is False and est._input_map is est.scaler_
    with pytest.raises(InvalidParameterError, match="deskew"):
        tiny(GANEMClustering, n_clusters=2, deskew="yes").fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_predictions_deskew_new_images(strokes16):
    X, _ = strokes16
    est = tiny(GANEMClustering, n_clusters=2, random_state=0).fit(X)
    proba = est.predict_proba(X)
    deskewed = deskew_images(X.reshape(len(X), -1), (1, 16, 16)).reshape(X.shape)
    est.deskew_ = False  # the same networks on rows deskewed beforehand
    np.testing.assert_allclose(proba, est.predict_proba(deskewed), atol=1e-6)
    # tiny networks give nearly uniform probabilities: the rows still tell the inputs apart
    assert np.abs(proba - est.predict_proba(X)).max() > 1e-5
