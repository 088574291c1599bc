"""Image data sets (the UOTM paper's image experiments, arXiv:2305.14777) and the order in which a run visits them.

``make_dataset(cfg, train=True)`` returns an :class:`ImageDataset` for ``cfg.dataset``:

===============  =================================================================================================
name             images
===============  =================================================================================================
digits           scikit-learn's bundled 8×8 digits (1 797; no download), resized to ``cfg.image_size``; a fixed
                 split keeps 1 500 for training and 297 held out (``train=False``) for the proxy FID classifier
mnist            torchvision's MNIST files under ``<data_root>/MNIST/raw``, resized to ``cfg.image_size``
cifar10          the CIFAR-10 python batches under ``<data_root>/cifar-10-batches-py``
cifar10+mnist    CIFAR-10's 50 000 training images plus the first 1% × 50 000 = 500 MNIST training digits, resized
                 to 32×32 and replicated to 3 channels (the reference's outlier experiment)
celeba_256       CelebA-HQ at 256×256 in ``<data_root>/celeba-hq/celeba-256`` (files named by their CelebA number)
                 and CelebA's partition file ``<data_root>/celeba-hq/list_eval_partition_celeba.txt``
folder:PATH      every image under PATH (png, jpg, jpeg, bmp, webp), resized and centre-cropped
===============  =================================================================================================

Every data set holds ``uint8`` images of shape (C, H, W); :func:`batches` turns them into float batches in
[−1, 1] on the training device and applies the random horizontal flip (cifar10, celeba_256 and folders; never
digits or MNIST). Nothing is ever downloaded: a data set missing from disk raises a ``ValueError`` that says what to
download and where to put it.

:func:`pixel_gaussian` samples the Gaussian fitted to a data set's pixels, the yardstick a model of it has to beat.

The order is :class:`BatchOrder`: epoch ``e``'s permutation and flips are a function of ``(seed, e)`` only, so a run
resumed at any batch of any epoch sees exactly the batches an uninterrupted run would, and ``R`` processes that each
take a slice of every global batch see together what one process sees.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

Tensor = torch.Tensor

DATASET_NAMES = ("digits", "mnist", "cifar10", "cifar10+mnist", "celeba_256", "folder:PATH")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
DIGITS_TRAIN = 1500  # of scikit-learn's 1 797 digits; the other 297 are held out
OUTLIER_FRACTION = 0.01  # cifar10+mnist: MNIST digits as a share of the 50 000 CIFAR-10 images


class ImageDataset(torch.utils.data.Dataset):
    """A set of ``uint8`` images of shape (C, H, W).

    Attributes: ``name``; ``hflip`` (whether :func:`batches` may flip an image: a bool, or a bool tensor with one
    entry per image); ``labels`` (a long tensor of class labels, or ``None``).
    """

    name: str = ""
    hflip: bool | Tensor = False
    labels: Tensor | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self[0].shape)

    def flippable(self, idx: Tensor) -> Tensor | bool:
        """Whether the images ``idx`` may be flipped (a bool for all, or one bool per image on ``idx``'s device)."""
        return self.hflip.to(idx.device)[idx] if isinstance(self.hflip, Tensor) else self.hflip


class TensorImages(ImageDataset):
    """Images held in memory as one ``uint8`` tensor (N, C, H, W); batches are cut from it without a loader."""

    def __init__(self, images: Tensor, name: str, hflip: bool | Tensor = False, labels: Tensor | None = None):
        if images.dtype != torch.uint8 or images.dim() != 4:
            raise ValueError(f"images must be a uint8 tensor (N, C, H, W), got {images.dtype} {tuple(images.shape)}")
        self.images, self.name, self.hflip, self.labels = images, name, hflip, labels

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> Tensor:
        return self.images[i]

    def to(self, device) -> "TensorImages":
        """The same images on ``device`` (a CIFAR-10 training set is 150 MB: it fits on any GPU)."""
        hflip = self.hflip.to(device) if isinstance(self.hflip, Tensor) else self.hflip
        return TensorImages(self.images.to(device), self.name, hflip, self.labels)


class FolderImages(ImageDataset):
    """Image files, decoded, resized (shorter side) and centre-cropped to ``image_size`` on each access."""

    def __init__(self, files: Sequence[Path], image_size: int, channels: int, name: str, hflip: bool = True):
        if channels not in (1, 3):
            raise ValueError(f"an image folder gives 1 or 3 channels, not {channels}")
        self.files, self.image_size, self.channels, self.name, self.hflip = list(files), image_size, channels, name, hflip

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> Tensor:
        from PIL import Image
        from torchvision.transforms import functional as TF

        with Image.open(self.files[i]) as img:
            img = img.convert("RGB" if self.channels == 3 else "L")
            img = TF.resize(img, self.image_size, antialias=True)
            img = TF.center_crop(img, self.image_size)
            return TF.pil_to_tensor(img)


def resize_uint8(images: Tensor, size: int, channels: int | None = None) -> Tensor:
    """Bilinear (antialiased) resize of ``uint8`` images (N, C, H, W) to size × size; a single channel is replicated
    to ``channels`` if asked."""
    if images.shape[-1] != size or images.shape[-2] != size:
        x = F.interpolate(images.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        images = x.round().clamp(0, 255).to(torch.uint8)
    if channels is not None and images.shape[1] != channels:
        if images.shape[1] != 1:
            raise ValueError(f"cannot turn {images.shape[1]}-channel images into {channels} channels")
        images = images.expand(-1, channels, -1, -1).contiguous()
    return images


def _digits(cfg, train: bool) -> TensorImages:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    keep = order[:DIGITS_TRAIN] if train else order[DIGITS_TRAIN:]
    pixels = torch.as_tensor(bunch.images[keep] / 16.0 * 255.0, dtype=torch.float32)[:, None]
    images = resize_uint8(pixels.round().to(torch.uint8), cfg.image_size, cfg.channels)
    labels = torch.as_tensor(bunch.target[keep], dtype=torch.long)
    return TensorImages(images, "digits", hflip=False, labels=labels)


def _mnist_arrays(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    from torchvision.datasets import MNIST

    try:
        ds = MNIST(str(root), train=train, download=False)
    except RuntimeError:
        split = "train" if train else "t10k"
        raise ValueError(
            f"MNIST is not in {root / 'MNIST' / 'raw'}: download {split}-images-idx3-ubyte.gz and "
            f"{split}-labels-idx1-ubyte.gz from {MNIST_URL}, gunzip them into {root / 'MNIST' / 'raw'}, or set "
            "data_root to the folder that holds MNIST/raw") from None
    return ds.data[:, None], ds.targets.long()


def _cifar_arrays(root: Path, train: bool) -> tuple[Tensor, Tensor]:
    from torchvision.datasets import CIFAR10

    try:
        ds = CIFAR10(str(root), train=train, download=False)
    except RuntimeError:
        raise ValueError(
            f"CIFAR-10 is not in {root / 'cifar-10-batches-py'}: download the python version from {CIFAR10_URL} and "
            f"extract it into {root} (tar xzf cifar-10-python.tar.gz -C {root} creates cifar-10-batches-py), or set "
            "data_root to the folder that holds cifar-10-batches-py") from None
    return torch.as_tensor(ds.data).permute(0, 3, 1, 2).contiguous(), torch.as_tensor(ds.targets, dtype=torch.long)


def _cifar10(cfg, root: Path, train: bool) -> TensorImages:
    images, labels = _cifar_arrays(root, train)
    return TensorImages(resize_uint8(images, cfg.image_size, cfg.channels), "cifar10", hflip=True, labels=labels)


def _cifar10_mnist(cfg, root: Path, train: bool) -> TensorImages:
    """CIFAR-10 plus ``int(0.01 * 50 000)`` MNIST training digits; their label is −1 and they are never flipped."""
    cifar, labels = _cifar_arrays(root, train)
    n_out = int(OUTLIER_FRACTION * len(cifar))
    digits, _ = _mnist_arrays(root, train=True)  # the outliers are the first MNIST training digits, as in the reference
    digits = resize_uint8(digits[:n_out], cfg.image_size, cfg.channels)
    images = torch.cat([resize_uint8(cifar, cfg.image_size, cfg.channels), digits])
    labels = torch.cat([labels, torch.full((n_out,), -1, dtype=torch.long)])
    flippable = torch.cat([torch.ones(len(cifar), dtype=torch.bool), torch.zeros(n_out, dtype=torch.bool)])
    return TensorImages(images, "cifar10+mnist", hflip=flippable, labels=labels)


def _mnist(cfg, root: Path, train: bool) -> TensorImages:
    images, labels = _mnist_arrays(root, train)
    return TensorImages(resize_uint8(images, cfg.image_size, cfg.channels), "mnist", hflip=False, labels=labels)


def _celeba_256(cfg, root: Path, train: bool) -> FolderImages:
    folder = root / "celeba-hq" / "celeba-256"
    partition = root / "celeba-hq" / "list_eval_partition_celeba.txt"
    how = (f"put the CelebA-HQ images resized to 256x256 in {folder}, each named by its CelebA file number (e.g. "
           f"000004.jpg; CelebA-HQ-to-CelebA-mapping.txt gives the numbers), and CelebA's Eval/list_eval_partition.txt "
           f"(from {CELEBA_URL}) as {partition}")
    if not folder.is_dir() or not partition.is_file():
        raise ValueError(f"CelebA-HQ 256 is not in {root / 'celeba-hq'}: {how}")
    split = {}
    for line in partition.read_text().split("\n"):
        if line.strip():
            name, label = line.split()[:2]
            split[name.split(".")[0]] = int(label)
    want = (0,) if train else (2,)  # 0 train, 1 validation, 2 test
    files = []
    for path in sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES):
        if path.stem not in split:
            raise ValueError(f"{path.name} has no entry in {partition}: {how}")
        if split[path.stem] in want:
            files.append(path)
    if not files:
        raise ValueError(f"no {'training' if train else 'test'} image of {partition} is in {folder}: {how}")
    return FolderImages(files, cfg.image_size, cfg.channels, "celeba_256", hflip=True)


def _folder(cfg, path: Path) -> FolderImages:
    if not path.is_dir():
        raise ValueError(f"image folder {str(path)!r} does not exist: give folder:PATH with a folder of "
                         f"{', '.join(IMAGE_SUFFIXES)} files")
    files = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise ValueError(f"image folder {str(path)!r} holds no {', '.join(IMAGE_SUFFIXES)} file")
    return FolderImages(files, cfg.image_size, cfg.channels, f"folder:{path}", hflip=True)


def make_dataset(cfg, train: bool = True) -> ImageDataset:
    """The data set ``cfg.dataset`` at ``cfg.image_size`` with ``cfg.channels`` channels, read from
    ``cfg.data_root`` (the training split, or the held-out one with ``train=False``)."""
    name, root = cfg.dataset, Path(cfg.data_root)
    if name == "digits":
        return _digits(cfg, train)
    if name == "mnist":
        return _mnist(cfg, root, train)
    if name == "cifar10":
        return _cifar10(cfg, root, train)
    if name == "cifar10+mnist":
        return _cifar10_mnist(cfg, root, train)
    if name == "celeba_256":
        return _celeba_256(cfg, root, train)
    if name.startswith("folder:"):
        return _folder(cfg, Path(name[len("folder:"):]).expanduser())
    raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASET_NAMES)}")


