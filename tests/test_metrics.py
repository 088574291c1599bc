from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import uotm.metrics as M
from uotm.data.images import make_dataset
from uotm.presets import preset



@pytest.fixture(scope="module")
def random_inception():
    return M.inception(random_weights=True, dims=192, device="cpu")


def test_fid_path_with_a_random_inception_is_zero_on_itself_and_grows_with_noise(random_inception):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (16, 3, 32, 32), dtype=torch.uint8, generator=g)
    feats = M.inception_features(images, random_inception, batch_size=8)
    assert feats.shape == (16, 192) and np.isfinite(feats).all()
    stats = M.feature_statistics(feats)
    signed = images.float() / 127.5 - 1
    np.testing.assert_allclose(M.inception_features(signed[:4], random_inception), feats[:4], rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(M.inception_features(images[:4].permute(0, 2, 3, 1).numpy(), random_inception),
                               feats[:4], rtol=1e-4, atol=1e-7)
    distances = []
    for sd in (0.1, 0.5):
        noisy = (signed + sd * torch.randn(signed.shape, generator=g)).clamp(-1, 1)
        distances.append(M.fid(noisy, stats, net=random_inception))
    self_distance = M.frechet_distance(stats, stats)
    assert abs(self_distance) < 1e-3 * distances[0]
    assert 0 < distances[0] < distances[1]


def test_reference_statistics_are_cached_under_the_data_root(tmp_path, random_inception):
    folder = tmp_path / "imgs"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    cfg = preset("digits", dataset=f"folder:{folder}", image_size=8, channels=3, data_root=str(tmp_path))
    mu, sigma = M.reference_statistics(cfg, net=random_inception, cache=True)
    (path,) = (tmp_path / "fid-stats").iterdir()
    assert path.name.endswith("-8px-3ch-inception.npz") and mu.shape == (192,) and sigma.shape == (192, 192)
    mu2, _ = M.reference_statistics(cfg, net=random_inception, cache=True)  # read back, not recomputed
    np.testing.assert_array_equal(mu, mu2)


def test_missing_inception_weights_name_the_file_and_the_address_and_download_nothing(tmp_path, monkeypatch):
    from pytorch_fid import inception as pfi

    monkeypatch.delenv(M.FID_WEIGHTS_ENV, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: pytest.fail("tried to download"))
    with pytest.raises(ValueError) as err:
        M.inception()
    hub = torch.hub.get_dir()  # $TORCH_HOME/hub
    assert hub.startswith(str(tmp_path))
    for word in (M.FID_WEIGHTS_NAME, M.FID_WEIGHTS_URL, f"{hub}/checkpoints", M.FID_WEIGHTS_ENV):
        assert word in str(err.value)
    monkeypatch.setenv(M.FID_WEIGHTS_ENV, str(tmp_path / "nowhere.pth"))
    with pytest.raises(ValueError, match="nowhere.pth"):
        M.fid_weights_path()


def test_inception_weights_are_read_from_the_local_file(tmp_path, monkeypatch):
    from pytorch_fid import inception as pfi

    # a weights file with the layout of the real one (random values), made without any download
    made, original = [], pfi._inception_v3
    monkeypatch.setattr(pfi, "_inception_v3", lambda *a, **k: made.append(original(*a, **k)) or made[-1])
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: made[-1].state_dict())
    trunk = pfi.fid_inception_v3()
    monkeypatch.undo()
    path = tmp_path / M.FID_WEIGHTS_NAME
    torch.save(trunk.state_dict(), path)
    monkeypatch.setattr(pfi, "load_state_dict_from_url", lambda *a, **k: pytest.fail("tried to download"))
    monkeypatch.setenv(M.FID_WEIGHTS_ENV, str(path))
    assert M.fid_weights_path() == path
    net = M.inception(dims=64, device="cpu")
    torch.testing.assert_close(net.blocks[0][0].conv.weight, trunk.Conv2d_1a_3x3.conv.weight)
    monkeypatch.delenv(M.FID_WEIGHTS_ENV)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "hub"))
    checkpoints = Path(torch.hub.get_dir()) / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / M.FID_WEIGHTS_NAME).symlink_to(path)
    assert M.fid_weights_path() == checkpoints / M.FID_WEIGHTS_NAME


def test_digits_proxy_classifier_is_accurate_cached_and_its_distance_behaves(tmp_path):
    model, accuracy, (mu, sigma) = M.digits_classifier(tmp_path)
    assert accuracy >= 0.95
    assert (tmp_path / "digits-classifier-16px.pt").is_file() and mu.shape == (128,)
    again, accuracy2, _ = M.digits_classifier(tmp_path)  # from the cache
    assert accuracy2 == accuracy
    torch.testing.assert_close(again.head.weight, model.head.weight)
    cfg = preset("digits")
    train, test = make_dataset(cfg), make_dataset(cfg, train=False)
    assert abs(M.proxy_fid(train.images, tmp_path)) < 1e-6
    held_out = M.proxy_fid(test.images, tmp_path)
    g = torch.Generator().manual_seed(0)
    noise = M.proxy_fid(torch.rand(300, 1, 16, 16, generator=g) * 2 - 1, tmp_path)
    blurred = M.proxy_fid(torch.nn.functional.avg_pool2d(test.images.float(), 3, 1, 1).to(torch.uint8), tmp_path)
    assert held_out < blurred < noise
    assert M.proxy_fid(test.images.permute(0, 2, 3, 1).numpy(), tmp_path) == pytest.approx(held_out)
    with pytest.raises(ValueError, match="16x16 images, got 8x8; nothing is resized"):  # never resized silently
        M.proxy_fid(torch.zeros(4, 1, 8, 8), tmp_path)
    with pytest.raises(ValueError, match="NaN"):
        M.proxy_fid(torch.full((4, 1, 16, 16), float("nan")), tmp_path)


def test_image_layouts():
    u = torch.randint(0, 256, (2, 3, 4, 5), dtype=torch.uint8)
    torch.testing.assert_close(M.as_unit_float(u), u.float() / 255)
    torch.testing.assert_close(M.as_unit_float(u.permute(0, 2, 3, 1).numpy()), u.float() / 255)
    torch.testing.assert_close(M.as_unit_float(torch.zeros(1, 1, 2, 2)), torch.full((1, 1, 2, 2), 0.5))
    with pytest.raises(ValueError, match="4 dimensions"):
        M.as_unit_float(torch.zeros(3, 4, 4))
