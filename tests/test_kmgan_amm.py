"""Method-specific tests of KM-GAN and AMM: losses on hand-computed tensors, SAMM, decoding."""

import math
import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score

from conftest import RECOVERY, TINY, tiny
from skganem import KMGAN, AMMClustering, _losses
from skganem._engines._gmm import gmm_log_joint


# ----------------------------------------------------------------------------- KM-GAN
def _center_loss_case(d_round):
    real = torch.tensor([[1.0], [3.0]], requires_grad=True)
    fake = torch.tensor([[2.0]], requires_grad=True)
    loss = _losses.kmgan_center_loss(
        real, torch.tensor([0, 0]), torch.tensor([[0.0], [10.0]]),
        fake, torch.tensor([1]), torch.tensor([[1.0], [4.0]]), d_round)
    return loss, real, fake


def test_center_loss_hand_computed():
    # real: center 0 averages (0 + 1 + 3) / 3 = 4/3, center 1 keeps 10 -> 34/3
    # fake: center 0 keeps 1, center 1 averages (4 + 2) / 2 = 3 -> 4;  |34/3 - 4| = 22/3
    loss, real, fake = _center_loss_case(d_round=0.0)
    assert loss.item() == pytest.approx(22 / 3)
    loss.backward()
    np.testing.assert_allclose(real.grad.numpy(), [[1 / 3], [1 / 3]], rtol=1e-6)
    np.testing.assert_allclose(fake.grad.numpy(), [[-1 / 2]], rtol=1e-6)


def test_center_loss_floor_d_round():
    loss, real, fake = _center_loss_case(d_round=10.0)  # 22/3 < 10: floored, no gradient
    assert loss.item() == pytest.approx(10.0)
    loss.backward()
    assert real.grad is None or torch.all(real.grad == 0)
    loss, _, _ = _center_loss_case(d_round=5.0)  # above the floor: unchanged
    assert loss.item() == pytest.approx(22 / 3)


def test_cluster_sums_hand_computed():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    sums, counts = _losses.cluster_sums(x, torch.tensor([2, 0, 2]), 3)
    torch.testing.assert_close(sums, torch.tensor([[3.0, 4.0], [0.0, 0.0], [6.0, 8.0]]))
    torch.testing.assert_close(counts, torch.tensor([1.0, 0.0, 2.0]))


def test_discriminator_and_generator_losses_hand_computed():
    zero = torch.zeros(1, 2)
    # ||(0,0) - (3,4)|| - ||(0,0) - (0,1)|| = 5 - 1
    assert _losses.kmgan_discriminator_loss(zero, torch.tensor([[3.0, 4.0]]), zero,
                                            torch.tensor([[0.0, 1.0]])).item() == 4.0
    assert _losses.kmgan_generator_loss(zero, torch.tensor([[3.0, 4.0]])).item() == 5.0
    intra, inter = _losses.kmgan_intra_inter(torch.tensor([[0.0], [1.0]]),
                                             torch.tensor([[3.0], [5.0]]))
    assert intra.item() == 1 + 2 and inter.item() == 3 + 5 + 2 + 4


def test_discriminator_loss_fake_weight():
    zero = torch.zeros(1, 2)
    loss = _losses.kmgan_discriminator_loss(zero, torch.tensor([[3.0, 4.0]]), zero,
                                            torch.tensor([[0.0, 2.0]]), fake_weight=0.25)
    assert loss.item() == pytest.approx(5 - 0.25 * 2)


def test_kmgan_paper_algorithm_has_no_autoencoder(blobs):
    X, _ = blobs
    paper = tiny(KMGAN, n_clusters=3, n_iter=3, reconstruction_weight=0.0, pretrain_iter=0,
                 adversarial_weight=1.0, refine_iter=0, random_state=0).fit(X)
    assert "R" not in paper.engine_.nets
    assert all(set(h) == {"iteration", "loss_d", "loss_g", "loss_center", "cluster_sizes",
                          "label_change",
                          "seconds"}
               for h in paper.history_)


def test_kmgan_pretraining_then_game(blobs):
    X, _ = blobs
    est = tiny(KMGAN, n_clusters=3, n_iter=5, pretrain_iter=2, random_state=0).fit(X)
    keys = [set(h) - {"iteration", "seconds"} for h in est.history_]
    assert keys[:2] == [{"loss_rec"}] * 2
    assert all(k - {"label_change"} == {"loss_d", "loss_g", "loss_center", "loss_rec",
                                         "cluster_sizes"} for k in keys[2:])
    # the first game epoch has no earlier assignment to compare with; the later ones do
    assert "label_change" not in keys[2] and all("label_change" in k for k in keys[3:])
    # pretraining takes at most n_iter - 1 epochs, so that the game always runs
    short = tiny(KMGAN, n_clusters=3, n_iter=4, pretrain_iter=10, random_state=0).fit(X)
    assert ["loss_d" in h for h in short.history_] == [False, False, False, True]


