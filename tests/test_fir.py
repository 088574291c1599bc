"""FIR resampling: both implementations equal the definition of upfirdn2d, and differentiate twice."""

import pytest
import torch
import torch.nn.functional as F

from uotm.nets import fir
from uotm.nets.fir import (FIR_KERNEL, binomial_order, conv_downsample, downsample, downsample_pad, kernel_2d,
                           upfirdn2d, upfirdn2d_definition, upsample, upsample_pad)

BINOMIAL = [(1, 1), (1, 2, 1), (1, 3, 3, 1), (1, 4, 6, 4, 1), (2, 6, 6, 2)]



def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def network_calls(kernel):
    """(up, down, pad, gain) of the three calls the networks make: down-sampling, up-sampling, the blur before a
    stride-2 3x3 convolution."""
    return [(1, 2, downsample_pad(kernel), 1.0), (2, 1, upsample_pad(kernel), 4.0),
            (1, 1, downsample_pad(kernel, 3), 1.0)]


@pytest.mark.parametrize("impl", ["boxes", "depthwise", "auto"])
@pytest.mark.parametrize("kernel", BINOMIAL)
def test_every_network_call_equals_the_definition(kernel, impl):
    x = rand(2, 3, 8, 6)
    for up, down, pad, gain in network_calls(kernel):
        want = upfirdn2d_definition(x, kernel_2d(kernel, gain), up, down, pad)
        got = upfirdn2d(x, kernel, up, down, pad, gain, impl=impl)
        assert got.shape == want.shape
        assert torch.allclose(got, want, rtol=0, atol=1e-10), (up, down, pad)


@pytest.mark.parametrize("pad", [(0, 0), (1, 1), (2, 1), (1, 2), (3, 0), (-1, 2)])
@pytest.mark.parametrize("up,down", [(1, 1), (1, 2), (2, 1)])
def test_box_filters_equal_the_definition_for_any_padding(up, down, pad):
    x = rand(1, 2, 7, 8)
    for kernel in BINOMIAL:
        want = upfirdn2d_definition(x, kernel_2d(kernel, 2.5), up, down, pad)
        assert torch.allclose(upfirdn2d(x, kernel, up, down, pad, 2.5, impl="boxes"), want, rtol=0, atol=1e-10)


def test_the_network_helpers_have_the_expected_shapes_and_paddings():
    assert downsample_pad(FIR_KERNEL) == (1, 1)
    assert upsample_pad(FIR_KERNEL) == (2, 1)
    assert downsample_pad(FIR_KERNEL, 3) == (2, 2)
    x = rand(2, 3, 8, 8)
    assert downsample(x).shape == (2, 3, 4, 4)
    assert upsample(x).shape == (2, 3, 16, 16)
    weight, bias = rand(5, 3, 3, 3, seed=1), rand(5, seed=2)
    blurred = upfirdn2d_definition(x, kernel_2d(FIR_KERNEL), pad=(2, 2))
    want = F.conv2d(blurred, weight, bias, stride=2)
    for impl in ("boxes", "depthwise"):
        got = conv_downsample(x, weight, bias, impl=impl)
        assert got.shape == (2, 5, 4, 4)
        assert torch.allclose(got, want, rtol=0, atol=1e-10)


def test_upsampling_is_four_times_the_adjoint_of_downsampling_and_keeps_constants():
    x, g = rand(2, 3, 8, 8, seed=1), rand(2, 3, 4, 4, seed=2)
    for impl in ("boxes", "depthwise"):
        lhs = (downsample(x, impl=impl) * g).sum() * 4
        assert torch.allclose(lhs, (x * upsample(g, impl=impl)).sum(), rtol=0, atol=1e-10)
        ones = upsample(torch.ones(1, 1, 6, 6, dtype=torch.float64), impl=impl)
        assert torch.allclose(ones[..., 1:-1, 1:-1], torch.ones((), dtype=torch.float64), rtol=0, atol=1e-12)


def test_other_kernels_take_the_depthwise_path():
    assert binomial_order((1, 3, 3, 1)) == 3 and binomial_order((0.5, 0.5)) == 1
    assert binomial_order((1, 2, 3)) is None and binomial_order((1,)) is None
    x = rand(1, 2, 8, 8)
    for up, down, pad, gain in network_calls((1, 2, 3)):
        want = upfirdn2d_definition(x, kernel_2d((1, 2, 3), gain), up, down, pad)
        assert torch.allclose(upfirdn2d(x, (1, 2, 3), up, down, pad, gain), want, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="binomial"):
        upfirdn2d(x, (1, 2, 3), down=2, impl="boxes")
    with pytest.raises(ValueError, match="impl"):
        upfirdn2d(x, impl="fast")


def test_auto_picks_boxes_on_cuda_only():
    assert fir._auto_impl(torch.zeros(1)) == "depthwise"
    assert fir._auto_impl(torch.zeros(1, device="meta")) == "depthwise"


@pytest.mark.parametrize("impl", ["boxes", "depthwise"])
def test_first_and_second_derivatives(impl):
    x = rand(1, 2, 6, 6).requires_grad_()
    for up, down, pad, gain in network_calls(FIR_KERNEL):
        def f(t):
            return upfirdn2d(t, FIR_KERNEL, up, down, pad, gain, impl=impl).square()  # non-linear: 2nd derivative

        assert torch.autograd.gradcheck(f, (x,))
        assert torch.autograd.gradgradcheck(f, (x,))
