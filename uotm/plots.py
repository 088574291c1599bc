"""Figures shared by the command line and the book."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_joint_1d(ax, source: np.ndarray, transported: np.ndarray, **scatter_kw) -> None:
    """Scatter of the pairs (x, T(x, z)) of a 1-D run."""
    ax.scatter(source[:, 0], transported[:, 0], s=3, alpha=0.4, **scatter_kw)
    ax.set_xlabel("source x")
    ax.set_ylabel("transported T(x, z)")


def plot_density_1d(ax, target: np.ndarray, transported: np.ndarray, bins: int = 80) -> None:
    """Histogram densities of the data and of the generated samples on common bins."""
    lo = min(target.min(), transported.min())
    hi = max(target.max(), transported.max())
    edges = np.linspace(lo, hi, bins + 1)
    ax.hist(target[:, 0], bins=edges, density=True, alpha=0.45, label="target (data)")
    ax.hist(transported[:, 0], bins=edges, density=True, alpha=0.45, label="generated T(x, z)")
    ax.set_xlabel("value")
    ax.set_ylabel("density")
    ax.legend()


def plot_scatter_2d(ax, target: np.ndarray, transported: np.ndarray, source: np.ndarray | None = None) -> None:
    """Data and generated samples (and optionally the source) in the plane."""
    if source is not None:
        ax.scatter(source[:, 0], source[:, 1], s=2, alpha=0.2, c="0.6", label="source")
    ax.scatter(target[:, 0], target[:, 1], s=2, alpha=0.4, label="target (data)")
    ax.scatter(transported[:, 0], transported[:, 1], s=2, alpha=0.4, label="generated T(x, z)")
    ax.set_xlabel("$x_1$")
    ax.set_ylabel("$x_2$")
    ax.set_aspect("equal", adjustable="datalim")
    ax.legend(markerscale=4)


def plot_losses(ax, metrics: list[dict]) -> None:
    """Potential and map losses against the iteration."""
    it = [m["step"] for m in metrics]
    ax.plot(it, [m["potential_loss"] for m in metrics], label="potential loss $L_v$")
    ax.plot(it, [m["map_loss"] for m in metrics], label="map loss $L_T$")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend()


def plot_toy_run(run, out_dir: Path) -> list[Path]:
    """Write the figures of a toy run (a :class:`uotm.toy.ToyRun`: its ``config``, ``source``, ``transported``,
    ``target`` and ``metrics``): joint scatter and densities (1-D) or a scatter (2-D and up), and losses."""
    plt = _pyplot()
    paths: list[Path] = []
    title = f"{run.config.source} → {run.config.target}, Ψ*: {run.config.psi1}/{run.config.psi2}, τ={run.config.tau}"

    def save(fig, name):
        from .runs import write_atomic

        path = Path(out_dir) / name
        fig.suptitle(title, fontsize=10)
        fig.tight_layout()
        write_atomic(path, lambda p: fig.savefig(p, dpi=110))
        plt.close(fig)
        paths.append(path)

    if run.source.shape[1] == 1:
        fig, ax = plt.subplots(figsize=(5, 4))
        plot_joint_1d(ax, run.source, run.transported)
        save(fig, "joint.png")
        fig, ax = plt.subplots(figsize=(5, 4))
        plot_density_1d(ax, run.target, run.transported)
        save(fig, "density.png")
    else:
        fig, ax = plt.subplots(figsize=(5, 5))
        plot_scatter_2d(ax, run.target, run.transported)
        save(fig, "scatter.png")
    if run.metrics:
        fig, ax = plt.subplots(figsize=(5, 3.5))
        plot_losses(ax, run.metrics)
        save(fig, "losses.png")
    return paths


def plot_sjko_flow(run, path: Path, max_panels: int = 5) -> Path:
    r"""The flow of a toy S-JKO run: the data, then :math:`\mu_k` after evenly spaced phases (2-D: first two
    coordinates). Written atomically to ``path``."""
    plt = _pyplot()
    K = len(run.phases)
    shown = sorted(set(np.linspace(0, K - 1, min(max_panels, K)).round().astype(int).tolist()))
    fig, axes = plt.subplots(1, len(shown) + 1, figsize=(2.8 * (len(shown) + 1), 3.0), layout="constrained",
                             sharex=True, sharey=True)
    data = run.data if run.data is not None else np.empty((0, 2))
    axes[0].scatter(data[:, 0], data[:, 1], s=2, c="tab:orange")
    axes[0].set_title("data", fontsize=9)
    for ax, k in zip(axes[1:], shown):
        pts = run.phases[k].points
        ax.scatter(data[:, 0], data[:, 1], s=2, c="tab:orange", alpha=0.2)
        ax.scatter(pts[:, 0], pts[:, 1], s=2, c="tab:blue")
        ax.set_title(f"$\\mu_{{{k + 1}}}$ (after phase {k})", fontsize=9)
    for ax in axes:
        ax.set_xlabel("$y_1$")
        ax.set_aspect("equal")
    axes[0].set_ylabel("$y_2$")
    c = run.config
    fig.suptitle(f"S-JKO ({c.scheme}, {c.loss}), h={c.h:g} ({c.cost_scale}) → {c.target}", fontsize=10)
    from .runs import write_atomic

    write_atomic(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)
    return Path(path)


def image_grid(images, nrow: int = 8, border: float = 128.0) -> np.ndarray:
    """Single-channel images ``(n, 1, H, W)`` (uint8 or float, a tensor or an array) as one 2-D array for ``imshow``:
    rows of ``nrow`` tiles, each inside a one-pixel frame of value ``border`` (128: grey for uint8 images; 0: grey
    for images in [-1, 1]); blank tiles of that value fill the last row."""
    import torch

    images = torch.as_tensor(images)
    if images.dim() != 4 or images.shape[1] != 1:
        raise ValueError(f"images must have shape (n, 1, H, W), got {tuple(images.shape)}")
    if not isinstance(nrow, int) or nrow < 1:
        raise ValueError(f"nrow must be a positive integer, got {nrow!r}")
    tiles = torch.nn.functional.pad(images[:, 0].float(), (1, 1, 1, 1), value=border)
    blank = torch.full_like(tiles[:1], border).expand((-len(tiles)) % nrow, -1, -1)
    tiles = torch.cat([tiles, blank])
    rows = [torch.cat(list(tiles[k:k + nrow]), dim=1) for k in range(0, len(tiles), nrow)]
    return torch.cat(rows, dim=0).numpy()


def plot_samples(data: np.ndarray, samples: np.ndarray, path: Path, title: str = "") -> Path:
    """Samples of a generative model beside its data, written atomically to ``path``: single-channel images
    ``(n, 1, H, W)`` in [-1, 1] as two grids (data, samples); points ``(n, d)`` as two histograms (d = 1) or as one
    scatter of the first two coordinates."""
    from .runs import write_atomic

    plt = _pyplot()
    if samples.ndim == 4:
        fig, axes = plt.subplots(1, 2, figsize=(8, 4.4))
        for ax, images, name in zip(axes, (data, samples), ("data", "samples")):
            ax.imshow(image_grid(images[:64], border=0.0), cmap="gray", vmin=-1, vmax=1)
            ax.set_title(name, fontsize=9)
            ax.axis("off")
    else:
        fig, ax = plt.subplots(figsize=(5, 5) if samples.shape[1] > 1 else (5, 3.5))
        if samples.shape[1] == 1:
            ax.hist([data[:, 0], samples[:, 0]], bins=60, density=True, label=["data", "samples"])
        else:
            ax.scatter(data[:, 0], data[:, 1], s=3, c="tab:orange", alpha=0.5, label="data")
            ax.scatter(samples[:, 0], samples[:, 1], s=3, c="tab:blue", alpha=0.5, label="samples")
        ax.legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    write_atomic(path, lambda p: fig.savefig(p, dpi=110))
    plt.close(fig)
    return Path(path)