def test_kmgan_auto_schedule_by_network_kind():
    rng = np.random.RandomState(0)
    conv = KMGAN(n_clusters=2, n_iter=2, conv_channels=(4, 8), hidden_dims=(16,),
                 batch_size=16, random_state=0).fit(rng.rand(40, 16, 16))
    assert conv.schedule_ == {"n_iter": 2, "pretrain_lr": 1e-3}
    assert conv.engine_.opt_pre is not conv.engine_.opt_c
    assert conv.engine_.opt_pre.param_groups[0]["betas"] == (0.9, 0.999)
    mlp = KMGAN(n_clusters=2, hidden_dims=(16,), batch_size=16, pretrain_iter=1,
                random_state=0)
    mlp.fit(rng.rand(40, 5))
    assert mlp.schedule_ == {"n_iter": 60, "pretrain_lr": None} and mlp.n_iter_ == 60
    # perceptrons pretrain with the joint step's optimiser, whose state the game continues
    assert mlp.engine_.opt_pre is mlp.engine_.opt_c
    assert set(mlp.engine_.optimizers()) == {"opt_d", "opt_g", "opt_c"}  # saved once


def test_kmgan_pretraining_optimiser_leaves_the_game_optimiser_untouched(blobs):
    X, _ = blobs
    est = tiny(KMGAN, n_clusters=3, n_iter=2, pretrain_iter=1, pretrain_lr=1e-3,
               adversarial_weight=0.0, reconstruction_weight=0.0, random_state=0)
    est.fit(X)
    # the pretraining trained with its own Adam; the joint step (switched off here) never ran
    assert est.engine_.opt_pre.state and not est.engine_.opt_c.state
    # its rate fell along a half cosine: the last of the epoch's steps ran near 0
    steps = math.ceil(X.shape[0] / est.batch_size)
    last = 1e-3 * 0.5 * (1 + math.cos(math.pi * (steps - 1) / steps))
    assert est.engine_.opt_pre.param_groups[0]["lr"] == pytest.approx(last)
    assert est.engine_.opt_c.param_groups[0]["lr"] == est.lr


def test_kmgan_reduced_variant_runs_algorithm_2_as_published(blobs):
    X, _ = blobs
    est = tiny(KMGAN, n_clusters=3, n_iter=3, variant="reduced", random_state=0).fit(X)
    assert "R" not in est.engine_.nets
    assert "loss_rec" not in est.history_[0]
    assert est.cluster_centers_.shape == (3, X.shape[1])


