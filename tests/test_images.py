import numpy as np
import pytest
import torch
from PIL import Image

from uotm.data.images import BatchOrder, TensorImages, batches, make_dataset
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
