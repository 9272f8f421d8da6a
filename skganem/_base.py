"""The estimator base shared by GANEMClustering, KMGAN and AMMClustering.

It owns everything that is not method-specific: parameter validation, input checks and
reshaping of images, the fitted rescaling, seeding, the training loop call, batched eval-mode
inference, sampling, and pickling that survives a move from a CUDA machine to a CPU one.
A subclass supplies its engine (``_make_engine``) and, optionally, the keyword arguments of
the engine's ``init_state`` and the fitted attributes it exposes.
"""

from __future__ import annotations

import math
import numbers
import os
import warnings
from pathlib import Path
from abc import ABC, abstractmethod

import joblib
import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import (BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin,
                          TransformerMixin, _fit_context)
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import silhouette_score
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from ._deskew import AUTO_MIN_SIDE, DeskewThenScale
from ._device import (DataSource, batched_inference, fast_cuda, is_memory_mapped, load_device,
                      resolve_device)
from ._engines import Callback, ProgressBar, fit_loop
from ._engines._base import near_empty
from ._networks import NetSpec
from ._restarts import QueueProgress, restart_workers, run_in_workers, run_name
from ._scaling import RangeScaler
from ._version import __version__
from .exceptions import IncompatibleVersionError

_PICKLE_FORMAT = 1
INFERENCE_BATCH_SIZE = 1024
#: ``n_init="auto"`` restarts tables (and, for estimators that say so, image sets) of at most
#: this many rows.
AUTO_RESTART_ROWS = 5000
#: Rows on which restarts are compared by the silhouette (which costs their count squared).
RESTART_SCORE_ROWS = 2000