def test_kmgan_centers_and_proba_semantics(blobs):
    X, _ = blobs
    est = tiny(KMGAN, n_clusters=3, refine="kmeans", random_state=0).fit(X)
    assert est.cluster_centers_.shape == (3, est.n_components)
    F = est.transform(X)
    d2 = ((F[:, None, :] - est.cluster_centers_[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(est.predict(X), d2.argmin(1))
    expected = np.exp(-(d2 - d2.min(1, keepdims=True)) / est.temperature_)
    np.testing.assert_allclose(est.predict_proba(X), expected / expected.sum(1, keepdims=True),
                               rtol=1e-4, atol=1e-6)


def test_kmgan_gmm_refine_is_a_gaussian_mixture_on_the_features(blobs):
    X, _ = blobs
    est = tiny(KMGAN, n_clusters=3, random_state=0).fit(X)  # refine="gmm" by default
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(est.labels_, proba.argmax(1))
    # EM's fixed point: each mean is the posterior-weighted mean of the features
    F = est.transform(X).astype(np.float64)
    means = proba.T @ F / proba.sum(0)[:, None]
    scale = F.std(0).max()
    np.testing.assert_allclose(est.cluster_centers_, means, atol=1e-2 * scale)
    # the k-means centers the training used stay in the engine, apart from the mixture
    kmeans = tiny(KMGAN, n_clusters=3, refine="kmeans", random_state=0).fit(X)
    np.testing.assert_allclose(est.engine_.centers.cpu().numpy(), kmeans.cluster_centers_,
                               rtol=1e-5)


def test_kmgan_refinement_is_lloyd_on_the_final_features(blobs):
    X, _ = blobs
    game = tiny(KMGAN, n_clusters=3, refine_iter=0, random_state=0).fit(X)
    refined = tiny(KMGAN, n_clusters=3, refine_iter=50, random_state=0).fit(X)
    F = refined.transform(X)
    np.testing.assert_allclose(F, game.transform(X))  # same training, refinement at the end

    def inertia(centers):
        return ((F[:, None, :] - centers[None]) ** 2).sum(-1).min(1).sum()
    assert inertia(refined.cluster_centers_) <= inertia(game.cluster_centers_) + 1e-6
    # a fixed point of Lloyd: each non-empty center is the mean of its rows
    labels = refined.predict(X)
    for m in np.unique(labels):
        np.testing.assert_allclose(refined.cluster_centers_[m], F[labels == m].mean(0),
                                   rtol=1e-4, atol=1e-5)


# -------------------------------------------------------------------------------- AMM
def test_gradient_penalty_hand_computed():
    # A linear critic has the same gradient (3, 0, 4) everywhere: ||g|| = 5, (5 - 1)^2 = 16.
    def critic(x, y, z):
        return 3 * x[:, 0] + 0 * y[:, 0] + 4 * z[:, 0]

    real = (torch.zeros(4, 1), torch.zeros(4, 1), torch.zeros(4, 1))
    fake = (torch.ones(4, 1), torch.ones(4, 1), torch.ones(4, 1))
    assert _losses.gradient_penalty(critic, real, fake, 2.0).item() == pytest.approx(32.0)


def test_cycle_losses_hand_computed():
    # CE of uniform logits over 2 classes = ln 2; mean squared error of (1, 2) = 2.5
    loss = _losses.amm_latent_cycle_loss(torch.zeros(1, 2), torch.tensor([0]),
                                         torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2))
    assert loss.item() == pytest.approx(math.log(2) + 2.5)
    assert _losses.reconstruction_loss(torch.tensor([[1.0, 2.0]]), torch.zeros(1, 2)).item() \
        == pytest.approx(2.5)


def test_consistency_loss_hand_computed():
    # fixed posterior (1/2, 1/2) against uniform logits of the copy: ln 2; confident and equal
    # posteriors: near 0; only the copy's logits get a gradient
    logits = torch.zeros(3, 2, requires_grad=True)
    logits_aug = torch.zeros(3, 2, requires_grad=True)
    loss = _losses.consistency_loss(logits, logits_aug)
    assert loss.item() == pytest.approx(math.log(2))
    loss.backward()
    assert logits.grad is None and logits_aug.grad is not None
    sure = torch.tensor([[20.0, 0.0], [0.0, 20.0]])
    assert _losses.consistency_loss(sure, sure).item() == pytest.approx(0.0, abs=1e-6)
    assert _losses.consistency_loss(sure, sure.flip(1)).item() == pytest.approx(20.0, abs=1e-3)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_amm_consistency_term_on_images_only(blobs, images, monkeypatch):
    """``augmentation="auto"``: the consistency term for conv nets on images, none for tables;
    ``consistency_weight=0`` switches it off; an augmentation of flat features is refused
    before training."""
    X8, _ = images
    est = tiny(AMMClustering, n_clusters=2, conv_channels=(4, 8), random_state=0).fit(X8)
    assert est.augmentation_ == "wide-affine" and est.engine_.augment is not None
    assert all(math.isfinite(rec["loss_consistency"]) for rec in est.history_)
    seen = []
    monkeypatch.setattr(_losses, "consistency_loss",
                        lambda a, b: seen.append(b.shape) or (a - b).pow(2).mean())
    tiny(AMMClustering, n_clusters=2, conv_channels=(4, 8), random_state=0).fit(X8)
    assert seen and seen[0] == (32, 2)  # one copy's logits per real row of a batch
    seen.clear()
    off = tiny(AMMClustering, n_clusters=2, conv_channels=(4, 8), random_state=0,
               consistency_weight=0).fit(X8)
    assert off.engine_.augment is None and not seen
    assert "loss_consistency" not in off.history_[0]
    X, _ = blobs
    table = tiny(AMMClustering, n_clusters=3, random_state=0).fit(X)
    assert table.augmentation_ is None and "loss_consistency" not in table.history_[0]
    assert not seen
    with pytest.raises(ValueError, match="augmentation='affine' transforms images"):
        AMMClustering(n_clusters=3, augmentation="affine").fit(X)


def test_hard_categorical_draws_one_hot_with_softmax_gradient():
    """``y_sampling="hard"``: one-hot draws at the frequencies of ``softmax(logits)``, and
    the gradient of the probabilities (straight-through)."""
    from skganem._engines.amm import hard_categorical

    torch.manual_seed(0)
    logits = torch.tensor([[2.0, 0.0, -1.0]]).repeat(20000, 1).requires_grad_(True)
    y = hard_categorical(logits)
    one_hot = y.detach().round()  # the value is one-hot up to rounding of ``+ p - p``
    assert torch.allclose(y.detach(), one_hot, atol=1e-6)
    assert set(one_hot.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(one_hot.sum(1), torch.ones(20000))
    probs = torch.softmax(logits[0].detach(), dim=0)
    assert torch.allclose(one_hot.mean(0), probs, atol=0.015)
    w = torch.tensor([1.0, -2.0, 0.5])
    (y * w).sum().backward()
    ref = logits.detach().clone().requires_grad_(True)
    (torch.softmax(ref, dim=1) * w).sum().backward()
    assert torch.allclose(logits.grad, ref.grad)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_amm_y_sampling(blobs, images):
    """``y_sampling="hard"``: the critic sees one-hot draws of the encoder's clusters, on
    images and tables; the default keeps the relaxed ``y`` of Eq. 8-9; an unknown value is
    refused."""
    X8, _ = images
    est = tiny(AMMClustering, n_clusters=2, conv_channels=(4, 8), random_state=0,
               y_sampling="hard").fit(X8)
    assert est.engine_.enc.hard_y
    x = torch.rand(16, 1, 8, 8, device=est.engine_.device) * 2 - 1
    with torch.no_grad():
        y = est.engine_.enc.train()(x)[0].float()
    assert torch.allclose(y, y.round(), atol=1e-6)  # one-hot up to rounding
    assert torch.equal(y.round().sum(1), torch.ones(16, device=y.device))
    relaxed = tiny(AMMClustering, n_clusters=2, conv_channels=(4, 8), random_state=0).fit(X8)
    assert not relaxed.engine_.enc.hard_y
    with torch.no_grad():
        y = relaxed.engine_.enc.train()(x)[0].float()
    assert ((y > 1e-3) & (y < 1 - 1e-3)).any()  # softmax of noisy logits: not one-hot
    X, _ = blobs
    table = tiny(AMMClustering, n_clusters=3, random_state=0, y_sampling="hard").fit(X)
    assert table.engine_.enc.hard_y and np.isfinite(table.history_[-1]["loss_g"])
    with pytest.raises(ValueError, match="y_sampling"):
        AMMClustering(n_clusters=3, y_sampling="gumbel").fit(X)


def test_paper_game_without_cycle_terms(blobs):
    X, _ = blobs
    ours = tiny(AMMClustering, random_state=0).fit(X)
    paper = tiny(AMMClustering, random_state=0, cycle_weight=0.0, reconstruction_weight=0.0,
                 lr=2e-4).fit(X)
    assert {"loss_cycle", "loss_rec"} <= set(ours.history_[-1])
    assert not {"loss_cycle", "loss_rec"} & set(paper.history_[-1])


def test_samm_uses_the_labels(blobs):
    X, y = blobs
    rng = np.random.RandomState(0)
    y_partial = np.full_like(y, -1)
    labeled = np.concatenate([rng.choice(np.flatnonzero(y == c), 5, replace=False)
                              for c in range(3)])
    y_partial[labeled] = (y[labeled] + 1) % 3  # a permuted naming: only labels can teach it
    params = dict(TINY[AMMClustering], **RECOVERY[AMMClustering], n_clusters=3, random_state=0)
    semi = AMMClustering(semi_supervised=True, **params).fit(X, y_partial)
    # cluster k means the given class k, so plain (unmatched) accuracy is high
    assert accuracy_score((y + 1) % 3, semi.labels_) > 0.9
    np.testing.assert_allclose(semi.cluster_weights_, [1 / 3] * 3, atol=1e-3)


def test_inverse_transform_shape_and_units(blobs, images):
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, random_state=0, **RECOVERY[AMMClustering]).fit(X)
    rec = est.inverse_transform(est.transform(X))
    assert rec.shape == X.shape and rec.dtype in (np.float32, np.float64)
    assert np.all(rec >= X.min(0) - 1e-6) and np.all(rec <= X.max(0) + 1e-6)
    # better than predicting the mean row: the decoder uses the code
    assert ((rec - X) ** 2).mean() < X.var(0).mean()
    with pytest.raises(ValueError, match="n_components"):
        est.inverse_transform(np.zeros((2, est.n_components + 1)))
    Xi, _ = images
    est = tiny(AMMClustering, n_clusters=2, random_state=0).fit(Xi)
    assert est.inverse_transform(est.transform(Xi)).shape == (Xi.shape[0], 64)


def test_amm_kmeans_init_warm_starts_once(blobs, monkeypatch):
    from skganem._engines.amm import AMMEngine

    X, y = blobs
    calls = []
    original = AMMEngine._warm_start

    def counted(self, data, rng, init_labels):
        calls.append(np.asarray(init_labels))
        return original(self, data, rng, init_labels)

    monkeypatch.setattr(AMMEngine, "_warm_start", counted)
    est = tiny(AMMClustering, n_clusters=3, init="kmeans", warm_start=True,
               random_state=0).fit(X)
    assert len(calls) == 1 and calls[0].shape == (X.shape[0],)
    # the k-means clusters of three well-separated blobs are the blobs: 3 (blob, cluster) pairs
    assert len(set(zip(y, calls[0]))) == 3
    est.fit(X)  # continuing a warm start does not redo it
    assert len(calls) == 1 and est.n_iter_ == 2 * TINY[AMMClustering]["n_iter"]


def test_samm_kmeans_init_starts_labeled_rows_in_their_component(blobs, monkeypatch):
    from skganem._engines.amm import AMMEngine

    X, y = blobs
    seen = []
    monkeypatch.setattr(AMMEngine, "_warm_start",
                        lambda self, data, rng, init_labels: seen.append(init_labels))
    y_part = np.full_like(y, -1)
    y_part[:15] = (y[:15] + 1) % 3  # a naming k-means cannot guess
    tiny(AMMClustering, n_clusters=3, init="kmeans", semi_supervised=True,
         random_state=0).fit(X, y_part)
    np.testing.assert_array_equal(seen[0][:15], y_part[:15])


# -- KM-GAN: one feature map for k-means, batch statistics of real rows, d_round ----------
def test_kmgan_labels_seeding_and_inference_use_eval_mode_features(blobs, monkeypatch):
    """Every feature pass without gradient (k-means labels in training, center updates,
    seeding, refinement, inference) runs D in eval mode."""
    import skganem._engines.kmgan as km

    modes = []
    real_forward = km._SigmoidFeatures.forward

    def forward(self, x):
        if not torch.is_grad_enabled():
            modes.append(self.training)
        return real_forward(self, x)

    monkeypatch.setattr(km._SigmoidFeatures, "forward", forward)
    X, _ = blobs
    est = tiny(KMGAN, n_clusters=3, n_iter=3, pretrain_iter=1, random_state=0).fit(X)
    est.predict(X)
    assert len(modes) > 10 and not any(modes)


def test_kmgan_game_step_reuses_the_real_features_for_the_reconstruction(blobs, monkeypatch):
    """A game step passes batches through D with gradient five times: real and generated
    in D's step, generated in G's step, real and generated in the joint step; the
    autoencoder term decodes the features already computed instead of a sixth and seventh
    pass over the real batch."""
    import skganem._engines.kmgan as km

    calls = []
    real_forward = km._SigmoidFeatures.forward

    def forward(self, x):
        if torch.is_grad_enabled():
            calls.append(x.shape[0])
        return real_forward(self, x)

    X, _ = blobs
    est = tiny(KMGAN, n_clusters=3, n_iter=1, pretrain_iter=0, batch_size=32, random_state=0)
    monkeypatch.setattr(km._SigmoidFeatures, "forward", forward)
    est.fit(X)
    n_steps = math.ceil(len(X) / 32)
    assert len(calls) == 5 * n_steps
    assert est.history_[0]["loss_rec"] > 0


def test_kmgan_batchnorm_running_stats_come_from_real_rows(blobs):
    """With a learning rate of ~0 the weights stay put, so the running mean of D's first
    batch-normalisation layer should be the mean of its input over the real rows; generated
    rows (here pushed far away) must not move it."""
    import skganem._engines.kmgan as km

    X, _ = blobs
    est = tiny(KMGAN, n_clusters=3, n_iter=4, pretrain_iter=0, reconstruction_weight=0.0,
               lr=1e-12, clip_value=None, random_state=0)
    real_g = km.KMGANEngine.build

    def build(self):
        real_g(self)
        g_forward = self.G.forward
        self.G.forward = lambda v: g_forward(v) * 0 + 1.0  # generated rows: all ones

    km.KMGANEngine.build = build
    try:
        est.fit(X)
    finally:
        km.KMGANEngine.build = real_g
    engine = est.engine_
    bn = next(m for m in engine.D.modules() if isinstance(m, torch.nn.BatchNorm1d))
    first_linear = engine.D.encoder.body[0]
    import numpy as np
    rows = torch.as_tensor(est.scaler_.transform(X.astype(np.float32)))
    with torch.no_grad():
        expected = first_linear(rows).mean(0)
    torch.testing.assert_close(bn.running_mean, expected, atol=0.02, rtol=0.02)


def test_kmgan_d_round_beyond_the_bound_warns(blobs):
    X, _ = blobs
    with pytest.warns(UserWarning, match="d_round=10000.*no gradient"):
        tiny(KMGAN, n_clusters=3, n_iter=2, d_round=10000.0, random_state=0).fit(X)


def test_kmgan_adversarial_weight_scales_the_center_step_without_reconstruction(blobs):
    X, _ = blobs
    off = tiny(KMGAN, n_clusters=3, n_iter=2, pretrain_iter=0, reconstruction_weight=0.0,
               adversarial_weight=0.0, refine_iter=0, random_state=0).fit(X)
    on = tiny(KMGAN, n_clusters=3, n_iter=2, pretrain_iter=0, reconstruction_weight=0.0,
              adversarial_weight=1.0, refine_iter=0, random_state=0).fit(X)
    # with both weights 0 there is no center step: D only learns from the real-data term
    assert off.engine_.opt_c.state == {} and on.engine_.opt_c.state != {}


# -- AMM: the paper's factorization (Table 3), prior (Table 4) and diagnostics -----------
def test_amm_z_stream_sees_only_x(blobs):
    """G_z(x) G_y(x, G_z(x)): the code z (``transform``) does not depend on the y stream."""
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, random_state=0).fit(X)
    Z = est.transform(X)
    with torch.no_grad():
        for p in est.engine_.enc.y_head.parameters():
            p.add_(torch.randn_like(p))
    np.testing.assert_array_equal(est.transform(X), Z)


def test_amm_y_stream_reads_the_z_stream(blobs):
    """The y head takes the z stream's mean: changing the z head changes y."""
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, random_state=0, predict_method="encoder").fit(X)
    P = est.predict_proba(X)
    with torch.no_grad():
        est.engine_.enc.z_head.weight.add_(1.0)
    assert not np.allclose(est.predict_proba(X), P)


