r"""The transport map :math:`T(x, z)` of the image experiments: an NCSN++ U-Net (score-SDE, as adapted by DDGAN and
the UOTM reference) whose group norms are modulated by the latent :math:`z` (AdaGN).

Structure (the reference's ``NCSNpp`` of the public repository Jae-Moo/UOTM), for base width :math:`c` and channel
multipliers :math:`m_\ell` (``ch_mult``):

* the **z mapping** :math:`z \mapsto e`: PixelNorm, Linear(z_dim, z_emb_dim), SiLU, then ``n_mlp`` times
  (Linear(z_emb_dim, z_emb_dim), SiLU);
* every **res-block** (BigGAN type) computes, with :math:`\mathrm{R}` the block's FIR up- or down-sampling (or
  nothing),

  .. math::
      h = \mathrm{conv}_1\big(\mathrm{SiLU}(\mathrm{AdaGN}_1(\mathrm{conv}_0(\mathrm{R}(\mathrm{SiLU}(
      \mathrm{AdaGN}_0(x, e)))), e))\big), \qquad \text{output} = (\mathrm{skip}(\mathrm{R}(x)) + h)/\sqrt2,

  skip being a 1x1 convolution when the width or the size changes (else the identity), and
  :math:`\mathrm{AdaGN}(h, e) = \gamma(e) \odot \mathrm{GroupNorm}(h) + \beta(e)` with :math:`(\gamma, \beta)` one
  linear layer of :math:`e`;
* **encoder**: a 3x3 convolution to :math:`c` channels, then per level ``num_res_blocks`` res-blocks to width
  :math:`c\,m_\ell` (self-attention after each at the ``attn_resolutions``) and, below the last level, a down-sampling
  res-block; the **progressive input** ("residual") carries the image down a parallel pyramid, each step a FIR blur
  then a stride-2 3x3 convolution to the block's width, and replaces the features by
  :math:`(\text{pyramid} + h)/\sqrt2` (``progressive_input="none"`` drops the pyramid);
* **middle**: res-block, self-attention, res-block;
* **decoder**: per level, from the coarsest, ``num_res_blocks + 1`` res-blocks on the features concatenated with the
  encoder's skip features, self-attention at the ``attn_resolutions``, and, above level 0, an up-sampling res-block;
* **output**: GroupNorm, SiLU, 3x3 convolution to the image's channels, ``tanh``.

The reference builds the same network from score-SDE's NCSN++ with a time embedding that it never feeds (each
res-block carries an unused ``Linear(4c, width)``); this module leaves those layers out, so its parameter count is
the reference's less theirs: 44,820,611 for CIFAR-10, 37,983,299 for CelebA-HQ 256. Initialisation follows the
reference: DDPM's uniform "fan-avg" variance scaling for the convolutions and attention projections (the last layer
of each residual branch and the output convolution near zero, so the map starts near the zero image), the
reference's dense layers' uniform scaling by fan-out for the z mapping and the AdaGN projections, and AdaGN starting
at :math:`\gamma = 1, \beta = 0`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..presets import NetConfig
from .fir import FIR_KERNEL, conv_downsample, downsample, upsample

Tensor = torch.Tensor
SQRT2 = math.sqrt(2.0)


def variance_scaling_(weight: Tensor, scale: float = 1.0, fan: str = "avg") -> Tensor:
    r"""Fill ``weight`` from :math:`U(-b, b)`, :math:`b = \sqrt{3\,\text{scale}/n}`, with :math:`n` the mean of
    fan-in and fan-out (``fan="avg"``, DDPM's initialiser) or the fan-out (``fan="out"``, what the reference's
    ``dense``/``conv2d`` helpers compute when asked for "fan_avg"). ``scale=0`` means 1e-10, as in the reference."""
    receptive = weight[0][0].numel() if weight.dim() > 2 else 1
    fan_in, fan_out = weight.shape[1] * receptive, weight.shape[0] * receptive
    if fan == "avg":
        n = (fan_in + fan_out) / 2
    elif fan == "out":
        n = max(1.0, fan_out)
    else:
        raise ValueError(f"fan must be 'avg' or 'out', got {fan!r}")
    bound = math.sqrt(3.0 * (scale if scale != 0 else 1e-10) / n)
    with torch.no_grad():
        return weight.uniform_(-bound, bound)


def conv2d(in_ch: int, out_ch: int, size: int = 3, *, scale: float = 1.0, fan: str = "avg",
           bias: bool = True) -> nn.Conv2d:
    """A 'same' convolution initialised by :func:`variance_scaling_`, zero bias."""
    conv = nn.Conv2d(in_ch, out_ch, size, padding=size // 2, bias=bias)
    variance_scaling_(conv.weight, scale, fan)
    if bias:
        nn.init.zeros_(conv.bias)
    return conv


def dense(in_dim: int, out_dim: int, scale: float = 1.0) -> nn.Linear:
    """A linear layer initialised as the reference's dense layers (fan-out scaling), zero bias."""
    lin = nn.Linear(in_dim, out_dim)
    variance_scaling_(lin.weight, scale, "out")
    nn.init.zeros_(lin.bias)
    return lin


