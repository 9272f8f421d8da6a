"""Loss functions of the three methods: small pure tensor functions.

Each docstring names the paper and equation it implements. Papers (see the project docs):

* GAN-EM: Zhao et al., "GAN-EM: GAN based EM learning framework".
* KM-GAN: Wang et al., "Label-removed generative adversarial networks incorporating with
  K-Means".
* AMM: "Adversarially learned mixture model" (AMM / SAMM).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def cluster_sums(x: torch.Tensor, labels: torch.Tensor,
                 k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-cluster sums of the rows of ``x`` and the cluster sizes, ``(k, d)`` and ``(k,)``.

    A one-hot matrix product rather than ``index_add``: on CUDA ``index_add`` accumulates
    floats with atomics in no fixed order, which made KM-GAN fits with the same
    ``random_state`` differ; the product is deterministic on every device.
    """
    onehot = F.one_hot(labels, k).to(x.dtype)
    return onehot.t() @ x, onehot.sum(0)


# --------------------------------------------------------------------------- GAN-EM
def ganem_discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                             w: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of GAN-EM, Eq. 2, plus the extra real/fake unit of Sec. 4.3.2.

    ``L_D = -E_fake sum_i log(1 - D_i(G(z, c))) - E_real sum_i w_i log D_i(x)``
    (Eq. 2 written as a loss to minimise) computed with ``*_with_logits`` for stability, plus
    the binary cross-entropy of the extra unit (index ``K``) that separates all real rows
    (target 1) from all generated rows (target 0).

    Parameters
    ----------
    real_logits, fake_logits : Tensor of shape (B, K + 1)
        Discriminator logits ``sigma^-1(D_i)`` on real and generated rows.
    w : Tensor of shape (B, K)
        Soft assignments of the real rows from the last E-step.
    """
    k = w.shape[1]
    real_cls = F.binary_cross_entropy_with_logits(
        real_logits[:, :k], torch.ones_like(w), weight=w, reduction="none").sum(1).mean()
    fake_cls = F.binary_cross_entropy_with_logits(
        fake_logits[:, :k], torch.zeros_like(fake_logits[:, :k]), reduction="none").sum(1).mean()
    extra = (F.binary_cross_entropy_with_logits(real_logits[:, k], torch.ones_like(real_logits[:, k]))
             + F.binary_cross_entropy_with_logits(fake_logits[:, k], torch.zeros_like(fake_logits[:, k])))
    return real_cls + fake_cls + extra


def ganem_generator_loss_kl(fake_logits: torch.Tensor, c: torch.Tensor,
                            max_logit: float = 10.0) -> torch.Tensor:
    """Generator loss of GAN-EM, Eq. 1: ``L_G = -1/2 E exp(sigma^-1[D_c(G(z, c))])``.

    This is the KL-minimising generator loss of Goodfellow's tutorial (Eq. 16/17 of GAN-EM).
    ``exp`` of an unbounded logit overflows when D is fooled, so the logit is clamped at
    ``max_logit`` (our choice; the paper is silent). The extra unit gets the non-saturating
    loss ``-log D_{K}(G(z, c))``.
    """
    k = fake_logits.shape[1] - 1
    logit_c = fake_logits[:, :k].gather(1, c.view(-1, 1)).squeeze(1)
    kl = -0.5 * torch.exp(logit_c.clamp(max=max_logit)).mean()
    extra = F.binary_cross_entropy_with_logits(fake_logits[:, k], torch.ones_like(fake_logits[:, k]))
    return kl + extra


def ganem_generator_loss_bce(fake_logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Generator loss of the GAN-EM authors' public code (the paper's Eq. 1 replaced).

    Binary cross-entropy of the ``K + 1`` logits of ``D(G(z, c))`` against the target
    ``[one_hot(c), 1]``: unit ``c`` should call the sample real for its class, the other class
    units should not, and the extra unit should call it real.
    """
    k = fake_logits.shape[1] - 1
    target = torch.zeros_like(fake_logits)
    target[:, :k] = F.one_hot(c, k).to(fake_logits.dtype)
    target[:, k] = 1.0
    return F.binary_cross_entropy_with_logits(fake_logits, target, reduction="none").sum(1).mean()