def test_amm_learned_prior_is_a_network_of_y_with_unit_variance(blobs):
    """Table 4: z = G_z(y) + ExpN(zeros): means from a network initialised N(0, 0.02), so
    they start near 0, and unit variances that training does not change."""
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, random_state=0, n_components=8, lr=1e-9, n_iter=1).fit(X)
    means = est.cluster_means_
    assert means.shape == (3, 8)
    assert np.linalg.norm(means, axis=1).max() < 0.5  # N(0, I) draws in 8-d: norm ~ 2.8
    np.testing.assert_array_equal(est.cluster_variances_, np.ones((3, 8)))
    trained = tiny(AMMClustering, n_clusters=3, random_state=0, n_components=8).fit(X)
    np.testing.assert_array_equal(trained.cluster_variances_, np.ones((3, 8)))
    assert not np.allclose(trained.cluster_means_, means, atol=1e-3)  # the means are learned
    fixed = tiny(AMMClustering, n_clusters=3, random_state=0, n_components=8, prior="fixed").fit(X)
    assert np.linalg.norm(fixed.cluster_means_, axis=1).min() > 1.0  # fixed N(0, I) draws


def test_amm_bayes_scoring_uses_the_prior_means(blobs):
    """Eq. 19 with unit variances and a uniform p(y): the nearest component mean of z."""
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, random_state=0, predict_method="bayes").fit(X)
    Z = est.transform(X)
    d2 = ((Z[:, None, :] - est.cluster_means_[None]) ** 2).sum(2)
    chosen = d2[np.arange(len(X)), est.predict(X)]
    np.testing.assert_allclose(chosen, d2.min(1), rtol=1e-4, atol=1e-4)  # float32 ties


