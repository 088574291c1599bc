import numpy as np
import pytest
import torch
from PIL import Image

from uotm.data.images import BatchOrder, TensorImages, batches, make_dataset, pixel_gaussian
from uotm.presets import preset



def test_digits_are_uint8_resized_with_labels_and_a_disjoint_held_out_split():
    cfg = preset("digits")
    train, test = make_dataset(cfg), make_dataset(cfg, train=False)
    assert train.images.shape == (1500, 1, 16, 16) and test.images.shape == (297, 1, 16, 16)
    assert train.images.dtype == torch.uint8 and int(train.images.max()) == 255 and int(train.images.min()) == 0
    assert train.labels.shape == (1500,) and set(train.labels.tolist()) == set(range(10))
    assert train.hflip is False
    flat = {tuple(im.flatten().tolist()) for im in train.images}
    assert sum(tuple(im.flatten().tolist()) in flat for im in test.images) < 10  # the split is by sample
    big = make_dataset(preset("digits", image_size=32, channels=3))
    assert big.images.shape == (1500, 3, 32, 32)


@pytest.mark.parametrize("name, words", [
    ("cifar10", ["cifar-10-python.tar.gz", "cifar-10-batches-py", "https://www.cs.toronto.edu"]),
    ("cifar10+mnist", ["cifar-10-python.tar.gz"]),
    ("mnist", ["train-images-idx3-ubyte.gz", "MNIST/raw"]),
    ("celeba_256", ["celeba-256", "list_eval_partition_celeba.txt"]),
])
def test_a_missing_dataset_says_what_to_download_and_where(tmp_path, name, words):
    cfg = preset("digits", dataset=name, data_root=str(tmp_path))
    with pytest.raises(ValueError) as err:
        make_dataset(cfg)
    for word in words:
        assert word in str(err.value)
    assert str(tmp_path) in str(err.value)


def test_unknown_or_empty_folders_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset"):
        make_dataset(preset("digits", dataset="svhn"))
    with pytest.raises(ValueError, match="does not exist"):
        make_dataset(preset("digits", dataset=f"folder:{tmp_path / 'nope'}"))
    with pytest.raises(ValueError, match="holds no"):
        make_dataset(preset("digits", dataset=f"folder:{tmp_path}"))


def _write_idx(path, arr, magic):
    with open(path, "wb") as f:
        f.write(np.array([magic, *arr.shape], dtype=">i4").tobytes())
        f.write(arr.astype(np.uint8).tobytes())


def test_mnist_from_idx_files_is_resized_and_replicated(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 4)):
        _write_idx(raw / f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)), 2051)
        _write_idx(raw / f"{split}-labels-idx1-ubyte", rng.integers(0, 10, (n,)), 2049)
    ds = make_dataset(preset("digits", dataset="mnist", data_root=str(tmp_path), image_size=32, channels=3))
    assert ds.images.shape == (12, 3, 32, 32) and ds.hflip is False
    assert torch.equal(ds.images[:, 0], ds.images[:, 2])


def test_image_folder_and_celeba_partition(tmp_path):
    folder = tmp_path / "celeba-hq" / "celeba-256"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i, size in enumerate([(40, 30), (20, 20), (64, 64)], start=1):
        Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(folder / f"{i:06d}.png")
    (tmp_path / "celeba-hq" / "list_eval_partition_celeba.txt").write_text("000001.jpg 0\n000002.jpg 2\n000003.jpg 0\n")
    cfg = preset("digits", dataset="celeba_256", data_root=str(tmp_path), image_size=16, channels=3)
    train = make_dataset(cfg)
    assert [p.name for p in train.files] == ["000001.png", "000003.png"] and train.hflip is True
    assert train[0].shape == (3, 16, 16) and train[0].dtype == torch.uint8
    assert len(make_dataset(cfg, train=False)) == 1
    anyfolder = make_dataset(preset("digits", dataset=f"folder:{folder}", image_size=8, channels=1))
    assert len(anyfolder) == 3 and anyfolder[1].shape == (1, 8, 8)
    order = BatchOrder(len(anyfolder), 2, seed=0)
    (x,) = list(batches(anyfolder, order, epoch=0))
    assert x.shape == (2, 1, 8, 8) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1


def test_batch_order_is_a_function_of_seed_and_epoch_and_ranks_split_the_global_batch():
    one = BatchOrder(100, 8, seed=3)
    assert one.batches_per_epoch == 12
    p0, f0 = one.epoch(0)
    assert torch.equal(p0, BatchOrder(100, 8, seed=3).epoch(0)[0]) and torch.equal(f0, one.epoch(0)[1])
    assert not torch.equal(p0, one.epoch(1)[0]) and not torch.equal(p0, BatchOrder(100, 8, seed=4).epoch(0)[0])
    assert sorted(p0.tolist()) == list(range(100))
    idx1, flip1 = one.local_slices(2)
    parts = [BatchOrder(100, 8, seed=3, rank=r, world_size=4).local_slices(2) for r in range(4)]
    assert torch.equal(torch.cat([p[0] for p in parts], dim=1), idx1)
    assert torch.equal(torch.cat([p[1] for p in parts], dim=1), flip1)
    with pytest.raises(ValueError, match="not divisible"):
        BatchOrder(100, 8, seed=0, world_size=3)
    with pytest.raises(ValueError, match="fewer than one batch"):
        BatchOrder(5, 8, seed=0)


