r"""Sample quality: the Fréchet Inception Distance (FID) through pytorch-fid, and a cheap proxy for the digits.

The FID between image sets :math:`A` and :math:`B` is the Fréchet distance between Gaussians fitted to their features,

.. math::

    d^2 = \lVert\mu_A-\mu_B\rVert^2 + \operatorname{tr}\big(\Sigma_A+\Sigma_B-2(\Sigma_A\Sigma_B)^{1/2}\big),

with pytorch-fid's ``InceptionV3`` (2048 pool features, the TensorFlow FID weights) and its
``calculate_frechet_distance``. The pipeline is :func:`inception_features` → :func:`feature_statistics` →
:func:`frechet_distance`; :func:`fid` strings them together against :func:`reference_statistics`, the training set's
statistics, computed once and cached in ``<data_root>/fid-stats/``.

Nothing is downloaded. The Inception weights ``pt_inception-2015-12-05-6726825d.pth`` are looked up at the path
given, then at ``$UOTM_FID_WEIGHTS``, then in the torch hub cache (``torch.hub.get_dir()/checkpoints/``), where
pytorch-fid itself would put them. ``inception(random_weights=True)`` builds the same network with random weights:
it exercises the whole path in tests but gives no meaningful number.

For the ``digits`` preset, :func:`proxy_fid` is the same distance in the 128-dimensional penultimate layer of a small
CNN trained on the digits' training split (a few seconds on the CPU, cached in ``<data_root>``); its held-out
accuracy is stored beside it.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Tensor = torch.Tensor

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_NAME}"
FID_WEIGHTS_ENV = "UOTM_FID_WEIGHTS"


def _default_device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


# ----------------------------------------------------------------------------------------------------------------
# images in, features out


def as_unit_float(images) -> Tensor:
    """Images → float tensor (N, C, H, W) in [0, 1]. Accepts tensors or arrays: ``uint8`` in [0, 255] laid out
    (N, C, H, W) or (N, H, W, C), or floats in [−1, 1] laid out (N, C, H, W)."""
    x = torch.as_tensor(np.asarray(images)) if not isinstance(images, Tensor) else images
    if x.dim() != 4:
        raise ValueError(f"images must have 4 dimensions (N, C, H, W) or (N, H, W, C), got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        if x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        return x.float() / 255.0
    if not x.is_floating_point():
        raise ValueError(f"images must be uint8 in [0, 255] or floats in [-1, 1], got {x.dtype}")
    return (x.float().clamp(-1, 1) + 1) / 2


def fid_weights_path(path: str | Path | None = None) -> Path:
    """Where the FID Inception weights are: ``path``, else ``$UOTM_FID_WEIGHTS``, else the torch hub cache."""
    where = "the path given"
    if path is None and os.environ.get(FID_WEIGHTS_ENV):
        path, where = os.environ[FID_WEIGHTS_ENV], f"${FID_WEIGHTS_ENV}"
    if path is None:
        path, where = Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME, "the torch hub cache"
    path = Path(path).expanduser()
    if not path.is_file():
        hub = Path(torch.hub.get_dir()) / "checkpoints"
        raise ValueError(f"the FID Inception weights are not at {str(path)!r} ({where}): download {FID_WEIGHTS_NAME} "
                         f"from {FID_WEIGHTS_URL} into {hub}, or set {FID_WEIGHTS_ENV} to its path")
    return path


def inception(weights: str | Path | None = None, random_weights: bool = False, dims: int = 2048,
              device=None) -> nn.Module:
    """pytorch-fid's ``InceptionV3`` returning the ``dims``-dimensional features (64, 192, 768 or 2048), in eval
    mode on ``device``, with the FID weights from :func:`fid_weights_path` (``weights``) or random ones.

    pytorch-fid would download its weights; here its loader is replaced, for the duration of the construction, by
    one that reads the local file (or returns the freshly built network's own random weights)."""
    from unittest import mock

    from pytorch_fid import inception as pfi

    if dims not in pfi.InceptionV3.BLOCK_INDEX_BY_DIM:
        raise ValueError(f"dims must be one of {sorted(pfi.InceptionV3.BLOCK_INDEX_BY_DIM)}, got {dims}")
    path = None if random_weights else fid_weights_path(weights)
    built = []

    def make_trunk(*args, **kwargs):  # pytorch-fid's own structure; we keep a handle on it
        net = original_trunk(*args, **kwargs)
        built.append(net)
        return net

    def load(url, **kwargs):
        if path is None:
            return built[-1].state_dict()
        return torch.load(path, map_location="cpu", weights_only=True)

    original_trunk = pfi._inception_v3
    try:
        with mock.patch.object(pfi, "_inception_v3", make_trunk), \
                mock.patch.object(pfi, "load_state_dict_from_url", load):
            net = pfi.InceptionV3([pfi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]])
    except Exception:  # noqa: BLE001 - an unreadable file or a foreign state dict: the weights are not the FID's
        if path is None:
            raise
        raise ValueError(f"{str(path)!r} is not the FID Inception weights ({FID_WEIGHTS_NAME}: download it from "
                         f"{FID_WEIGHTS_URL}) or it is damaged") from None
    return net.eval().requires_grad_(False).to(device or _default_device())


