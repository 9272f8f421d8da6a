"""Deskewing of images: the shear that makes each image's principal axis of ink vertical.

Handwriting varies in slant, and a clustering can take slant for a class: GAN-EM on
MNIST-10k split fours and nines into a leaning-left and a leaning-right cluster in one run of
three (``docs/ganem.md``). Deskewing removes the slant before any model sees the image, as in
LeCun et al. (1998, deskewed MNIST) and the moment-based normalisation used since: with the
image's ink ``m(r, c)`` as weights, its centre of mass ``(mr, mc)``, row variance ``var_r``
and row-column covariance ``cov_rc``, the output pixel ``(r, c)`` reads the input at
``(r, c + a (r - mr))`` with ``a = cov_rc / var_r`` (bilinear, pixels beyond the border take
the nearest edge pixel's value), which makes the ink's column independent of its row on
average. Rows are not moved.

The paper GAN-EM follows is silent on preprocessing; the ink is measured against the image's
background, so that dark ink on a light background is deskewed as well as light ink on a dark
one: ``m = |g - b|``, where ``g`` is the image averaged over its channels and ``b`` the median
of its border pixels. All channels get the shear of that one weight map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: ``deskew="auto"`` deskews single-channel images with both sides at least this long. On
#: 28x28 MNIST images deskewing lifted GAN-EM; on the 8x8 digits, where one pixel is an
#: eighth of the image and the bilinear resampling blurs the strokes, it lowered it
#: (``docs/ganem.md``, "Deskewing"). 16 lies between the two measured sizes.
AUTO_MIN_SIDE = 16

#: The largest shear applied, ``|a|`` (45 degrees): beyond it an image's ink is close to a
#: horizontal stroke, whose slope against the rows says nothing about slant.
MAX_SHEAR = 1.0


def deskew_shear(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shear ``a`` and ink centre row ``mr`` of each image in ``gray`` (n, height, width)."""
    n, h, w = gray.shape
    border = np.concatenate([gray[:, 0, :], gray[:, -1, :], gray[:, 1:-1, 0], gray[:, 1:-1, -1]],
                            axis=1)
    ink = np.abs(gray - np.median(border, axis=1)[:, None, None]).astype(np.float64)
    rows, cols = np.arange(h, dtype=np.float64), np.arange(w, dtype=np.float64)
    row_mass = ink.sum(2)  # (n, h)
    total = row_mass.sum(1)
    safe = np.where(total > 0, total, 1.0)
    mr = row_mass @ rows / safe
    mc = ink.sum(1) @ cols / safe
    var_r = row_mass @ rows ** 2 / safe - mr ** 2
    cov = np.einsum("nrc,r,c->n", ink, rows, cols) / safe - mr * mc
    ok = (total > 0) & (var_r > 1e-6)
    shear = np.where(ok, cov / np.where(ok, var_r, 1.0), 0.0)
    return np.clip(shear, -MAX_SHEAR, MAX_SHEAR), np.where(total > 0, mr, (h - 1) / 2)


def deskew_images(X: np.ndarray, image_shape, chunk: int = 4096) -> np.ndarray:
    """Deskewed copies of the flat image rows ``X`` (n, channels * height * width), float32.

    ``image_shape`` is ``(channels, height, width)``; see the module's docstring for the map.
    """
    c, h, w = (int(v) for v in image_shape)
    X = np.asarray(X, dtype=np.float32)
    out = np.empty_like(X)
    cols = np.arange(w, dtype=np.float64)
    rows = np.arange(h, dtype=np.float64)
    for start in range(0, X.shape[0], chunk):
        imgs = X[start:start + chunk].reshape(-1, c, h, w)
        shear, mr = deskew_shear(imgs.mean(1))
        src = cols[None, None, :] + shear[:, None, None] * (rows[None, :, None] - mr[:, None, None])
        left = np.floor(src)
        frac = (src - left).astype(np.float32)[:, None]  # (n, 1, h, w)
        i0 = np.clip(left, 0, w - 1).astype(np.intp)[:, None]
        i1 = np.clip(left + 1, 0, w - 1).astype(np.intp)[:, None]
        i0, i1 = np.broadcast_to(i0, imgs.shape), np.broadcast_to(i1, imgs.shape)
        block = (np.take_along_axis(imgs, i0, axis=3) * (1 - frac)
                 + np.take_along_axis(imgs, i1, axis=3) * frac)
        out[start:start + chunk] = block.reshape(block.shape[0], -1)
    return out


@dataclass
class DeskewThenScale:
    """The networks' input map with deskewing: :func:`deskew_images`, then ``scaler``.

    Has the ``transform`` / ``inverse_transform`` of the scaler it wraps; the inverse undoes
    the scaling only (generated images stay deskewed).
    """

    scaler: object
    image_shape: tuple

    def transform(self, X: np.ndarray) -> np.ndarray:
        return self.scaler.transform(deskew_images(X, self.image_shape))

    def inverse_transform(self, X: np.ndarray) -> np.ndarray:
        return self.scaler.inverse_transform(X)
