"""The image augmentation (skganem._augment) and KMGAN's ``augmentation`` parameter."""

import math

import numpy as np
import pytest
import torch
from sklearn.utils._param_validation import InvalidParameterError

from conftest import tiny
from skganem import KMGAN
from skganem._augment import make_augmentation, random_affine


def _center_of_mass(images):
    h, w = images.shape[-2:]
    rows = torch.arange(h, dtype=images.dtype).view(h, 1)
    cols = torch.arange(w, dtype=images.dtype).view(1, w)
    mass = images.sum(dim=(-2, -1))
    return ((images * rows).sum(dim=(-2, -1)) / mass, (images * cols).sum(dim=(-2, -1)) / mass)


def test_random_affine_without_rotation_or_shift_is_the_identity():
    x = torch.rand(5, 1, 7, 9)
    out = random_affine(x, (1, 7, 9), max_rotation=0.0, max_shift=0.0)
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


def test_random_affine_keeps_the_shape_of_flat_rows_and_fills_with_the_border():
    flat = torch.full((4, 2 * 6 * 6), -1.0)
    out = random_affine(flat, (2, 6, 6), max_rotation=30.0, max_shift=0.3)
    assert out.shape == flat.shape
    # edge pixels are repeated into the uncovered border: a constant image stays constant
    torch.testing.assert_close(out, flat)


def test_random_affine_shifts_by_at_most_max_shift():
    torch.manual_seed(0)
    x = torch.zeros(2000, 1, 20, 20)
    x[:, 0, 8:12, 8:12] = 1.0
    out = random_affine(x, (1, 20, 20), max_rotation=0.0, max_shift=0.1)
    r0, c0 = _center_of_mass(x)
    r, c = _center_of_mass(out)
    dr, dc = (r - r0).flatten(), (c - c0).flatten()
    # up to 0.1 * 20 = 2 pixels in each direction, uniformly, independently per image
    assert dr.abs().max() <= 2.0 + 1e-3 and dc.abs().max() <= 2.0 + 1e-3
    assert dr.abs().max() > 1.8 and dc.abs().max() > 1.8
    assert abs(float(dr.mean())) < 0.1 and abs(float(dc.mean())) < 0.1
    assert abs(float(torch.corrcoef(torch.stack([dr, dc]))[0, 1])) < 0.1


def test_random_affine_rotates_about_the_center_by_at_most_max_rotation():
    torch.manual_seed(0)
    x = torch.zeros(500, 1, 41, 41)
    x[:, 0, 19:22, 34:37] = 1.0  # a blob 15 pixels right of the center (20, 20)
    out = random_affine(x, (1, 41, 41), max_rotation=10.0, max_shift=0.0)
    r, c = _center_of_mass(out)
    angle = torch.rad2deg(torch.atan2(r.flatten() - 20, c.flatten() - 20))
    radius = torch.hypot(r.flatten() - 20, c.flatten() - 20)
    assert angle.abs().max() <= 10.0 + 0.5 and angle.abs().max() > 8.0
    torch.testing.assert_close(radius, torch.full_like(radius, 15.0), atol=0.2, rtol=0)


@pytest.mark.parametrize("name, degrees", [("affine", 10.0), ("wide-affine", 25.0)])
def test_named_augmentations_rotate_and_shift_by_their_ranges(name, degrees, monkeypatch):
    import skganem._augment as augment

    seen = {}
    monkeypatch.setattr(augment, "random_affine", lambda x, **kw: seen.update(kw) or x)
    augment.make_augmentation(name, (1, 6, 6))(torch.zeros(2, 36))
    assert seen == {"image_shape": (1, 6, 6), "max_rotation": degrees, "max_shift": 0.1}


def test_make_augmentation():
    assert make_augmentation(None, None) is None
    fn = make_augmentation("affine", (1, 4, 4))
    assert fn(torch.zeros(3, 16)).shape == (3, 16)
    with pytest.raises(ValueError, match="augmentation must be one of"):
        make_augmentation("mixup", (1, 4, 4))


def test_kmgan_augmentation_needs_images(blobs):
    X, _ = blobs
    with pytest.raises(ValueError, match="augmentation='affine' transforms images"):
        tiny(KMGAN, n_clusters=3, augmentation="affine").fit(X)
    with pytest.raises(InvalidParameterError, match="augmentation"):
        tiny(KMGAN, n_clusters=3, augmentation="flip").fit(X)


