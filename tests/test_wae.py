import math

import numpy as np
import pytest
import torch

from uotm.losses import WAE_SCALES, imq_kernel, mmd_imq
from uotm.nets.wae import ConvDecoder, ConvEncoder
from uotm.runs import load_snapshot_file, read_metrics
from uotm.wae import WAEConfig, train_wae, write_wae_outputs


def _normal(n, d, seed, shift=0.0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + shift


# ---------------------------------------------------------------------------------------------------------------
# MMD


def test_imq_kernel_by_hand():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    # one scale s = 1, d = 1, sigma2 = 1: C = 2, k = 2 / (2 + r^2)
    k = imq_kernel(x, y, 1.0, scales=(1.0,))
    assert torch.allclose(k, torch.tensor([[1.0, 1 / 3], [2 / 3, 2 / 3]], dtype=torch.float64))
    # all seven scales: the diagonal of k(x, x) is 7, and k is their sum
    kk = imq_kernel(x, x)
    assert torch.allclose(kk.diagonal(), torch.full((2,), 7.0, dtype=torch.float64))
    assert kk[0, 1].item() == pytest.approx(sum(2 * s / (2 * s + 1) for s in WAE_SCALES))


def test_unbiased_mmd_by_hand_can_be_negative():
    x = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    y = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    # off-diagonal means: k(0,1) = 2/3 and k(0,2) = 1/3; cross mean (1 + 1/3 + 2/3 + 2/3) / 4 = 2/3
    assert mmd_imq(x, y, scales=(1.0,)).item() == pytest.approx(2 / 3 + 1 / 3 - 2 * 2 / 3)


def test_unbiased_mmd_against_a_loop():
    x, y = _normal(7, 3, 0), _normal(5, 3, 1, 0.5)

    def k(u, v):
        c = 2 * 3 * 2.0
        return sum(c * s / (c * s + float(((u - v) ** 2).sum())) for s in WAE_SCALES)

    xx = sum(k(x[i], x[j]) for i in range(7) for j in range(7) if i != j) / 42
    yy = sum(k(y[i], y[j]) for i in range(5) for j in range(5) if i != j) / 20
    xy = sum(k(x[i], y[j]) for i in range(7) for j in range(5)) / 35
    assert mmd_imq(x, y, sigma2=2.0).item() == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_mmd_near_zero_for_one_law_and_grows_with_a_shift():
    same = [mmd_imq(_normal(200, 2, 2 * k), _normal(200, 2, 2 * k + 1)).item() for k in range(20)]
    # unbiased: the estimates straddle 0 and their mean is within a few standard errors of 0
    assert min(same) < 0 < max(same)
    assert abs(np.mean(same)) < 3 * np.std(same) / math.sqrt(len(same)) + 1e-4
    shifted = [mmd_imq(_normal(200, 2, 0), _normal(200, 2, 1, s)).item() for s in (0.25, 0.5, 1.0, 2.0, 4.0)]
    assert all(a < b for a, b in zip(shifted, shifted[1:]))
    assert shifted[0] > max(same)


def test_mmd_rejects_bad_input():
    with pytest.raises(ValueError, match="n, m >= 2"):
        mmd_imq(torch.zeros(1, 2), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="same d"):
        mmd_imq(torch.zeros(3, 2), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="sigma2"):
        mmd_imq(torch.zeros(3, 2), torch.zeros(3, 2), sigma2=0.0)
    with pytest.raises(ValueError, match="scales"):
        mmd_imq(torch.zeros(3, 2), torch.zeros(3, 2), scales=(1.0, -1.0))


# ---------------------------------------------------------------------------------------------------------------
# training


SMALL = dict(data="8gaussians", num_data=512, batch_size=64, steps=150, hidden=32, num_blocks=1, log_every=10)


def test_short_2d_run_reduces_the_loss():
    run = train_wae(WAEConfig(**SMALL, lam=10.0), progress=False)
    first, last = run.metrics[0], run.metrics[-1]
    assert last["loss"] < 0.5 * first["loss"] and last["recon"] < first["recon"]
    assert run.sample(7).shape == (7, 2) and run.reconstruct(run.data[:5]).shape == (5, 2)


def test_runs_repeat_with_a_seed_and_leave_the_global_state_alone():
    cfg = WAEConfig(**dict(SMALL, steps=20), encoder="gaussian")
    state = torch.get_rng_state()
    one, two = train_wae(cfg, progress=False), train_wae(cfg, progress=False)
    assert torch.equal(state, torch.get_rng_state())
    assert one.metrics == [dict(r, seconds=s["seconds"]) for r, s in zip(two.metrics, one.metrics)]
    assert torch.equal(one.sample(50, seed=3), two.sample(50, seed=3))
    other = train_wae(WAEConfig(**dict(SMALL, steps=20, seed=1), encoder="gaussian"), progress=False)
    assert not torch.equal(one.sample(50, seed=3), other.sample(50, seed=3))


def test_wae_gan_with_a_gaussian_encoder_runs():
    run = train_wae(WAEConfig(**dict(SMALL, steps=20), penalty="gan", encoder="gaussian"), progress=False)
    assert run.discriminator is not None and {"recon", "penalty", "mmd", "loss"} <= set(run.metrics[-1])
    assert all(math.isfinite(r["loss"]) for r in run.metrics)


def test_conv_networks_and_a_digits_step(tmp_path):
    enc, dec = ConvEncoder(8, 8, stochastic=True), ConvDecoder(8, 8)
    x = torch.rand(3, 1, 16, 16) * 2 - 1
    assert enc(x).shape == (3, 8) and dec(enc(x)).shape == (3, 1, 16, 16)
    assert dec(enc(x)).abs().max() <= 1
    run = train_wae(WAEConfig(data="digits", z_dim=4, width=4, steps=3, batch_size=16, log_every=1,
                              data_root=str(tmp_path)), progress=False)
    assert run.data.shape == (1500, 1, 16, 16) and run.sample(2).shape == (2, 1, 16, 16)
    out = tmp_path / "run"  # the run folder of `python -m uotm toy --model wae --set data=digits`
    out.mkdir()
    write_wae_outputs(run, out)
    assert np.load(out / "samples.npy").shape == (64, 1, 16, 16) and (out / "samples.png").is_file()
    assert [r["step"] for r in read_metrics(out)] == [1, 2, 3]
    snap = load_snapshot_file(out / "snapshot.pt", ("config", "encoder", "decoder"))
    assert snap["config"]["data"] == "digits" and "discriminator" not in snap


@pytest.mark.parametrize("change, message", [
    (dict(encoder="vae"), "encoder must be one of deterministic, gaussian"),
    (dict(penalty="kl"), "penalty must be one of mmd, gan"),
    (dict(lam=-1.0), "lam"),
    (dict(lam=float("nan")), "lam"),
    (dict(batch_size=1), "batch_size must be an integer >= 2"),
    (dict(steps=0), "steps"),
    (dict(lr_map=0.0), "lr_map"),
    (dict(prior_sigma2=-1.0), "prior_sigma2"),
    (dict(data="spiral"), "unknown distribution"),
    (dict(data="noise"), "prior itself"),
    (dict(num_data=32), "fewer than the batch size"),
    (dict(data="digits", batch_size=2000), "1500 images"),
])
def test_config_errors(change, message):
    with pytest.raises(ValueError, match=message):
        WAEConfig(**dict(SMALL, **change)).validate()


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown WAE config keys"):
        WAEConfig.from_dict({"lambda": 1.0})