def test_amm_mixture_scoring_is_a_gaussian_mixture_fitted_to_the_codes(blobs):
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, random_state=0, n_iter=4).fit(X)
    encoder_labels = est.set_params(predict_method="encoder").predict(X)
    est.set_params(predict_method="mixture")  # fitted with every fit: switchable afterwards
    proba = est.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    # EM's fixed point: each mean is the posterior-weighted mean of the training codes
    Z = est.transform(X).astype(np.float64)
    means = proba.T @ Z / proba.sum(0)[:, None]
    engine = est.engine_
    kept = proba.sum(0) > 1.0  # components that hold rows
    np.testing.assert_allclose(engine.mixture_means.cpu().numpy()[kept], means[kept],
                               atol=1e-2 * Z.std(0).max())
    assert not np.allclose(engine.mixture_means.cpu().numpy(), est.cluster_means_)
    # mixture_n_init=0 starts from the encoder's clusters alone (the training is the same:
    # the mixture is fitted after it); the default also tries k-means++ starts on the codes
    # and keeps the mixture with the larger likelihood
    alone = clone(est).set_params(mixture_n_init=0, predict_method="mixture").fit(X)
    np.testing.assert_array_equal(alone.transform(X), est.transform(X))
    np.testing.assert_array_equal(alone.set_params(predict_method="encoder").predict(X),
                                  encoder_labels)
    alone.set_params(predict_method="mixture")

    def log_likelihood(fitted):
        e = fitted.engine_
        joint = gmm_log_joint(torch.as_tensor(Z), e.mixture_log_weights, e.mixture_means,
                              e.mixture_prec_chol)
        return float(torch.logsumexp(joint, 1).mean())

    assert log_likelihood(est) >= log_likelihood(alone) - 1e-9
    assert np.mean(alone.predict(X) == encoder_labels) > 0.5
    # the default is the mixture, on tables as on images; for SAMM, the encoder
    np.testing.assert_array_equal(est.set_params(predict_method="auto").predict(X),
                                  proba.argmax(1))
    est.set_params(semi_supervised=True)
    np.testing.assert_array_equal(est.predict(X), encoder_labels)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.predict(X), est.predict(X))


