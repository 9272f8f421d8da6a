"""A Gaussian mixture with full covariances, fitted by EM in torch (for the engines, which do
not import scikit-learn). It follows ``sklearn.mixture.GaussianMixture(covariance_type="full")``:
the same M-step (a constant added to each covariance's diagonal, ``10 * eps`` to each
component's weight), the mean log-likelihood per row as the stopping criterion (``tol``), and
precisions kept as Cholesky factors; with ``n_init`` further starts the fit with the largest mean
log-likelihood is kept, as ``GaussianMixture(n_init=...)`` keeps the largest lower bound. Two
differences: the first start is given hard labels (the others k-means++ and Lloyd's
iterations), and the diagonal term is relative to the data's scale (``reg`` times the mean
variance of the features) where scikit-learn's ``reg_covar`` is absolute, so that features of
any scale get the same regularisation.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ._kmeans import kmeans_plus_plus, nearest


def _m_step(x, resp, reg):
    """Log weights, means and Cholesky factors of the precisions from responsibilities."""
    n, d = x.shape
    nk = resp.sum(0) + 10 * torch.finfo(x.dtype).eps
    means = resp.T @ x / nk.unsqueeze(1)
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    prec_chol = []
    for j in range(resp.shape[1]):
        diff = x - means[j]
        cov = (resp[:, j, None] * diff).T @ diff / nk[j] + reg * eye
        cov_chol = torch.linalg.cholesky(cov)
        # precision = (L L^T)^-1 = L^-T L^-1: its Cholesky-like factor is L^-T
        prec_chol.append(torch.linalg.solve_triangular(cov_chol, eye, upper=False).T)
    return torch.log(nk / n), means, torch.stack(prec_chol)


def gmm_log_joint(x, log_weights, means, prec_chol):
    """``log pi_j + log N(x | mu_j, Sigma_j)`` for every row and component, ``(n, k)``."""
    x = x.to(means.dtype)
    d = x.shape[1]
    log_det = torch.log(torch.diagonal(prec_chol, dim1=1, dim2=2)).sum(1)  # log |P|^(1/2)
    out = []
    for j in range(means.shape[0]):
        y = (x - means[j]) @ prec_chol[j]
        out.append(-0.5 * (d * math.log(2 * math.pi) + y.pow(2).sum(1)) + log_det[j])
    return torch.stack(out, dim=1) + log_weights


def fit_gmm(x: torch.Tensor, labels: torch.Tensor, k: int, max_iter: int = 100,
            reg: float = 1e-2, tol: float = 1e-3, n_init: int = 0, n_lloyd: int = 50):
    """EM for a full-covariance Gaussian mixture on ``x``, started from hard ``labels``.

    Returns ``(log_weights, means, prec_chol)``: ``(k,)``, ``(k, d)`` and ``(k, d, d)``, with
    ``prec_chol[j] @ prec_chol[j].T`` the precision of component ``j``, in float64 (float32
    on Apple GPUs, which have no float64). At most ``max_iter`` EM iterations; stops when
    the mean log-likelihood per row changes by less than ``tol``. ``reg`` times the mean
    variance of the features is added to the diagonal of every covariance. ``n_init``
    further starts come from k-means++ and at most ``n_lloyd`` Lloyd iterations on ``x``
    (torch's global random stream); of all starts, the fit with the largest mean
    log-likelihood per row is kept (the first, ``labels``, on ties).
    """
    dtype = torch.float32 if x.device.type == "mps" else torch.float64
    x_em, x_km = x.to(dtype), x.float()  # EM in double precision, k-means++ in single
    reg = reg * float(x_em.var(dim=0).mean()) + torch.finfo(dtype).tiny
    best, best_ll = None, -math.inf
    for start in range(n_init + 1):
        if start:
            labels = nearest(x_km, kmeans_plus_plus(x_km, k, n_lloyd=n_lloyd))
        params, ll = _em(x_em, labels, k, max_iter, reg, tol)
        if ll > best_ll or best is None:
            best, best_ll = params, ll
    return best


def _em(x, labels, k, max_iter, reg, tol):
    """EM from hard ``labels`` with an absolute diagonal term ``reg``: the parameters and the
    mean log-likelihood per row under them."""
    resp = F.one_hot(labels.long(), k).to(x.dtype)
    params = _m_step(x, resp, reg)
    previous = -math.inf
    for _ in range(max_iter):
        log_joint = gmm_log_joint(x, *params)
        log_norm = torch.logsumexp(log_joint, dim=1, keepdim=True)
        resp = torch.exp(log_joint - log_norm)
        params = _m_step(x, resp, reg)
        current = float(log_norm.mean())
        if abs(current - previous) < tol:
            break
        previous = current
    return params, float(torch.logsumexp(gmm_log_joint(x, *params), dim=1).mean())


def gmm_proba(x, log_weights, means, prec_chol):
    """Posterior probabilities of the components, ``(n, k)``."""
    return torch.softmax(gmm_log_joint(x, log_weights, means, prec_chol), dim=1)
