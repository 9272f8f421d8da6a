"""Training speed: each skganem engine against a bare PyTorch loop of the same networks.

For each estimator the cost of one training iteration is measured as the difference of two
whole ``fit`` calls, ``(T(n_iter=1 + m) - T(n_iter=1)) / m``, so that it includes everything
the library does per iteration (data streaming, loss bookkeeping, divergence checks,
roll-back snapshots, callbacks). The bare loop below is written here, without the library's
engine: the same network modules (fresh weights), the same optimisers, batch sizes and
number of updates per iteration, the same loss formulas, data as one tensor indexed with
``torch.randint``. The ratio engine / bare is the library's overhead (goal: at most 1.10).
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from skganem import _losses
from skganem._engines._kmeans import minibatch_kmeans_update_, nearest
from skganem._networks import clip_weights_, init_weights


def _fresh(module):
    module = copy.deepcopy(module)
    init_weights(module)
    return module


def _adam(params, lr):
    return torch.optim.Adam(params, lr=lr, betas=(0.5, 0.999))


def _step(opt, loss):
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def bare_ganem(engine, X, n_iter):
    """Algorithm 1 of GAN-EM written out: M-step (D, G), E-step (E-net), w = E(x)."""
    cfg = engine.config
    G, D, E = (_fresh(engine.nets[n]) for n in ("G", "D", "E"))
    opt_g, opt_d, opt_e = _adam(G.parameters(), cfg.lr_g), _adam(D.parameters(), cfg.lr_d), \
        _adam(E.parameters(), cfg.lr_e)
    n, k, b = X.shape[0], cfg.n_clusters, min(cfg.batch_size, X.shape[0])
    W = torch.full((n, k), 1.0 / k)

    def g(c):
        return G(torch.cat([torch.rand(c.shape[0], cfg.noise_dim), F.one_hot(c, k).float()], 1))

    times = []
    for _ in range(n_iter):
        t0 = time.perf_counter()
        G.train(), D.train(), E.train()
        phi = W.mean(0)
        for _ in range(max(cfg.min_m_steps, math.ceil(cfg.m_epochs * n / cfg.batch_size))):
            idx = torch.randint(n, (b,))
            c = (torch.arange(b) % k)[torch.randperm(b)]
            fake = g(c)
            _step(opt_d, _losses.ganem_discriminator_loss(D(X[idx]), D(fake.detach()), W[idx]))
            _step(opt_g, _losses.ganem_generator_loss_bce(D(fake), c))
        for _ in range(cfg.e_steps):
            c = torch.multinomial(phi, cfg.e_batch_size, replacement=True)
            with torch.no_grad():
                fake = g(c)
            _step(opt_e, F.cross_entropy(E(fake), c))
        E.eval()
        with torch.no_grad():
            W = torch.cat([torch.softmax(E(X[i:i + 1024]), 1) for i in range(0, n, 1024)])
        times.append(time.perf_counter() - t0)
    return times


def bare_kmgan(engine, X, n_iter):
    """Algorithm 1 of KM-GAN written out: L_D, L_G, L_center, mini-batch k-means (with our
    autoencoder term and adversarial weight when the engine has them)."""
    cfg = engine.config
    G, D = _fresh(engine.nets["G"]), _fresh(engine.nets["D"])
    R = _fresh(engine.nets["R"]) if "R" in engine.nets else None
    opt_d, opt_g = _adam(D.parameters(), cfg.lr), _adam(G.parameters(), cfg.lr)
    opt_c = _adam([p for net in (D, G, R) if net is not None for p in net.parameters()], cfg.lr)
    w_rec, w_adv = cfg.reconstruction_weight, cfg.adversarial_weight

    def rec(x):
        return w_rec * _losses.reconstruction_loss(x, G(R(D(x)))) if w_rec else 0.0

    centers, fake_centers = engine.centers.clone(), engine.centers.clone()
    counts, fake_counts = torch.zeros(cfg.n_clusters), torch.zeros(cfg.n_clusters)

    n, b = X.shape[0], min(cfg.batch_size, X.shape[0])
    times = []
    for _ in range(n_iter):
        t0 = time.perf_counter()
        G.train(), D.train()
        for _ in range(math.ceil(n / cfg.batch_size)):
            x = X[torch.randint(n, (b,))]
            z = torch.randn(b, cfg.noise_dim)
            fake = G(z)
            D.eval()  # labels on eval-mode features, as the engine assigns clusters
            with torch.no_grad():
                e_r, e_f = D(x), D(fake)
            D.train()
            lab_r, lab_f = nearest(e_r, centers), nearest(e_f, fake_centers)
            c_real, c_gen = centers[lab_r], centers[lab_f]
            _step(opt_d, _losses.kmgan_discriminator_loss(D(x), c_real, D(fake.detach()), c_gen,
                                                          fake_weight=w_adv) + rec(x))
            clip_weights_(D, cfg.clip_value)
            if w_adv:
                _step(opt_g, _losses.kmgan_generator_loss(D(fake), c_gen))
            f_r, f_f = D(x), D(G(z))
            loss_c = _losses.kmgan_center_loss(f_r, lab_r, centers, f_f, lab_f, fake_centers,
                                               cfg.d_round)
            if w_adv or w_rec:
                _step(opt_c, w_adv * loss_c + rec(x))
            clip_weights_(D, cfg.clip_value)
            with torch.no_grad():
                minibatch_kmeans_update_(centers, counts, e_r, lab_r)
                minibatch_kmeans_update_(fake_centers, fake_counts, e_f, lab_f)
        times.append(time.perf_counter() - t0)
    return times


def bare_amm(engine, X, n_iter):
    """Algorithm 1 of AMM written out: one D step and one step of all generators per batch
    (with our latent-cycle and reconstruction terms when their weights are not 0)."""
    cfg = engine.config
    enc, dec, D, prior = (_fresh(engine.nets[n]) for n in ("enc", "dec", "D", "prior"))
    opt_d = _adam(D.parameters(), cfg.lr)
    opt_g = _adam(list(enc.parameters()) + list(dec.parameters()) + list(prior.parameters()),
                  cfg.lr)
    k = cfg.n_clusters
    p_y = torch.full((k,), 1.0 / k)
    n, b = X.shape[0], min(cfg.batch_size, X.shape[0])
    times = []
    for _ in range(n_iter):
        t0 = time.perf_counter()
        for net in (enc, dec, D, prior):
            net.train()
        for _ in range(math.ceil(n / cfg.batch_size)):
            x = X[torch.randint(n, (b,))]
            y_q, _, z_q, _ = enc(x)
            y_idx = torch.multinomial(p_y, b, replacement=True)
            y_p = F.one_hot(y_idx, k).float()
            z_p = prior.sample(y_idx)
            x_p = dec(torch.cat([y_p, z_p], 1))
            loss_d = _losses.amm_discriminator_loss(D(x, y_q.detach(), z_q.detach()),
                                                    D(x_p.detach(), y_p, z_p.detach()))
            if cfg.gp_weight:
                loss_d = loss_d + _losses.gradient_penalty(D, (x, y_q, z_q), (x_p, y_p, z_p),
                                                           cfg.gp_weight)
            _step(opt_d, loss_d)
            loss_g = _losses.amm_generator_loss(D(x, y_q, z_q), D(x_p, y_p, z_p))
            if cfg.cycle_weight:
                _, mu_y, _, mu_z = enc(x_p, noise=False)
                loss_g = loss_g + cfg.cycle_weight * _losses.amm_latent_cycle_loss(
                    mu_y, y_idx, mu_z, z_p)
            if cfg.reconstruction_weight:
                loss_g = loss_g + cfg.reconstruction_weight * _losses.reconstruction_loss(
                    x, dec(torch.cat([y_q, z_q], 1)))
            _step(opt_g, loss_g)
        times.append(time.perf_counter() - t0)
    return times


BARE = {"ganem": bare_ganem, "kmgan": bare_kmgan, "amm": bare_amm}


def measure(method, X, estimator_factory, extra_iters=3, log=print):
    """Seconds per iteration of the library's fit and of the bare loop, and their ratio."""
    estimator_factory(n_iter=1).fit(X)  # warm-up: thread pools, allocator, first-call costs
    torch.manual_seed(0)
    est = estimator_factory(n_iter=1 + extra_iters).fit(X)
    # the library's own per-iteration timing (fit_loop), past the first iteration, as for the
    # bare loop: a difference of two whole-fit timings went negative on a busy machine
    engine_s = float(np.mean([h["seconds"] for h in est.history_[1:]]))
    Xs = torch.as_tensor(est.scaler_.transform(np.asarray(X, dtype=np.float32).reshape(
        X.shape[0], -1)).reshape((X.shape[0],) + est.engine_.sample_shape), dtype=torch.float32)
    torch.manual_seed(0)
    bare = BARE[method](est.engine_, Xs, 1 + extra_iters)
    bare_s = float(np.mean(bare[1:]))  # the first iteration warms up the allocator
    rec = dict(method=method, n=int(X.shape[0]), engine_s_per_iter=engine_s,
               bare_s_per_iter=bare_s, ratio=engine_s / bare_s, threads=torch.get_num_threads(),
               torch=torch.__version__)
    log(rec)
    return rec
