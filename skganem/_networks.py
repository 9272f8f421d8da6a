"""Network building blocks, chosen from the shape of one sample.

Flat samples ``(n_features,)`` get multi-layer perceptrons; images ``(C, H, W)`` get
convolutional encoders (4x4 convolutions, stride 2, padding 1, as in GAN-EM's Table 4 and
DCGAN) and transposed-convolution decoders. All widths are arguments; the estimators expose
them as parameters.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import nn

LEAK = 0.2


@dataclass(frozen=True)
class NetSpec:
    """Widths of one method's networks.

    Attributes
    ----------
    kind : {"mlp", "conv"}
        Perceptrons for flat samples, convolutional nets for images.
    hidden_dims : tuple of int
        Hidden widths of the perceptrons; for conv nets, the fully connected layers between
        the convolutional trunk and the output (encoders) or before it (decoders).
    conv_channels : tuple of int
        Channels of the encoder's convolutions. Decoders use the last two in reverse order.
    """

    kind: str
    hidden_dims: tuple
    conv_channels: tuple = ()
    decoder_hidden_dims: tuple | None = None

    @property
    def decoder_hidden(self) -> tuple:
        """Hidden widths of decoders (default: ``hidden_dims`` for MLPs, none for conv nets)."""
        if self.decoder_hidden_dims is not None:
            return tuple(self.decoder_hidden_dims)
        return tuple(self.hidden_dims) if self.kind == "mlp" else ()


def init_weights(module: nn.Module, std: float = 0.02) -> None:
    """DCGAN/AMM initialisation: kernels ~ N(0, std), biases 0, BatchNorm scales ~ N(1, std)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, std)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def _dynamo_is_compiling():
    import torch._dynamo
    return torch._dynamo.is_compiling()


#: Whether ``torch.compile`` is tracing the caller (``torch._dynamo``'s test before torch 2.3).
_is_compiling = getattr(torch.compiler, "is_compiling", _dynamo_is_compiling)


class Dropout(nn.Dropout):
    """Dropout whose mask on a CPU comes from 16-bit random integers.

    On a CPU, torch draws dropout's Bernoulli mask one element at a time from its Mersenne
    twister; on AMM's conv nets, which put dropout after every layer, those draws took a
    quarter of an update (MNIST, 2 threads). Here each element reads a 16-bit slice of
    64-bit random integers from the same generator (four elements per draw) and is kept when
    the slice is at least ``t``: with probability ``q = (32768 - t) / 65536``, within
    ``1e-5`` of ``1 - p``; kept elements are scaled by ``1 / q``, so the expectation is
    unchanged, as in :class:`torch.nn.Dropout`. The mask is laid out in ``x``'s memory
    order (channels-last maps included), so that the product reads both operands in the
    same order: on the channels-last maps of a conv net in bfloat16 (200 x 32 x 14 x 14,
    2 threads) a mask took 4.3 ms this way, 6.2 ms in logical order and 20-24 ms with
    torch's dropout. Other devices, and forward passes traced by ``torch.compile`` (the
    in-place draw would break the graph), use torch's dropout.
    """

    def __init__(self, p: float = 0.5):
        super().__init__(p)
        self.keep = round((1.0 - p) * 65536)

    def forward(self, x):
        if (not self.training or self.p == 0 or x.device.type != "cpu" or self.keep == 0
                or _is_compiling()):
            return super().forward(x)
        n = x.numel()
        bits = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-2 ** 63, None)
        kept = bits.view(torch.int16)[:n] >= 32768 - self.keep
        mask = torch.empty_like(x)  # x's strides where x is dense, else contiguous
        mask.as_strided((n,), (1,)).copy_(kept)  # element i of memory gets draw i
        return x * mask.mul_(65536 / self.keep)


def dropout_layer(p: float, fast: bool = False) -> nn.Module:
    """:class:`Dropout` (``fast``) or :class:`torch.nn.Dropout` with probability ``p``."""
    return Dropout(p) if fast else nn.Dropout(p)


