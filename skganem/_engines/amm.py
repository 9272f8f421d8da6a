"""AMM / SAMM training engine (Adversarially Learned Mixture Model), Algorithms 1 and 2.

Inference side G_z(x) G_y(x, G_z(x)) (Table 3): an encoder trunk f(x), the head G_z giving
``z = mu_z + sigma_z * eps`` (Eq. 10) from f(x) alone, and the head G_y giving
``h_y = mu_y + sigma_y * eps`` and ``y = softmax(h_y)`` (Eq. 8, 9) from f(x) and mu_z, or
a one-hot draw from ``softmax(mu_y)`` with a straight-through gradient (``y_sampling="hard"``).
Synthesis side p(x, y, z) = p(y) p(z|y) p(x|y, z) (Eq. 11): a multinomial p(y), the mixture
prior ``z = G_z(y) + ExpN(zeros)`` of Table 4 (learned by Eq. 12, or fixed means), and the
decoder G_x(y, z). One joint
discriminator D(x, y, z) plays the game of Eq. 13 with the gradient penalty of Eq. 18.
SAMM adds the labeled game of Eq. 14 (Algorithm 2). The generators' loss may add our terms:
the latent cycle, the reconstruction and, on images, the consistency of ``mu_y`` between a
real image and a rotated and shifted copy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .. import _losses
from .._augment import make_augmentation
from .._device import batch_slices
from .._networks import (LEAK, Decoder, Encoder, NetSpec, dropout_layer, frozen_params,
                         init_weights, mlp)
from ._amm_paper import PaperCritic, PaperDecoder, PaperInference
from ._base import Engine, LossMeter, draw_indices, epoch_batches, make_adam
from ._gmm import fit_gmm, gmm_proba


#: Rows on which :meth:`AMMEngine.diagnostics` is measured after every epoch.
DIAGNOSTIC_ROWS = 256


@dataclass
class AMMConfig:
    """Hyper-parameters of the AMM engine (see :class:`skganem.AMMClustering`)."""

    n_clusters: int
    n_components: int
    spec: NetSpec
    batch_size: int = 64
    lr: float = 2e-4
    gp_weight: float = 10.0
    dropout: float = 0.2
    prior: str = "learned"
    batchnorm: bool = True
    cycle_weight: float = 1.0
    reconstruction_weight: float = 1.0
    init_epochs: float = 1.0
    sigma_y_max: float | None = None
    paper_nets: bool = False
    consistency_weight: float = 0.0
    augmentation: str | None = None  # of the consistency term's copies
    image_shape: tuple | None = None
    y_sampling: str = "relaxed"  # "relaxed": Eq. 8-9; "hard": straight-through one-hot draw
    mixture_reg: float = 0.3  # diagonal term of the codes' mixture, times the codes' variance
    mixture_n_init: int = 10  # k-means++ starts of the codes' mixture besides the encoder's


def hard_categorical(logits):
    """A one-hot draw from ``Categorical(softmax(logits))`` with the straight-through
    gradient of ``softmax(logits)`` (Bengio et al., 2013): the forward value is the one-hot
    row, the backward pass differentiates the probabilities."""
    soft = torch.softmax(logits, dim=1)
    pick = torch.multinomial(soft.detach().float(), 1).squeeze(1)
    hard = F.one_hot(pick, soft.shape[1]).to(soft.dtype)
    return hard + soft - soft.detach()


class _Inference(nn.Module):
    """G_z(x) and G_y(x, G_z(x)): the factorization of Table 3.

    The z stream sees only x: ``z = mu_z(x) + sigma_z(x) * eps`` (Eq. 10). The y stream
    sees x and the z stream: ``h_y = mu_y(x, z stream) + sigma_y * eps``, ``y = softmax(h_y)``
    (Eq. 8, 9), or with ``hard_y`` a one-hot draw from ``softmax(mu_y)`` with the
    straight-through gradient (:func:`hard_categorical`; ``sigma_y`` is then unused). With
    ``paper_nets`` the streams are Table 3's two interleaved conv nets
    (:class:`~skganem._engines._amm_paper.PaperInference`). Otherwise both heads share one
    trunk f(x) (the library's conv nets or perceptrons): ``mu_z`` comes from f(x) and the y
    head reads f(x) and ``mu_z``, which keeps the factorization at the cost of one trunk.
    """

    def __init__(self, sample_shape, k, latent, spec, dropout, batchnorm, sigma_y_max=None,
                 paper_nets=False, hard_y=False):
        super().__init__()
        self.hard_y = hard_y
        # bound of log sigma_y^2 (None: unbounded, as in the paper)
        self.logvar_y_max = None if sigma_y_max is None else 2.0 * math.log(sigma_y_max)
        if paper_nets:
            self.streams = PaperInference(sample_shape, k, latent, dropout)
            return
        self.streams = None
        self.trunk = Encoder(sample_shape, None, spec, batchnorm=batchnorm, dropout=dropout,
                             fast_dropout=True)
        feat = self.trunk.feature_dim
        self.z_head = nn.Linear(feat, 2 * latent)                          # mu_z, log sigma_z^2
        self.y_head = mlp((feat + latent, feat, 2 * k), dropout=dropout,  # mu_y, log sigma_y^2
                          fast_dropout=True)

    def code(self, x):
        """The z stream: what the y stream reads of it, ``mu_z`` and ``log sigma_z^2``."""
        if self.streams is not None:
            return self.streams.code(x)
        f = self.trunk.features(x)
        mu_z, logvar_z = self.z_head(f).chunk(2, dim=1)
        return f, mu_z, logvar_z

    def _y_logits(self, x, state, mu_z):
        """``mu_y`` and ``log sigma_y^2`` from x and the z stream's ``state`` and mean."""
        if self.streams is not None:
            return self.streams.y_logits(x, state)
        return self.y_head(torch.cat([state, mu_z], dim=1)).chunk(2, dim=1)

    def forward(self, x, y=None, noise=True, full=False):
        """Returns (y, mu_y, z, mu_z), and log sigma_y^2 with ``full``.

        ``y`` given (SAMM's labeled rows) replaces G_y's sample (``mu_y`` is then None).
        """
        state, mu_z, logvar_z = self.code(x)
        z = mu_z + torch.exp(0.5 * logvar_z) * torch.randn_like(mu_z) if noise else mu_z
        mu_y = logvar_y = None
        if y is None:
            mu_y, logvar_y = self._y_logits(x, state, mu_z)
            if self.logvar_y_max is not None:
                logvar_y = logvar_y.clamp(max=self.logvar_y_max)
            if not noise:
                y = torch.softmax(mu_y, dim=1)
            elif self.hard_y:
                y = hard_categorical(mu_y)
            else:
                y = torch.softmax(mu_y + torch.exp(0.5 * logvar_y) * torch.randn_like(mu_y),
                                  dim=1)
        return (y, mu_y, z, mu_z, logvar_y) if full else (y, mu_y, z, mu_z)


class _MixturePrior(nn.Module):
    """p(z|y=k) = N(m_k, I): the prior G_z(y) of Table 4 (Eq. 12).

    ``learned``: ``m_k = G_z(e_k)`` for a small perceptron ``k -> 64 (BN, Leaky 0.2) -> 64
    (dropout, BN, Leaky 0.2) -> latent`` initialised like the other networks, so that the
    component means start near 0; ``sigma = ExpN(zeros)``, a fixed unit variance, as in
    Table 4. Otherwise the means are fixed draws from N(0, I) (a known prior).
    """

    def __init__(self, k, latent, learned, dropout=0.2):
        super().__init__()
        self.k = k
        self.register_buffer("logvar", torch.zeros(k, latent))  # sigma = ExpN(zeros) = 1
        if learned:
            self.net = nn.Sequential(
                nn.Linear(k, 64), nn.BatchNorm1d(64), nn.LeakyReLU(LEAK),
                dropout_layer(dropout, fast=True),
                nn.Linear(64, 64), nn.BatchNorm1d(64), nn.LeakyReLU(LEAK), nn.Linear(64, latent))
            self.fixed_means = None
        else:
            self.net = None
            self.register_buffer("fixed_means", torch.randn(k, latent))

    def component_means(self):
        """``(K, latent)``: the mean of every component (the network in eval mode)."""
        if self.net is None:
            return self.fixed_means
        training = self.net.training
        self.net.eval()
        means = self.net(torch.eye(self.k, device=self.logvar.device))
        self.net.train(training)
        return means

    def sample(self, y_idx):
        if self.net is None:
            mean = self.fixed_means[y_idx]
        else:
            mean = self.net(F.one_hot(y_idx, self.k).float())
        return mean + torch.randn_like(mean)

    def log_joint(self, z, log_prior):
        """``log p(z|y=k) + log p(y=k)`` for every k: the Bayes classifier of Eq. 19."""
        diff2 = (z.unsqueeze(1) - self.component_means().unsqueeze(0)).pow(2)
        log_n = -0.5 * (diff2 + math.log(2 * math.pi)).sum(2)
        return log_n + log_prior.unsqueeze(0)


class _JointCritic(nn.Module):
    """D(x, y, z): x-trunk, y- and z-perceptrons, concatenated into a joint perceptron."""

    def __init__(self, sample_shape, k, latent, spec, dropout):
        super().__init__()
        self.x_net = Encoder(sample_shape, None, spec, batchnorm=False, dropout=dropout,
                             fast_dropout=True)
        self.y_net = mlp((k, 64, 64), dropout=dropout, last_activation=True, fast_dropout=True)
        self.z_net = mlp((latent, 64, 64), dropout=dropout, last_activation=True,
                         fast_dropout=True)
        self.joint = mlp((self.x_net.feature_dim + 128, 256, 256, 1), dropout=dropout,
                         fast_dropout=True)

    def forward(self, x, y, z):
        h = torch.cat([self.x_net.features(x), self.y_net(y), self.z_net(z)], dim=1)
        return self.joint(h).squeeze(1)


class AMMEngine(Engine):
    """Encoder (G_y, G_z), mixture prior (p(y), G_z(y)), decoder G_x and critic D."""

    double_backward_nets = ("D",)  # the gradient penalty of Eq. 18 differentiates D's gradients

    def build(self):
        cfg = self.config
        k, latent = cfg.n_clusters, cfg.n_components
        self.enc = _Inference(self.sample_shape, k, latent, cfg.spec, cfg.dropout,
                              cfg.batchnorm and cfg.spec.kind == "conv", cfg.sigma_y_max,
                              cfg.paper_nets, hard_y=cfg.y_sampling == "hard")
        if cfg.paper_nets:  # Tables 5 and 6
            self.dec = PaperDecoder(k, latent, self.sample_shape, cfg.dropout)
            self.D = PaperCritic(self.sample_shape, k, latent, cfg.dropout)
        else:
            self.dec = Decoder(k + latent, self.sample_shape, cfg.spec, batchnorm=cfg.batchnorm)
            self.D = _JointCritic(self.sample_shape, k, latent, cfg.spec, cfg.dropout)
        self.prior = _MixturePrior(k, latent, cfg.prior == "learned", cfg.dropout)
        for net in (self.enc, self.dec, self.D, self.prior):
            init_weights(net)  # N(0, 0.02) kernels, zero biases (Sec. 4)
        self.nets = {"enc": self.enc, "dec": self.dec, "D": self.D, "prior": self.prior}
        for net in self.nets.values():
            net.to(self.device)
        self.opt_d = make_adam(self.D.parameters(), cfg.lr, self.device)
        gen_params = [p for n in ("enc", "dec", "prior") for p in self.nets[n].parameters()]
        self.opt_g = make_adam(gen_params, cfg.lr, self.device)
        self.log_prior = torch.full((k,), -math.log(k), device=self.device)
        # the transform of the consistency term (None: no term)
        self.augment = (make_augmentation(cfg.augmentation, cfg.image_shape)
                        if cfg.consistency_weight else None)

    def init_state(self, data, rng, labels=None, class_prior=None, init_labels=None):
        """``labels`` (-1 = unlabeled) switch on SAMM; ``class_prior`` sets p(y).

        ``init_labels`` (one cluster index per row, e.g. from k-means) warm-start the
        encoder and decoder before the game: see :meth:`_warm_start`.
        """
        if class_prior is not None:
            self.log_prior = torch.log(torch.as_tensor(class_prior, dtype=torch.float32,
                                                       device=self.device))
        self.labeled_idx = None
        # rows for the per-epoch diagnostics: evenly spaced, no draw from the training stream
        m = min(data.n, DIAGNOSTIC_ROWS)
        self.diagnostic_idx = torch.linspace(0, data.n - 1, m).long().to(data.index_device)
        if labels is not None:
            idx = np.flatnonzero(labels >= 0)
            self.labeled_idx = torch.as_tensor(idx, device=data.index_device)
            self.labeled_y = torch.as_tensor(labels[idx], device=self.device)
        if init_labels is not None:
            self._warm_start(data, rng, init_labels)

    def _warm_start(self, data, rng, init_labels):
        """``init_epochs`` passes of ``CE(mu_y(x), init_label) + reconstruction`` (our choice).

        Gives the encoder's y-head an initial partition (k-means on a PCA of the data, as
        GAN-EM starts its EM) and the decoder a use for y before the adversarial game.
        """
        cfg = self.config
        target = torch.as_tensor(init_labels, device=self.device)
        n_batches = int(math.ceil(cfg.init_epochs * data.n / cfg.batch_size))
        self.train()
        for idx in epoch_batches(data.n, cfg.batch_size, n_batches, data.index_device):
            x = data.rows(idx)
            y_q, mu_y, z_q, _ = self.enc(x)
            loss = F.cross_entropy(mu_y, target[idx.to(self.device)])
            if cfg.reconstruction_weight:
                loss = loss + cfg.reconstruction_weight * _losses.reconstruction_loss(
                    x, self.dec(torch.cat([y_q, z_q], dim=1)))
            self.opt_g.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_g.step()

    def _prior_triple(self, n):
        """(x~, y, z) from p(y) p(z|y) p(x|y, z)."""
        y_idx = torch.multinomial(self.log_prior.exp(), n, replacement=True)
        y = F.one_hot(y_idx, self.config.n_clusters).float()
        z = self.prior.sample(y_idx)
        return self.dec(torch.cat([y, z], dim=1)), y, z

    def _game(self, x, y_obs=None):
        """One game (Eq. 13, or Eq. 14 with ``y_obs``): the discriminator's loss, the inferred
        and synthesised triples, and the logits ``mu_y`` of ``x`` (None with ``y_obs``)."""
        cfg = self.config
        y_q, mu_y, z_q, _ = self.enc(x, y=y_obs)
        x_p, y_p, z_p = self._prior_triple(x.shape[0])
        loss_d = _losses.amm_discriminator_loss(
            self.D(x, y_q.detach(), z_q.detach()), self.D(x_p.detach(), y_p, z_p.detach()))
        if cfg.gp_weight:
            loss_d = loss_d + _losses.gradient_penalty(self.D, (x, y_q, z_q), (x_p, y_p, z_p),
                                                       cfg.gp_weight)
        return loss_d, (x, y_q, z_q), (x_p, y_p, z_p), mu_y

    def run_iteration(self, data, iteration, rng):
        """One epoch of Algorithm 1 (or 2 with labels): D step, then all generators."""
        cfg = self.config
        meter = LossMeter()
        n_batches = int(math.ceil(data.n / cfg.batch_size))
        for idx in epoch_batches(data.n, cfg.batch_size, n_batches, data.index_device):
            games = [self._game(data.rows(idx))]
            if self.labeled_idx is not None:  # SAMM: the labeled game on labeled rows
                n_lab = self.labeled_idx.numel()  # two rows at least, for batch normalisation
                size = max(2, min(cfg.batch_size, n_lab))
                pick = draw_indices(n_lab, size, self.device)
                y_obs = F.one_hot(self.labeled_y[pick], cfg.n_clusters).float()
                games.append(self._game(
                    data.rows(self.labeled_idx[pick.to(self.labeled_idx.device)]), y_obs))
            w = 1.0 / len(games)  # Algorithm 2 halves each game's losses
            loss_d = w * sum(g[0] for g in games)
            self.opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            self.opt_d.step()
            with frozen_params(self.D):  # the generators' step needs no gradient of D's weights
                loss_g = w * sum(_losses.amm_generator_loss(self.D(*q), self.D(*p))
                                 for _, q, p, _ in games)
            labeled = (games[1][1][0], y_obs) if len(games) > 1 else None
            _, inferred, synthesised, mu_y = games[0]
            loss_g = loss_g + self._cycle_terms(inferred, synthesised, meter, labeled)
            if self.augment is not None:
                loss_g = loss_g + self._consistency_term(inferred[0], mu_y, meter)
            self.opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            self.opt_g.step()
            meter.add("loss_d", loss_d)
            meter.add("loss_g", loss_g)
            meter.count("cluster_sizes", games[0][1][1].argmax(1), cfg.n_clusters)
        return {**meter.means(), **self.diagnostics(data.rows(self.diagnostic_idx))}

    def diagnostics(self, x):
        """What the game does with rows ``x`` (eval mode; training's random stream untouched).

        - ``grad_ratio_zx``: mean ``||dD/dz||`` over mean ``||dD/dx||`` on inferred triples;
          near 0 means the critic ignores z, so nothing pushes q(z|x) towards the mixture;
        - ``z_norm_inferred`` / ``z_norm_prior``: mean norm of inferred ``z ~ q(z|x)`` and of
          prior ``z ~ p(z|y)``;
        - ``z_own_component``: share of rows whose mean code ``mu_z(x)`` lies nearest the
          mean of their own component ``argmax mu_y(x)``;
        - ``sigma_y`` / ``mu_y_spread``: mean ``sigma_y(x)`` of Eq. 8 against the mean spread
          (standard deviation over the K logits) of ``mu_y(x)``: a sigma far above the spread
          makes the relaxed y one-hot by noise rather than by the encoder.
        """
        devices = [self.device] if self.device.type == "cuda" else []
        self.eval()
        with torch.random.fork_rng(devices=devices):
            with torch.no_grad():
                y_q, mu_y, z_q, mu_z, logvar_y = self.enc(x, full=True)
                y_idx = torch.multinomial(self.log_prior.exp(), x.shape[0], replacement=True)
                z_p = self.prior.sample(y_idx)
                nearest = self.prior.log_joint(mu_z, torch.zeros_like(self.log_prior)).argmax(1)
            with torch.enable_grad():
                inputs = [t.detach().requires_grad_(True) for t in (x, y_q, z_q)]
                g_x, _, g_z = torch.autograd.grad(self.D(*inputs).sum(), inputs)
        g_x = g_x.flatten(1).norm(dim=1).mean()
        stats = torch.stack([
            g_z.norm(dim=1).mean() / g_x.clamp_min(1e-12),
            z_q.norm(dim=1).mean(), z_p.norm(dim=1).mean(),
            (nearest == mu_y.argmax(1)).float().mean(),
            torch.exp(0.5 * logvar_y).mean(), mu_y.std(dim=1, correction=0).mean()]).tolist()  # one sync
        names = ("grad_ratio_zx", "z_norm_inferred", "z_norm_prior", "z_own_component",
                 "sigma_y", "mu_y_spread")
        return dict(zip(names, stats))

    def _cycle_terms(self, inferred, synthesised, meter, labeled=None):
        """Our extra generator terms (0 with both weights 0: the paper's pure game).

        With SAMM's labeled rows ``(x, one-hot y)`` the latent cycle also asks the encoder to
        give back their observed component: ``CE(mu_y(x), y)``.
        """
        cfg = self.config
        extra = torch.zeros((), device=self.device)
        if cfg.cycle_weight:
            x_p, y_p, z_p = synthesised
            _, mu_y, _, mu_z = self.enc(x_p, y=None, noise=False)
            cyc = _losses.amm_latent_cycle_loss(mu_y, y_p.argmax(1), mu_z, z_p)
            if labeled is not None:
                x_l, y_l = labeled
                cyc = cyc + F.cross_entropy(self.enc(x_l, noise=False)[1], y_l.argmax(1))
            meter.add("loss_cycle", cyc)
            extra = extra + cfg.cycle_weight * cyc
        if cfg.reconstruction_weight:
            x, y_q, z_q = inferred
            rec = _losses.reconstruction_loss(x, self.dec(torch.cat([y_q, z_q], dim=1)))
            meter.add("loss_rec", rec)
            extra = extra + cfg.reconstruction_weight * rec
        return extra

    def _consistency_term(self, x, mu_y, meter):
        """``consistency_weight * CE(softmax(mu_y(x)), mu_y(T(x)))`` for transformed copies
        ``T(x)`` of the real rows (ours): the encoder names the same component for an image
        and its rotated and shifted copy."""
        con = _losses.consistency_loss(mu_y, self.enc(self.augment(x))[1])
        meter.add("loss_consistency", con)
        return self.config.consistency_weight * con

    def assignments(self, data):
        """Argmax of ``mu_y`` for every row (eval mode)."""
        self.eval()
        with torch.no_grad():
            return torch.cat([self.enc(data.rows(sl), noise=False)[1].argmax(1)
                              for sl in batch_slices(data.n, 1024)])

    # -- inference ---------------------------------------------------------------------
    def predict_proba(self, x):
        """softmax(mu_y(x)) without sampling noise."""
        _, mu_y, _, _ = self.enc(x, noise=False)
        return torch.softmax(mu_y, dim=1)

    def predict_proba_bayes(self, x):
        """p(y|z) for z the mean of q(z|x): Bayes' rule on the mixture prior (Eq. 19)."""
        return torch.softmax(self.prior.log_joint(self.transform(x), self.log_prior), dim=1)

    def finalize(self, data):
        """Fit the mixture of :meth:`predict_proba_mixture` (ours): a Gaussian mixture with
        full covariances on the codes ``mu_z(x)`` of the training rows, started from the
        encoder's clusters ``argmax mu_y(x)`` and from ``mixture_n_init`` k-means++ starts
        on the codes; the fit with the largest likelihood is kept."""
        codes, labels = [], []
        for sl in batch_slices(data.n, 1024):
            _, mu_y, _, mu_z = self.enc(data.rows(sl), noise=False)
            codes.append(mu_z.float())
            labels.append(mu_y.argmax(1))
        (self.mixture_log_weights, self.mixture_means,
         self.mixture_prec_chol) = fit_gmm(torch.cat(codes), torch.cat(labels),
                                           self.config.n_clusters, reg=self.config.mixture_reg,
                                           n_init=self.config.mixture_n_init)

    def predict_proba_mixture(self, x):
        """p(y|z) for z the mean of q(z|x), by Bayes' rule on the mixture fitted to the
        training codes (:meth:`finalize`) instead of the prior's components; the encoder's
        ``softmax(mu_y)`` before the mixture is fitted (a checkpoint taken during training)."""
        if getattr(self, "mixture_means", None) is None:
            return self.predict_proba(x)
        return gmm_proba(self.transform(x), self.mixture_log_weights, self.mixture_means,
                         self.mixture_prec_chol).float()

    def transform(self, x):
        """Mean of q(z|x): the z stream, which sees only x (Table 3); the y head is not run."""
        return self.enc.code(x)[1]

    def decode(self, z):
        """G_x(y, z) with y the one-hot Bayes cluster of z (Eq. 19)."""
        y_idx = self.prior.log_joint(z, self.log_prior).argmax(1)
        return self.dec(torch.cat([F.one_hot(y_idx, self.config.n_clusters).float(), z], 1))

    def generate(self, clusters):
        y = F.one_hot(clusters, self.config.n_clusters).float()
        return self.dec(torch.cat([y, self.prior.sample(clusters)], dim=1))

    def cluster_prior(self):
        return self.log_prior.exp().detach().cpu()

    def extra_state(self):
        return {"log_prior": self.log_prior,
                **{k: getattr(self, k, None)
                   for k in ("mixture_log_weights", "mixture_means", "mixture_prec_chol")}}
