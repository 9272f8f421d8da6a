"""Data augmentation of image batches for the training engines (plain PyTorch).

Each named augmentation rotates every image by a random angle and shifts it by a random
fraction of its height and width, drawn independently per image, with the edge pixels
repeated into the uncovered border (Keras' ``fill_mode="nearest"``):

- ``"affine"``, the augmentation of DEC-DA (Guo et al., "Deep Embedded Clustering with Data
  Augmentation", ACML 2018): up to 10 degrees and 10 %;
- ``"wide-affine"`` (ours): up to 25 degrees and 10 %, which AMM's consistency term uses.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

#: name -> (largest rotation in degrees, largest shift as a fraction of the image's size)
AUGMENTATIONS = {"affine": (10.0, 0.1), "wide-affine": (25.0, 0.1)}


def random_affine(x: torch.Tensor, image_shape, *, max_rotation: float = 10.0,
                  max_shift: float = 0.1) -> torch.Tensor:
    """Rotate and shift every image of a batch by its own random amount.

    Parameters
    ----------
    x : Tensor of shape (B, *sample_shape)
        Images, either as ``(B, C, H, W)`` or as flat rows of ``C * H * W`` values.
    image_shape : tuple of int
        ``(C, H, W)`` of one image.
    max_rotation : float, default=10.0
        Rotation angles are uniform in ``[-max_rotation, max_rotation]`` degrees.
    max_shift : float, default=0.1
        Shifts are uniform in ``[-max_shift, max_shift]`` times the height and the width.

    Returns
    -------
    Tensor
        The transformed batch, with the shape of ``x``. Random numbers come from torch's
        generator of ``x``'s device (seeded by the estimators).
    """
    n = x.shape[0]
    images = x.reshape((n,) + tuple(image_shape))
    angle = (torch.rand(n, device=x.device) * 2 - 1) * math.radians(max_rotation)
    # affine_grid works in normalised coordinates, where the image spans [-1, 1]
    shift = (torch.rand(n, 2, device=x.device) * 2 - 1) * (2 * max_shift)
    cos, sin = torch.cos(angle), torch.sin(angle)
    theta = torch.stack([torch.stack([cos, -sin, shift[:, 0]], dim=1),
                         torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1).to(x.dtype)
    grid = F.affine_grid(theta, images.shape, align_corners=False)
    out = F.grid_sample(images, grid, mode="bilinear", padding_mode="border",
                        align_corners=False)
    return out.reshape(x.shape)


def resolve_augmentation(param: str, name, kind: str, image_shape, auto: str = "affine"):
    """An augmentation parameter's value for a fit: ``"auto"`` becomes ``auto`` for conv nets
    on images and None otherwise; an explicit augmentation on flat features (no
    ``image_shape``) is refused, since it transforms images only."""
    if name == "auto":
        return auto if kind == "conv" and image_shape is not None else None
    if name is not None and image_shape is None:
        raise ValueError(
            f"{param}={name!r} transforms images, but X holds flat features: pass "
            "image_shape=(height, width) or X of shape (n_samples, [channels,] height, width), "
            f"or set {param}=None.")
    return name


def make_augmentation(name, image_shape):
    """The batch transform for an estimator's ``augmentation`` parameter (None: none)."""
    if name is None:
        return None
    if name in AUGMENTATIONS:
        rotation, shift = AUGMENTATIONS[name]
        return functools.partial(random_affine, image_shape=tuple(int(s) for s in image_shape),
                                 max_rotation=rotation, max_shift=shift)
    raise ValueError(f"augmentation must be one of {tuple(AUGMENTATIONS)} or None, "
                     f"got {name!r}.")
