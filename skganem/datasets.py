"""Data loaders: MNIST from an ``.npz`` file, the standard IDX files, or a download."""

from __future__ import annotations

import gzip
import os
import struct
import urllib.request
from pathlib import Path

import numpy as np

MNIST_URLS = {
    "train-images-idx3-ubyte.gz": "https://storage.googleapis.com/cvdf-datasets/mnist/train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz": "https://storage.googleapis.com/cvdf-datasets/mnist/train-labels-idx1-ubyte.gz",
}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        zero, dtype_code, ndim = struct.unpack(">HBB", fh.read(4))
        if zero != 0 or dtype_code != 0x08:
            raise ValueError(f"{path} is not an unsigned-byte IDX file.")
        shape = struct.unpack(">" + "I" * ndim, fh.read(4 * ndim))
        data = np.frombuffer(fh.read(), dtype=np.uint8)
    if data.size != int(np.prod(shape)):
        raise ValueError(f"{path} is truncated: expected {int(np.prod(shape))} values.")
    return data.reshape(shape)


def load_mnist(path=None, *, n_samples=None, random_state=0, download=False):
    """Load the MNIST training images and labels.

    Parameters
    ----------
    path : str or Path, default=None
        An ``.npz`` file with arrays ``X`` (n, 28, 28) and ``y``, or a folder with the IDX
        files ``train-images-idx3-ubyte[.gz]`` and ``train-labels-idx1-ubyte[.gz]``. Defaults
        to ``$SKGANEM_MNIST`` or ``~/skganem_data/mnist``.
    n_samples : int, default=None
        Return a random subset of this many images (drawn with ``random_state``).
    random_state : int, default=0
    download : bool, default=False
        Download the IDX files into the folder when they are missing.

    Returns
    -------
    X : ndarray of shape (n, 28, 28), uint8
    y : ndarray of shape (n,), uint8
    """
    path = Path(path or os.environ.get("SKGANEM_MNIST", Path.home() / "skganem_data" / "mnist"))
    if path.suffix == ".npz":
        with np.load(path) as npz:
            X, y = npz["X"], npz["y"]
    else:
        files = {}
        for name in MNIST_URLS:
            plain = path / name[:-3]
            gz = path / name
            if not plain.exists() and not gz.exists():
                if not download:
                    raise FileNotFoundError(
                        f"MNIST file {gz} not found; pass download=True or a path.")
                path.mkdir(parents=True, exist_ok=True)
                urllib.request.urlretrieve(MNIST_URLS[name], gz)
            files[name] = plain if plain.exists() else gz
        X = read_idx(files["train-images-idx3-ubyte.gz"])
        y = read_idx(files["train-labels-idx1-ubyte.gz"])
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"MNIST images ({X.shape[0]}) and labels ({y.shape[0]}) differ.")
    if n_samples is not None and n_samples < X.shape[0]:
        idx = np.sort(np.random.RandomState(random_state).choice(X.shape[0], n_samples,
                                                                 replace=False))
        X, y = X[idx], y[idx]
    return X, y