def test_batches_flip_only_flippable_images_and_restart_anywhere():
    images = torch.arange(16 * 2 * 4, dtype=torch.float32).reshape(16, 1, 2, 4).to(torch.uint8)
    order = BatchOrder(16, 4, seed=0)
    plain = list(batches(TensorImages(images, "t", hflip=False), order, 1))
    flipped = list(batches(TensorImages(images, "t", hflip=True), order, 1))
    idx, flip = order.local_slices(1)
    for b in range(4):
        expect = images[idx[b]].float() / 127.5 - 1
        assert torch.equal(plain[b], expect)
        assert torch.equal(flipped[b], torch.where(flip[b][:, None, None, None], expect.flip(-1), expect))
    assert 0 < int(flip.sum()) < 16
    later = list(batches(TensorImages(images, "t", hflip=True), order, 1, start=2))
    assert len(later) == 2 and all(torch.equal(a, b) for a, b in zip(later, flipped[2:]))
    mask = torch.tensor([True] * 8 + [False] * 8)
    some = list(batches(TensorImages(images, "t", hflip=mask), order, 1))
    for b in range(4):
        expect = images[idx[b]].float() / 127.5 - 1
        do = flip[b] & mask[idx[b]]
        assert torch.equal(some[b], torch.where(do[:, None, None, None], expect.flip(-1), expect))


def test_pixel_gaussian_is_repeatable_uint8_images_with_the_datas_mean_and_covariance():
    digits = make_dataset(preset("digits"))
    x = pixel_gaussian(digits, 2000, seed=0)
    assert x.shape == (2000, 1, 16, 16) and x.dtype == torch.uint8
    assert torch.equal(x, pixel_gaussian(digits.images, 2000, seed=0))  # the data set or its images
    assert not torch.equal(x, pixel_gaussian(digits, 2000, seed=1))
    gen = torch.Generator().manual_seed(0)  # a generator: the seed's draw, and the draw advances it
    assert torch.equal(pixel_gaussian(digits, 2000, gen), x) and not torch.equal(pixel_gaussian(digits, 2000, gen), x)
    # clipping to [-1, 1] lifts the mean of the often-blank pixels: a few grey levels per pixel, ~1.7 on the whole
    mean_data, mean_samples = digits.images.double().mean(0), x.double().mean(0)
    assert (mean_data - mean_samples).abs().max() < 16 and abs(mean_data.mean() - mean_samples.mean()) < 3
    signed = pixel_gaussian(digits, 5, seed=0, as_uint8=False)
    assert signed.dtype == torch.float32 and signed.shape == (5, 1, 16, 16) and signed.abs().max() <= 1
    assert torch.equal(((signed.double() + 1) * 127.5).round().to(torch.uint8), x[:5])

    # mid-grey images that the clipping never reaches: the samples' mean and covariance are the data's
    g = torch.Generator().manual_seed(0)
    grey = (torch.randint(100, 156, (1, 2, 3, 3), generator=g) + torch.randint(-20, 21, (500, 2, 3, 3), generator=g))
    grey = grey.to(torch.uint8)
    data = grey.double().div(127.5).sub(1).flatten(1)
    draws = pixel_gaussian(grey, 20000, seed=3, as_uint8=False).double().flatten(1)
    assert (data.mean(0) - draws.mean(0)).abs().max() < 5e-3  # std of the mean 7e-4
    assert (torch.cov(data.T) - torch.cov(draws.T)).abs().max() < 1e-3  # variances near 9e-3


@pytest.mark.parametrize("images, n, seed, jitter, words", [
    (torch.zeros(5, 1, 4, 4), 3, 0, 1e-6, "uint8 tensor"),
    (torch.zeros(1, 1, 4, 4, dtype=torch.uint8), 3, 0, 1e-6, "at least 2 images"),
    (torch.zeros(5, 4, 4, dtype=torch.uint8), 3, 0, 1e-6, "uint8 tensor"),
    (np.zeros((5, 1, 4, 4), dtype=np.uint8), 3, 0, 1e-6, "uint8 tensor"),
    (torch.zeros(5, 1, 4, 4, dtype=torch.uint8), 0, 0, 1e-6, "positive whole number"),
    (torch.zeros(5, 1, 4, 4, dtype=torch.uint8), 2.0, 0, 1e-6, "positive whole number"),
    (torch.zeros(5, 1, 4, 4, dtype=torch.uint8), 3, -1, 1e-6, "seed"),
    (torch.zeros(5, 1, 4, 4, dtype=torch.uint8), 3, 1.5, 1e-6, "seed"),
    (torch.zeros(5, 1, 4, 4, dtype=torch.uint8), 3, 0, -1.0, "jitter"),
    (torch.zeros(5, 1, 4, 4, dtype=torch.uint8), 3, 0, float("nan"), "jitter"),
    (torch.zeros(5, 1, 4, 4, dtype=torch.uint8), 3, 0, 0.0, "not positive definite"),  # constant images
])
def test_pixel_gaussian_refuses_bad_input(images, n, seed, jitter, words):
    with pytest.raises(ValueError, match=words):
        pixel_gaussian(images, n, seed, jitter=jitter)