def num_groups(channels: int) -> int:
    """Groups of every group norm in the map: min(channels // 4, 32)."""
    return min(channels // 4, 32)


class PixelNorm(nn.Module):
    """Each latent vector divided by its root-mean-square (over the feature dimension)."""

    def forward(self, z: Tensor) -> Tensor:
        return z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)


class AdaptiveGroupNorm(nn.Module):
    r"""AdaGN: :math:`\gamma(e) \odot \mathrm{GroupNorm}(h) + \beta(e)`, with :math:`(\gamma, \beta)` a linear function
    of the z embedding :math:`e` (initial bias: :math:`\gamma = 1`, :math:`\beta = 0`)."""

    def __init__(self, channels: int, emb_dim: int):
        super().__init__()
        self.groups = num_groups(channels)
        self.style = dense(emb_dim, 2 * channels)
        with torch.no_grad():
            self.style.bias[:channels] = 1.0

    def forward(self, h: Tensor, emb: Tensor) -> Tensor:
        gamma, beta = self.style(emb)[:, :, None, None].chunk(2, dim=1)
        return torch.addcmul(beta, gamma, F.group_norm(h, self.groups, eps=1e-6))


class ResBlock(nn.Module):
    """BigGAN-type residual block with AdaGN, optional FIR up- or down-sampling (``resample`` 'up' / 'down')."""

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int, resample: str | None = None, dropout: float = 0.0,
                 fir_kernel: Sequence[int] = FIR_KERNEL, skip_rescale: bool = True):
        super().__init__()
        if resample not in (None, "up", "down"):
            raise ValueError(f"resample must be None, 'up' or 'down', got {resample!r}")
        self.resample, self.fir_kernel, self.skip_rescale = resample, tuple(fir_kernel), skip_rescale
        self.norm0 = AdaptiveGroupNorm(in_ch, emb_dim)
        self.conv0 = conv2d(in_ch, out_ch)
        self.norm1 = AdaptiveGroupNorm(out_ch, emb_dim)
        self.dropout = nn.Dropout(dropout)
        self.conv1 = conv2d(out_ch, out_ch, scale=0.0)
        self.skip = conv2d(in_ch, out_ch, 1) if in_ch != out_ch or resample else None

    def _resample(self, h: Tensor) -> Tensor:
        if self.resample == "up":
            return upsample(h, self.fir_kernel)
        if self.resample == "down":
            return downsample(h, self.fir_kernel)
        return h

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        h = self._resample(F.silu(self.norm0(x, emb)))
        h = self.conv0(h)
        h = self.conv1(self.dropout(F.silu(self.norm1(h, emb))))
        x = self._resample(x)
        if self.skip is not None:
            x = self.skip(x)
        return (x + h) / SQRT2 if self.skip_rescale else x + h


class SelfAttention(nn.Module):
    """Single-head self-attention over the pixels: GroupNorm, 1x1 projections to queries, keys and values (one
    convolution, initialised as three), softmax attention scaled by 1/sqrt(C), a 1x1 output projection (near zero
    at initialisation) and the residual connection."""

    def __init__(self, channels: int, skip_rescale: bool = True):
        super().__init__()
        self.skip_rescale = skip_rescale
        self.norm = nn.GroupNorm(num_groups(channels), channels, eps=1e-6)
        self.qkv = conv2d(channels, 3 * channels, 1)
        for part in self.qkv.weight.data.chunk(3, dim=0):
            variance_scaling_(part, 0.1)
        self.out = conv2d(channels, channels, 1, scale=0.0)

    def forward(self, x: Tensor) -> Tensor:
        b, c, height, width = x.shape
        qkv = self.qkv(self.norm(x)).reshape(b, 3, 1, c, height * width).transpose(-1, -2)
        h = F.scaled_dot_product_attention(qkv[:, 0], qkv[:, 1], qkv[:, 2])  # (b, 1, hw, c)
        h = self.out(h.transpose(-1, -2).reshape(b, c, height, width))
        return (x + h) / SQRT2 if self.skip_rescale else x + h


class PyramidDown(nn.Module):
    """One step of the progressive-input pyramid: FIR blur, then a stride-2 3x3 convolution (DDPM init)."""

    def __init__(self, in_ch: int, out_ch: int, fir_kernel: Sequence[int] = FIR_KERNEL):
        super().__init__()
        self.fir_kernel = tuple(fir_kernel)
        self.weight = nn.Parameter(variance_scaling_(torch.empty(out_ch, in_ch, 3, 3)))
        self.bias = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: Tensor) -> Tensor:
        return conv_downsample(x, self.weight, self.bias, self.fir_kernel)


