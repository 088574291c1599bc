"""The image networks: the reference's parameter counts, shapes, ranges, and the derivatives training needs."""

import math

import pytest
import torch

from uotm.nets import Potential, TransportMap, build_networks, fir
from uotm.nets.ncsnpp import AdaptiveGroupNorm, SelfAttention
from uotm.nets.potential import minibatch_stddev
from uotm.presets import preset

# the reference's counts (Jae-Moo/UOTM) less its unused time-embedding layers (map); its potentials as they are
REFERENCE_COUNTS = {"cifar10": (44_820_611, 12_247_809), "celeba_256": (37_983_299, 26_881_537)}



def n_params(module):
    return sum(p.numel() for p in module.parameters())


@pytest.fixture(scope="module")
def digits():
    torch.manual_seed(0)
    cfg = preset("digits")
    transport_map, potential = build_networks(cfg)
    return cfg, transport_map, potential


@pytest.mark.parametrize("name", sorted(REFERENCE_COUNTS))
def test_parameter_counts_equal_the_reference(name):
    with torch.device("meta"):
        transport_map, potential = build_networks(preset(name))
    assert (n_params(transport_map), n_params(potential)) == REFERENCE_COUNTS[name]
    assert potential.size == ("small" if name == "cifar10" else "large")


def test_digits_networks_are_laptop_sized(digits):
    _, transport_map, potential = digits
    assert 1e5 < n_params(transport_map) < 5e6 and 1e5 < n_params(potential) < 5e6


def test_map_shape_range_and_backward(digits):
    cfg, transport_map, _ = digits
    x, z = torch.randn(8, cfg.channels, cfg.image_size, cfg.image_size), torch.randn(8, cfg.net.z_dim)
    out = transport_map(x, z)
    assert out.shape == x.shape and out.abs().max() <= 1
    transport_map.zero_grad()
    out.square().mean().backward()
    grads = [p.grad for p in transport_map.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert transport_map.head_conv.weight.grad.abs().sum() > 0


def test_map_depends_on_x_and_z_once_its_last_layers_are_not_near_zero(digits):
    cfg, transport_map, _ = digits
    torch.manual_seed(1)
    model = TransportMap(cfg.net, cfg.image_size, cfg.channels).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.dim() == 4 and p.abs().max() < 1e-4:  # the near-zero initial layers
                p.normal_(0, 0.05)
    x, z = torch.randn(2, cfg.channels, 16, 16, dtype=torch.float64), torch.randn(2, cfg.net.z_dim, dtype=torch.float64)
    base = model(x, z)
    assert (model(x, z.flip(0)) - base).abs().max() > 1e-3
    assert (model(x.flip(0), z) - base).abs().max() > 1e-3
    # the box filters and the depthwise convolution give the same network
    default = fir._auto_impl
    try:
        fir._auto_impl = lambda t: "boxes"
        assert torch.allclose(model(x, z), base, rtol=0, atol=1e-10)
    finally:
        fir._auto_impl = default


def test_potential_shape_and_r1_double_backward(digits):
    cfg, _, potential = digits
    y = torch.randn(8, cfg.channels, cfg.image_size, cfg.image_size, requires_grad=True)
    values = potential(y)
    assert values.shape == (8,)
    (grad,) = torch.autograd.grad(values.sum(), y, create_graph=True)
    potential.zero_grad()
    (values.mean() + 0.1 * grad.square().sum(dim=(1, 2, 3)).mean()).backward()
    grads = [p.grad for p in potential.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    # the penalty alone reaches the weights: the double backward is not empty
    potential.zero_grad()
    (grad2,) = torch.autograd.grad(potential(y).sum(), y, create_graph=True)
    grad2.square().sum().backward()
    assert potential.stem.weight.grad.abs().sum() > 0


def test_large_potential_halves_six_times():
    torch.manual_seed(0)
    potential = Potential(channels=3, base_channels=2, size="large")
    assert potential(torch.randn(4, 3, 64, 64)).shape == (4,)
    with pytest.raises(ValueError, match="divisible by 64"):
        potential(torch.randn(4, 3, 32, 32))
    with pytest.raises(ValueError, match="small"):
        Potential(size="medium")


def test_minibatch_stddev_groups_samples_congruent_modulo_b_over_g():
    h = torch.randn(8, 3, 2, 2, dtype=torch.float64)
    out = minibatch_stddev(h, 4)
    assert out.shape == (8, 4, 2, 2) and torch.equal(out[:, :3], h)
    for i in range(8):
        group = h[[j for j in range(8) if j % 2 == i % 2]]
        want = (group.var(dim=0, correction=0) + 1e-8).sqrt().mean()
        assert torch.allclose(out[i, 3], want.expand(2, 2))
    assert minibatch_stddev(h[:6], 4).shape == (6, 4, 2, 2)  # 6 samples: groups of 3


def test_attention_is_softmax_attention_over_pixels():
    torch.manual_seed(0)
    attention = SelfAttention(8).double()
    with torch.no_grad():
        attention.out.weight.normal_(0, 0.3)
    x = torch.randn(2, 8, 3, 4, dtype=torch.float64)
    q, k, v = attention.qkv(attention.norm(x)).chunk(3, dim=1)
    w = torch.einsum("bchw,bcij->bhwij", q, k) / math.sqrt(8)
    w = w.reshape(2, 3, 4, 12).softmax(-1).reshape(2, 3, 4, 3, 4)
    h = attention.out(torch.einsum("bhwij,bcij->bchw", w, v))
    assert torch.allclose(attention(x), (x + h) / math.sqrt(2), rtol=0, atol=1e-12)


def test_adaptive_group_norm_starts_as_plain_group_norm():
    norm = AdaptiveGroupNorm(16, 10)
    h, emb = torch.randn(3, 16, 4, 4), torch.zeros(3, 10)
    assert torch.allclose(norm(h, emb), torch.nn.functional.group_norm(h, 4, eps=1e-6), atol=1e-6)


def test_unsupported_options_are_refused():
    cfg = preset("digits")
    for field, value in (("resblock_type", "ddpm"), ("progressive_input", "input_skip")):
        with pytest.raises(ValueError, match=field):
            TransportMap(preset("digits", net={field: value}).net, cfg.image_size, cfg.channels)
    plain = TransportMap(preset("digits", net={"progressive_input": "none"}).net, cfg.image_size, cfg.channels)
    assert plain(torch.zeros(2, 1, 16, 16), torch.zeros(2, cfg.net.z_dim)).shape == (2, 1, 16, 16)