def mlp(sizes: Sequence[int], *, batchnorm: bool = False, dropout: float = 0.0,
        last_activation: bool = False, fast_dropout: bool = False) -> nn.Sequential:
    """Linear layers ``sizes[0] -> ... -> sizes[-1]`` with (BN,) LeakyReLU(0.2) (, dropout).

    The last layer is linear unless ``last_activation``; ``fast_dropout`` selects
    :class:`Dropout`'s cheaper CPU mask.
    """
    layers: list[nn.Module] = []
    n = len(sizes) - 1
    for i in range(n):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < n - 1 or last_activation:
            if batchnorm:
                layers.append(nn.BatchNorm1d(sizes[i + 1]))
            layers.append(nn.LeakyReLU(LEAK))
            if dropout > 0:
                layers.append(dropout_layer(dropout, fast_dropout))
    return nn.Sequential(*layers)


class MixedPrecision(nn.Module):
    """A network whose forward pass may run under autocast, returning float32.

    ``amp_dtype`` (set by :func:`set_precision`) is ``torch.bfloat16`` or None (float32).
    Weights, optimiser state and everything outside the network stay float32: losses,
    k-means and assignments never see reduced precision.
    """

    amp_dtype = None
    amp_device = "cpu"

    def autocast(self):
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.amp_device, dtype=self.amp_dtype)


def set_precision(module: nn.Module, dtype, device: torch.device) -> None:
    """Run every :class:`MixedPrecision` network in ``module`` under autocast to ``dtype``
    (None: float32); with a reduced precision, conv weights go channels-last."""
    for m in module.modules():
        if isinstance(m, MixedPrecision):
            m.amp_dtype, m.amp_device = dtype, torch.device(device).type
    fmt = torch.channels_last if dtype is not None else torch.contiguous_format
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            m.to(memory_format=fmt)


class ConvTrunk(nn.Module):
    """Image -> flat features: 4x4 stride-2 convolutions with (BN,) LeakyReLU(0.2)."""

    def __init__(self, image_shape, channels, *, batchnorm=True, dropout=0.0, fast_dropout=False):
        super().__init__()
        c_in = image_shape[0]
        layers: list[nn.Module] = []
        for i, c in enumerate(channels):
            layers.append(nn.Conv2d(c_in, c, 4, stride=2, padding=1))
            if batchnorm and i > 0:  # DCGAN: no BN on the first layer's output
                layers.append(nn.BatchNorm2d(c))
            layers.append(nn.LeakyReLU(LEAK))
            if dropout > 0:
                layers.append(dropout_layer(dropout, fast_dropout))
            c_in = c
        layers.append(nn.Flatten())
        self.net = nn.Sequential(*layers)
        self.last_conv = max(i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d))
        probe = torch.zeros((1,) + tuple(image_shape))
        with torch.no_grad():
            try:
                out = self.net(probe)
            except ValueError:  # maps of 1x1 pixels: batch norm needs two rows in train mode
                out = self.net(probe.expand((2,) + probe.shape[1:]))
        self.out_dim = int(out.shape[1])

    def forward(self, x):
        # After the last convolution the maps leave the channels-last layout that the
        # convolutions use under bfloat16: flattening reads them in (C, H, W) order, and
        # its gradient comes back in that order, so that batch normalisation, Leaky ReLU and
        # their backward passes see one layout (on a CPU, mixed layouts took a GAN-EM G/D
        # update from 34-36 ms to 38-54 ms, 2 threads, interleaved runs).
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i == self.last_conv:
                x = x.contiguous()
        return x


class Encoder(MixedPrecision):
    """Sample -> vector: a trunk (identity for flat samples) and a perceptron head.

    ``features(x)`` returns the head's last hidden layer, ``forward(x)`` the output.
    With ``out_dim=None`` there is no output layer: the encoder is a feature extractor.
    """

    def __init__(self, sample_shape, out_dim, spec: NetSpec, *, batchnorm=False, dropout=0.0,
                 fast_dropout=False):
        super().__init__()
        if spec.kind == "conv":
            self.trunk = ConvTrunk(sample_shape, spec.conv_channels, batchnorm=batchnorm,
                                   dropout=dropout, fast_dropout=fast_dropout)
            in_dim = self.trunk.out_dim
        else:
            self.trunk = nn.Identity()
            in_dim = int(sample_shape[0])
        self.body = mlp((in_dim, *spec.hidden_dims), batchnorm=batchnorm, dropout=dropout,
                        last_activation=True, fast_dropout=fast_dropout) \
            if spec.hidden_dims else nn.Identity()
        self.feature_dim = spec.hidden_dims[-1] if spec.hidden_dims else in_dim
        self.head = nn.Linear(self.feature_dim, out_dim) if out_dim is not None else None

    def features(self, x):
        with self.autocast():
            return self.body(self.trunk(x)).float()

    def forward(self, x):
        if self.head is None:
            return self.features(x)
        with self.autocast():
            return self.head(self.body(self.trunk(x))).float()