def test_amm_history_holds_the_game_diagnostics(blobs, monkeypatch):
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, random_state=0, n_iter=2).fit(X)
    for rec in est.history_:
        for key in ("grad_ratio_zx", "z_norm_inferred", "z_norm_prior", "z_own_component",
                    "sigma_y", "mu_y_spread"):
            assert math.isfinite(rec[key]) and rec[key] >= 0, key
        assert 0 <= rec["z_own_component"] <= 1
    # the diagnostics draw no numbers from training's random stream: without them, the
    # same fit gives the same clusters
    from skganem._engines.amm import AMMEngine

    monkeypatch.setattr(AMMEngine, "diagnostics", lambda self, x: {})
    plain = tiny(AMMClustering, n_clusters=3, random_state=0, n_iter=2).fit(X)
    assert "grad_ratio_zx" not in plain.history_[0]
    np.testing.assert_array_equal(plain.labels_, est.labels_)


def test_amm_sigma_y_bound(blobs):
    """``sigma_y_max`` bounds the noise of Eq. 8; None leaves it unbounded (the paper)."""
    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, random_state=0, sigma_y_max=0.5).fit(X)
    x = torch.as_tensor(est.scaler_.transform(X), dtype=torch.float32)
    enc = est.engine_.enc
    with torch.no_grad():
        enc.y_head[-1].bias.add_(100.0)  # push every log-variance far up
        logvar_y = enc(x, full=True)[4]
    assert float(torch.exp(0.5 * logvar_y).max()) == pytest.approx(0.5)
    free = tiny(AMMClustering, n_clusters=3, random_state=0, sigma_y_max=None).fit(X)
    with torch.no_grad():
        free.engine_.enc.y_head[-1].bias.add_(100.0)
        assert float(free.engine_.enc(x, full=True)[4].min()) > 50
    with pytest.raises(ValueError, match="sigma_y_max"):
        AMMClustering(sigma_y_max=0).fit(X)


