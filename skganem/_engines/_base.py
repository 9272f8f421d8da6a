"""What every training engine shares: the iteration loop, callbacks and divergence checks."""

from __future__ import annotations

import math
import time
import warnings
from abc import ABC, abstractmethod
from typing import Iterable

import numpy as np
import torch
from torch import nn

from .._device import resolve_precision
from .._networks import set_precision as set_network_precision
from ..exceptions import DivergenceError

#: A cluster holding fewer rows than this share of an even split (``n / n_clusters``) is
#: near-empty: GAN-EM re-seeds it during training, and ``fit`` warns about it at the end.
NEAR_EMPTY_SHARE = 0.05

#: ``torch._dynamo``'s recompile limit while compiled networks train (see Engine.compile).
RECOMPILE_LIMIT = 64


def make_adam(params, lr: float, device: torch.device,
              betas: tuple = (0.5, 0.999)) -> torch.optim.Adam:
    """Adam with the DCGAN betas: fused kernels on CUDA and CPUs, multi-tensor (foreach)
    updates on other devices (one kernel per parameter group rather than per tensor).

    On 2 CPU threads a fused step of GAN-EM's conv nets took 0.45-0.91 ms against
    0.85-2.45 ms for the foreach step (0.27-0.91 M parameters per network).
    """
    fused = torch.device(device).type in ("cuda", "cpu")
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=fused or None,
                            foreach=None if fused else True)


def near_empty(sizes, n_samples: int) -> list[int]:
    """Indices of the empty and near-empty clusters among ``sizes`` (rows per cluster)."""
    floor = NEAR_EMPTY_SHARE * n_samples / len(sizes)
    return [k for k, size in enumerate(sizes) if size == 0 or size < floor]