class BatchOrder:
    """Which images, flipped or not, make up each batch of each epoch.

    Epoch ``e`` visits ``perm = rng.permutation(n)`` with ``rng = numpy.random.default_rng([seed, e])``, in
    ``n // batch_size`` global batches (the rest is dropped); process ``rank`` of ``world_size`` takes the
    ``rank``-th slice of ``batch_size / world_size`` images of each global batch. The flip bits come from the same
    generator. Nothing here has state: the order is a function of ``(seed, epoch)``.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        if batch_size % world_size:
            raise ValueError(f"batch_size {batch_size} is not divisible by the {world_size} processes")
        if n < batch_size:
            raise ValueError(f"the data set has {n} images, fewer than one batch of {batch_size}")
        self.n, self.batch_size, self.seed, self.rank, self.world_size = n, batch_size, seed, rank, world_size
        self.local_batch_size = batch_size // world_size
        self.batches_per_epoch = n // batch_size

    def epoch(self, epoch: int) -> tuple[Tensor, Tensor]:
        """The permutation (n,) and the flip bits (n,) of ``epoch``, as CPU tensors."""
        rng = np.random.default_rng([self.seed, epoch])
        perm = rng.permutation(self.n)
        flips = rng.random(self.n) < 0.5
        return torch.as_tensor(perm, dtype=torch.long), torch.as_tensor(flips)

    def local_slices(self, epoch: int, device=None) -> tuple[Tensor, Tensor]:
        """This process's (indices, flips) for every batch of ``epoch``: two tensors (batches, local batch)."""
        perm, flips = self.epoch(epoch)
        nb, b = self.batches_per_epoch, self.local_batch_size
        keep = nb * self.batch_size
        idx = perm[:keep].view(nb, self.world_size, b)[:, self.rank]
        flip = flips[:keep].view(nb, self.world_size, b)[:, self.rank]
        return idx.to(device), flip.to(device)