def test_kmgan_augmentation_changes_only_the_pretraining(images):
    X, _ = images
    kw = dict(n_clusters=2, n_iter=4, pretrain_iter=2, random_state=0)
    plain = tiny(KMGAN, **kw).fit(X)
    aug = tiny(KMGAN, augmentation="affine", **kw).fit(X)
    again = tiny(KMGAN, augmentation="affine", **kw).fit(X)
    # deterministic under random_state
    np.testing.assert_array_equal(aug.transform(X), again.transform(X))
    np.testing.assert_array_equal(aug.labels_, again.labels_)
    # the pretraining reconstructs other images than the plain fit's
    assert not math.isclose(aug.history_[0]["loss_rec"], plain.history_[0]["loss_rec"])
    # without pretraining the augmentation has nothing to act on: the game sees X as it is
    kw["pretrain_iter"] = 0
    np.testing.assert_array_equal(tiny(KMGAN, **kw).fit(X).transform(X),
                                  tiny(KMGAN, augmentation="affine", **kw).fit(X).transform(X))


def test_kmgan_augmentation_with_conv_nets_and_perceptrons(images):
    X, _ = images
    for arch in ("conv", "mlp"):
        est = tiny(KMGAN, n_clusters=2, architecture=arch, augmentation="affine",
                   conv_channels=(4, 8), random_state=0).fit(X)
        assert est.predict_proba(X).shape == (X.shape[0], 2)
        np.testing.assert_allclose(est.predict_proba(X).sum(1), 1.0, rtol=1e-5)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_kmgan_auto_networks_follow_the_image_size(images):
    """``architecture="auto"``: conv nets with affine-augmented pretraining for images of at
    least 16x16 pixels (also passed as flat rows), perceptrons without augmentation for the
    8x8 images and for tables."""
    X8, _ = images
    X16 = np.kron(X8, np.ones((2, 2)))  # the same images at 16x16
    cases = [(X16, "conv", "affine", (1, 16, 16)),
             (X16.reshape(len(X16), -1), "conv", "affine", (1, 16, 16)),
             (X8, "mlp", None, (1, 8, 8)),
             (X8[:, :3, :].reshape(len(X8), -1), "mlp", None, None)]  # 24 columns: a table
    for X, kind, augmentation, shape in cases:
        est = tiny(KMGAN, n_clusters=2, conv_channels=(4, 8), random_state=0).fit(X)
        assert est.engine_.config.spec.kind == kind
        assert est.augmentation_ == augmentation
        assert est.image_shape_ == shape
        assert (est.engine_.augment is not None) == (augmentation is not None)
    # explicit choices are kept
    est = tiny(KMGAN, n_clusters=2, architecture="mlp", random_state=0).fit(X16)
    assert est.engine_.config.spec.kind == "mlp" and est.augmentation_ is None
    est = tiny(KMGAN, n_clusters=2, augmentation=None, conv_channels=(4, 8),
               random_state=0).fit(X16)
    assert est.engine_.config.spec.kind == "conv" and est.augmentation_ is None


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_kmgan_auto_hidden_dims_by_network_kind(images):
    """``hidden_dims="auto"`` (KMGAN's default): (500, 500) for perceptrons, (256, 256) for
    conv nets; the other estimators take widths only."""
    from skganem import GANEMClustering
    from skganem.kmgan import HIDDEN_DIMS

    assert HIDDEN_DIMS == {"mlp": (500, 500), "conv": (256, 256)}
    X8, _ = images
    X16 = np.kron(X8, np.ones((2, 2)))
    kw = dict(n_clusters=2, n_iter=2, pretrain_iter=1, n_init=1, random_state=0)
    assert KMGAN(**kw).fit(X8).engine_.config.spec.hidden_dims == (500, 500)
    conv = KMGAN(conv_channels=(4, 8), **kw).fit(X16)
    assert conv.engine_.config.spec.hidden_dims == (256, 256)
    assert KMGAN(hidden_dims=(16,), **kw).fit(X8).engine_.config.spec.hidden_dims == (16,)
    with pytest.raises(InvalidParameterError, match="hidden_dims"):
        GANEMClustering(hidden_dims="auto").fit(X8)
