"""The AMM paper's MNIST networks, layer by layer (Appendix B.1, Tables 3, 5 and 6).

``AMMClustering(architecture="paper")`` builds these; the prior network of Table 4 is
:class:`skganem._engines.amm._MixturePrior` for every architecture.

- Table 3, ``G_z(x) G_y(x, G_z(x))``: two convolutional streams of five layers (2x2 stride 1,
  3x3 stride 2, 3x3 stride 2, 3x3 stride 1, 4x4 stride 1: 28 -> 27 -> 13 -> 6 -> 4 -> 1 pixels,
  32/32/64/64/128 channels). The z stream sees only x; after every layer the y stream adds the
  z stream's output to its own (``y_ia = Leak(BN(y_i + z_i))``, ``z_ia = Leak(BN(z_i))``).
  1x1 convolutions on the last 1x1 maps give ``mu`` and ``log sigma^2`` of y and z (ExpN, Eq.
  20: ``sigma = exp(0.5 * log sigma^2)``).
- Table 5, ``G_x(y, z)``: the mirror image with transposed convolutions, two streams again;
  the y stream has batch normalisation and no activation (``y_ia = BN(y_i + z_i)``).
- Table 6, ``D(x, y, z)``: a five-layer conv stream on x (no batch normalisation), two
  64-unit layers each on y and z, and three layers on their concatenation.

Where the tables leave room, and our choices:

- the Dropout column (0.2) is applied to the layer's input, as in ALI's tables, which these
  follow: so the critic's output layer ``p`` drops its input, not its logit;
- images of other sizes than 28x28 keep the layers, with the last encoder kernel (4x4 on
  MNIST) covering whatever map is left and output padding where a stride-2 transposed
  convolution must give an even size; this needs at least 16x16 pixels;
- the decoder ends in ``tanh`` (the library scales images onto ``[-1, 1]``) instead of the
  paper's sigmoid on ``[0, 1]``, an affine change of units;
- the dropout masks come from :class:`skganem._networks.Dropout`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._networks import LEAK, Dropout, MixedPrecision

#: Minimum image height and width of the paper's networks.
MIN_SIZE = 16


def paper_geometry(size: int) -> tuple[int, int, int, int]:
    """Map sizes after the first four encoder layers of Table 3 for one image dimension
    (27, 13, 6, 4 for MNIST's 28); the fifth layer's kernel is the last of them."""
    s1 = size - 1
    s2 = (s1 - 3) // 2 + 1
    s3 = (s2 - 3) // 2 + 1
    return s1, s2, s3, s3 - 2


def _layers(image_shape):
    """(channels, kernel, stride) of the five encoder layers for ``(C, H, W)`` images."""
    _, h, w = image_shape
    if min(h, w) < MIN_SIZE:
        raise ValueError(f"the paper's networks need images of at least {MIN_SIZE}x{MIN_SIZE} "
                         f"pixels, got {h}x{w}")
    last = (paper_geometry(h)[3], paper_geometry(w)[3])
    return [(32, 2, 1), (32, 3, 2), (64, 3, 2), (64, 3, 1), (128, last, 1)]


class PaperInference(MixedPrecision):
    """Table 3: ``G_z(x)`` and ``G_y(x, G_z(x))`` as two interleaved conv streams.

    Same interface as the shared-trunk encoder: ``code(x)`` runs the z stream alone
    (``transform``), ``y_logits`` the y stream with the z stream's layers added in.
    """

    def __init__(self, sample_shape, k, latent, dropout):
        super().__init__()
        self.drop = Dropout(dropout)
        self.y_convs, self.z_convs = nn.ModuleList(), nn.ModuleList()
        self.y_bns, self.z_bns = nn.ModuleList(), nn.ModuleList()
        c_in = sample_shape[0]
        for c, kernel, stride in _layers(sample_shape):
            self.y_convs.append(nn.Conv2d(c_in, c, kernel, stride))
            self.z_convs.append(nn.Conv2d(c_in, c, kernel, stride))
            self.y_bns.append(nn.BatchNorm2d(c))
            self.z_bns.append(nn.BatchNorm2d(c))
            c_in = c
        self.y_out = nn.Conv2d(c_in, 2 * k, 1)       # y_mu, y_sigma (log variance)
        self.z_out = nn.Conv2d(c_in, 2 * latent, 1)  # z_mu, z_sigma (log variance)

    def code(self, x):
        """The z stream: its pre-normalisation outputs ``z_i`` (for the y stream), ``mu_z``
        and ``log sigma_z^2``."""
        with self.autocast():
            h, outs = x, []
            for conv, bn in zip(self.z_convs, self.z_bns):
                z_i = conv(self.drop(h))
                outs.append(z_i)
                h = F.leaky_relu(bn(z_i), LEAK)
            mu_z, logvar_z = self.z_out(h).flatten(1).float().chunk(2, dim=1)
        return outs, mu_z, logvar_z

    def y_logits(self, x, z_outs):
        """The y stream, ``y_ia = Leak(BN(y_i + z_i))``: ``mu_y`` and ``log sigma_y^2``."""
        with self.autocast():
            h = x
            for conv, bn, z_i in zip(self.y_convs, self.y_bns, z_outs):
                h = F.leaky_relu(bn(conv(self.drop(h)) + z_i), LEAK)
            return self.y_out(h).flatten(1).float().chunk(2, dim=1)


class PaperDecoder(MixedPrecision):
    """Table 5: ``G_x(y, z)``, two streams of transposed convolutions; output in [-1, 1]."""

    def __init__(self, k, latent, sample_shape, dropout):
        super().__init__()
        self.k = k
        self.sample_shape = tuple(sample_shape)
        c, h, w = self.sample_shape
        gh, gw = paper_geometry(h), paper_geometry(w)
        self.drop = Dropout(dropout)
        self.y_in, self.z_in = nn.Linear(k, 128), nn.Linear(latent, 128)  # 1x1 convs on 1x1
        self.y_bn0, self.z_bn0 = nn.BatchNorm1d(128), nn.BatchNorm1d(128)
        # (channels, kernel, stride, output padding): 1 -> 4 -> 6 -> 13 -> 27 -> 28 on MNIST
        layers = [(64, (gh[3], gw[3]), 1, 0), (64, 3, 1, 0),
                  (32, 3, 2, (gh[1] - 2 * gh[2] - 1, gw[1] - 2 * gw[2] - 1)),
                  (32, 3, 2, (gh[0] - 2 * gh[1] - 1, gw[0] - 2 * gw[1] - 1)), (c, 2, 1, 0)]
        self.y_convs, self.z_convs = nn.ModuleList(), nn.ModuleList()
        self.y_bns, self.z_bns = nn.ModuleList(), nn.ModuleList()
        c_in = 128
        for i, (c_out, kernel, stride, pad) in enumerate(layers):
            self.y_convs.append(nn.ConvTranspose2d(c_in, c_out, kernel, stride,
                                                   output_padding=pad))
            self.z_convs.append(nn.ConvTranspose2d(c_in, c_out, kernel, stride,
                                                   output_padding=pad))
            if i + 1 < len(layers):
                self.y_bns.append(nn.BatchNorm2d(c_out))
                self.z_bns.append(nn.BatchNorm2d(c_out))
            c_in = c_out

    def forward(self, v):
        """``v = [one-hot y, z]`` (as the shared decoder takes it) -> images."""
        y, z = v[:, :self.k], v[:, self.k:]
        with self.autocast():
            z_1 = self.z_in(z)
            hy = self.y_bn0(self.y_in(y) + z_1)[:, :, None, None]
            hz = F.leaky_relu(self.z_bn0(z_1), LEAK)[:, :, None, None]
            last = len(self.y_convs) - 1
            for i, (y_conv, z_conv) in enumerate(zip(self.y_convs, self.z_convs)):
                z_i = z_conv(self.drop(hz))
                y_i = y_conv(self.drop(hy)) + z_i
                if i == last:
                    return torch.tanh(y_i).float()
                hy = self.y_bns[i](y_i)
                hz = F.leaky_relu(self.z_bns[i](z_i), LEAK)


class _PaperCriticX(MixedPrecision):
    """Table 6's x stream: five conv layers with Leaky ReLU, no batch normalisation."""

    def __init__(self, sample_shape, dropout):
        super().__init__()
        self.drop = Dropout(dropout)
        self.convs = nn.ModuleList()
        c_in = sample_shape[0]
        for c, kernel, stride in _layers(sample_shape):
            self.convs.append(nn.Conv2d(c_in, c, kernel, stride))
            c_in = c

    def forward(self, x):
        with self.autocast():
            h = x
            for i, conv in enumerate(self.convs):
                h = F.leaky_relu(conv(self.drop(h) if i > 0 else h), LEAK)  # x_1: no dropout
            return h.flatten(1).float()


class PaperCritic(nn.Module):
    """Table 6: ``D(x, y, z)``; the y, z and joint layers run in float32."""

    def __init__(self, sample_shape, k, latent, dropout):
        super().__init__()
        self.x_net = _PaperCriticX(sample_shape, dropout)
        self.drop = Dropout(dropout)
        self.y1, self.y2 = nn.Linear(k, 64), nn.Linear(64, 64)
        self.z1, self.z2 = nn.Linear(latent, 64), nn.Linear(64, 64)
        self.p1, self.p2, self.p = nn.Linear(256, 256), nn.Linear(256, 256), nn.Linear(256, 1)

    def forward(self, x, y, z):
        def leak(t):
            return F.leaky_relu(t, LEAK)
        hy = leak(self.y2(self.drop(leak(self.y1(y)))))
        hz = leak(self.z2(self.drop(leak(self.z1(z)))))
        h = torch.cat([self.x_net(x), hy, hz], dim=1)                     # p_0: 128 + 64 + 64
        h = leak(self.p2(self.drop(leak(self.p1(self.drop(h))))))
        return self.p(self.drop(h)).squeeze(1)
