"""Device resolution, host-to-device batching and batched inference.

Nothing here knows about scikit-learn: the engines and the estimators both use it.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator

import numpy as np
import torch


def mps_available() -> bool:
    """Whether an Apple-silicon GPU (PyTorch's ``mps`` backend) can be used here."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(device: str | torch.device | None) -> torch.device:
    """Turn the user's ``device`` parameter into a :class:`torch.device`.

    ``"auto"`` (or ``None``) picks ``cuda`` when a CUDA device is available, else ``mps``
    (Apple GPUs) when available, else ``cpu``. An explicit CUDA or MPS device on a machine
    without one raises ``ValueError``.
    """
    if device is None or device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device") from exc
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"device={device!r} was requested but CUDA is not available on this "
                "machine; use device='auto' or device='cpu'."
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device={device!r} does not exist: this machine has "
                f"{torch.cuda.device_count()} CUDA device(s)."
            )
    elif dev.type == "mps":
        if not mps_available():
            raise ValueError(
                f"device={device!r} was requested but PyTorch's MPS backend (Apple GPUs) is "
                "not available on this machine; use device='auto' or device='cpu'."
            )
    elif dev.type != "cpu":
        raise ValueError(
            f"device={device!r} is not supported; use 'auto', 'cpu', 'cuda[:N]' or 'mps'.")
    return dev


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes in bfloat16 natively (CUDA from Ampere on; CPUs with
    AVX-512 BF16 or AMX, as oneDNN reports)."""
    if device.type == "cuda":
        return bool(torch.cuda.is_bf16_supported())
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


def resolve_precision(precision: str, device: torch.device, conv: bool = True):
    """The autocast dtype for the user's ``precision`` on ``device``: ``torch.bfloat16`` or
    None (float32).

    ``"auto"`` gives bfloat16 for convolutional networks (``conv``) where the device computes
    it natively, float32 elsewhere: for perceptrons (measured on 2 CPU cores, bfloat16 saved
    nothing there), on MPS and on devices without native bfloat16. ``"bf16"`` asks for
    bfloat16 anywhere autocast supports it (on a CPU without native support it is emulated:
    correct but slow).
    """
    device = torch.device(device)
    if precision == "fp32":
        return None
    if precision == "bf16":
        if device.type == "mps":
            raise ValueError("precision='bf16' is not supported on MPS; use 'fp32' or 'auto'.")
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError(f"precision='bf16' was requested but {device} does not support "
                             "bfloat16; use 'fp32' or 'auto'.")
        return torch.bfloat16
    return torch.bfloat16 if conv and bf16_supported(device) else None


class fast_cuda:
    """Within the block, let cuDNN pick the fastest convolution algorithms for the fixed batch
    shapes (``cudnn.benchmark``) and let matmuls and convolutions use TF32 on CUDA; the flags
    are restored on exit. A no-op on other devices."""

    def __init__(self, device: torch.device):
        self.active = torch.device(device).type == "cuda"

    def __enter__(self):
        if self.active:
            self.saved = (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
                          torch.backends.cudnn.allow_tf32)
            torch.backends.cudnn.benchmark = True
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        return self

    def __exit__(self, *exc):
        if self.active:
            (torch.backends.cudnn.benchmark, torch.backends.cuda.matmul.allow_tf32,
             torch.backends.cudnn.allow_tf32) = self.saved
        return False


def load_device(stored: str) -> torch.device:
    """Device on which to restore a model that was fitted on ``stored``.

    Falls back to the CPU, with a warning, when the stored CUDA or MPS device is not
    available.
    """
    dev = torch.device(stored)
    if (dev.type == "cuda" and not torch.cuda.is_available()) or \
            (dev.type == "mps" and not mps_available()):
        warnings.warn(
            f"This model was fitted on {stored!r} but {dev.type.upper()} is not available "
            "here; it was loaded on the CPU.",
            UserWarning,
            stacklevel=3,
        )
        return torch.device("cpu")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        return torch.device("cuda")
    return dev


def batch_slices(n: int, batch_size: int) -> Iterator[slice]:
    """Contiguous slices covering ``range(n)`` in order."""
    for start in range(0, n, batch_size):
        yield slice(start, min(start + batch_size, n))


def batched_inference(
    fn: Callable[[torch.Tensor], torch.Tensor],
    data: "DataSource",
    batch_size: int,
    rows: np.ndarray | None = None,
) -> np.ndarray:
    """Apply ``fn`` to ``data`` batch by batch without autograd and stack the results;
    ``rows`` (an index array) restricts it to those rows, in their order.

    The caller puts its networks in eval mode, so the result does not depend on
    ``batch_size`` or on the order of the rows.
    """
    n = data.n if rows is None else len(rows)
    outs = []
    with torch.inference_mode():
        for sl in batch_slices(n, batch_size):
            outs.append(fn(data.rows(sl if rows is None else rows[sl])).float().cpu().numpy())
    if not outs:
        raise ValueError("No rows to process.")
    return np.concatenate(outs, axis=0)


def is_memory_mapped(X) -> bool:
    """Whether X is (a view of) a memory-mapped buffer, e.g. a ``numpy.memmap``."""
    import mmap

    obj = X
    while obj is not None:
        if isinstance(obj, (np.memmap, mmap.mmap)):
            return True
        obj = getattr(obj, "base", None)
    return False


class DataSource:
    """Rows of a 2-D host array served as scaled float32 tensors on a device.

    Small arrays are copied to the device once; large ones, and memory-mapped ones (or views
    of them, as ``validate_data`` returns for a float32 ``numpy.memmap``), stay on the host and
    are streamed a mini-batch at a time, so that no full copy is made.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
        Data in the user's units.
    scaler : RangeScaler or DeskewThenScale
        Fitted map from the data to the generator's range (``transform``).
    device : torch.device
    sample_shape : tuple of int
        Shape of one row as the networks expect it, e.g. ``(64,)`` or ``(1, 28, 28)``.
    preload_bytes : int
        Arrays up to this size (after scaling, float32) are copied to the device once.
    """

    def __init__(self, X, scaler, device, sample_shape, preload_bytes=1 << 30):
        self.X = X
        self.scaler = scaler
        self.device = device
        self.sample_shape = tuple(sample_shape)
        self.n = X.shape[0]
        self._cached = None
        if not is_memory_mapped(X) and self.n * X.shape[1] * 4 <= preload_bytes:
            self._cached = self._convert(X)

    def _convert(self, block: np.ndarray) -> torch.Tensor:
        block = self.scaler.transform(np.asarray(block, dtype=np.float32))
        t = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float32))
        return t.to(self.device, non_blocking=True).reshape((-1,) + self.sample_shape)

    @property
    def index_device(self) -> torch.device:
        """Where row indices should live: the device for preloaded rows (no host copy per
        batch), the host for streamed ones."""
        return self.device if self._cached is not None else torch.device("cpu")

    def rows(self, index) -> torch.Tensor:
        """Scaled rows for a slice, an integer index array or an index tensor, on the device."""
        if self._cached is not None:
            if isinstance(index, np.ndarray):
                index = torch.as_tensor(index, device=self.device)
            return self._cached[index]
        if torch.is_tensor(index):
            index = index.cpu().numpy()
        return self._convert(self.X[index])  # keeps the order of ``index`` (rows <-> weights)