def to_signed(images: Tensor) -> Tensor:
    """``uint8`` images → float32 in [−1, 1]."""
    return images.float().div_(127.5).sub_(1.0)


def pixel_gaussian(images: Tensor | TensorImages, n: int, seed: int | torch.Generator = 0, *, jitter: float = 1e-6,
                   as_uint8: bool = True) -> Tensor:
    r"""``n`` samples of the Gaussian fitted to the pixels of ``images``: a model that knows only the pixels' means
    and covariances, the yardstick that a generative model of the images has to beat.

    ``images`` (a ``uint8`` tensor (N, C, H, W) with N >= 2, or a :class:`TensorImages`) are mapped to [−1, 1] and
    flattened to vectors of :math:`d=CHW` pixels, in float64. Their mean :math:`m` and covariance :math:`\Sigma`
    (``torch.cov``, :math:`N-1` in the denominator) define :math:`N(m,\Sigma)`, sampled as :math:`m+L\xi` with
    :math:`LL^\top=\Sigma+\text{jitter}\cdot I` (Cholesky: the jitter makes a singular :math:`\Sigma`, such as that
    of a border pixel that is always blank, factorisable) and :math:`\xi\sim N(0,I_d)` drawn in float64 from a CPU
    generator seeded with ``seed`` (or the ``torch.Generator`` given, which the draw advances). The samples
    :math:`s` are clipped to [−1, 1] and returned as ``uint8`` images (n, C, H, W), :math:`(s+1)\cdot127.5` rounded
    (the inverse of :func:`to_signed` up to rounding), or, with ``as_uint8=False``, as float32 images (n, C, H, W)
    in [−1, 1], not rounded."""
    if isinstance(images, TensorImages):
        images = images.images
    if not isinstance(images, Tensor) or images.dtype != torch.uint8 or images.dim() != 4 or images.shape[0] < 2:
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, Tensor) else type(images).__name__
        raise ValueError(f"images must be a uint8 tensor (N, C, H, W) of at least 2 images, or a TensorImages; "
                         f"got {got}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive whole number of samples, got {n!r}")
    if isinstance(seed, bool) or not (isinstance(seed, torch.Generator) or (isinstance(seed, int) and seed >= 0)):
        raise ValueError(f"seed must be a non-negative integer or a torch.Generator, got {seed!r}")
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not (jitter >= 0 and jitter < float("inf")):
        raise ValueError(f"jitter must be a finite number >= 0 (added to the covariance's diagonal), got {jitter!r}")
    pixels = to_signed(images.cpu()).flatten(1).double()
    mean, cov = pixels.mean(0), torch.cov(pixels.T)
    try:
        chol = torch.linalg.cholesky(cov + jitter * torch.eye(cov.shape[0], dtype=cov.dtype))
    except torch.linalg.LinAlgError:
        raise ValueError(f"the pixels' covariance plus {jitter:g} I is not positive definite: give a larger "
                         "jitter") from None
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(seed)
    draws = mean + torch.randn(n, pixels.shape[1], generator=gen, dtype=torch.float64) @ chol.T
    if not as_uint8:
        return draws.clamp(-1, 1).float().view(n, *images.shape[1:])
    return ((draws.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).view(n, *images.shape[1:])


def batches(dataset: ImageDataset, order: BatchOrder, epoch: int, start: int = 0, device="cpu",
            num_workers: int = 0) -> Iterator[Tensor]:
    """This process's float batches in [−1, 1] on ``device`` for batches ``start, start+1, ...`` of ``epoch``.

    In-memory data are indexed directly (put them on the GPU first with :meth:`TensorImages.to`); image folders go
    through a ``DataLoader`` with ``num_workers`` processes, which cannot change the order."""
    device = torch.device(device)
    where = dataset.images.device if isinstance(dataset, TensorImages) else torch.device("cpu")
    idx, flip = order.local_slices(epoch, where)
    if isinstance(dataset, TensorImages):
        loaded = (dataset.images[idx[b]] for b in range(start, order.batches_per_epoch))
    else:
        loader = torch.utils.data.DataLoader(dataset, batch_sampler=[i.tolist() for i in idx[start:]],
                                             num_workers=num_workers, pin_memory=device.type == "cuda")
        loaded = iter(loader)
    for b, images in zip(range(start, order.batches_per_epoch), loaded):
        x = to_signed(images.to(device, non_blocking=True))
        do_flip = flip[b] & dataset.flippable(idx[b]) if dataset.hflip is not False else None
        if do_flip is not None:
            x = torch.where(do_flip.to(device)[:, None, None, None], x.flip(-1), x)
        yield x
