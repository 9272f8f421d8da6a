"""GAN-EM training engine (Zhao et al.), Algorithm 1.

M-step: ``phi = N_i / N`` from the soft assignments ``w``; alternating D / G updates with the
weighted discriminator loss (Eq. 2 plus the extra real/fake unit) and the generator loss
(Eq. 1, or the authors' code's BCE form). E-step: the E-net is trained with cross-entropy on
generated samples whose classes are balanced within each batch (the authors' code) or drawn
``c ~ phi`` (Eq. 5 as written); optionally also on labeled real rows (Sec. 5.3); then
``w = E(x_real)``, and empty or near-empty clusters are re-seeded (ours).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .. import _losses
from .._augment import make_augmentation
from .._device import batch_slices
from .._networks import (Decoder, Encoder, NetSpec, clip_weights_, frozen_params,
                         init_weights)
from ._base import Engine, LossMeter, draw_indices, epoch_batches, make_adam, near_empty
from ._kmeans import kmeans_plus_plus, nearest


@dataclass
class GANEMConfig:
    """Hyper-parameters of the GAN-EM engine (see :class:`skganem.GANEMClustering`)."""

    n_clusters: int
    n_components: int
    spec: NetSpec
    noise_dim: int = 62
    batch_size: int = 64
    m_epochs: float = 5.0
    e_steps: int = 1000
    e_batch_size: int = 200
    lr_d: float = 2e-4
    lr_g: float = 6e-4
    lr_e: float = 6e-5
    lr_decay: float = 0.98
    optimizer: str = "adam"
    generator_loss: str = "bce"
    clip_value: float | None = None
    batchnorm: bool = True
    label_tol: float = 0.05
    max_label_steps: int = 1000
    e_dropout: float = 0.3
    min_m_steps: int = 500
    min_m_steps_max_passes: float | None = None
    e_input_noise: float = 0.0
    e_classes: str = "balanced"
    e_augmentation: str | None = None
    image_shape: tuple | None = None


def _make_optimizer(kind: str, params, lr: float, device) -> torch.optim.Optimizer:
    if kind == "adam":
        return make_adam(params, lr, device)
    return torch.optim.RMSprop(params, lr=lr, foreach=True)


class GANEMEngine(Engine):
    """Conditional generator G(z, c), discriminator with K + 1 logits, E-net with layer r."""

    def build(self):
        cfg = self.config
        k = cfg.n_clusters
        # G: [z ~ U[0,1)^noise_dim, one_hot(c)] -> sample (Table 4 for 28x28 images).
        self.G = Decoder(cfg.noise_dim + k, self.sample_shape, cfg.spec, batchnorm=cfg.batchnorm)
        # D: K class units + 1 real/fake unit (Sec. 4.3.2).
        self.D = Encoder(self.sample_shape, k + 1, cfg.spec,
                         batchnorm=cfg.batchnorm and cfg.spec.kind == "conv")
        # E-net: same trunk as D, a layer r of n_components units, then K logits (Sec. 5.4).
        e_spec = NetSpec(cfg.spec.kind, tuple(cfg.spec.hidden_dims) + (cfg.n_components,),
                         cfg.spec.conv_channels)
        self.E = Encoder(self.sample_shape, k, e_spec,
                         batchnorm=cfg.batchnorm and cfg.spec.kind == "conv",
                         dropout=cfg.e_dropout, fast_dropout=True)
        self.nets = {"G": self.G, "D": self.D, "E": self.E}
        for net in self.nets.values():
            init_weights(net)
            net.to(self.device)
        self.opt_g = _make_optimizer(cfg.optimizer, self.G.parameters(), cfg.lr_g, self.device)
        self.opt_d = _make_optimizer(cfg.optimizer, self.D.parameters(), cfg.lr_d, self.device)
        self.opt_e = _make_optimizer(cfg.optimizer, self.E.parameters(), cfg.lr_e, self.device)
        self.phi = torch.full((k,), 1.0 / k, device=self.device)
        self.e_augment = make_augmentation(cfg.e_augmentation, cfg.image_shape)

    def init_state(self, data, rng, w_init=None, labels=None):
        """Set the first E-step's output ``w`` (uniform unless ``w_init`` is given).

        ``labels`` (int array, -1 for unlabeled) switches on the semi-supervised E-step.
        """
        k = self.config.n_clusters
        if w_init is None:
            w_init = np.full((data.n, k), 1.0 / k, dtype=np.float32)
        self.W = torch.as_tensor(np.asarray(w_init, dtype=np.float32), device=self.device)
        self.labeled_idx = None
        if labels is not None:
            idx = np.flatnonzero(labels >= 0)
            if idx.size:
                self.labeled_idx = torch.as_tensor(idx, device=data.index_device)
                self.labeled_y = torch.as_tensor(labels[idx], dtype=torch.long, device=self.device)

    # -- helpers -----------------------------------------------------------------------
    def _noise(self, n):
        return torch.rand(n, self.config.noise_dim, device=self.device)

    def _g(self, c):
        onehot = F.one_hot(c, self.config.n_clusters).float()
        return self.G(torch.cat([self._noise(c.shape[0]), onehot], dim=1))

    def _balanced_classes(self, n):
        k = self.config.n_clusters
        c = torch.arange(n, device=self.device) % k
        return c[torch.randperm(n, device=self.device)]

    def _set_lr(self, iteration):
        cfg = self.config
        decay = cfg.lr_decay ** iteration
        for opt, lr in ((self.opt_g, cfg.lr_g), (self.opt_d, cfg.lr_d), (self.opt_e, cfg.lr_e)):
            for group in opt.param_groups:
                group["lr"] = lr * decay

    # -- Algorithm 1 -------------------------------------------------------------------
    def run_iteration(self, data, iteration, rng):
        cfg = self.config
        self._set_lr(iteration)
        meter = LossMeter()
        # M-step, phi: phi_i = N_i / N (Sec. 3.1, App. A.2).
        self.phi = self.W.mean(0)
        # M-step, psi: p epochs of alternating D / G updates.
        n_batches = max(self.m_step_floor(data.n),
                        int(math.ceil(cfg.m_epochs * data.n / cfg.batch_size)))
        gen_loss = (_losses.ganem_generator_loss_bce if cfg.generator_loss == "bce"
                    else _losses.ganem_generator_loss_kl)
        for idx in epoch_batches(data.n, cfg.batch_size, n_batches, data.index_device):
            x_real = data.rows(idx)
            w = self.W[idx.to(self.device)]
            c = self._balanced_classes(x_real.shape[0])  # c ~ U, balanced within the batch
            fake = self._g(c)
            # D step: minimise Eq. 2 (weighted real term, all-K-units fake term) + extra unit.
            loss_d = _losses.ganem_discriminator_loss(self.D(x_real), self.D(fake.detach()), w)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            # G step: minimise Eq. 1 (or the BCE form) so that D_c calls G(z, c) real.
            with frozen_params(self.D):  # G's step needs no gradient of D's weights
                loss_g = gen_loss(self.D(fake), c)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            clip_weights_(self.G, cfg.clip_value)  # Lipschitz generator (Sec. 4.4)
            meter.add("loss_d", loss_d)
            meter.add("loss_g", loss_g)
        # E-step: train E on generated samples (Eq. 5), their classes balanced within each
        # batch (the authors' code) or drawn c ~ phi (the paper's text). With c ~ phi a
        # cluster that shrinks gets fewer generated samples, so E learns it worse and it
        # shrinks further: on flat data the mixture collapsed into one or a few clusters.
        for _ in range(cfg.e_steps):
            if cfg.e_classes == "balanced":
                c = self._balanced_classes(cfg.e_batch_size)
            else:
                c = torch.multinomial(self.phi, cfg.e_batch_size, replacement=True)
            with torch.no_grad():
                x_fake = self._g(c)
                if cfg.e_input_noise > 0:
                    x_fake = x_fake + cfg.e_input_noise * torch.randn_like(x_fake)
                if self.e_augment is not None:  # ours: E learns classes that survive
                    x_fake = self.e_augment(x_fake)  # small rotations and shifts
            loss_e = _losses.enet_loss(self.E(x_fake), c)
            self.opt_e.zero_grad(set_to_none=True)
            loss_e.backward()
            self.opt_e.step()
            meter.add("loss_e", loss_e)
        if self.labeled_idx is not None:
            meter.add("label_error", torch.tensor(self._fit_labeled(data, rng)))
        # Update the assignments: w = E(x_real) (Alg. 1, line 14).
        self.W = self._assign(data)
        out = meter.means()
        out["cluster_sizes"] = torch.bincount(self.W.argmax(1),
                                              minlength=cfg.n_clusters).tolist()
        out["phi"] = [round(float(v), 4) for v in self.phi]
        out["reseeded"] = self._reseed_small_clusters(data, out["cluster_sizes"])
        return out

    def m_step_floor(self, n: int) -> int:
        """G/D updates an M-step on ``n`` rows makes at least: ``min_m_steps``, but at most
        ``min_m_steps_max_passes`` passes over the rows (None: no bound)."""
        cfg = self.config
        if cfg.min_m_steps_max_passes is None:
            return cfg.min_m_steps
        cap = int(math.ceil(cfg.min_m_steps_max_passes * n / cfg.batch_size))
        return max(1, min(cfg.min_m_steps, cap))

    def _reseed_small_clusters(self, data, sizes):
        """Give each empty or near-empty cluster half of the largest one (ours).

        A cluster without real rows gets no positive term in D's Eq. 2 and stays empty for
        good. As ``KMeans`` re-seeds an empty cluster, the largest cluster's rows are split in
        two by 2-means on the E-net's layer ``r``, and the small cluster takes the smaller
        part, as one-hot assignments for the next M-step. Returns the re-seeded clusters.
        """
        k = self.config.n_clusters
        small = near_empty(sizes, data.n)
        if not small or data.n < 2 * k:
            return []
        self.E.eval()
        with torch.no_grad():
            feats = torch.cat([self.E.features(data.rows(sl))
                               for sl in batch_slices(data.n, 1024)]).float()
        self.E.train()
        if not torch.isfinite(feats).all():
            return []  # diverged: fit_loop reports it
        labels = self.W.argmax(1)
        sizes = list(sizes)
        done = []
        for j in small:
            big = max(range(k), key=lambda i: sizes[i])
            rows = torch.nonzero(labels == big).squeeze(1)
            if rows.numel() < 2:
                break
            centers = kmeans_plus_plus(feats[rows], 2)
            part = nearest(feats[rows], centers)
            moved = rows[part == int(torch.bincount(part, minlength=2).argmin())]
            if moved.numel() == 0:
                continue
            self.W[moved] = F.one_hot(torch.full_like(moved, j), k).to(self.W.dtype)
            labels[moved] = j
            sizes[big] -= moved.numel()
            sizes[j] += moved.numel()
            done.append(j)
        return done

    def _fit_labeled(self, data, rng):
        """Semi-supervised E-step (Sec. 5.3): CE on labeled rows until error < label_tol."""
        cfg = self.config
        n_lab = self.labeled_idx.numel()
        bs = max(2, min(cfg.e_batch_size, n_lab))  # batch normalisation needs two rows
        error = 1.0
        for step in range(cfg.max_label_steps + 1):
            if step % 10 == 0:
                error = self._labeled_error(data)
                if error < cfg.label_tol:
                    break
            pick = draw_indices(n_lab, bs, self.labeled_y.device)
            x = data.rows(self.labeled_idx[pick.to(self.labeled_idx.device)])
            loss = _losses.enet_loss(self.E(x), self.labeled_y[pick])
            self.opt_e.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_e.step()
        return error

    def _labeled_error(self, data):
        self.E.eval()
        with torch.no_grad():
            wrong = 0
            for sl in batch_slices(self.labeled_idx.numel(), 1024):
                pred = self.E(data.rows(self.labeled_idx[sl])).argmax(1)
                wrong += int((pred != self.labeled_y[sl]).sum())
        self.E.train()
        return wrong / self.labeled_idx.numel()

    def _assign(self, data, batch_size=1024):
        self.E.eval()
        with torch.no_grad():
            out = torch.cat([torch.softmax(self.E(data.rows(sl)), 1)
                             for sl in batch_slices(data.n, batch_size)])
        self.E.train()
        return out

    def assignments(self, data):
        return self.W.argmax(1)

    # -- inference ---------------------------------------------------------------------
    def predict_proba(self, x):
        return torch.softmax(self.E(x), dim=1)

    def transform(self, x):
        return self.E.features(x)

    def generate(self, clusters):
        return self._g(clusters)

    def cluster_prior(self):
        return self.phi.detach().cpu()

    def extra_state(self):
        return {"phi": self.phi}

    def training_state(self):
        return {"W": self.W}

    def resume(self, data, rng, w_init=None, labels=None):
        """Continue from the E-net: ``w = E(x)`` on the (possibly new) data."""
        self.init_state(data, rng, w_init=self._assign(data).cpu().numpy(), labels=labels)