class _Level(nn.Module):
    """The res-blocks of one resolution, their attention (or identities), and the resampling block if any."""

    def __init__(self, blocks: list[nn.Module], attentions: list[nn.Module], resample: nn.Module | None = None,
                 pyramid: nn.Module | None = None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attentions = nn.ModuleList(attentions)
        self.resample = resample
        self.pyramid = pyramid


class TransportMap(nn.Module):
    """The map :math:`T(x, z)`: image :math:`x` (B, C, H, W) and latent :math:`z` (B, z_dim) to an image in [-1, 1]
    (with ``tanh_output``). See the module's docstring for the structure."""

    def __init__(self, net: NetConfig, image_size: int, channels: int):
        super().__init__()
        if net.resblock_type != "biggan":
            raise ValueError(f"only resblock_type 'biggan' is implemented, got {net.resblock_type!r}")
        if net.progressive_input not in ("residual", "none"):
            raise ValueError(f"progressive_input must be 'residual' or 'none', got {net.progressive_input!r}")
        n_levels = len(net.ch_mult)
        if image_size % 2 ** (n_levels - 1):
            raise ValueError(f"image_size {image_size} is not divisible by 2**{n_levels - 1}")
        self.z_dim, self.image_size, self.channels = net.z_dim, image_size, channels
        self.skip_rescale, self.tanh_output = net.skip_rescale, net.tanh_output
        nf, emb, kernel = net.base_channels, net.z_emb_dim, tuple(net.fir_kernel)

        def block(i, o, resample=None):
            return ResBlock(i, o, emb, resample, net.dropout, kernel, net.skip_rescale)

        def attention(c, resolution):
            return SelfAttention(c, net.skip_rescale) if resolution in net.attn_resolutions else nn.Identity()

        mapping: list[nn.Module] = [PixelNorm(), dense(net.z_dim, emb), nn.SiLU()]
        for _ in range(net.n_mlp):
            mapping += [dense(emb, emb), nn.SiLU()]
        self.z_mapping = nn.Sequential(*mapping)

        self.stem = conv2d(channels, nf)
        skip_ch, ch, pyramid_ch = [nf], nf, channels
        self.encoder = nn.ModuleList()
        for level, mult in enumerate(net.ch_mult):
            resolution = image_size >> level
            blocks, attentions = [], []
            for _ in range(net.num_res_blocks):
                blocks.append(block(ch, nf * mult))
                ch = nf * mult
                attentions.append(attention(ch, resolution))
                skip_ch.append(ch)
            down = pyramid = None
            if level < n_levels - 1:
                down = block(ch, ch, "down")
                if net.progressive_input == "residual":
                    pyramid, pyramid_ch = PyramidDown(pyramid_ch, ch, kernel), ch
                skip_ch.append(ch)
            self.encoder.append(_Level(blocks, attentions, down, pyramid))

        self.middle = nn.ModuleList([block(ch, ch), SelfAttention(ch, net.skip_rescale), block(ch, ch)])

        self.decoder = nn.ModuleList()
        for level in reversed(range(n_levels)):
            out = nf * net.ch_mult[level]
            blocks = []
            for _ in range(net.num_res_blocks + 1):
                blocks.append(block(ch + skip_ch.pop(), out))
                ch = out
            up = block(ch, ch, "up") if level > 0 else None
            self.decoder.append(_Level(blocks, [attention(ch, image_size >> level)], up))
        assert not skip_ch

        self.head_norm = nn.GroupNorm(num_groups(ch), ch, eps=1e-6)
        self.head_conv = conv2d(ch, channels, scale=0.0)

    def forward(self, x: Tensor, z: Tensor) -> Tensor:
        emb = self.z_mapping(z)
        h = self.stem(x)
        skips, pyramid = [h], x
        for level in self.encoder:
            for block, attention in zip(level.blocks, level.attentions):
                h = attention(block(h, emb))
                skips.append(h)
            if level.resample is not None:
                h = level.resample(h, emb)
                if level.pyramid is not None:  # progressive input: the pyramid joins the features
                    pyramid = level.pyramid(pyramid) + h
                    if self.skip_rescale:
                        pyramid = pyramid / SQRT2
                    h = pyramid
                skips.append(h)

        h = self.middle[0](h, emb)
        h = self.middle[1](h)
        h = self.middle[2](h, emb)

        for level in self.decoder:
            for block in level.blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb)
            h = level.attentions[0](h)
            if level.resample is not None:
                h = level.resample(h, emb)

        h = self.head_conv(F.silu(self.head_norm(h)))
        return torch.tanh(h) if self.tanh_output else h
