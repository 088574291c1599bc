"""The public UOTM reference's training iteration beside this project's, timed on one GPU: the README's speed table.

    git clone https://github.com/Jae-Moo/UOTM.git ../UOTM          # once, on a machine with a network
    python scripts/bench_reference.py --reference ../UOTM           # on a CUDA machine; writes results/table.md

The reference is the public code of Choi, Choi and Kang, "Generative Modeling through the Semi-dual Formulation of
Unbalanced Optimal Transport" (NeurIPS 2023), https://github.com/Jae-Moo/UOTM (also named
Jae-Moo/Unbalanced-Optimal-Transport-Generative-Model). Its networks (``models.ncsnpp_generator_adagn.NCSNpp``, the
map; ``models.discriminator.Discriminator_small`` or ``Discriminator_large``, the potential) and its ``utils.EMA`` and
``utils.select_phi`` are imported from the clone that ``--reference`` names; nothing of it is copied here. Its
networks JIT-compile their CUDA kernels (``models/op``) at import, so the machine needs ``nvcc`` and ``ninja``.

One *iteration* is the loop body of the reference's ``train.py``: the potential step (``phi2(-v(y))``, R1 with
``r1_gamma / 2`` through a double backward, ``phi1(v(T(x, z)) - tau/2 |T(x, z) - x|^2)``, Adam), then the map step
(``tau |T(x, z) - x|^2 - v(T(x, z))``, Adam with the EMA), written as ``train.py`` writes it: the potential's
``(B, 1)`` output against the ``(B,)`` cost broadcasts to ``B x B`` terms there, and here. Its settings are the
reference's: ``train.py``'s defaults for CIFAR-10 and its README's command for CelebA-HQ 256 (64 channels,
``ch_mult 1 1 2 2 4 4``, ``n_mlp 3``, ``tau 1e-5``, ``r1_gamma 5``, ``lr_g 2e-4``, ``ema_decay 0.999``). The networks
are used without the ``nn.DataParallel`` wrapper that ``train.py`` puts around them (on one GPU it only forwards the
call). The reference runs with PyTorch's default precision (fp32 with TF32 convolutions; its CUDA FIR kernel has no
bf16 version).

The protocol is ``python -m uotm bench``'s (:mod:`uotm.bench`), on both sides: the networks made after
``torch.manual_seed(seed)`` (the preset's seed), one batch of random images in [-1, 1] drawn once, ``--warmup``
untimed iterations then ``--steps`` timed ones with the device synchronised around the timed region only, images/s =
batch / seconds per iteration, peak memory = ``torch.cuda.max_memory_allocated`` over the warm-up and the timed
iterations. The project is timed by ``python -m uotm bench --json`` itself (bf16 and fp32, and for CIFAR-10 bf16 with
``--set compile=[map]``), each run in its own process, one after the other on the same GPU. Repeated runs of one command on
a shared machine differ by a few per cent.

The table (GPU, command, reference images/s, project images/s, ratio, peak memory) is printed and written to ``--out``
(default ``results/table.md`` in the repository), with every run's JSON report beside it (``table.json``) and every
run's output in a folder of the same name (``table/``). Without a CUDA GPU, without the clone, or without
``nvcc``/``ninja`` it stops with one sentence (exit status 2). ``--only-reference`` times the reference alone and
prints its JSON line.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent
CLONE = "https://github.com/Jae-Moo/UOTM.git"
# The files of the clone that the benchmark imports.
NEEDED = ("models/ncsnpp_generator_adagn.py", "models/discriminator.py", "utils.py")

# The reference's train.py defaults (its argparse), the map's and the iteration's; per preset, what changes.
_MAP = dict(image_size=32, num_channels=3, centered=True, num_channels_dae=128, n_mlp=4, ch_mult=[1, 2, 2, 2],
            num_res_blocks=2, attn_resolutions=(16,), dropout=0.0, resamp_with_conv=True, conditional=True, fir=True,
            fir_kernel=[1, 3, 3, 1], skip_rescale=True, resblock_type="biggan", progressive="none",
            progressive_input="residual", progressive_combine="sum", embedding_type="positional",
            fourier_scale=16.0, not_use_tanh=False, z_emb_dim=256, nz=100, ngf=64)
_TRAIN = dict(batch_size=256, lr_g=1.6e-4, lr_d=1e-4, beta1=0.5, beta2=0.9, ema_decay=0.9999, phi1="kl", phi2="kl",
              tau=1e-3, r1_gamma=0.2, potential="Discriminator_small")
REFERENCE = {
    "cifar10": {**_MAP, **_TRAIN},
    "celeba_256": {**_MAP, **_TRAIN, **dict(
        image_size=256, num_channels_dae=64, n_mlp=3, ch_mult=[1, 1, 2, 2, 4, 4], lr_g=2e-4, ema_decay=0.999,
        batch_size=32, tau=1e-5, r1_gamma=5.0, potential="Discriminator_large")},
}
# The project's runs beside each preset's reference: python -m uotm bench --preset P --batch B, then these flags.
PROJECT_RUNS = {
    "cifar10": (("--precision", "bf16"), ("--precision", "fp32"), ("--precision", "bf16", "--set", "compile=[map]")),
    "celeba_256": (("--precision", "bf16"), ("--precision", "fp32")),
}


class Stop(Exception):
    """One sentence for the user; the script exits with status 2."""


def check_clone(path: str | None) -> Path:
    """The clone's folder, or :class:`Stop` saying how to get one."""
    how = f"get it with `git clone {CLONE} PATH` and give its folder as --reference PATH"
    if not path:
        raise Stop(f"this benchmark needs a clone of the public reference: {how}")
    folder = Path(path).expanduser()
    missing = [name for name in NEEDED if not (folder / name).is_file()]
    if missing:
        raise Stop(f"{str(path)!r} is not a clone of the public reference (no {missing[0]}): {how}")
    return folder.resolve()


