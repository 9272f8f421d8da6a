import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning

from skganem import GANEMClustering
from skganem import _losses
from skganem.exceptions import DivergenceError
from conftest import tiny


def test_discriminator_loss_matches_eq2_by_hand():
    # K = 2; logits -> probabilities via sigmoid; w weights the real class terms.
    real = torch.tensor([[0.0, 2.0, 1.0]])
    fake = torch.tensor([[-1.0, 0.5, -2.0]])
    w = torch.tensor([[0.25, 0.75]])
    s = torch.sigmoid
    expected = (-(0.25 * torch.log(s(real[0, 0])) + 0.75 * torch.log(s(real[0, 1])))
                - (torch.log(1 - s(fake[0, 0])) + torch.log(1 - s(fake[0, 1])))
                - torch.log(s(real[0, 2])) - torch.log(1 - s(fake[0, 2])))
    got = _losses.ganem_discriminator_loss(real, fake, w)
    assert got.item() == pytest.approx(expected.item(), rel=1e-6)


def test_generator_losses_by_hand():
    fake = torch.tensor([[1.0, -1.0, 0.5]])
    c = torch.tensor([0])
    s = torch.sigmoid
    kl = -0.5 * torch.exp(torch.tensor(1.0)) - torch.log(s(torch.tensor(0.5)))
    assert _losses.ganem_generator_loss_kl(fake, c).item() == pytest.approx(kl.item(), rel=1e-6)
    bce = -(torch.log(s(torch.tensor(1.0))) + torch.log(1 - s(torch.tensor(-1.0)))
            + torch.log(s(torch.tensor(0.5))))
    assert _losses.ganem_generator_loss_bce(fake, c).item() == pytest.approx(bce.item(), rel=1e-6)
    # the Eq. 1 logit is clamped so exp() cannot overflow
    huge = torch.tensor([[1e4, 0.0, 0.0]])
    assert torch.isfinite(_losses.ganem_generator_loss_kl(huge, c))


def test_fitted_attributes(blobs):
    est = tiny(GANEMClustering, n_clusters=3, random_state=0).fit(blobs[0])
    assert est.cluster_weights_.shape == (3,)
    assert est.cluster_weights_.sum() == pytest.approx(1.0, abs=1e-5)
    assert {"loss_d", "loss_g", "loss_e"} <= set(est.history_[0])
    # the generator conditioned on c is sampled with clusters drawn from phi
    _, c = est.sample(30, random_state=1)
    assert set(np.unique(c)) <= {0, 1, 2}


@pytest.mark.parametrize("kw", [dict(init="uniform"), dict(generator_loss="kl"),
                                dict(optimizer="rmsprop", clip_value=0.5)])
def test_options_run(blobs, kw):
    est = tiny(GANEMClustering, n_clusters=3, random_state=0, **kw).fit(blobs[0])
    assert np.all(np.isfinite(est.predict_proba(blobs[0])))


@pytest.mark.parametrize("rate", [0.0, 0.5])
def test_e_dropout_sets_the_enet_dropout(blobs, rate):
    est = tiny(GANEMClustering, n_clusters=3, random_state=0, e_dropout=rate).fit(blobs[0])
    rates = [m.p for m in est.engine_.E.modules() if hasattr(m, "p")]
    assert rates == ([] if rate == 0 else [rate] * len(rates)) and (rate == 0 or rates)
    # D and G never drop units
    for net in (est.engine_.D, est.engine_.G):
        assert not [m for m in net.modules() if hasattr(m, "p")]


def test_e_dropout_of_one_is_refused(blobs):
    with pytest.raises(ValueError, match="e_dropout"):
        tiny(GANEMClustering, n_clusters=3, e_dropout=1.0).fit(blobs[0])


def test_clip_value_bounds_generator_weights(blobs):
    est = tiny(GANEMClustering, n_clusters=3, random_state=0, clip_value=0.01).fit(blobs[0])
    for p in est.engine_.G.parameters():
        assert p.abs().max().item() <= 0.01 + 1e-7


def test_semi_supervised_uses_labels(blobs):
    X, y = blobs
    # Labels that contradict the geometry: cluster k is asked to be "true class (k+1) % 3".
    y_lab = np.full_like(y, -1)
    rng = np.random.RandomState(0)
    idx = np.concatenate([rng.choice(np.flatnonzero(y == k), 10, replace=False) for k in range(3)])
    y_lab[idx] = (y[idx] + 1) % 3
    semi = tiny(GANEMClustering, n_clusters=3, random_state=0, semi_supervised=True,
                label_tol=0.0).fit(X, y_lab)
    np.testing.assert_array_equal(semi.predict(X[idx]), y_lab[idx])
    assert "label_error" in semi.history_[-1]
    unsup = tiny(GANEMClustering, n_clusters=3, random_state=0).fit(X, y_lab)
    assert not np.array_equal(unsup.predict(X[idx]), y_lab[idx])