class Engine(ABC):
    """Base class of the training engines.

    A subclass builds its networks in :meth:`build` and registers them in ``self.nets``;
    :meth:`state_dict` / :meth:`load_state_dict` then cover them, plus whatever tensors
    :meth:`extra_state` returns (mixture weights, cluster centers, ...).

    Parameters
    ----------
    config : dataclass
        The method's hyper-parameters.
    sample_shape : tuple of int
        Shape of one (scaled) sample as the networks see it.
    device : torch.device
    """

    #: Networks whose input gradients are differentiated again (a gradient penalty). The
    #: backward pass of a ``torch.compile``-d module cannot be differentiated, so
    #: :meth:`compile` leaves these networks as they are.
    double_backward_nets: tuple[str, ...] = ()

    def __init__(self, config, sample_shape, device):
        self.config = config
        self.sample_shape = tuple(sample_shape)
        self.device = torch.device(device)
        self.nets: dict[str, nn.Module] = {}

    # -- construction ----------------------------------------------------------------
    @abstractmethod
    def build(self) -> None:
        """Create networks and optimisers (uses torch's RNG: call under a seeded fork_rng)."""

    @abstractmethod
    def init_state(self, data, rng: np.random.RandomState, **kwargs) -> None:
        """Prepare training state from the data before the first iteration."""

    @abstractmethod
    def run_iteration(self, data, iteration: int, rng: np.random.RandomState) -> dict:
        """One training iteration; returns its mean losses as Python floats."""

    def assignments(self, data) -> torch.Tensor | None:
        """Cluster of every training row now, on the device (None where the engine has no
        clusters yet, e.g. during pretraining). Used to measure convergence."""
        return None

    def finalize(self, data) -> None:
        """Called once after the last iteration, networks in eval mode (e.g. calibration)."""

    # -- inference (eval mode, called under inference_mode) --------------------------
    @abstractmethod
    def predict_proba(self, x: torch.Tensor) -> torch.Tensor:
        """Soft cluster assignments of a batch of scaled samples, rows summing to 1."""

    @abstractmethod
    def transform(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding of a batch of scaled samples, ``(B, n_components)``."""

    @abstractmethod
    def generate(self, clusters: torch.Tensor) -> torch.Tensor:
        """Generated samples (scaled) for the given cluster indices."""

    def cluster_prior(self) -> torch.Tensor:
        """Mixture weights used to draw clusters for :meth:`generate`; uniform by default."""
        k = self.config.n_clusters
        return torch.full((k,), 1.0 / k)

    # -- modes and state -------------------------------------------------------------
    def train(self) -> None:
        for net in self.nets.values():
            net.train()

    def eval(self) -> None:
        for net in self.nets.values():
            net.eval()

    def extra_state(self) -> dict:
        return {}

    def load_extra_state(self, state: dict) -> None:
        for key, value in state.items():
            setattr(self, key, value.to(self.device) if torch.is_tensor(value) else value)

    def training_state(self) -> dict:
        """Tensors that training needs beyond :meth:`extra_state` (assignments, counts...)."""
        return {}

    def resume(self, data, rng, **kwargs) -> None:
        """Prepare a fitted engine to continue training on ``data`` (``warm_start``).

        By default this re-runs :meth:`init_state`; engines whose state must survive (mixture
        weights, centers) override it.
        """
        self.init_state(data, rng, **kwargs)

    def snapshot(self) -> dict:
        """An in-memory copy of the weights, training state and torch's random state (for
        roll-back: what follows a rolled-back iteration, such as :meth:`finalize`, then
        draws what it draws after a fit that stopped there)."""
        cuda = self.device.type == "cuda"
        return {
            "nets": {k: {n: t.detach().clone() for n, t in net.state_dict().items()}
                     for k, net in self.nets.items()},
            "extra": {k: (v.detach().clone() if torch.is_tensor(v) else v)
                      for k, v in {**self.extra_state(), **self.training_state()}.items()},
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(self.device) if cuda else None,
        }

    def restore(self, snap: dict) -> None:
        for k, sd in snap["nets"].items():
            self.nets[k].load_state_dict(sd)
        self.load_extra_state(snap["extra"])
        torch.set_rng_state(snap["torch_rng"])
        if snap["cuda_rng"] is not None:
            torch.cuda.set_rng_state(snap["cuda_rng"], self.device)

    def state_dict(self) -> dict:
        """Everything needed to restore the fitted engine, as CPU tensors."""
        return {
            "nets": {k: {n: t.detach().cpu() for n, t in net.state_dict().items()}
                     for k, net in self.nets.items()},
            "extra": {k: (v.detach().cpu() if torch.is_tensor(v) else v)
                      for k, v in self.extra_state().items()},
        }

    def load_state_dict(self, state: dict) -> None:
        for k, sd in state["nets"].items():
            self.nets[k].load_state_dict(sd)
        self.load_extra_state(state["extra"])

    def optimizers(self) -> dict:
        """The engine's optimisers, by attribute name (one name for an optimiser that two
        attributes share)."""
        out = {}
        for k, v in vars(self).items():
            if isinstance(v, torch.optim.Optimizer) and all(v is not o for o in out.values()):
                out[k] = v
        return out

    def resume_state(self) -> dict:
        """What an exact continuation needs beyond :meth:`state_dict`: the optimisers' state
        (Adam's moments and step counts) and :meth:`training_state`, as CPU copies."""
        def cpu(obj):
            if torch.is_tensor(obj):
                return obj.detach().cpu().clone()
            if isinstance(obj, dict):
                return {k: cpu(v) for k, v in obj.items()}
            if isinstance(obj, (list, tuple)):
                return type(obj)(cpu(v) for v in obj)
            return obj

        return {"optimizers": {k: cpu(opt.state_dict()) for k, opt in self.optimizers().items()},
                "training": cpu(self.training_state())}

    def load_resume_state(self, state: dict) -> None:
        for name, sd in state["optimizers"].items():
            opt = getattr(self, name)
            # the kernels (fused on CUDA, foreach elsewhere) follow this device, not the saved one
            kernels = [{k: g[k] for k in ("fused", "foreach") if k in g} for g in opt.param_groups]
            opt.load_state_dict(sd)  # moves the state to the params' device
            for group, keep in zip(opt.param_groups, kernels):
                group.update(keep)
        self.load_extra_state(state["training"])

    def set_precision(self, precision: str) -> None:
        """Run the networks' forward passes in ``precision`` ("auto", "bf16" or "fp32")."""
        self.amp_dtype = resolve_precision(precision, self.device,
                                           conv=self.config.spec.kind == "conv")
        for net in self.nets.values():
            set_network_precision(net, self.amp_dtype, self.device)

    def compile(self) -> None:
        """Compile the networks' forward passes with ``torch.compile`` (in place: the weights,
        their names and pickling are unchanged), all but :attr:`double_backward_nets`.

        A network is called in several modes (train and eval, with and without gradients,
        frozen weights, real and generated batches of other memory layouts, other batch
        sizes), each a graph of its own: KM-GAN's discriminator needed nine. Beyond
        ``torch._dynamo``'s recompile limit (8 by default) the remaining calls run eagerly,
        and an eager batch normalisation whose running statistics a compiled call then
        updates fails in the backward pass ("modified by an inplace operation"). The limit
        is raised to at least :data:`RECOMPILE_LIMIT` for the process.
        """
        import torch._dynamo.config as dynamo_config

        # "cache_size_limit" before torch 2.7
        limit = "recompile_limit" if hasattr(dynamo_config, "recompile_limit") \
            else "cache_size_limit"
        setattr(dynamo_config, limit, max(getattr(dynamo_config, limit), RECOMPILE_LIMIT))
        for name, net in self.nets.items():
            if name in self.double_backward_nets:
                continue
            if not getattr(net, "_skganem_compiled", False):
                net.compile()
                net._skganem_compiled = True

    def check_weights_finite(self) -> str | None:
        """Name of the first network holding a non-finite parameter, or None."""
        for name, net in self.nets.items():
            for pname, p in net.named_parameters():
                if not torch.isfinite(p).all():
                    return f"{name}.{pname}"
        return None


class Callback:
    """Hooks called by :func:`fit_loop`."""

    def on_fit_begin(self, n_iter: int) -> None:
        pass

    def on_iteration_end(self, record: dict) -> None:
        pass

    def on_fit_end(self) -> None:
        pass


class ProgressBar(Callback):
    """A tqdm bar over iterations showing the latest losses (``verbose >= 1``)."""

    def __init__(self, desc: str = "fit"):
        self.desc = desc
        self.bar = None

    def on_fit_begin(self, n_iter):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=n_iter, desc=self.desc, unit="it", dynamic_ncols=True)

    def on_iteration_end(self, record):
        shown = {k: f"{v:.3g}" for k, v in record.items()
                 if k not in ("iteration", "seconds") and isinstance(v, float)}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def on_fit_end(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def epoch_batches(n: int, batch_size: int, n_batches: int,
                  device: torch.device) -> Iterable[torch.Tensor]:
    """``n_batches`` index tensors of size ``min(batch_size, n)``, walking random permutations.

    The permutations are drawn on ``device`` from torch's generator (seeded by the estimator's
    ``random_state``), so that a GPU loop copies no indices from the host.
    """
    b = min(batch_size, n)
    perm, pos = torch.randperm(n, device=device), 0
    for _ in range(n_batches):
        if pos + b > n:
            perm, pos = torch.randperm(n, device=device), 0
        yield perm[pos:pos + b]
        pos += b


def draw_indices(n: int, size: int, device: torch.device) -> torch.Tensor:
    """``size`` indices into ``range(n)`` drawn on ``device``: without replacement when
    ``n >= size``, else with."""
    if n >= size:
        return torch.randperm(n, device=device)[:size]
    return torch.randint(n, (size,), device=device)


def fit_loop(engine: Engine, data, n_iter: int, rng: np.random.RandomState,
             callbacks: Iterable[Callback] = (), start: int = 0, tol: float | None = None,
             n_iter_no_change: int = 2) -> tuple[list[dict], bool]:
    """Run ``engine.run_iteration`` for iterations ``start .. n_iter - 1``, or until converged.

    After each iteration the losses and weights are checked: a non-finite value raises
    :class:`~skganem.exceptions.DivergenceError` naming the iteration and the quantity.
    Where the engine has :meth:`Engine.assignments`, the share of training rows whose cluster
    changed since the previous iteration is recorded as ``label_change``; with ``tol`` set,
    training stops once it is at most ``tol`` in ``n_iter_no_change`` iterations in a row.
    A ``KeyboardInterrupt`` during an iteration rolls the engine back to the end of the last
    completed iteration and returns (with a warning); during the first one it propagates.

    Returns
    -------
    history : list of dict
        One record per iteration: ``iteration`` (1-based), the losses, ``label_change``,
        ``seconds``.
    converged : bool
        Whether training stopped on ``tol``.
    """
    callbacks = list(callbacks)
    history: list[dict] = []
    snap = None
    for cb in callbacks:
        cb.on_fit_begin(n_iter - start)
    it = start
    converged, quiet = False, 0
    previous = engine.assignments(data)
    try:
        for it in range(start, n_iter):
            t0 = time.perf_counter()
            engine.train()
            losses = engine.run_iteration(data, it, rng)
            bad = [k for k, v in losses.items() if isinstance(v, float) and not math.isfinite(v)]
            if bad:
                raise DivergenceError(
                    f"Training diverged at iteration {it + 1}: loss {bad[0]!r} is "
                    f"{losses[bad[0]]}. Try lower learning rates, weight clipping or another "
                    "random_state.")
            bad_weight = engine.check_weights_finite()
            if bad_weight:
                raise DivergenceError(
                    f"Training diverged at iteration {it + 1}: weights of {bad_weight} are "
                    "not finite. Try lower learning rates or another random_state.")
            labels = engine.assignments(data)
            if labels is not None and previous is not None:
                change = float((labels != previous).float().mean())  # one sync per iteration
                losses["label_change"] = change
                quiet = quiet + 1 if tol is not None and change <= tol else 0
            else:
                quiet = 0
            previous = labels
            record = {"iteration": it + 1, **losses, "seconds": time.perf_counter() - t0}
            history.append(record)
            snap = engine.snapshot()
            for cb in callbacks:
                cb.on_iteration_end(record)
            if quiet >= n_iter_no_change:
                converged = True
                break
    except KeyboardInterrupt:
        if snap is None:
            raise
        engine.restore(snap)
        warnings.warn(
            f"Training was interrupted during iteration {it + 1}; the model keeps the state "
            f"of iteration {it} (continue with warm_start=True).", UserWarning, stacklevel=3)
    finally:
        engine.eval()
        for cb in callbacks:
            cb.on_fit_end()
    return history, converged


class LossMeter:
    """Accumulates losses on the device and syncs once, when read (no ``.item()`` per batch).

    :meth:`count` also accumulates cluster sizes (a bincount per batch, on the device);
    :meth:`means` returns them as lists of ints.
    """

    def __init__(self):
        self.sums: dict[str, torch.Tensor] = {}
        self.counts: dict[str, int] = {}
        self.bins: dict[str, torch.Tensor] = {}

    def add(self, name: str, value: torch.Tensor) -> None:
        v = value.detach()
        self.sums[name] = self.sums[name] + v if name in self.sums else v
        self.counts[name] = self.counts.get(name, 0) + 1

    def count(self, name: str, labels: torch.Tensor, k: int) -> None:
        b = torch.bincount(labels.detach().reshape(-1), minlength=k)
        self.bins[name] = self.bins[name] + b if name in self.bins else b

    def means(self) -> dict:
        out = {k: float(v) / self.counts[k] for k, v in self.sums.items()}
        out.update({k: [int(c) for c in v.cpu()] for k, v in self.bins.items()})
        return out