def check_machine() -> None:
    """:class:`Stop` unless a CUDA GPU, ``nvcc`` and ``ninja`` are here (the reference compiles its kernels)."""
    import torch

    if not torch.cuda.is_available():
        raise Stop("this benchmark times both iterations on a CUDA GPU and PyTorch sees none here: run it on a "
                   "machine with an NVIDIA GPU and a CUDA build of PyTorch")
    from torch.utils import cpp_extension

    if cpp_extension.CUDA_HOME is None or not cpp_extension.is_ninja_available():
        raise Stop("the reference JIT-compiles its CUDA kernels at import and needs nvcc (the CUDA toolkit, found by "
                   "CUDA_HOME or PATH) and ninja (`pip install ninja`): install them on this machine")


def import_reference(clone: Path) -> SimpleNamespace:
    """The reference's map and potential classes, EMA and select_phi, imported from ``clone``."""
    sys.path.insert(0, str(clone))
    generator = importlib.import_module("models.ncsnpp_generator_adagn")
    discriminator = importlib.import_module("models.discriminator")
    utils = importlib.import_module("utils")
    return SimpleNamespace(NCSNpp=generator.NCSNpp, Discriminator_small=discriminator.Discriminator_small,
                           Discriminator_large=discriminator.Discriminator_large, EMA=utils.EMA,
                           select_phi=utils.select_phi)