@torch.no_grad()
def inception_features(images, net: nn.Module, batch_size: int = 100) -> np.ndarray:
    """Features (N, dims) of ``images`` (any layout :func:`as_unit_float` takes; one channel is replicated)."""
    device = next(net.parameters()).device
    out = []
    for i in range(0, len(images), batch_size):
        x = as_unit_float(images[i:i + batch_size]).to(device)
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        f = net(x)[0]
        if f.shape[2:] != (1, 1):
            f = F.adaptive_avg_pool2d(f, (1, 1))
        out.append(f.flatten(1).double().cpu())
    return torch.cat(out).numpy()


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (d,) and the covariance (d, d) of features (N, d), N ≥ 2."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise ValueError(f"features must be (N, d) with N >= 2, got {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(stats_a: tuple[np.ndarray, np.ndarray], stats_b: tuple[np.ndarray, np.ndarray]) -> float:
    """pytorch-fid's Fréchet distance between two (mean, covariance) pairs."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    return float(calculate_frechet_distance(stats_a[0], stats_a[1], stats_b[0], stats_b[1]))


def fid(images, reference: tuple[np.ndarray, np.ndarray], net: nn.Module | None = None,
        batch_size: int = 100) -> float:
    """FID of ``images`` against ``reference`` statistics (from :func:`reference_statistics`); ``net`` defaults to
    :func:`inception` with the FID weights."""
    net = net if net is not None else inception()
    return frechet_distance(feature_statistics(inception_features(images, net, batch_size)), reference)


def dataset_images(dataset, batch_size: int = 500, num_workers: int = 0):
    """The images of a data set (uint8, unflipped) in batches (b, C, H, W)."""
    from .data.images import TensorImages

    if isinstance(dataset, TensorImages):
        for i in range(0, len(dataset), batch_size):
            yield dataset.images[i:i + batch_size].cpu()
    else:
        yield from torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=num_workers)


def _stats_name(cfg) -> str:
    name = cfg.dataset
    if name.startswith("folder:"):
        path = str(Path(name[len("folder:"):]).expanduser().resolve())
        name = "folder-" + hashlib.sha1(path.encode()).hexdigest()[:12]
    return f"{name.replace('+', '-')}-{cfg.image_size}px-{cfg.channels}ch"


def reference_statistics(cfg, net: nn.Module | None = None, weights: str | Path | None = None,
                         cache: bool | None = None, batch_size: int = 100) -> tuple[np.ndarray, np.ndarray]:
    """Inception statistics of ``cfg``'s training set, cached as
    ``<data_root>/fid-stats/<dataset>-<size>px-<channels>ch-inception.npz`` (with the FID weights only: pass
    ``net`` with random weights and ``cache=False`` in tests)."""
    from .data.images import make_dataset

    path = Path(cfg.data_root) / "fid-stats" / f"{_stats_name(cfg)}-inception.npz"
    cache = (net is None) if cache is None else cache
    if cache and path.is_file():
        with np.load(path) as f:
            return f["mu"], f["sigma"]
    net = net if net is not None else inception(weights)
    feats = [inception_features(b, net, batch_size) for b in dataset_images(make_dataset(cfg), 500, cfg.num_workers)]
    mu, sigma = feature_statistics(np.concatenate(feats))
    if cache:
        from .runs import write_atomic

        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, lambda p: np.savez(p, mu=mu, sigma=sigma, count=sum(len(f) for f in feats)))
    return mu, sigma


# ----------------------------------------------------------------------------------------------------------------
# the digits proxy


class DigitsClassifier(nn.Module):
    """A small CNN for one-channel digits of size ``image_size`` (a multiple of 4) in [−1, 1]; ``features`` is
    its 128-dimensional penultimate layer, the proxy FID's feature space."""

    def __init__(self, image_size: int = 16, width: int = 16, feature_dim: int = 128):
        super().__init__()
        if image_size % 4:
            raise ValueError(f"image_size must be a multiple of 4, got {image_size}")
        self.image_size = image_size
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(2 * width * (image_size // 4) ** 2, feature_dim), nn.ReLU())
        self.head = nn.Linear(feature_dim, 10)

    def features(self, x: Tensor) -> Tensor:
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x))


def _digits_cfg(image_size: int, data_root: str | Path):
    from .presets import preset

    return preset("digits", image_size=image_size, data_root=str(data_root))


def train_digits_classifier(image_size: int = 16, epochs: int = 25, seed: int = 0,
                            data_root: str | Path = "data") -> tuple[DigitsClassifier, float]:
    """Train :class:`DigitsClassifier` on the digits' training split; return it (eval mode, CPU) and its accuracy on
    the 297 held-out digits. Repeatable for a ``seed``; leaves the global random state alone."""
    from .data.images import make_dataset, to_signed

    cfg = _digits_cfg(image_size, data_root)
    train_set, test_set = make_dataset(cfg, train=True), make_dataset(cfg, train=False)
    x, y = to_signed(train_set.images), train_set.labels
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitsClassifier(image_size)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
        for _ in range(epochs):
            for idx in torch.randperm(len(x)).split(64):
                xb = x[idx]
                shift = torch.randint(-1, 2, (2,)).tolist()  # one-pixel translations: a little augmentation
                xb = torch.roll(xb, shifts=shift, dims=(2, 3))
                loss = F.cross_entropy(model(xb), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
            sched.step()
    model.eval().requires_grad_(False)
    with torch.no_grad():
        accuracy = float((model(to_signed(test_set.images)).argmax(1) == test_set.labels).float().mean())
    return model, accuracy


def digits_classifier(data_root: str | Path = "data", image_size: int = 16, retrain: bool = False):
    """The proxy's classifier, its held-out accuracy and the digits' reference statistics in its feature space,
    trained on first use and cached as ``<data_root>/digits-classifier-<size>px.pt``.
    Returns ``(model, accuracy, (mu, sigma))``."""
    from .data.images import make_dataset, to_signed

    path = Path(data_root) / f"digits-classifier-{image_size}px.pt"
    if path.is_file() and not retrain:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        model = DigitsClassifier(image_size)
        model.load_state_dict(saved["state_dict"])
        return model.eval().requires_grad_(False), saved["accuracy"], (saved["mu"].numpy(), saved["sigma"].numpy())
    model, accuracy = train_digits_classifier(image_size, data_root=data_root)
    with torch.no_grad():
        feats = model.features(to_signed(make_dataset(_digits_cfg(image_size, data_root)).images)).double()
    mu, sigma = feature_statistics(feats.numpy())
    from .runs import write_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    saved = {"state_dict": model.state_dict(), "accuracy": accuracy, "mu": torch.from_numpy(mu),
             "sigma": torch.from_numpy(sigma)}
    write_atomic(path, lambda p: torch.save(saved, p))
    return model, accuracy, (mu, sigma)


@torch.no_grad()
def proxy_features(images, model: DigitsClassifier) -> np.ndarray:
    """Penultimate-layer features (N, 128) of one-channel digit images (uint8 or [−1, 1], any layout
    :func:`as_unit_float` takes) of the classifier's size. Nothing is resized: an image of another size, or with
    NaNs, is refused (one sentence), since a resized sample would be scored as a sample of another run."""
    x = as_unit_float(images) * 2 - 1
    if x.shape[1] != 1:
        raise ValueError(f"the digits proxy takes one-channel images, got {x.shape[1]} channels")
    size = model.image_size
    if tuple(x.shape[-2:]) != (size, size):
        raise ValueError(f"the digits proxy's classifier takes {size}x{size} images, got "
                         f"{x.shape[-2]}x{x.shape[-1]}; nothing is resized (sample the {size}-pixel run, or use the "
                         f"classifier of that size: proxy_fid(..., image_size={x.shape[-1]}))")
    if not torch.isfinite(x).all():
        raise ValueError("the images hold NaN or infinite values")
    return model.features(x).double().numpy()


def proxy_fid(images, data_root: str | Path = "data", image_size: int = 16) -> float:
    """The Fréchet distance between ``images`` and the digits' training split in the proxy classifier's feature
    space (a cheap stand-in for FID on the ``digits`` preset; 0 for identical statistics)."""
    model, _, reference = digits_classifier(data_root, image_size)
    return frechet_distance(feature_statistics(proxy_features(images, model)), reference)


# ----------------------------------------------------------------------------------------------------------------
# samples read from a file


def load_samples(path: str | Path, cfg) -> np.ndarray:
    """The ``uint8`` images ``arr_0`` (N, H, W, C) of the ``.npz`` at ``path`` (what ``python -m uotm sample``
    writes), checked up front against ``cfg``: at least two images of ``cfg.image_size`` pixels and
    ``cfg.channels`` channels, no NaN. Nothing is resized; every fault is one sentence."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"samples file {str(path)!r} does not exist")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception:  # noqa: BLE001 - whatever numpy says, it is not a samples file
        raise ValueError(f"cannot read {str(path)!r} as an .npz of samples (written by `python -m uotm sample`)") \
            from None
    if isinstance(loaded, np.ndarray):
        images = loaded
    else:
        with loaded:
            if "arr_0" not in loaded.files:
                raise ValueError(f"{str(path)!r} holds no arr_0 (it holds {', '.join(loaded.files) or 'nothing'}); "
                                 "write samples with `python -m uotm sample`")
            try:
                images = loaded["arr_0"]
            except Exception:  # noqa: BLE001 - a damaged member
                raise ValueError(f"{str(path)!r} is damaged: its arr_0 cannot be read") from None
    size, channels = cfg.image_size, cfg.channels
    want = f"uint8 images (N, {size}, {size}, {channels}) for the {cfg.dataset} run"
    if np.issubdtype(images.dtype, np.floating) and not np.all(np.isfinite(images)):
        raise ValueError(f"{str(path)!r} holds NaN or infinite values; FID needs {want}")
    if images.dtype != np.uint8:
        raise ValueError(f"{str(path)!r} holds {images.dtype} values; FID needs {want}")
    if images.ndim != 4 or images.shape[1:] != (size, size, channels):
        raise ValueError(f"{str(path)!r} holds arrays of shape {images.shape}; FID needs {want} (nothing is resized: "
                         "sample the run whose config you give)")
    if len(images) < 2:
        raise ValueError(f"{str(path)!r} holds {len(images)} image(s); FID needs at least 2")
    return images


def fid_of_samples(cfg, images: np.ndarray, weights: str | Path | None = None, batch: int = 100) -> tuple[str, float]:
    """The score of ``images`` (uint8, (N, H, W, C), checked by :func:`load_samples`) against the training set of
    ``cfg``'s data set, and its name: ``("proxy_fid", value)`` for ``digits`` (:func:`proxy_fid`, which needs no
    Inception weights), ``("fid", value)`` otherwise (the Inception FID against the cached
    :func:`reference_statistics`, ``batch`` images per forward)."""
    if not isinstance(batch, int) or isinstance(batch, bool) or batch < 1:
        raise ValueError(f"--batch must be a positive integer, got {batch!r}")
    if cfg.dataset == "digits":
        return "proxy_fid", proxy_fid(images, cfg.data_root, cfg.image_size)
    net = inception(weights)
    reference = reference_statistics(cfg, net=net, cache=True, batch_size=batch)
    return "fid", fid(images, reference, net, batch)
