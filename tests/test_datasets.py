import gzip
import struct

import numpy as np
import pytest

from skganem.datasets import load_mnist, read_idx


def _write_idx(path, array):
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(">" + "I" * array.ndim,
                                                                   *array.shape)
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_idx_and_npz_loaders(tmp_path):
    rng = np.random.RandomState(0)
    X = rng.randint(0, 256, size=(12, 28, 28)).astype(np.uint8)
    y = rng.randint(0, 10, size=12).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", X)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", y)
    np.testing.assert_array_equal(read_idx(tmp_path / "train-images-idx3-ubyte.gz"), X)
    X2, y2 = load_mnist(tmp_path)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, y)
    np.savez(tmp_path / "m.npz", X=X, y=y)
    X3, y3 = load_mnist(tmp_path / "m.npz", n_samples=5, random_state=1)
    assert X3.shape == (5, 28, 28) and y3.shape == (5,)


def test_missing_files_and_bad_idx(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        load_mnist(tmp_path)
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="IDX"):
        read_idx(tmp_path / "bad")