def time_reference(ref: SimpleNamespace, preset: str, batch: int | None = None, steps: int = 20, warmup: int = 5,
                   device: str = "cuda") -> dict:
    """Time the reference's iteration for ``preset`` (:data:`REFERENCE`) with ``python -m uotm bench``'s protocol
    and return its report: images_per_s, ms_per_iter, peak_memory_gib (CUDA only), parameter counts."""
    import torch
    import torch.nn as nn

    if str(ROOT) not in sys.path:  # the project, when it is not installed
        sys.path.append(str(ROOT))
    from uotm.presets import resolve

    args = SimpleNamespace(**REFERENCE[preset])
    batch = args.batch_size if batch is None else batch
    device = torch.device(device)
    size = args.image_size
    torch.manual_seed(resolve(preset).seed)
    transport_map = ref.NCSNpp(args).to(device)
    potential = getattr(ref, args.potential)(nc=args.num_channels, ngf=args.ngf, act=nn.LeakyReLU(0.2)).to(device)
    opt_map = ref.EMA(torch.optim.Adam(transport_map.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2)),
                      ema_decay=args.ema_decay)
    opt_potential = torch.optim.Adam(potential.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
    phi1, phi2 = ref.select_phi(args.phi1), ref.select_phi(args.phi2)
    gen = torch.Generator(device=device).manual_seed(resolve(preset).seed + 1)
    y = torch.rand(batch, args.num_channels, size, size, generator=gen, device=device) * 2 - 1
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    def sq(a, b):
        return ((a - b).view(batch, -1) ** 2).sum(dim=1)

    def iteration():
        # potential step
        for p in potential.parameters():
            p.requires_grad = True
        real = y.detach().requires_grad_(True)
        potential.zero_grad()
        x = torch.randn_like(real)
        v_real = potential(real)
        loss_real = phi2(-v_real).mean()
        loss_real.backward(retain_graph=True)
        grad = torch.autograd.grad(outputs=v_real.sum(), inputs=real, create_graph=True)[0]
        r1 = args.r1_gamma / 2 * (grad.view(batch, -1).norm(2, dim=1) ** 2).mean()
        r1.backward()
        z = torch.randn(batch, args.nz, device=device)
        fake = transport_map(x, z)
        loss_fake = phi1(potential(fake) - 0.5 * args.tau * sq(fake, x)).mean()
        loss_fake.backward()
        opt_potential.step()
        # map step
        for p in potential.parameters():
            p.requires_grad = False
        transport_map.zero_grad()
        x = torch.randn_like(real)
        z = torch.randn(batch, args.nz, device=device)
        fake = transport_map(x, z)
        loss_map = (args.tau * sq(fake, x) - potential(fake)).mean()
        loss_map.backward()
        opt_map.step()
        return loss_map

    def sync():
        if cuda:
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        iteration()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = iteration()
    sync()
    seconds = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else None
    return {"preset": preset, "device": torch.cuda.get_device_name(device) if cuda else "cpu",
            "torch": torch.__version__, "precision": "PyTorch default (fp32, TF32 convolutions)", "batch": batch,
            "steps": steps, "warmup": warmup, "ms_per_iter": seconds * 1e3, "images_per_s": batch / seconds,
            "peak_memory_gib": peak, "params_map": sum(p.numel() for p in transport_map.parameters()),
            "params_potential": sum(p.numel() for p in potential.parameters()), "loss_map": float(loss.detach())}


def _run(command: list[str], log: Path) -> dict | None:
    """Run ``command`` from the repository root; its last line starting with ``{``, parsed, or None (see ``log``)."""
    print("==", shlex.join(command), file=sys.stderr, flush=True)
    proc = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    log.write_text(proc.stdout + proc.stderr)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        print(f"   failed (exit {proc.returncode}): see {log}", file=sys.stderr)
        return None
    return json.loads(lines[-1])


def _shown(command: list[str]) -> str:
    """The command as a user types it: ``python`` for this interpreter, the clone's path as given."""
    return shlex.join(["python", *command[1:]])


def table(rows: list[tuple[dict | None, dict | None, str]], ref_commands: dict[str, str]) -> str:
    """The Markdown table: one row per project run, beside its preset's reference run."""
    def ips(r):
        return f"{r['images_per_s']:.1f}" if r else "failed"

    def mem(r):
        return f"{r['peak_memory_gib']:.1f}" if r and r.get("peak_memory_gib") is not None else "-"

    lines = ["| GPU | command (project) | reference images/s | project images/s | ratio (project / reference) | "
             "peak memory GiB (reference / project) |", "|---|---|---|---|---|---|"]
    for ref, proj, command in rows:
        device = (proj or ref or {}).get("device", "?")
        ratio = f"{proj['images_per_s'] / ref['images_per_s']:.2f}" if ref and proj else "-"
        lines.append(f"| {device} | `{command}` | {ips(ref)} | {ips(proj)} | {ratio} | {mem(ref)} / {mem(proj)} |")
    lines.append("")
    for preset, command in ref_commands.items():
        lines.append(f"reference {preset}: `{command}` (the reference as published: its CUDA kernels, PyTorch's "
                     "default precision)")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--reference", metavar="PATH", help=f"a clone of the public reference ({CLONE})")
    p.add_argument("--preset", action="append", choices=sorted(REFERENCE),
                   help="repeatable (default: cifar10 and celeba_256)")
    p.add_argument("--steps", type=int, default=20, help="timed iterations of every run (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first (default 5)")
    p.add_argument("--out", default=str(ROOT / "results" / "table.md"),
                   help="the table's file (default results/table.md in the repository); the runs' logs go to the "
                        "folder of the same name without .md")
    p.add_argument("--only-reference", action="store_true",
                   help="time the reference alone for the (first) preset and print its JSON line")
    p.add_argument("--batch", type=int, help="images per iteration of every run (default: each preset's, 256 for "
                                            "cifar10 and 32 for celeba_256, the reference's)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    presets = args.preset or ["cifar10", "celeba_256"]
    try:
        if args.steps < 1 or args.warmup < 0 or (args.batch is not None and args.batch < 1):
            raise Stop(f"need --steps >= 1, --warmup >= 0 and --batch >= 1, got {args.steps}, {args.warmup} and "
                       f"{args.batch}")
        clone = check_clone(args.reference)
        check_machine()
    except Stop as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.only_reference:
        print(json.dumps(time_reference(import_reference(clone), presets[0], args.batch, args.steps, args.warmup)))
        return 0

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    logs = out.with_suffix("")
    logs.mkdir(exist_ok=True)
    common = ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    rows, reports, ref_commands = [], [], {}
    for preset in presets:
        batch = str(args.batch or REFERENCE[preset]["batch_size"])
        command = [sys.executable, "scripts/bench_reference.py", "--reference", str(clone), "--only-reference",
                   "--preset", preset, "--batch", batch, *common]
        ref = _run(command, logs / f"reference-{preset}.log")
        ref_commands[preset] = _shown(command)
        reports.append({"run": f"reference-{preset}", "command": ref_commands[preset], "report": ref})
        for flags in PROJECT_RUNS[preset]:
            command = [sys.executable, "-m", "uotm", "bench", "--preset", preset, "--batch", batch, *flags, *common,
                       "--json"]
            name = "-".join(["project", preset, *(f.lstrip("-") for f in flags)])
            proj = _run(command, logs / f"{name}.log")
            rows.append((ref, proj, _shown(command)))
            reports.append({"run": name, "command": _shown(command), "report": proj})
    text = table(rows, ref_commands)
    out.write_text(text)
    out.with_suffix(".json").write_text(json.dumps(reports, indent=1) + "\n")
    print(text)
    print(f"table in {out}, JSON in {out.with_suffix('.json')}, logs in {logs}/", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