def enet_loss(logits: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """E-net loss of GAN-EM, Eq. 5: ``L_E = E_{z, c ~ phi} CE(E(G(z, c)), u_c)``.

    Also the semi-supervised loss of Sec. 5.3, ``CE(E(x_real), u)``, on labeled real rows.
    """
    return F.cross_entropy(logits, c)


# --------------------------------------------------------------------------- KM-GAN
def kmgan_center_loss(real_feat, real_labels, real_centers, fake_feat, fake_labels,
                      fake_centers, d_round: float = 0.0) -> torch.Tensor:
    """Center loss of KM-GAN, Eq. 4, with the ``L_center >= d_round`` floor.

    ``L = || sum_m (c_m + sum_{j in m} D(x_j)) / (1 + n_m)
           - sum_m (c^_m + sum_{j in m} D(G(z_j))) / (1 + n^_m) ||_1``

    Each center is averaged with the batch features assigned to it; the sums over the ``k``
    centers of real and generated data are compared in L1. The constraint ``L >= d_round``
    of Eq. 4 is enforced as a floor: below ``d_round`` the loss is clamped, so it returns
    ``d_round`` and contributes no gradient (our reading: the paper uses the floor "to avoid
    degeneration" and gives no formula).
    """
    def summed_centers(feat, labels, centers):
        sums, counts = cluster_sums(feat, labels, centers.shape[0])
        return ((centers + sums) / (1.0 + counts.unsqueeze(1))).sum(0)

    diff = (summed_centers(real_feat, real_labels, real_centers)
            - summed_centers(fake_feat, fake_labels, fake_centers))
    return diff.abs().sum().clamp(min=d_round)


def kmgan_discriminator_loss(real_feat, c_real, fake_feat, c_gen,
                             fake_weight: float = 1.0) -> torch.Tensor:
    """Discriminator loss of KM-GAN, Eq. 5: ``||D(x) - C_real||_2 - ||D(G(z)) - C_gen||_2``.

    ``C_real`` / ``C_gen`` hold, row by row, the real center of the cluster each real /
    generated feature belongs to. Norms are Frobenius norms of the batch matrices, as written.
    ``fake_weight`` scales the generated term (1 in the paper; our ``adversarial_weight``).
    """
    return (torch.linalg.norm(real_feat - c_real)
            - fake_weight * torch.linalg.norm(fake_feat - c_gen))


def kmgan_generator_loss(fake_feat, c_gen) -> torch.Tensor:
    """Generator loss of KM-GAN, Eq. 6: ``||D(G(z)) - C_gen||_2``."""
    return torch.linalg.norm(fake_feat - c_gen)


def kmgan_intra_inter(real_feat, fake_feat) -> tuple[torch.Tensor, torch.Tensor]:
    """``L_intra`` and ``L_inter`` of generalized KM-GAN (Sec. 3.3, used in Eq. 7).

    ``L_intra`` sums the pairwise L1 distances within the real batch and within the generated
    batch; ``L_inter`` sums the L1 distances between every real and every generated feature.
    """
    intra = torch.cdist(real_feat, real_feat, p=1).sum() / 2 + \
        torch.cdist(fake_feat, fake_feat, p=1).sum() / 2
    inter = torch.cdist(real_feat, fake_feat, p=1).sum()
    return intra, inter


# --------------------------------------------------------------------------- AMM
def amm_discriminator_loss(logit_q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """Discriminator loss of AMM, Algorithm 1 (the value function of Eq. 13, negated):

    ``L_D = -1/M sum log rho_q - 1/M sum log(1 - rho_p)``, where ``rho_q = D(x, y~, z~)`` on
    inferred triples and ``rho_p = D(x~, y, z)`` on synthesised ones.
    """
    return (F.binary_cross_entropy_with_logits(logit_q, torch.ones_like(logit_q))
            + F.binary_cross_entropy_with_logits(logit_p, torch.zeros_like(logit_p)))


def amm_generator_loss(logit_q: torch.Tensor, logit_p: torch.Tensor) -> torch.Tensor:
    """Generator losses of AMM, Algorithm 1, summed:

    ``L_{G_x} = L_{G_z(y)} = -1/M sum log rho_p`` (synthesis side) and
    ``L_{G_y} = L_{G_z(x, y)} = -1/M sum log(1 - rho_q)`` (inference side). The two terms
    depend on disjoint parameters, so one backward pass of their sum gives each generator
    exactly its own gradient.
    """
    return (F.binary_cross_entropy_with_logits(logit_p, torch.ones_like(logit_p))
            + F.binary_cross_entropy_with_logits(logit_q, torch.zeros_like(logit_q)))


def amm_latent_cycle_loss(y_logits: torch.Tensor, y_idx: torch.Tensor, mu_z: torch.Tensor,
                          z: torch.Tensor) -> torch.Tensor:
    """Latent cycle term of our AMM defaults (not in the AMM paper; InfoGAN-style).

    For synthesised triples ``(x~ = G_x(y, z), y, z)`` the encoder should give back the
    component and the code: ``CE(mu_y(x~), y) + mean ||mu_z(x~, y) - z||^2 / L``. It lower-bounds
    the mutual information between ``(y, z)`` and ``x~`` as in InfoGAN (Chen et al., 2016,
    cited by the AMM paper) and makes the decoder use ``y``; see docs/methods.md for the
    measurements that led to it.
    """
    return F.cross_entropy(y_logits, y_idx) + (mu_z - z).pow(2).mean()


def consistency_loss(logits: torch.Tensor, logits_aug: torch.Tensor) -> torch.Tensor:
    """Consistency of cluster posteriors under augmentation; not in the AMM paper (ours).

    ``-1/M sum_i sum_k q_k(x_i) log q_k(T(x_i))`` with ``q = softmax(logits)`` of the rows as
    they are, held fixed (no gradient), and ``logits_aug`` those of transformed copies
    ``T(x_i)``: the cross-entropy form of consistency training (Unsupervised Data
    Augmentation, Xie et al., 2020, without its sharpening). AMM's encoder is asked to put a
    rotated and shifted image in the component of the image itself.
    """
    target = torch.softmax(logits.detach().float(), dim=1)
    return -(target * torch.log_softmax(logits_aug.float(), dim=1)).sum(1).mean()


def reconstruction_loss(x: torch.Tensor, x_rec: torch.Tensor) -> torch.Tensor:
    """Mean squared error ``mean (x_rec - x)^2`` per element; neither paper uses it.

    AMM: ``x_rec = G_x(G_y(x), G_z(x))``, the data-side cycle of ALICE (Li et al., 2017; the
    AMM paper discusses such L2 objectives for its baselines, Sec. 3). KM-GAN:
    ``x_rec = G(R(D(x)))``, the autoencoder term of DCN (Yang et al., 2017), which the KM-GAN
    paper names as the model of its alternating optimisation (Sec. 3.2).
    """
    return (x_rec - x).pow(2).mean()


def gradient_penalty(critic, real: tuple, fake: tuple, weight: float,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """Gradient penalty of AMM, Eq. 18 (Gulrajani et al.):

    ``lambda E[(||grad_{x^, y^, z^} D(x^, y^, z^)||_2 - 1)^2]`` on points drawn uniformly on
    the segments between the inferred triple ``(x, y~, z~)`` and the synthesised triple
    ``(x~, y, z)``. The norm is taken over all three inputs together.

    Parameters
    ----------
    critic : callable
        ``critic(x, y, z) -> logits``.
    real, fake : tuple of Tensor
        The two triples; each tensor's first dimension is the batch.
    weight : float
        ``lambda``.
    alpha : Tensor of shape (B,), optional
        Interpolation coefficients; drawn from U[0, 1) when omitted.
    """
    b = real[0].shape[0]
    if alpha is None:
        alpha = torch.rand(b, device=real[0].device)
    points = []
    for r, f in zip(real, fake):
        a = alpha.view((b,) + (1,) * (r.dim() - 1))
        points.append((a * r.detach() + (1 - a) * f.detach()).requires_grad_(True))
    out = critic(*points)
    grads = torch.autograd.grad(out.sum(), points, create_graph=True)
    sq = sum(g.reshape(b, -1).pow(2).sum(1) for g in grads)
    return weight * ((sq + 1e-12).sqrt() - 1.0).pow(2).mean()