def test_semi_supervised_validates_y(blobs):
    X, y = blobs
    est = tiny(GANEMClustering, n_clusters=3, semi_supervised=True)
    with pytest.raises(ValueError, match="needs y"):
        est.fit(X)
    with pytest.raises(ValueError, match=r"\[0, n_clusters=3\)"):
        est.fit(X, np.full_like(y, 5))
    with pytest.raises(ValueError, match="no labeled"):
        est.fit(X, np.full_like(y, -1))
    with pytest.raises(ValueError, match="entries"):
        est.fit(X, y[:10])


def test_divergence_is_reported(blobs, monkeypatch):
    from skganem._engines import ganem

    def nan_loss(fake_logits, c):
        return fake_logits.sum() * float("nan")
    monkeypatch.setattr(ganem._losses, "ganem_generator_loss_bce", nan_loss)
    with pytest.raises(DivergenceError, match="diverged at iteration 1: loss"):
        tiny(GANEMClustering, n_clusters=3, random_state=0).fit(blobs[0])


def test_verbose_progress(blobs, capsys):
    tiny(GANEMClustering, n_clusters=3, random_state=0, verbose=1).fit(blobs[0])
    err = capsys.readouterr().err
    assert "GANEMClustering" in err and "loss_d" in err
    with warnings.catch_warnings():  # a tiny fit may warn of a degenerate result:
        warnings.simplefilter("ignore", ConvergenceWarning)  # not progress output
        tiny(GANEMClustering, n_clusters=3, random_state=0, verbose=0).fit(blobs[0])
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_m_step_floor_is_capped_at_40_passes_on_small_tables():
    """The default floor of 500 G/D updates asks for at most 40 passes over a small table."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.randn(50, 4), rng.randn(50, 4) + 6])
    est = GANEMClustering(n_clusters=2, hidden_dims=(16,), n_iter=1, e_steps=2, n_init=1,
                          random_state=0).fit(X)
    expected = int(np.ceil(40 * 100 / 64))  # 63, not 500
    assert est.schedule_["min_m_steps"] == expected
    steps = {int(s["step"]) for s in est.engine_.opt_d.state.values()}
    assert steps == {expected}
    # an explicit floor is kept as given
    est = GANEMClustering(n_clusters=2, hidden_dims=(16,), n_iter=1, e_steps=2, n_init=1,
                          min_m_steps=120, random_state=0).fit(X)
    assert {int(s["step"]) for s in est.engine_.opt_d.state.values()} == {120}


def test_e_augmentation_transforms_every_enet_batch(monkeypatch):
    from skganem import _augment
    calls = []
    original = _augment.random_affine

    def spy(x, image_shape, **kw):
        out = original(x, image_shape, **kw)
        calls.append((tuple(x.shape), bool((out != x).any())))
        return out

    monkeypatch.setattr(_augment, "random_affine", spy)
    X = np.random.RandomState(0).rand(60, 8, 8).astype(np.float32)
    est = tiny(GANEMClustering, n_clusters=3, random_state=0, e_augmentation="affine").fit(X)
    # e_steps E-net batches of e_batch_size generated images per iteration, all transformed
    assert len(calls) == est.n_iter_ * est.schedule_["e_steps"]
    assert all(shape[0] == est.e_batch_size and changed for shape, changed in calls)


def test_e_augmentation_needs_images(blobs):
    with pytest.raises(ValueError, match="e_augmentation='affine' transforms images"):
        tiny(GANEMClustering, n_clusters=3, e_augmentation="affine").fit(blobs[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_e_augmentation_auto_follows_the_networks(images):
    """``e_augmentation="auto"``: affine for conv nets on images (also passed as flat rows),
    none for perceptrons and for tables; explicit choices are kept."""
    X8, _ = images
    cases = [(X8, {}, "conv", "affine"),
             (X8.reshape(len(X8), -1), {}, "conv", "affine"),
             (X8, {"architecture": "mlp"}, "mlp", None),
             (X8, {"e_augmentation": None}, "conv", None),
             (X8[:, :3, :].reshape(len(X8), -1), {}, "mlp", None)]  # 24 columns: a table
    for X, params, kind, augmentation in cases:
        est = tiny(GANEMClustering, n_clusters=2, random_state=0, **params).fit(X)
        assert est.engine_.config.spec.kind == kind
        assert est.e_augmentation_ == augmentation
        assert (est.engine_.e_augment is not None) == (augmentation is not None)