def infer_image_shape(X: np.ndarray, max_rows: int = 2000) -> tuple[int, int] | None:
    """``(side, side)`` when the flat rows of ``X`` look like square grayscale images, else None.

    Rows look like images when all three hold: the feature count is a square ``side**2``
    with ``side >= 8``; no value is negative (pixel intensities); and, on the grid of
    ``side x side``, horizontally and vertically neighbouring features are clearly more
    correlated than features paired at random (mean correlations at least 0.2 above the
    random pairs'). Tabular columns have no such grid order, so their neighbours correlate
    like random pairs. At most ``max_rows`` evenly spaced rows are read.
    """
    n, d = X.shape
    side = math.isqrt(d)
    if side < 8 or side * side != d or n < 3:
        return None
    rows = np.asarray(X[::max(1, n // max_rows)][:max_rows], dtype=np.float64)
    if rows.min() < 0:
        return None
    std = rows.std(axis=0)
    live = std > 1e-12 * max(1.0, float(np.abs(rows).max()))
    if live.sum() < 2 * side:
        return None
    z = (rows - rows.mean(axis=0)) / np.where(live, std, 1.0)

    def mean_corr(i, j):
        keep = live[i] & live[j]
        if not keep.any():
            return 0.0
        return float(np.mean(np.mean(z[:, i[keep]] * z[:, j[keep]], axis=0)))

    grid = np.arange(d).reshape(side, side)
    horizontal = mean_corr(grid[:, :-1].ravel(), grid[:, 1:].ravel())
    vertical = mean_corr(grid[:-1, :].ravel(), grid[1:, :].ravel())
    perm = np.random.RandomState(0).permutation(d)
    shuffled = mean_corr(np.arange(d), perm)
    if min(horizontal, vertical) - shuffled >= 0.2:
        return side, side
    return None


def degenerate_clusters(labels: np.ndarray, n_clusters: int) -> list[tuple[int, int]]:
    """``(cluster, size)`` of the empty and near-empty clusters of a labelling.

    A cluster is near-empty when it holds fewer than ``NEAR_EMPTY_SHARE * n / n_clusters``
    rows (5 % of an even split), and always when it holds none.
    """
    sizes = np.bincount(labels, minlength=n_clusters)
    return [(k, int(sizes[k])) for k in near_empty(sizes, labels.shape[0])]


def _seed_from(rng: np.random.RandomState) -> int:
    return int(rng.randint(np.iinfo(np.int32).max))


class _TorchSeed:
    """Run a block with torch's global RNG seeded, then restore it (no global side effect)."""

    def __init__(self, seed: int, device: torch.device):
        self.seed, self.device = seed, device
        self._fork = None

    def __enter__(self):
        devices = [self.device] if self.device.type == "cuda" else []
        self._fork = torch.random.fork_rng(devices=devices)
        self._fork.__enter__()
        # fork_rng keeps the CPU and CUDA generators; the MPS one is kept here
        self._mps_state = torch.mps.get_rng_state() if self.device.type == "mps" else None
        torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        if self._mps_state is not None:
            torch.mps.set_rng_state(self._mps_state)
        return self._fork.__exit__(*exc)


def _check_writable(path) -> None:
    """Raise a ``ValueError`` naming ``checkpoint_path`` unless a file can be written there."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        if path.is_dir():
            raise IsADirectoryError(f"{path} is a directory")
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb"):
            pass
        tmp.unlink()
    except OSError as exc:
        raise ValueError(
            f"checkpoint_path={str(path)!r} cannot be written ({type(exc).__name__}: "
            f"{exc}); choose a path in a writable folder.") from exc


class _Checkpoint(Callback):
    """Saves the estimator (``joblib``) every ``checkpoint_every`` iterations, atomically.

    A checkpoint loads with ``joblib.load`` as a fitted estimator (without ``labels_``);
    ``set_params(warm_start=True).fit(X)`` continues its training. Besides the networks it
    holds the optimisers' state, the engine's training state and the random generators'
    states, so that the continued fit on the same X repeats the uninterrupted one on CPU.
    """

    def __init__(self, estimator, engine, history, rng, n_samples):
        self.estimator, self.engine, self.history = estimator, engine, history
        self.rng, self.n_samples = rng, n_samples
        self.path = Path(estimator.checkpoint_path)
        self.done = []

    def on_iteration_end(self, record):
        self.done.append(record)
        if record["iteration"] % self.estimator.checkpoint_every:
            return
        est = self.estimator
        # The estimator is saved as it would be if fit stopped here.
        keys = ("engine_", "history_", "n_iter_", "labels_", "_resume_state")
        backup = {k: est.__dict__[k] for k in keys if k in est.__dict__}
        est._store_fit_state(self.engine, self.history + self.done)
        est.__dict__.pop("labels_", None)
        device = self.engine.device
        est._resume_state = {
            "n_samples": self.n_samples,
            "engine": self.engine.resume_state(),
            "numpy_rng": self.rng.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
        }
        self.engine.eval()
        tmp = self.path.with_name(self.path.name + ".tmp")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        joblib.dump(est, tmp)
        os.replace(tmp, self.path)
        self.engine.train()
        for k in keys:
            est.__dict__.pop(k, None)
        est.__dict__.update(backup)


class BaseGANClustering(ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin,
                        BaseEstimator, ABC):
    """Base class of the GAN clustering estimators. Not for direct use."""

    _parameter_constraints: dict = {
        "n_clusters": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_components": [Interval(numbers.Integral, 1, None, closed="left")],
        "image_shape": [tuple, list, None],
        "deskew": [StrOptions({"auto"}), "boolean"],
        "architecture": [StrOptions({"auto", "mlp", "conv", "paper"})],
        "hidden_dims": [tuple, list],
        "conv_channels": [tuple, list],
        # batch normalisation needs at least two rows per training batch
        "batch_size": [Interval(numbers.Integral, 2, None, closed="left")],
        "n_iter": [Interval(numbers.Integral, 1, None, closed="left")],
        "tol": [Interval(numbers.Real, 0, 1, closed="both"), None],
        "n_iter_no_change": [Interval(numbers.Integral, 1, None, closed="left")],
        "n_init": [Interval(numbers.Integral, 1, None, closed="left"), StrOptions({"auto"})],
        "device": [str, torch.device, None],
        "precision": [StrOptions({"auto", "bf16", "fp32"})],
        "compile": ["boolean"],
        "warm_start": ["boolean"],
        "checkpoint_path": [str, os.PathLike, None],
        "checkpoint_every": [Interval(numbers.Integral, 1, None, closed="left")],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    #: Widths of the paper's networks, selected by ``architecture="paper"`` (per method).
    _paper_spec = NetSpec("conv", (1024,), (64, 128, 256), ())
    #: Whether ``n_init="auto"`` also restarts image sets of at most ``AUTO_RESTART_ROWS``
    #: rows (tables of that size always get restarts). Per method, as measured.
    _auto_restart_images = False
    #: The values of the ``"auto"`` schedule parameters by network kind (``"mlp"``,
    #: ``"conv"``), resolved into ``schedule_`` when the engine is made (per method).
    _schedules: dict = {}

    def __init__(self, n_clusters=8, *, n_components=32, image_shape=None, deskew="auto",
                 architecture="auto",
                 hidden_dims=(256, 256), conv_channels=(32, 64), batch_size=64, n_iter=30,
                 tol=None, n_iter_no_change=2, n_init="auto", warm_start=False, checkpoint_path=None, checkpoint_every=1, device="auto",
                 precision="auto", compile=False, random_state=None, verbose=0):
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.image_shape = image_shape
        self.deskew = deskew
        self.architecture = architecture
        self.hidden_dims = hidden_dims
        self.conv_channels = conv_channels
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.n_init = n_init
        self.warm_start = warm_start
        self.checkpoint_path = checkpoint_path
        self.checkpoint_every = checkpoint_every
        self.device = device
        self.precision = precision
        self.compile = compile
        self.random_state = random_state
        self.verbose = verbose

    # ----------------------------------------------------------------- subclass hooks
    @abstractmethod
    def _make_engine(self, sample_shape, spec: NetSpec, device):
        """Return an unbuilt engine for this method."""

    def _init_state_kwargs(self, X, data, labels, rng) -> dict:
        """Keyword arguments for ``engine.init_state`` (initial assignments, labels...)."""
        return {}

    def _set_method_attributes(self) -> None:
        """Set method-specific fitted attributes from ``self.engine_``."""

    def _resolve_schedule(self, kind: str) -> dict:
        """The schedule parameters, with each ``"auto"`` replaced by the value for ``kind``
        (``"conv"`` or ``"mlp"``) from :attr:`_schedules`."""
        return {name: (value if getattr(self, name) == "auto" else getattr(self, name))
                for name, value in self._schedules[kind].items()}

    def _max_iter(self, n_samples: int) -> int:
        """Iterations this fit may run: ``n_iter``, or with ``"auto"`` the schedule's (a
        subclass may derive it from the data)."""
        return self.n_iter if self.n_iter != "auto" else self.schedule_["n_iter"]

    def _uses_labels(self) -> bool:
        """Whether ``fit`` uses ``y`` (semi-supervised mode)."""
        return False

    # ----------------------------------------------------------------- validation
    def _check_param_values(self):
        for name in ("hidden_dims", "conv_channels"):
            value = getattr(self, name)
            if isinstance(value, str):  # "auto", where the constraints allow it
                continue
            if not all(isinstance(v, numbers.Integral) and v > 0 for v in value):
                raise ValueError(f"{name} must be a sequence of positive integers, got {value!r}.")
        if self.image_shape is not None:
            shape = tuple(self.image_shape)
            if len(shape) not in (2, 3) or not all(
                    isinstance(v, numbers.Integral) and v > 0 for v in shape):
                raise ValueError(
                    "image_shape must be (height, width) or (channels, height, width) of "
                    f"positive integers, got {self.image_shape!r}.")

    def _validate_X(self, X, *, reset: bool) -> np.ndarray:
        """Check X and return it as a 2-D float32 array (images are flattened)."""
        if sp.issparse(X):
            raise ValueError(
                f"{type(self).__name__} does not accept sparse input: pass a dense array "
                "(e.g. X.toarray()).")
        image_from_nd = None
        if getattr(X, "ndim", 2) > 2:
            X = check_array(X, allow_nd=True, dtype=[np.float32, np.float64],
                            ensure_all_finite=True, input_name="X")
            image_from_nd = X.shape[1:]
            X = X.reshape(X.shape[0], -1)
        with warnings.catch_warnings():
            # values beyond float32's range would become inf with a numpy warning
            warnings.filterwarnings("error", message="overflow encountered",
                                    category=RuntimeWarning)
            try:
                X = validate_data(self, X, reset=reset, dtype=np.float32,
                                  ensure_min_samples=2 if reset else 1)
            except RuntimeWarning as exc:
                raise ValueError(
                    "X has values too large for float32 (beyond about 3.4e38): rescale it."
                ) from exc
        if reset:
            self.image_shape_ = self._resolve_image_shape(X.shape[1], image_from_nd)
            if self.image_shape_ is None and self._infers_images():
                inferred = infer_image_shape(X)
                self.image_shape_ = None if inferred is None else (1,) + inferred
        elif image_from_nd is not None:
            expected = self.image_shape_
            if expected is None or int(np.prod(image_from_nd)) != int(np.prod(expected)) or \
                    tuple(image_from_nd)[-2:] != tuple(expected)[-2:]:
                raise ValueError(
                    f"X has images of shape {tuple(image_from_nd)} but {type(self).__name__} "
                    f"was fitted on image_shape={expected}.")
        return X

    def _infers_images(self) -> bool:
        """Whether flat rows that look like images get conv nets (``architecture="auto"``)."""
        return self.image_shape is None and self.architecture == "auto"

    def _resolve_image_shape(self, n_features, image_from_nd):
        shape = self.image_shape
        if shape is None and image_from_nd is not None:
            shape = image_from_nd
        if shape is None:
            return None
        shape = tuple(int(v) for v in shape)
        if len(shape) == 2:
            shape = (1,) + shape
        if len(shape) != 3:
            raise ValueError(
                f"Images must be (n, height, width) or (n, channels, height, width); got "
                f"samples of shape {shape}.")
        if int(np.prod(shape)) != n_features:
            raise ValueError(
                f"image_shape={tuple(self.image_shape) if self.image_shape else shape} has "
                f"{int(np.prod(shape))} values per sample but X has {n_features} features.")
        if image_from_nd is not None and self.image_shape is not None and \
                int(np.prod(image_from_nd)) != int(np.prod(shape)):
            raise ValueError(f"image_shape={tuple(self.image_shape)} does not match X's "
                             f"images of shape {tuple(image_from_nd)}.")
        return shape

    def _validate_y(self, y, n_samples) -> np.ndarray:
        if y is None:
            raise ValueError(
                f"{type(self).__name__}(semi_supervised=True) needs y in fit: class labels "
                f"in [0, n_clusters) and -1 for unlabeled rows.")
        y = check_array(y, ensure_2d=False, dtype=None, input_name="y")
        if y.ndim != 1 or y.shape[0] != n_samples:
            raise ValueError(f"y must be 1-D with {n_samples} entries, got shape {y.shape}.")
        if not np.issubdtype(y.dtype, np.integer):
            if np.issubdtype(y.dtype, np.floating) and np.all(np.mod(y, 1) == 0):
                y = y.astype(np.int64)
            else:
                raise ValueError("y must hold integer labels (and -1 for unlabeled rows).")
        y = y.astype(np.int64)
        if np.any(y < -1) or np.any(y >= self.n_clusters):
            raise ValueError(
                f"y labels must be in [0, n_clusters={self.n_clusters}) or -1 for unlabeled; "
                f"got values in [{y.min()}, {y.max()}].")
        if not np.any(y >= 0):
            raise ValueError("semi_supervised=True but y has no labeled row (all -1).")
        return y

    def _auto_architecture(self, image_shape) -> str:
        """The network kind ``architecture="auto"`` selects: conv nets for images large
        enough for their stride-2 convolutions, perceptrons otherwise."""
        if image_shape is None or min(image_shape[1:]) < 2 ** len(self.conv_channels):
            return "mlp"
        return "conv"

    def _resolve_hidden_dims(self, kind: str) -> tuple:
        """The hidden widths of the networks of ``kind`` (``"mlp"`` or ``"conv"``)."""
        return tuple(self.hidden_dims)

    def _net_spec(self, image_shape) -> NetSpec:
        arch = self.architecture
        if arch == "auto":
            arch = self._auto_architecture(image_shape)
        if arch in ("conv", "paper") and image_shape is None:
            raise ValueError(
                f"architecture={self.architecture!r} needs images: set image_shape or pass "
                "X as an (n, height, width) or (n, channels, height, width) array.")
        spec = self._paper_spec if arch == "paper" else NetSpec(
            arch, self._resolve_hidden_dims(arch), tuple(self.conv_channels))
        if spec.kind == "conv":
            need = 2 ** len(spec.conv_channels)
            if min(image_shape[1:]) < need:
                raise ValueError(
                    f"Images of {image_shape[1]}x{image_shape[2]} pixels are too small for "
                    f"{len(spec.conv_channels)} stride-2 convolutions (at least {need}x{need} "
                    "needed): use fewer conv_channels or architecture='mlp'.")
        return spec

    # ----------------------------------------------------------------- fit
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, [channels,] height, width)
            Training data. Image arrays are flattened internally and their shape is used to
            build convolutional networks.
        y : array-like of shape (n_samples,), default=None
            Ignored unless the estimator is in semi-supervised mode; then integer class
            labels in ``[0, n_clusters)`` with -1 for unlabeled rows.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_param_values()
        warm = self.warm_start and hasattr(self, "engine_")
        if warm:
            X = self._validate_X(X, reset=False)
        else:
            X = self._validate_X(X, reset=True)
            self.deskew_ = self._resolve_deskew()
        n = X.shape[0]
        if n < self.n_clusters:
            raise ValueError(
                f"n_samples={n} should be >= n_clusters={self.n_clusters}.")
        labels = self._validate_y(y, n) if self._uses_labels() else None
        if self.checkpoint_path is not None:
            _check_writable(self.checkpoint_path)
        rng = check_random_state(self.random_state)
        n_init = 1 if warm else self._resolve_n_init(n)
        if warm:
            device = self.engine_.device
        else:
            device = resolve_device(self.device)
            self.scaler_ = RangeScaler.fit(X, per_feature=self.image_shape_ is None)
            if np.all(self.scaler_.data_max - self.scaler_.data_min <= 0):
                raise ValueError(
                    f"X has no variance: all {n} rows are equal, so there is nothing to "
                    f"cluster. {type(self).__name__} needs rows that differ.")
        if not warm:
            self._net_spec(self.image_shape_)  # networks the data cannot feed: before any run
        if n_init == 1:
            runs = [self._fit_run(X, labels, rng, device, warm, 0, 1)]
        else:
            # each run its own generator, so that the runs can go side by side
            seeds = rng.randint(np.iinfo(np.int32).max, size=n_init)
            workers = restart_workers(n_init, device, self.compile, is_memory_mapped(X))
            if workers > 1:
                runs = run_in_workers(self, X, labels, seeds, workers)
            else:
                runs = [self._restart(X, labels, seed, device, i, n_init)
                        for i, seed in enumerate(seeds)]
        best = runs[0]
        for run in runs[1:]:
            if run["score"] > best["score"]:  # the first of equally scored runs is kept
                best = run
        self.__dict__.update(best.get("attributes", {}))
        if not warm:
            self.restart_scores_ = (np.array([r["score"][1] for r in runs]) if n_init > 1
                                    else np.array([np.nan]))
        self._store_fit_state(best["engine"], best["history"])
        # Final inference pass: labels_ agree with predict(X) on the training data.
        self.labels_ = best["labels"]
        self.converged_ = converged = best["converged"]
        n_iter = best["n_iter"]
        if self.tol is not None and not converged and best["n_new"] == n_iter:
            warnings.warn(
                f"{type(self).__name__} reached n_iter={n_iter} iterations before "
                f"converging (tol={self.tol}: at most that share of rows changing cluster in "
                f"{self.n_iter_no_change} iterations in a row; the last changes are in "
                "history_['label_change']). Increase n_iter, or continue with "
                "warm_start=True.", ConvergenceWarning, stacklevel=2)
        self._warn_if_degenerate(self.labels_)
        return self

    def _resolve_deskew(self) -> bool:
        """Whether this fit deskews its images: ``deskew``, or for ``"auto"`` single-channel
        images with sides of at least ``AUTO_MIN_SIDE`` pixels."""
        if self.deskew == "auto":
            shape = self.image_shape_
            return bool(shape is not None and shape[0] == 1 and min(shape[1:]) >= AUTO_MIN_SIDE)
        if self.deskew and self.image_shape_ is None:
            raise ValueError(
                "deskew=True needs images: pass X as an (n, height, width) or (n, channels, "
                "height, width) array, or set image_shape.")
        return bool(self.deskew)

    @property
    def _input_map(self):
        """The fitted map from the user's rows to the networks' inputs: the scaler, after
        deskewing where ``deskew_`` is set."""
        if getattr(self, "deskew_", False):
            return DeskewThenScale(self.scaler_, self.image_shape_)
        return self.scaler_

    def _resolve_n_init(self, n_samples: int) -> int:
        """Training runs of this fit: ``n_init``, or for ``"auto"`` 3 on data of at most
        ``AUTO_RESTART_ROWS`` rows without a checkpoint (tables, and images where
        ``_auto_restart_images``), else 1."""
        if self.n_init != "auto":
            if self.n_init > 1 and self.checkpoint_path is not None:
                raise ValueError(
                    f"checkpoint_path saves one training run, but n_init={self.n_init} "
                    "asks for several: set n_init=1 to checkpoint.")
            return self.n_init
        restarted = self.image_shape_ is None or self._auto_restart_images
        small = restarted and n_samples <= AUTO_RESTART_ROWS
        return 3 if small and self.checkpoint_path is None else 1

    def _restart(self, X, labels, seed, device, restart, n_init, progress=None) -> dict:
        """Run ``restart`` of ``n_init`` from its own generator, with its score."""
        run = self._fit_run(X, labels, np.random.RandomState(seed), device, False, restart,
                            n_init, progress=progress)
        run["score"] = self._restart_score(run.pop("data"), run["labels"],
                                           run.pop("confidence"))
        # what the run fitted besides its engine (a schedule, for example)
        run["attributes"] = {k: v for k, v in vars(self).items()
                             if k.endswith("_") and k != "engine_"}
        return run

    def _fit_run(self, X, labels, rng, device, warm, restart, n_init, progress=None) -> dict:
        """One training run from new networks (or, warm, from the fitted ones).

        ``progress``: a queue to send the run's progress to (a run in a worker process);
        else, with ``verbose``, the run shows its own progress bar."""
        n = X.shape[0]
        if warm:
            engine, start, history = self.engine_, self.n_iter_, list(self.history_)
        else:
            spec = self._net_spec(self.image_shape_)
            # perceptrons see flat rows, also when the rows are images
            shape = self.image_shape_ if spec.kind == "conv" else (X.shape[1],)
            engine = self._make_engine(shape, spec, device)
            start, history = 0, []
        data = DataSource(X, self._input_map, device, engine.sample_shape)
        callbacks = []
        if progress is not None:
            callbacks.append(QueueProgress(progress, restart))
        elif self.verbose:
            callbacks.append(ProgressBar(run_name(type(self).__name__, restart, n_init)))
        if self.checkpoint_path is not None:
            callbacks.append(_Checkpoint(self, engine, history, rng, n))
        resume = self.__dict__.pop("_resume_state", None) if warm else None
        with _TorchSeed(_seed_from(rng), device), fast_cuda(device):
            if warm:
                engine.set_precision(self.precision)
                if self.compile:
                    engine.compile()
                engine.resume(data, rng, **self._init_state_kwargs(X, data, labels, rng))
                if resume is not None and resume["n_samples"] == n:
                    # a checkpoint: continue exactly where it was taken
                    engine.load_resume_state(resume["engine"])
                    rng.set_state(resume["numpy_rng"])
                    torch.set_rng_state(resume["torch_rng"])
                    if resume["cuda_rng"] is not None and device.type == "cuda":
                        torch.cuda.set_rng_state(resume["cuda_rng"], device)
            else:
                engine.build()
                engine.set_precision(self.precision)
                if self.compile:
                    engine.compile()
                engine.init_state(data, rng, **self._init_state_kwargs(X, data, labels, rng))
            n_iter = self._max_iter(n)
            new, converged = fit_loop(engine, data, start + n_iter, rng, callbacks,
                                      start=start, tol=self.tol,
                                      n_iter_no_change=self.n_iter_no_change)
            history.extend(new)
            with torch.inference_mode():
                engine.finalize(data)
        self._store_fit_state(engine, history)
        proba = self._proba(data)
        confidence = float(proba.max(axis=1).mean())
        return {"engine": engine, "history": history, "data": data,
                "labels": proba.argmax(axis=1), "converged": converged,
                "confidence": confidence if np.isfinite(confidence) else -1.0,
                "n_iter": n_iter, "n_new": len(new)}

    def _restart_criterion(self) -> str:
        """What ranks restarts of this fit: ``"silhouette"`` (of the labels on
        :meth:`transform`) or ``"confidence"`` (the mean largest :meth:`predict_proba`)."""
        return "silhouette"

    def _restart_score(self, data, labels, confidence=None) -> tuple[bool, float]:
        """How a run ranks among restarts: runs without empty or near-empty clusters first,
        then :meth:`_restart_criterion`: the silhouette of its clusters on its own embedding
        (:meth:`_embedding_silhouette`) or ``confidence``, its mean largest cluster
        probability on the training rows (from :meth:`_fit_run`)."""
        score = (confidence if self._restart_criterion() == "confidence"
                 else self._embedding_silhouette(data, labels))
        return (not degenerate_clusters(labels, self.n_clusters), score)

    def _embedding_silhouette(self, data, labels) -> float:
        """Silhouette of ``labels`` on :meth:`transform`, on at most ``RESTART_SCORE_ROWS``
        evenly spaced rows (-1 where it is undefined or the embedding is not finite)."""
        n = labels.shape[0]
        rows = np.unique(np.linspace(0, n - 1, min(n, RESTART_SCORE_ROWS)).astype(np.int64))
        self.engine_.eval()
        emb = batched_inference(self.engine_.transform, data, INFERENCE_BATCH_SIZE, rows=rows)
        sub = labels[rows]
        if 2 <= len(np.unique(sub)) < len(sub) and np.all(np.isfinite(emb)):
            return float(silhouette_score(emb.astype(np.float64), sub))
        return -1.0

    def _warn_if_degenerate(self, labels) -> None:
        """``ConvergenceWarning`` naming the empty or near-empty clusters of ``labels_``."""
        bad = degenerate_clusters(labels, self.n_clusters)
        if not bad:
            return
        sizes = np.bincount(labels, minlength=self.n_clusters).tolist()
        named = ", ".join(f"cluster {k} ({c} rows)" for k, c in bad)
        warnings.warn(
            f"{type(self).__name__} ended with {len(bad)} empty or near-empty cluster(s) of "
            f"{self.n_clusters}: {named}; cluster sizes {sizes} for {labels.shape[0]} rows. "
            "The result is degenerate: try another random_state, fewer n_clusters, more "
            "n_iter, or check the scaling of X. history_ holds the cluster sizes per "
            "iteration.", ConvergenceWarning, stacklevel=4)

    def _store_fit_state(self, engine, history):
        """Set the fitted attributes that describe the trained engine."""
        self.engine_ = engine
        self.history_ = history
        self.n_iter_ = len(history)
        self.device_ = str(engine.device)
        self._n_features_out = self.n_components
        self._set_method_attributes()

    # ----------------------------------------------------------------- inference
    def _data(self, X) -> DataSource:
        check_is_fitted(self, "engine_")
        X = self._validate_X(X, reset=False)
        return DataSource(X, self._input_map, self.engine_.device, self.engine_.sample_shape)

    def _proba_fn(self):
        """The engine method giving soft assignments (a subclass may select another)."""
        return self.engine_.predict_proba

    def _proba(self, data) -> np.ndarray:
        self.engine_.eval()
        proba = batched_inference(self._proba_fn(), data, INFERENCE_BATCH_SIZE)
        proba = proba.astype(np.float64)
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_proba(self, X):
        """Soft cluster assignments.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters)
            Rows sum to 1.
        """
        return self._proba(self._data(X))

    def predict(self, X):
        """Cluster of each sample: the argmax of :meth:`predict_proba`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.predict_proba(X).argmax(axis=1)

    def fit_predict(self, X, y=None):
        """Fit and return ``labels_`` (equal to ``fit(X).predict(X)``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array
        y : array-like, default=None
            See :meth:`fit`.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
        """
        return self.fit(X, y).labels_

    def transform(self, X):
        """Embed X in the learned ``n_components``-dimensional space.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or image array

        Returns
        -------
        X_new : ndarray of shape (n_samples, n_components)
        """
        data = self._data(X)
        self.engine_.eval()
        return batched_inference(self.engine_.transform, data, INFERENCE_BATCH_SIZE)

    def sample(self, n_samples=1, cluster=None, random_state=None):
        """Generate samples from the fitted generator.

        Parameters
        ----------
        n_samples : int, default=1
        cluster : int or array-like of int, default=None
            Cluster(s) to generate from. By default clusters are drawn from the fitted
            mixture weights.
        random_state : int, RandomState instance or None, default=None
            Seed for the draw.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Generated rows, in the units of the training data; deskewed images where the
            fit deskewed its images (``deskew_``).
        clusters : ndarray of shape (n_samples,)
            The cluster of each row.
        """
        check_is_fitted(self, "engine_")
        if not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer, got {n_samples!r}.")
        rng = check_random_state(random_state)
        clusters = self._sample_clusters(n_samples, cluster, rng)
        engine = self.engine_
        engine.eval()
        out = []
        with _TorchSeed(_seed_from(rng), engine.device), torch.inference_mode():
            for start in range(0, n_samples, INFERENCE_BATCH_SIZE):
                c = torch.as_tensor(clusters[start:start + INFERENCE_BATCH_SIZE],
                                    device=engine.device)
                out.append(engine.generate(c).reshape(c.shape[0], -1).float().cpu().numpy())
        X = self.scaler_.inverse_transform(np.concatenate(out))
        return X, self._sample_labels(X, clusters)

    def _sample_clusters(self, n_samples, cluster, rng) -> np.ndarray:
        k = self.n_clusters
        if cluster is None:
            prior = self.engine_.cluster_prior().double().numpy()
            return rng.choice(k, size=n_samples, p=prior / prior.sum())
        c = np.asarray(cluster)
        if not np.issubdtype(c.dtype, np.integer) or np.any(c < 0) or np.any(c >= k):
            raise ValueError(f"cluster must be an integer in [0, {k}), got {cluster!r}.")
        if c.ndim == 0:
            return np.full(n_samples, int(c))
        if c.shape != (n_samples,):
            raise ValueError(f"cluster must be an int or have shape ({n_samples},), "
                             f"got shape {c.shape}.")
        return c.astype(np.int64)

    def _sample_labels(self, X, clusters) -> np.ndarray:
        """Cluster reported for generated rows: the conditioning cluster by default."""
        return clusters

    # ----------------------------------------------------------------- pickling
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns __dict__
        engine = state.pop("engine_", None)
        if engine is not None:
            state["_engine_payload"] = {
                "format": _PICKLE_FORMAT,
                "skganem_version": __version__,
                "class": type(engine),
                "config": engine.config,
                "sample_shape": engine.sample_shape,
                "device": str(engine.device),
                "state": engine.state_dict(),
            }
        return state

    def __setstate__(self, state):
        payload = state.pop("_engine_payload", None)
        super().__setstate__(state)
        if payload is None:
            return
        if payload.get("format") != _PICKLE_FORMAT:
            raise IncompatibleVersionError(
                f"This {type(self).__name__} was saved by skganem "
                f"{payload.get('skganem_version', '?')} in a format this version "
                f"({__version__}) cannot read; refit it or load it with that version.")
        device = load_device(payload["device"])
        engine = payload["class"](payload["config"], payload["sample_shape"], device)
        with _TorchSeed(0, device):
            engine.build()
        engine.load_state_dict(payload["state"])
        engine.set_precision(getattr(self, "precision", "fp32"))
        engine.eval()
        self.engine_ = engine
        self.device_ = str(device)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = False
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
