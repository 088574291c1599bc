r"""FIR resampling of images (``upfirdn2d``) in plain PyTorch, exact and fast for binomial kernels.

The operation. For an image :math:`x` (one channel; every channel alike), a 2-D kernel :math:`K` of size
:math:`L \times L`, factors :math:`u` (up) and :math:`d` (down) and a padding :math:`(p_0, p_1)` applied to both axes,

.. math::
    \mathrm{upfirdn2d}(x)[i, j] = \sum_{a, b = 0}^{L - 1} K[a, b]\; s[d i + L - 1 - a,\ d j + L - 1 - b],

where :math:`s` is :math:`x` with :math:`u - 1` zeros inserted after every sample along each axis (length
:math:`uH`), then :math:`p_0` zeros before and :math:`p_1` after (a negative pad crops). That is: zero insertion,
zero padding, a true convolution (correlation with the flipped kernel) over the positions where the kernel fits, and
every :math:`d`-th output kept. :func:`upfirdn2d_definition` does exactly that and exists for the tests.

The networks (the NCSN++ map and the potentials, after StyleGAN2 and score-SDE) use a 1-D kernel :math:`k`, by
default ``[1, 3, 3, 1]``, as the separable 2-D kernel :math:`K = k k^\top / (\sum k)^2`, in three calls:

* :func:`downsample`: factor 2 down, padding ``((p + 1) // 2, p // 2)`` with ``p = len(k) - 2``;
* :func:`upsample`: factor 2 up with gain 4, padding ``((p + 1) // 2 + 1, p // 2)``: exactly 4 times the adjoint
  of :func:`downsample`, :math:`\langle U g, x\rangle = 4 \langle g, D x\rangle`, and constant images stay constant
  away from the border;
* :func:`conv_downsample`: the FIR with padding ``p = len(k) - 2 + (w - 1)`` split the same way and no resampling,
  then a ``w x w`` convolution of stride 2 (the progressive-input branch of the map).

The fast path. A binomial kernel of order :math:`n` is :math:`n` width-2 box filters convolved together,
:math:`[1,3,3,1]/8 = ([1,1]/2)^{*3}`, and a 2-D box filter of width 2 is ``avg_pool2d(·, 2)``. So

* down: the FIR of order :math:`n` followed by decimation is :math:`n` ``avg_pool2d`` calls of width 2, stride 1
  except the last, which has stride 2;
* up: zero insertion followed by one box *sum* :math:`[1, 1]` per axis is nearest-neighbour up-sampling (shifted by
  one sample, which moves one sample of left padding away), so zero insertion + binomial of order :math:`n` (gain 4)
  is nearest-neighbour up-sampling then :math:`n - 1` box averages, with padding
  :math:`(p_0 - 1, p_1)`;
* zero padding commutes with a box filter in the sense
  :math:`\mathrm{box}(\mathrm{pad}_{a+1}\, s) = \mathrm{pad}_a(\mathrm{box}(\mathrm{pad}_1 s))`, so a symmetric
  padding is spread over the pools as ``avg_pool2d(..., padding=1)`` (no separate padding copy).

On a GPU, pooling kernels are an order of magnitude faster than a depthwise convolution through forward, backward
and the double backward of an R1 penalty (on an H100, a fp32 (256, 256, 32, 32) down-sampling: 16 ms against
297 ms). On a CPU it is the
other way round (PyTorch's CPU pooling kernels are slow; one thread, a (64, 128, 32, 32) down-sampling through the
double backward: about 0.6 s against 0.25 s), so :func:`upfirdn2d` uses the box filters on CUDA tensors and one
depthwise (``groups=C``) convolution, :func:`upfirdn2d_depthwise`, elsewhere and for any other kernel. Every op
here is differentiable to any order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
import torch.nn.functional as F

Tensor = torch.Tensor
FIR_KERNEL = (1, 3, 3, 1)


def kernel_2d(kernel: Sequence[float], gain: float = 1.0, *, dtype=torch.float64, device=None) -> Tensor:
    r"""The separable 2-D kernel :math:`\text{gain}\cdot k k^\top / (\sum k)^2` of a 1-D kernel ``k``."""
    k = torch.as_tensor(kernel, dtype=torch.float64)
    # the sum is checked on the plain numbers: no data-dependent branch (a graph break) under torch.compile
    if k.dim() != 1 or len(k) < 1 or sum(float(v) for v in kernel) == 0:
        raise ValueError(f"need a 1-D kernel with a non-zero sum, got {kernel!r}")
    k2 = torch.outer(k, k) / k.sum() ** 2 * gain
    return k2.to(dtype=dtype, device=device)


@lru_cache(maxsize=None)
def binomial_order(kernel: tuple[float, ...]) -> int | None:
    """``n`` when ``kernel`` is proportional to the binomial coefficients ``C(n, 0..n)`` (``n`` box filters of width
    2 convolved together), else ``None``."""
    n = len(kernel) - 1
    if n < 1 or kernel[0] == 0:
        return None
    ratio = [float(v) / float(kernel[0]) for v in kernel]
    if all(math.isclose(r, math.comb(n, i), rel_tol=1e-12) for i, r in enumerate(ratio)):
        return n
    return None


# ----------------------------------------------------------------------------------------------------------------
# The definition (tests only) and the generic path


def upfirdn2d_definition(x: Tensor, k2: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """The definition, step by step: zero insertion, zero padding, convolution with the (flipped) 2-D kernel
    ``k2`` over every channel separately, decimation. Slow; used by the tests as the ground truth."""
    n, c, h, w = x.shape
    if up > 1:
        stuffed = x.new_zeros(n, c, h * up, w * up)
        stuffed[:, :, ::up, ::up] = x
        x = stuffed
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = torch.flip(k2, [0, 1]).to(x)[None, None]
    y = F.conv2d(x.reshape(n * c, 1, x.shape[2], x.shape[3]), weight)
    y = y[:, :, ::down, ::down]
    return y.reshape(n, c, y.shape[2], y.shape[3])


def upfirdn2d_depthwise(x: Tensor, k2: Tensor, up: int = 1, down: int = 1, pad: tuple[int, int] = (0, 0)) -> Tensor:
    """Any 2-D kernel: zero insertion by padding a reshaped view, then one depthwise convolution of stride ``down``."""
    n, c, h, w = x.shape
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), [0, up - 1, 0, 0, 0, up - 1]).reshape(n, c, h * up, w * up)
    x = F.pad(x, [pad[0], pad[1], pad[0], pad[1]])
    weight = torch.flip(k2, [0, 1]).to(x)[None, None].expand(c, 1, *k2.shape)
    return F.conv2d(x, weight, stride=down, groups=c)


# ----------------------------------------------------------------------------------------------------------------
# The fast path: box filters


def _upfirdn2d_boxes(x: Tensor, order: int, up: int, down: int, pad: tuple[int, int], gain: float) -> Tensor:
    """``upfirdn2d`` with the normalised binomial kernel of ``order`` times ``gain``, as box filters
    (``up`` and ``down`` in {1, 2}, not both 2)."""
    p0, p1 = pad
    boxes = order
    if up == 2:  # zero insertion then one box sum per axis = nearest-neighbour, one sample further left
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        p0, boxes, gain = p0 - 1, order - 1, gain / 4.0
    spread = min(max(min(p0, p1), 0), boxes)  # symmetric padding done by the pools, at most 1 each
    extra = (p0 - spread, p1 - spread)
    if extra != (0, 0):
        x = F.pad(x, [extra[0], extra[1], extra[0], extra[1]])
    if boxes == 0:
        x = x[:, :, ::down, ::down]
    for i in range(boxes):
        x = F.avg_pool2d(x, 2, stride=down if i == boxes - 1 else 1, padding=1 if i < spread else 0)
    return x if gain == 1.0 else x * gain


IMPLS = ("auto", "boxes", "depthwise")


def _auto_impl(x: Tensor) -> str:
    return "boxes" if x.device.type == "cuda" else "depthwise"


def upfirdn2d(x: Tensor, kernel: Sequence[float] = FIR_KERNEL, up: int = 1, down: int = 1,
              pad: tuple[int, int] = (0, 0), gain: float = 1.0, impl: str = "auto") -> Tensor:
    """``upfirdn2d`` of ``x`` (N, C, H, W) with the 2-D kernel :func:`kernel_2d` ``(kernel, gain)``.

    ``impl``: "boxes" (binomial kernels, factors in {1, 2}, not both 2), "depthwise" (any kernel), or "auto": boxes
    for CUDA tensors when they apply, else depthwise."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    kernel = tuple(float(v) for v in kernel)
    order = binomial_order(kernel)
    boxes_apply = order is not None and up in (1, 2) and down in (1, 2) and up * down < 4
    if impl == "boxes" and not boxes_apply:
        raise ValueError(f"the box filters need a binomial kernel and factors in {{1, 2}}, not both 2; got "
                         f"kernel={kernel}, up={up}, down={down}")
    if impl == "boxes" or (impl == "auto" and boxes_apply and _auto_impl(x) == "boxes"):
        return _upfirdn2d_boxes(x, order, up, down, tuple(pad), gain)
    return upfirdn2d_depthwise(x, kernel_2d(kernel, gain, dtype=x.dtype, device=x.device), up, down, pad)


