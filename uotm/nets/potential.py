r"""The potential :math:`v(y)` of the image experiments: a residual convolutional network to one value per image.

Structure (the reference's ``Discriminator_small`` for 32x32 and below and ``Discriminator_large`` for
256x256), for base width :math:`c` (``potential_channels``):

* a 1x1 convolution to :math:`2c` channels;
* residual down-blocks: :math:`h = \mathrm{conv}_1(\mathrm{D}(\mathrm{lrelu}(\mathrm{conv}_0(\mathrm{lrelu}(y)))))`,
  returned as :math:`(h + \mathrm{skip}(\mathrm{D}(y)))/\sqrt2` with LeakyReLU slope 0.2, D the FIR down-sampling
  ([1, 3, 3, 1]) or nothing, skip a bias-free 1x1 convolution;
  "small": widths :math:`2c \to 2c` (no down-sampling), :math:`\to 4c, \to 8c, \to 8c` (down-sampling), so 32x32
  ends at 4x4; "large": :math:`2c \to 4c \to 8c` then four more :math:`8c \to 8c`, all down-sampling, so 256x256
  ends at 4x4;
* the minibatch standard-deviation feature: within groups of 4 samples, the standard deviation of every feature,
  averaged over features and pixels, appended as one more channel;
* a 3x3 convolution, LeakyReLU, the sum over pixels, and a linear head.

Parameters: 12,247,809 ("small", :math:`c = 64`, 3 channels) and 26,881,537 ("large", :math:`c = 64`), as the
reference; the reference's potential takes no time input. Initialisation follows the reference's helpers: uniform
scaling by fan-out, the last convolution of each residual branch (and the small net's final convolution) near zero.
R1 differentiates :math:`v` twice with respect to :math:`y`; every op here supports that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .fir import FIR_KERNEL, downsample
from .ncsnpp import conv2d, dense

Tensor = torch.Tensor
SLOPE = 0.2


def _conv(in_ch: int, out_ch: int, size: int = 3, scale: float = 1.0, bias: bool = True) -> nn.Conv2d:
    return conv2d(in_ch, out_ch, size, scale=scale, fan="out", bias=bias)


def minibatch_stddev(h: Tensor, group: int = 4) -> Tensor:
    """Append the minibatch standard-deviation channel: samples ``i`` and ``j`` share a group when ``i = j`` modulo
    ``B / g``, with ``g = min(group, B)`` (lowered to a divisor of ``B`` when it does not divide it)."""
    b, c, height, width = h.shape
    g = min(group, b)
    while b % g:
        g -= 1
    std = (h.reshape(g, b // g, c, height, width).var(dim=0, correction=0) + 1e-8).sqrt()
    std = std.mean(dim=(1, 2, 3)).reshape(1, b // g, 1, 1, 1).expand(g, b // g, 1, height, width)
    return torch.cat([h, std.reshape(b, 1, height, width)], dim=1)


class DownBlock(nn.Module):
    """Residual block with LeakyReLU(0.2) and optional FIR down-sampling."""

    def __init__(self, in_ch: int, out_ch: int, down: bool, fir_kernel: Sequence[int] = FIR_KERNEL):
        super().__init__()
        self.down, self.fir_kernel = down, tuple(fir_kernel)
        self.conv0 = _conv(in_ch, out_ch)
        self.conv1 = _conv(out_ch, out_ch, scale=0.0)
        self.skip = _conv(in_ch, out_ch, 1, bias=False)

    def forward(self, y: Tensor) -> Tensor:
        h = F.leaky_relu(self.conv0(F.leaky_relu(y, SLOPE)), SLOPE)
        if self.down:
            h, y = downsample(h, self.fir_kernel), downsample(y, self.fir_kernel)
        return (self.conv1(h) + self.skip(y)) / math.sqrt(2.0)


class Potential(nn.Module):
    """The potential :math:`v(y)`: images (B, C, H, W) to values (B,). ``size`` "small" (the reference's 32x32 net,
    three halvings) or "large" (its 256x256 net, six halvings)."""

    def __init__(self, channels: int = 3, base_channels: int = 64, size: str = "small",
                 fir_kernel: Sequence[int] = FIR_KERNEL, stddev_group: int = 4):
        super().__init__()
        c = base_channels
        if size == "small":
            widths, downs, final_scale = [2 * c, 2 * c, 4 * c, 8 * c, 8 * c], [False, True, True, True], 0.0
        elif size == "large":
            widths, downs, final_scale = [2 * c, 4 * c, 8 * c] + [8 * c] * 4, [True] * 6, 1.0
        else:
            raise ValueError(f"potential size must be 'small' or 'large', got {size!r}")
        self.size, self.stddev_group, self.halvings = size, stddev_group, sum(downs)
        self.stem = _conv(channels, widths[0], 1)
        self.blocks = nn.ModuleList(
            DownBlock(i, o, d, fir_kernel) for i, o, d in zip(widths[:-1], widths[1:], downs)
        )
        self.final_conv = _conv(widths[-1] + 1, widths[-1], scale=final_scale)
        self.head = dense(widths[-1], 1)

    def forward(self, y: Tensor) -> Tensor:
        if y.shape[-1] % 2**self.halvings or y.shape[-2] % 2**self.halvings:
            raise ValueError(f"the {self.size} potential needs sides divisible by {2**self.halvings}, got "
                             f"{tuple(y.shape[-2:])}")
        h = self.stem(y)
        for block in self.blocks:
            h = block(h)
        h = F.leaky_relu(self.final_conv(minibatch_stddev(h, self.stddev_group)), SLOPE)
        return self.head(h.sum(dim=(2, 3)))[:, 0]
