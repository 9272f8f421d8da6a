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
import torch
import torch.nn.functional as F

#: ``deskew="auto"`` deskews single-channel images with both sides at least this long. On
#: 28x28 MNIST images deskewing lifted GAN-EM; on the 8x8 digits, where one pixel is an
#: eighth of the image and the bilinear resampling blurs the strokes, it lowered it
#: (``docs/ganem.md``, "Deskewing"). 16 lies between the two measured sizes.
AUTO_MIN_SIDE = 16

#: The largest shear applied, ``|a|`` (45 degrees): beyond it an image's ink is close to a
#: horizontal stroke, whose slope against the rows says nothing about slant.
MAX_SHEAR = 1.0


def _shear_torch(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Shear ``a`` and ink centre row ``mr`` of each image in ``gray`` (n, h, w), float32."""
    n, h, w = gray.shape
    border = torch.cat([gray[:, 0, :], gray[:, -1, :], gray[:, 1:-1, 0], gray[:, 1:-1, -1]],
                       dim=1)
    background = torch.quantile(border, 0.5, dim=1)  # the median, as numpy's
    ink = (gray - background[:, None, None]).abs_()
    # moments about the image's centre, so that float32 keeps their precision
    rows = torch.arange(h, dtype=torch.float32) - (h - 1) / 2
    cols = torch.arange(w, dtype=torch.float32) - (w - 1) / 2
    row_mass = ink.sum(2)  # (n, h)
    by_col = ink @ cols  # (n, h): sum over c of ink * c, per row
    total = row_mass.sum(1)
    safe = torch.where(total > 0, total, torch.ones_like(total))
    mr = row_mass @ rows / safe
    mc = by_col.sum(1) / safe
    var_r = row_mass @ rows ** 2 / safe - mr ** 2
    cov = by_col @ rows / safe - mr * mc
    ok = (total > 0) & (var_r > 1e-6)
    shear = torch.where(ok, cov / torch.where(ok, var_r, torch.ones_like(var_r)),
                        torch.zeros_like(var_r))
    mr = torch.where(total > 0, mr, torch.zeros_like(mr)) + (h - 1) / 2
    return shear.clamp(-MAX_SHEAR, MAX_SHEAR), mr


def deskew_shear(gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Shear ``a`` and ink centre row ``mr`` of each image in ``gray`` (n, height, width)."""
    shear, mr = _shear_torch(torch.as_tensor(np.asarray(gray, dtype=np.float32)))
    return shear.numpy(), mr.numpy()


def deskew_images(X: np.ndarray, image_shape, chunk: int = 4096) -> np.ndarray:
    """Deskewed copies of the flat image rows ``X`` (n, channels * height * width), float32.

    ``image_shape`` is ``(channels, height, width)``; see the module's docstring for the map.
    Runs in torch on the CPU (bilinear ``grid_sample``, edges repeated), in chunks of
    ``chunk`` images.
    """
    c, h, w = (int(v) for v in image_shape)
    X = torch.as_tensor(np.ascontiguousarray(X, dtype=np.float32))
    out = torch.empty_like(X)
    # grid_sample's coordinates: -1 and 1 are the centres of the first and last pixels
    y = (torch.linspace(-1.0, 1.0, h) if h > 1 else torch.zeros(1))[:, None].expand(h, w)
    row_px = torch.arange(h, dtype=torch.float32)[:, None]
    col_norm = torch.linspace(-1.0, 1.0, w) if w > 1 else torch.zeros(1)
    col_scale = 2.0 / (w - 1) if w > 1 else 0.0
    with torch.inference_mode():
        for start in range(0, X.shape[0], chunk):
            imgs = X[start:start + chunk].view(-1, c, h, w)
            shear, mr = _shear_torch(imgs[:, 0] if c == 1 else imgs.mean(1))
            # column read: c + a (r - mr), in grid_sample's coordinates
            x = col_norm + (shear * col_scale)[:, None, None] * (row_px - mr[:, None, None])
            grid = torch.stack([x, y.expand_as(x)], dim=-1)
            block = F.grid_sample(imgs, grid, mode="bilinear", padding_mode="border",
                                  align_corners=True)
            out[start:start + chunk] = block.reshape(block.shape[0], -1)
    return out.numpy()


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