# -- AMM: the mixture weights p(y) ------------------------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_amm_cluster_weights_set_the_prior_the_game_matches(blobs, images):
    """Uniform for images and on request (Table 4); k-means proportions for tables (here two
    blobs of 120 and 30 rows) by default; given weights normalised."""
    from sklearn.datasets import make_blobs

    X, _ = blobs
    est = tiny(AMMClustering, n_clusters=3, cluster_weights="uniform", random_state=0).fit(X)
    np.testing.assert_allclose(est.cluster_weights_, 1 / 3, rtol=1e-6)
    est = tiny(AMMClustering, n_clusters=2, conv_channels=(4, 8), random_state=0).fit(images[0])
    np.testing.assert_allclose(est.cluster_weights_, 0.5, rtol=1e-6)
    est = tiny(AMMClustering, n_clusters=3, cluster_weights=[2, 1, 1], random_state=0).fit(X)
    np.testing.assert_allclose(est.cluster_weights_, [0.5, 0.25, 0.25], rtol=1e-6)
    # the game draws the prior's clusters from these weights
    counts = np.bincount(est.sample(4000, random_state=0)[1], minlength=3)
    np.testing.assert_allclose(counts / 4000, [0.5, 0.25, 0.25], atol=0.03)

    X2, _ = make_blobs(n_samples=[120, 30], centers=[[-6, 0], [6, 0]], random_state=0)
    for weights in ("kmeans", "auto"):
        est = tiny(AMMClustering, n_clusters=2, cluster_weights=weights, random_state=0).fit(X2)
        np.testing.assert_allclose(sorted(est.cluster_weights_), [0.2, 0.8], atol=1e-4)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_amm_auto_weights_stay_uniform_when_table_clusters_are_near_equal():
    """On a table whose k-means clusters differ in size by chance only (45 / 50 / 55 rows,
    chi-square p = 0.6), ``"auto"`` keeps the paper's uniform p(y); ``"kmeans"`` still takes
    the proportions."""
    from sklearn.datasets import make_blobs

    X, _ = make_blobs(n_samples=[45, 50, 55], centers=[[-8, 0], [0, 8], [8, 0]],
                      random_state=0)
    est = tiny(AMMClustering, n_clusters=3, random_state=0).fit(X)
    np.testing.assert_allclose(est.cluster_weights_, 1 / 3, rtol=1e-6)
    est = tiny(AMMClustering, n_clusters=3, cluster_weights="kmeans", random_state=0).fit(X)
    np.testing.assert_allclose(sorted(est.cluster_weights_), [0.3, 1 / 3, 11 / 30], atol=1e-4)