class Decoder(MixedPrecision):
    """Vector -> sample in ``[-1, 1]`` (tanh), matching the fitted data scaling."""

    def __init__(self, in_dim, sample_shape, spec: NetSpec, *, batchnorm=True, dropout=0.0):
        super().__init__()
        self.sample_shape = tuple(sample_shape)
        if spec.kind == "conv":
            c, h, w = self.sample_shape
            chans = tuple(reversed(spec.conv_channels))[-2:] if len(spec.conv_channels) > 1 \
                else tuple(spec.conv_channels)
            n_up = len(chans)
            self.h0, self.w0 = math.ceil(h / 2 ** n_up), math.ceil(w / 2 ** n_up)
            self.c0 = chans[0]
            self.fc = mlp((in_dim, *spec.decoder_hidden, self.c0 * self.h0 * self.w0),
                          batchnorm=batchnorm, dropout=dropout, last_activation=True)
            layers: list[nn.Module] = []
            for i, ch in enumerate(chans):
                out_c = chans[i + 1] if i + 1 < n_up else c
                layers.append(nn.ConvTranspose2d(ch, out_c, 4, stride=2, padding=1))
                if i + 1 < n_up:
                    if batchnorm:
                        layers.append(nn.BatchNorm2d(out_c))
                    layers.append(nn.LeakyReLU(LEAK))
            self.deconv = nn.Sequential(*layers)
        else:
            self.fc = mlp((in_dim, *spec.decoder_hidden, self.sample_shape[0]),
                          batchnorm=batchnorm, dropout=dropout)
            self.deconv = None

    def forward(self, v):
        with self.autocast():
            out = self.fc(v)
            if self.deconv is not None:
                out = self.deconv(out.view(-1, self.c0, self.h0, self.w0))
                _, h, w = self.sample_shape
                top, left = (out.shape[2] - h) // 2, (out.shape[3] - w) // 2
                out = out[:, :, top:top + h, left:left + w]
            return torch.tanh(out).float()


def batchnorm_layers(module: nn.Module) -> list:
    """The batch-normalisation layers of ``module``."""
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


class frozen_batchnorm_stats:
    """Within the block, batch normalisation in ``module`` still normalises with the batch's
    statistics (train mode) but leaves its running statistics unchanged (momentum 0), so that
    eval-mode features keep the statistics of the batches seen outside the block."""

    def __init__(self, module: nn.Module):
        self.layers = batchnorm_layers(module)

    def __enter__(self):
        self.saved = [m.momentum for m in self.layers]
        for m in self.layers:
            m.momentum = 0.0
        return self

    def __exit__(self, *exc):
        for m, momentum in zip(self.layers, self.saved):
            m.momentum = momentum
        return False


class frozen_params:
    """Within the block, the parameters of ``module`` do not require gradients.

    A generator's loss passes through the discriminator; built inside this block, its
    backward pass computes the gradients of the discriminator's inputs but not those of its
    weights, which the generator's step would discard (about half the work of each of the
    discriminator's layers in that pass). Parameters frozen before the block stay frozen.
    """

    def __init__(self, module: nn.Module):
        self.params = [p for p in module.parameters() if p.requires_grad]

    def __enter__(self):
        for p in self.params:
            p.requires_grad_(False)
        return self

    def __exit__(self, *exc):
        for p in self.params:
            p.requires_grad_(True)
        return False


def clip_weights_(module: nn.Module, bound: float | None) -> None:
    """Clamp every parameter of ``module`` to ``[-bound, bound]`` (WGAN-style clipping)."""
    if bound is None:
        return
    with torch.no_grad():
        for p in module.parameters():
            p.clamp_(-bound, bound)
