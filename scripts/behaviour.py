"""Record, or check, what every model computes in a few seeded steps on the CPU: a guard for refactoring.

    python scripts/behaviour.py record scripts/behaviour-record.json   # before moving code
    python scripts/behaviour.py check scripts/behaviour-record.json    # after: the same numbers?

scripts/behaviour-record.json is the record made before the package was reorganised (issue 15).

For each model (toy UOTM/OTM with each Psi*, toy S-JKO with both schemes, image UOTM and S-JKO on `digits`
with small networks, WAE-MMD and WAE-GAN) it runs a few seeded iterations and keeps every logged loss and, for
every network, the sum and the sum of squares of its parameters (float64). `check` prints, per model, whether the
numbers are bit-identical and otherwise the largest relative difference, and exits 1 if one exceeds 1e-6.
Everything runs on one CPU thread, so that a run repeats bit for bit on one machine; across machines and library
versions only the 1e-6 comparison is meaningful.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
from pathlib import Path

import torch

TOLERANCE = 1e-6


def _params(*modules) -> list[float]:
    out = []
    for module in modules:
        with torch.no_grad():
            flat = torch.cat([p.detach().double().flatten() for p in module.parameters()])
        out += [float(flat.sum()), float((flat**2).sum())]
    return out


def _losses(rows: list[dict], skip=("seconds", "sec_per_iter", "time", "kimg", "epoch", "lr_map", "lr_potential",
                                   "phase", "step", "iteration")) -> list[float]:
    return [float(v) for row in rows for k, v in sorted(row.items()) if k not in skip and isinstance(v, (int, float))]


def toy_uotm(psi: str) -> dict:
    from uotm.toy import ToyConfig, train_toy

    cfg = ToyConfig(source="noise", target="8gaussians", psi1=psi, psi2=psi, tau=0.2, epochs=1, batch_size=64,
                    lr_map=1e-3, lr_potential=1e-3, potential_steps=2, num_data=256, hidden=32, seed=0, log_every=1)
    run = train_toy(cfg, progress=False)
    return {"losses": _losses(run.metrics), "params": _params(run.transport_map, run.potential)}


def toy_sjko(scheme: str) -> dict:
    from uotm.sjko import SJKOToyConfig, train_sjko_toy

    cfg = SJKOToyConfig(target="8gaussians", scheme=scheme, phases=3, phase_steps=4, batch_size=64, hidden=32,
                        eval_samples=256, keep_points=16, sample_repeats=1, log_every=1, r1_gamma=0.1, seed=0)
    run = train_sjko_toy(cfg, progress=False)
    nets = [m for m in (getattr(run, "generator", None), getattr(run, "potential", None)) if m is not None]
    nets += list(getattr(run, "maps", []) or [])
    flows = [float(x) for x in list(run.means.ravel()) + list(run.covs.ravel())]
    return {"losses": _losses(run.metrics) + flows, "params": _params(*nets)}


def image(model: str) -> dict:
    from uotm.data.images import make_dataset
    from uotm.presets import preset
    from uotm.train import read_metrics, train

    net = dict(base_channels=8, potential_channels=8, z_emb_dim=16, z_dim=8)
    overrides = dict(batch_size=16, steps=4, log_every=1, data_root=str(Path(tempfile.gettempdir()) / "uotm-b"),
                     net=net)
    if model == "sjko":
        overrides.update(model="sjko", sjko=dict(phases=2, first_phase_steps=2, phase_steps=2))
    cfg = preset("digits", **overrides)
    with tempfile.TemporaryDirectory() as run_dir:
        state = train(cfg, Path(run_dir) / "run", dataset=make_dataset(cfg), device="cpu", progress=False)
        rows = read_metrics(Path(run_dir) / "run")
    return {"losses": _losses(rows), "params": _params(state.transport_map, state.potential, state.ema)}


def wae(penalty: str) -> dict:
    from uotm.wae import WAEConfig, train_wae

    cfg = WAEConfig(data="8gaussians", penalty=penalty, encoder="gaussian" if penalty == "gan" else "deterministic",
                    steps=4, batch_size=64, num_data=256, hidden=32, log_every=1, seed=0)
    run = train_wae(cfg, progress=False)
    nets = [m for m in (run.encoder, run.decoder, getattr(run, "discriminator", None)) if m is not None]
    return {"losses": _losses(run.metrics), "params": _params(*nets)}


MODELS = {
    **{f"toy UOTM {psi}": (toy_uotm, psi) for psi in ("kl", "chi", "softplus", "linear")},
    "toy S-JKO (one generator)": (toy_sjko, "sjko"),
    "toy S-JKO (naive)": (toy_sjko, "naive"),
    "image UOTM digits": (image, "uotm"),
    "image S-JKO digits": (image, "sjko"),
    "WAE-MMD": (wae, "mmd"),
    "WAE-GAN": (wae, "gan"),
}


def record() -> dict:
    torch.set_num_threads(1)
    out = {}
    for name, (fn, arg) in MODELS.items():
        out[name] = fn(arg)
        print(f"{name}: {len(out[name]['losses'])} losses, {len(out[name]['params'])} parameter sums", flush=True)
    return out


def compare(old: dict, new: dict) -> tuple[bool, str]:
    worst, lines = 0.0, []
    for name in old:
        if name not in new:
            lines.append(f"{name}: missing")
            worst = math.inf
            continue
        a = old[name]["losses"] + old[name]["params"]
        b = new[name]["losses"] + new[name]["params"]
        if len(a) != len(b):
            lines.append(f"{name}: {len(a)} numbers before, {len(b)} after")
            worst = math.inf
            continue
        rel = max((abs(x - y) / max(abs(x), abs(y), 1e-30) for x, y in zip(a, b) if x != y), default=0.0)
        worst = max(worst, rel)
        lines.append(f"{name}: " + ("bit-identical" if rel == 0 else f"largest relative difference {rel:.2e}"))
    return worst <= TOLERANCE, "\n".join(lines)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("record", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[1])
    now = record()
    if argv[0] == "record":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(now, indent=1))
        print(f"recorded {len(now)} models in {path}")
        return 0
    ok, report = compare(json.loads(path.read_text()), now)
    print(report)
    print("the same numbers" if ok else f"DIFFERENT (tolerance {TOLERANCE:g})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
