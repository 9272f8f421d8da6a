"""KM-GAN training engine (Wang et al.), Algorithm 1 (and the reduced Algorithm 2).

The discriminator D is a feature extractor ending in ``n_components`` sigmoid units
(Tables 2, 3). Real centers are seeded by k-means++ on D(X); each training step takes a real
and a generated batch, labels both by their nearest center, and makes three Adam updates in
the paper's order: D on L_D (Eq. 5, + lambda (L_intra - L_inter), Eq. 7), G on L_G (Eq. 6,
+ lambda L_inter), then D and G together on the center loss (Eq. 4). The centers then move
by one mini-batch k-means step (Sculley). D's weights are clipped after each update.

Ours, not the paper's (all off gives Algorithm 1): an autoencoder term
``mean (G(R(D(x))) - x)^2`` in D's step and in the joint step, ``pretrain_iter`` epochs of it
alone before the centers are seeded (with its own Adam optimiser, optionally on randomly
rotated and shifted images, as DEC-DA pretrains its autoencoder), and ``adversarial_weight``
on the generated-data term of Eq. 5 and on the center loss.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .. import _losses
from .._augment import make_augmentation
from .._device import batch_slices
from .._networks import (Decoder, Encoder, NetSpec, batchnorm_layers, clip_weights_,
                         frozen_batchnorm_stats, frozen_params, init_weights)
from ._base import Engine, LossMeter, epoch_batches, make_adam
from ._gmm import fit_gmm, gmm_proba
from ._kmeans import kmeans_plus_plus, lloyd, minibatch_kmeans_update_, nearest


@dataclass
class KMGANConfig:
    """Hyper-parameters of the KM-GAN engine (see :class:`skganem.KMGAN`)."""

    n_clusters: int
    n_components: int
    spec: NetSpec
    noise_dim: int = 100
    batch_size: int = 64
    lr: float = 2e-4
    clip_value: float | None = 1.0
    d_round: float = 0.0
    lambda_reg: float = 0.0
    variant: str = "feature"
    batchnorm: bool = True
    init_rows: int = 20000
    reconstruction_weight: float = 0.0
    pretrain_iter: int = 0
    pretrain_lr: float | None = None
    adversarial_weight: float = 1.0
    n_init: int = 10
    refine_iter: int = 0
    refine: str = "kmeans"  # "gmm": a full-covariance Gaussian mixture from Lloyd's clusters
    augmentation: str | None = None
    image_shape: tuple | None = None


class _SigmoidFeatures(torch.nn.Module):
    """D as a feature extractor: an encoder whose last layer has sigmoid units."""

    def __init__(self, encoder: Encoder):
        super().__init__()
        self.encoder = encoder

    def forward(self, x):
        return torch.sigmoid(self.encoder(x))


class KMGANEngine(Engine):
    """Generator G(z) and feature extractor D(x) with k real and k generated centers."""

    def build(self):
        cfg = self.config
        self.G = Decoder(cfg.noise_dim, self.sample_shape, cfg.spec, batchnorm=cfg.batchnorm)
        self.D = _SigmoidFeatures(Encoder(self.sample_shape, cfg.n_components, cfg.spec,
                                          batchnorm=cfg.batchnorm))
        self.nets = {"G": self.G, "D": self.D}
        if cfg.variant == "feature" and (cfg.reconstruction_weight > 0 or cfg.pretrain_iter > 0):
            # ours: a linear map R from D's features to G's input, so that G(R(D(x))) ~ x
            self.R = torch.nn.Linear(cfg.n_components, cfg.noise_dim)
            self.nets["R"] = self.R
        else:
            self.R = None
        for net in self.nets.values():
            init_weights(net)
            net.to(self.device)
        self.opt_d = make_adam(self.D.parameters(), cfg.lr, self.device)
        self.opt_g = make_adam(self.G.parameters(), cfg.lr, self.device)
        joint = [p for net in self.nets.values() for p in net.parameters()]
        self.opt_c = make_adam(joint, cfg.lr, self.device)
        # The autoencoder's pretraining: its own Adam with the betas autoencoders usually
        # train with (DEC, DEC-DA) and a cosine-annealed rate, or with pretrain_lr=None the
        # joint step's optimiser at its constant rate.
        self.opt_pre = self.opt_c if cfg.pretrain_lr is None else make_adam(
            joint, cfg.pretrain_lr, self.device, betas=(0.9, 0.999))
        dim = cfg.n_components if cfg.variant == "feature" else int(
            torch.tensor(self.sample_shape).prod())
        self.centers = torch.zeros(cfg.n_clusters, dim, device=self.device)
        self.temperature = torch.tensor(1.0, device=self.device)
        self.fake_centers = self.counts = self.fake_counts = None  # set by init_state
        self.augment = make_augmentation(cfg.augmentation, cfg.image_shape)

    def _space(self, x: torch.Tensor) -> torch.Tensor:
        """Where k-means runs: D's features, or the input space for the reduced variant."""
        return self.D(x) if self.config.variant == "feature" else x.reshape(x.shape[0], -1)

    def init_state(self, data, rng):
        self._seed_centers(data, rng)
        self.playing = self.config.variant != "feature" or self.config.pretrain_iter == 0

    def assignments(self, data):
        """Nearest real center of every row (eval mode); None during pretraining."""
        if not getattr(self, "playing", True):
            return None
        self.eval()
        with torch.no_grad():
            return torch.cat([nearest(self._space(data.rows(sl)), self.centers)
                              for sl in batch_slices(data.n, 1024)])

    def _refresh_batchnorm_stats(self, data, batch_size=256):
        """Recompute D's batch-normalisation running statistics from the real rows as they
        are (a cumulative average over one pass), after phases whose batches were augmented."""
        layers = batchnorm_layers(self.D)
        if not layers:
            return
        saved = [m.momentum for m in layers]
        for m in layers:
            m.reset_running_stats()
            m.momentum = None
        self.D.train()
        with torch.no_grad():
            for sl in batch_slices(data.n, batch_size):
                if sl.stop - sl.start > 1:
                    self.D(data.rows(sl))
        for m, momentum in zip(layers, saved):
            m.momentum = momentum

    def _seed_centers(self, data, rng, refresh_stats=False):
        cfg = self.config
        if refresh_stats:
            self._refresh_batchnorm_stats(data)  # pretraining saw augmented rows
        n = min(data.n, cfg.init_rows)
        idx = rng.choice(data.n, size=n, replace=False) if n < data.n else None
        self.D.eval()
        with torch.no_grad():
            rows = [self._space(data.rows(idx[sl] if idx is not None else sl))
                    for sl in batch_slices(n, 1024)]
        self.D.train()
        feats = torch.cat(rows)
        # Real centers by k-means++ (Algorithm 1); generated centers start as a copy, so that
        # center m of real and generated data correspond.
        self.centers = kmeans_plus_plus(feats, cfg.n_clusters, n_init=cfg.n_init)
        self.fake_centers = self.centers.clone()
        # Sculley's per-center counts start at the seeding's cluster sizes (ours; the paper is
        # silent): each seeded center is the mean of its rows, so the mini-batch steps
        # continue that running mean instead of replacing it by the first batch's few rows.
        self.counts = torch.bincount(nearest(feats, self.centers),
                                     minlength=cfg.n_clusters).to(feats.dtype)
        self.fake_counts = self.counts.clone()

    def _noise(self, n):
        return torch.randn(n, self.config.noise_dim, device=self.device)

    def run_iteration(self, data, iteration, rng):
        """One epoch: ``ceil(n / batch_size)`` steps of Algorithm 1 (or 2)."""
        cfg = self.config
        meter = LossMeter()
        n_batches = int(math.ceil(data.n / cfg.batch_size))
        step = self._step_feature if cfg.variant == "feature" else self._step_reduced
        pretrain = cfg.pretrain_iter if cfg.variant == "feature" else 0
        self.playing = iteration >= pretrain
        if iteration < pretrain:
            step = self._step_pretrain
        elif iteration == pretrain > 0:
            # Algorithm 1's k-means++, on the pretrained D
            self._seed_centers(data, rng, refresh_stats=self.augment is not None)
        anneal = iteration < pretrain and cfg.pretrain_lr is not None
        for b, idx in enumerate(epoch_batches(data.n, cfg.batch_size, n_batches,
                                              data.index_device)):
            if anneal:  # the pretraining's own rate falls to 0 along a half cosine (ours)
                t = (iteration * n_batches + b) / (pretrain * n_batches)
                for group in self.opt_pre.param_groups:
                    group["lr"] = cfg.pretrain_lr * 0.5 * (1.0 + math.cos(math.pi * t))
            for name, value in step(data.rows(idx)).items():
                if name == "labels":
                    meter.count("cluster_sizes", value, cfg.n_clusters)
                else:
                    meter.add(name, value)
        return meter.means()

    def _adam(self, opt, loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    def _eval_features(self, *batches):
        """D's features of each batch in eval mode, without gradient: what seeding,
        refinement, inference and the training step's labels all use, so that one feature map
        assigns clusters."""
        self.D.eval()
        with torch.no_grad():
            out = [self.D(x) for x in batches]
        self.D.train()
        return out

    def _d_fake(self, x):
        """D on generated rows: batch statistics for the forward pass, but the running
        statistics (used in eval mode) stay those of real rows."""
        with frozen_batchnorm_stats(self.D):
            return self.D(x)

    def _step_feature(self, x):
        cfg = self.config
        z = self._noise(x.shape[0])
        fake = self.G(z)
        # labels by the nearest current center, on eval-mode features (real-row statistics)
        e_r, e_f = self._eval_features(x, fake.detach())
        lab_r, lab_f = nearest(e_r, self.centers), nearest(e_f, self.fake_centers)
        c_real, c_gen = self.centers[lab_r], self.centers[lab_f]
        # 1) D: min ||D(x) - C_real|| - ||D(G(z)) - C_gen|| (Eq. 5) [+ lambda (intra - inter)]
        f_r, f_f = self.D(x), self._d_fake(fake.detach())
        loss_d = _losses.kmgan_discriminator_loss(f_r, c_real, f_f, c_gen,
                                                  fake_weight=cfg.adversarial_weight)
        if cfg.reconstruction_weight:  # ours: keeps D's features informative (DCN-style)
            loss_d = loss_d + cfg.reconstruction_weight * self._reconstruction(x, f_r)
        if cfg.lambda_reg:
            intra, inter = _losses.kmgan_intra_inter(f_r, f_f)
            loss_d = loss_d + cfg.lambda_reg * (intra - inter)
        self._adam(self.opt_d, loss_d)
        clip_weights_(self.D, cfg.clip_value)
        # 2) G: min ||D(G(z)) - C_gen|| (Eq. 6) [+ lambda inter]
        with frozen_params(self.D):  # G's step needs no gradient of D's weights
            f_f = self._d_fake(fake)
            loss_g = _losses.kmgan_generator_loss(f_f, c_gen)
            if cfg.lambda_reg:
                loss_g = loss_g + cfg.lambda_reg * _losses.kmgan_intra_inter(
                    self.D(x).detach(), f_f)[1]
        if cfg.adversarial_weight:  # (Adam is scale-free: the weight only switches it off)
            self._adam(self.opt_g, loss_g)
        # 3) D and G together: min L_center (Eq. 4), floored at d_round.
        f_r, f_f = self.D(x), self._d_fake(self.G(z))
        loss_c = _losses.kmgan_center_loss(f_r, lab_r, self.centers, f_f, lab_f,
                                           self.fake_centers, cfg.d_round)
        losses = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                  "loss_center": loss_c.detach(), "labels": lab_r}
        loss_joint = cfg.adversarial_weight * loss_c
        if cfg.reconstruction_weight:
            loss_r = self._reconstruction(x, f_r)
            losses["loss_rec"] = loss_r.detach()
            loss_joint = loss_joint + cfg.reconstruction_weight * loss_r
        if cfg.adversarial_weight or cfg.reconstruction_weight:  # both 0: no joint step
            self._adam(self.opt_c, loss_joint)
        clip_weights_(self.D, cfg.clip_value)
        # 4) centers: one mini-batch k-means step (Eq. 3) on the batch's eval-mode features
        # and the labels they gave (Sculley: assign the batch, then move the centers).
        with torch.no_grad():
            minibatch_kmeans_update_(self.centers, self.counts, e_r, lab_r)
            minibatch_kmeans_update_(self.fake_centers, self.fake_counts, e_f, lab_f)
        return losses

    def _reconstruction(self, x, features=None):
        """``mean (G(R(D(x))) - x)^2``: D encodes, G decodes through the linear map R.

        ``features`` are D(x) when the step has already computed them (train mode, with
        gradient), so that D's pass over the real batch is not repeated."""
        if features is None:
            features = self.D(x)
        return _losses.reconstruction_loss(x, self.G(self.R(features)))

    def _step_pretrain(self, x):
        """One autoencoder step of D, R and G (the first ``pretrain_iter`` epochs).

        With an augmentation the autoencoder encodes and reconstructs a randomly transformed
        copy of the batch, as DEC-DA pretrains its autoencoder (ours, not KM-GAN's). The game
        that follows sees the rows as they are.
        """
        if self.augment is not None:
            x = self.augment(x)
        loss = self._reconstruction(x)
        self._adam(self.opt_pre, loss)
        clip_weights_(self.D, self.config.clip_value)
        return {"loss_rec": loss.detach()}

    def _step_reduced(self, x):
        """Algorithm 2: k-means in the input space; centers enter through D(C)."""
        cfg = self.config
        z = self._noise(x.shape[0])
        fake = self.G(z)
        flat_r = x.reshape(x.shape[0], -1)
        with torch.no_grad():
            lab_r = nearest(flat_r, self.centers)
            lab_f = nearest(fake.reshape(fake.shape[0], -1), self.centers)
        shape = (-1,) + self.sample_shape
        c_real = self.centers[lab_r].reshape(shape)
        c_gen = self.centers[lab_f].reshape(shape)
        # center loss ||D(C~_real) - D(C~_gen)||_1: the centers are points of the input space,
        # so only D receives its gradient (G enters through the labels alone).
        loss_c = (self.D(c_real) - self.D(c_gen)).abs().sum().clamp(min=cfg.d_round)
        if loss_c.requires_grad:
            self._adam(self.opt_c, loss_c)
        loss_d = torch.linalg.norm(self.D(x) - self.D(c_real))
        self._adam(self.opt_d, loss_d)
        clip_weights_(self.D, cfg.clip_value)
        loss_g = torch.linalg.norm(self.D(self.G(z)) - self.D(c_gen).detach())
        self._adam(self.opt_g, loss_g)
        with torch.no_grad():
            minibatch_kmeans_update_(self.centers, self.counts, flat_r, lab_r)
        return {"loss_d": loss_d.detach(), "loss_g": loss_g.detach(),
                "loss_center": loss_c.detach(), "labels": lab_r}

    def finalize(self, data):
        """Refine the real centers (``refine_iter``), then fit the softmax temperature.

        The refinement (ours) runs Lloyd's k-means on D(X) of every training row from the
        game's centers: Algorithm 1 leaves them where the last mini-batch k-means step put
        them. With ``refine="gmm"`` a Gaussian mixture with full covariances is then fitted
        by EM on the same features, started from Lloyd's clusters, and gives the soft
        assignments. The temperature is the mean squared distance of the rows to their center.
        """
        cfg = self.config
        self.gmm_log_weights = self.gmm_means = self.gmm_prec_chol = None
        with torch.no_grad():
            chunks = (self._space(data.rows(sl)) for sl in batch_slices(data.n, 1024))
            if cfg.refine_iter > 0 and cfg.variant == "feature":
                feats = torch.cat(list(chunks))
                # in place: fit calls finalize under inference_mode, and a warm-started fit
                # updates the centers in place again (an inference tensor would refuse that)
                self.centers.copy_(lloyd(feats, self.centers, cfg.refine_iter))
                if cfg.refine == "gmm":
                    self.gmm_log_weights, self.gmm_means, self.gmm_prec_chol = fit_gmm(
                        feats, nearest(feats, self.centers), cfg.n_clusters, cfg.refine_iter)
                chunks = feats.split(1024)  # the same features, not computed twice
            total = sum(float(torch.cdist(c, self.centers).pow(2).min(dim=1).values.sum())
                        for c in chunks)
        self.temperature = torch.tensor(max(total / max(data.n, 1), 1e-12), device=self.device)

    # -- inference ---------------------------------------------------------------------
    def sq_distances(self, x):
        # exact pairwise distances: cdist's matmul shortcut depends on the batch size
        return torch.cdist(self._space(x), self.centers,
                           compute_mode="donot_use_mm_for_euclid_dist").pow(2)

    def predict_proba(self, x):
        if getattr(self, "gmm_means", None) is not None:
            return gmm_proba(self._space(x), self.gmm_log_weights, self.gmm_means,
                             self.gmm_prec_chol).float()
        return torch.softmax(-self.sq_distances(x) / self.temperature, dim=1)

    def transform(self, x):
        return self.D(x)

    def generate(self, clusters):
        return self.G(self._noise(clusters.shape[0]))

    def extra_state(self):
        return {"centers": self.centers, "temperature": self.temperature,
                "gmm_log_weights": getattr(self, "gmm_log_weights", None),
                "gmm_means": getattr(self, "gmm_means", None),
                "gmm_prec_chol": getattr(self, "gmm_prec_chol", None)}

    def training_state(self):
        return {"fake_centers": self.fake_centers, "counts": self.counts,
                "fake_counts": self.fake_counts}

    def resume(self, data, rng):
        """Keep the centers; restart the mini-batch counts if they were not kept."""
        if getattr(self, "fake_centers", None) is None:
            self.fake_centers = self.centers.clone()
        for name in ("counts", "fake_counts"):
            if getattr(self, name, None) is None:
                setattr(self, name, torch.zeros(self.config.n_clusters, device=self.device))