@pytest.mark.parametrize("weights", [[1, 1], [1, 0, 1], [1, -1, 1], [1, np.nan, 1]])
def test_amm_bad_cluster_weights_are_refused_before_training(blobs, weights, monkeypatch):
    from skganem import _base

    monkeypatch.setattr(_base, "fit_loop", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(ValueError, match="cluster_weights"):
        tiny(AMMClustering, n_clusters=3, cluster_weights=weights).fit(blobs[0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_amm_warm_start_keeps_the_cluster_weights(blobs):
    est = tiny(AMMClustering, n_clusters=3, cluster_weights="kmeans", random_state=0).fit(blobs[0])
    before = est.cluster_weights_.copy()
    est.set_params(warm_start=True, n_iter=1).fit(blobs[0])
    np.testing.assert_array_equal(est.cluster_weights_, before)


# -- AMM: the paper's MNIST networks (Tables 3, 5, 6) -------------------------------------
def _mnist_like(n=40, size=(28, 28), seed=0):
    rng = np.random.RandomState(seed)
    X = rng.rand(n, *size).astype(np.float32) * 0.2
    X[: n // 2, : size[0] // 2] += 0.8
    X[n // 2:, size[0] // 2:] += 0.8
    return X


def test_amm_paper_networks_follow_tables_3_5_6():
    """On 28x28 images: maps of 27, 13, 6, 4 and 1 pixels in both encoder streams (and the
    critic's x stream), channels 32/32/64/64/128, a decoder that mirrors them back to 28x28."""
    from skganem._engines._amm_paper import PaperCritic, PaperDecoder, PaperInference

    est = AMMClustering(n_clusters=3, architecture="paper", n_iter=1, batch_size=16,
                        random_state=0)
    with warnings.catch_warnings():  # one epoch of 3 updates may end degenerate
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(_mnist_like())
    enc, dec, D = est.engine_.enc.streams, est.engine_.dec, est.engine_.D
    assert isinstance(enc, PaperInference) and isinstance(dec, PaperDecoder)
    assert isinstance(D, PaperCritic)
    sizes = []
    hooks = [c.register_forward_hook(lambda m, i, o: sizes.append((o.shape[1], o.shape[2])))
             for c in enc.z_convs]
    with torch.no_grad():
        est.engine_.eval()
        enc.code(torch.zeros(2, 1, 28, 28))
    for h in hooks:
        h.remove()
    assert sizes == [(32, 27), (32, 13), (64, 6), (64, 4), (128, 1)]
    assert [c.kernel_size for c in enc.y_convs] == [(2, 2), (3, 3), (3, 3), (3, 3), (4, 4)]
    assert [c.stride for c in D.x_net.convs] == [(1, 1), (2, 2), (2, 2), (1, 1), (1, 1)]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in D.modules())  # Table 6
    assert est.inverse_transform(est.transform(_mnist_like()[:3])).shape == (3, 784)
    assert est.transform(_mnist_like()[:3]).shape == (3, 64)


def test_amm_paper_z_stream_sees_only_x_and_feeds_the_y_stream():
    """Table 3's factorization in the two-stream nets: the y stream's weights do not move
    ``transform`` (z), and the z stream's weights move the clusters (y)."""
    X = _mnist_like()
    est = AMMClustering(n_clusters=2, architecture="paper", n_iter=1, batch_size=16,
                        random_state=0, predict_method="encoder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    streams = est.engine_.enc.streams
    Z, P = est.transform(X), est.predict_proba(X)
    with torch.no_grad():
        for p in [*streams.y_convs.parameters(), *streams.y_out.parameters()]:
            p.add_(torch.randn_like(p))
    np.testing.assert_array_equal(est.transform(X), Z)
    est2 = AMMClustering(n_clusters=2, architecture="paper", n_iter=1, batch_size=16,
                         random_state=0, predict_method="encoder")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est2.fit(X)
    with torch.no_grad():
        est2.engine_.enc.streams.z_convs[2].weight.add_(0.5)
    assert not np.allclose(est2.predict_proba(X), P)


@pytest.mark.parametrize("size", [(16, 16), (20, 25)])
def test_amm_paper_networks_fit_other_image_sizes(size):
    X = _mnist_like(size=size)
    est = AMMClustering(n_clusters=2, architecture="paper", n_iter=1, batch_size=16,
                        random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X)
    assert est.inverse_transform(est.transform(X[:2])).shape == (2, size[0] * size[1])
    assert est.sample(3)[0].shape == (3, size[0] * size[1])


@pytest.mark.parametrize("X", [np.random.RandomState(0).rand(30, 8, 8),
                               np.random.RandomState(0).rand(30, 5)])
def test_amm_paper_networks_refuse_small_images_and_tables_before_training(X, monkeypatch):
    from skganem import _base

    monkeypatch.setattr(_base, "fit_loop", lambda *a, **k: pytest.fail("training started"))
    with pytest.raises(ValueError, match="architecture='paper'.*16x16"):
        AMMClustering(n_clusters=2, architecture="paper").fit(X)