# ----------------------------------------------------------------------------------------------------------------
# The three calls the networks make


def downsample_pad(kernel: Sequence[float], conv_size: int = 1) -> tuple[int, int]:
    """Padding of the factor-2 down-sampling FIR (``conv_size`` > 1: before a ``conv_size`` convolution of stride 2)."""
    p = len(kernel) - 2 + (conv_size - 1)
    return (p + 1) // 2, p // 2


def upsample_pad(kernel: Sequence[float]) -> tuple[int, int]:
    """Padding of the factor-2 up-sampling FIR."""
    p = len(kernel) - 2
    return (p + 1) // 2 + 1, p // 2


def downsample(x: Tensor, kernel: Sequence[float] = FIR_KERNEL, impl: str = "auto") -> Tensor:
    """Blur with the FIR and keep every second pixel: (N, C, H, W) -> (N, C, H/2, W/2)."""
    return upfirdn2d(x, kernel, down=2, pad=downsample_pad(kernel), impl=impl)


def upsample(x: Tensor, kernel: Sequence[float] = FIR_KERNEL, impl: str = "auto") -> Tensor:
    """Insert zeros and blur with the FIR times 4: (N, C, H, W) -> (N, C, 2H, 2W)."""
    return upfirdn2d(x, kernel, up=2, pad=upsample_pad(kernel), gain=4.0, impl=impl)


def conv_downsample(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                    kernel: Sequence[float] = FIR_KERNEL, impl: str = "auto") -> Tensor:
    """Blur with the FIR (padding for the convolution to follow), then a square convolution of stride 2:
    (N, C, H, W) -> (N, C', H/2, W/2) for even H, W."""
    blurred = upfirdn2d(x, kernel, pad=downsample_pad(kernel, weight.shape[-1]), impl=impl)
    return F.conv2d(blurred, weight, bias, stride=2)
