"""The command line: ``python -m uotm toy|train|sample|fid|bench ...`` (``python -m uotm COMMAND --help`` lists the options).

Every fault (a bad flag or config key, an unwritable or used folder, a damaged file, a missing device, a batch
too large for memory) is one sentence on stderr and exit status 2; Ctrl-C is exit status 130 with the step to
resume from.

``train`` runs under torchrun unchanged: ``torchrun --nproc_per_node=N -m uotm train --preset cifar10``.
``--model sjko`` trains S-JKO with the same trainer: ``--preset NAME --model sjko`` starts from that preset's S-JKO
defaults (:func:`uotm.presets.preset_defaults`), and ``--set sjko.KEY=VALUE`` changes S-JKO's fields.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import fields

from .data.toy import TOY_NAMES
from .psi import PSI_NAMES


def _toy_parser(sub) -> None:
    from .toy import ToyConfig

    d = ToyConfig()
    p = sub.add_parser("toy", help="train a toy UOTM map between low-dimensional distributions",
                       description="Train UOTM on a toy problem and write config.yaml, metrics.jsonl, source.npy, "
                                   "transported.npy, target.npy, snapshot.pt and figures into --out.")
    names = ", ".join(TOY_NAMES)
    p.add_argument("--source", default=d.source, help=f"source law: {names}, or npy:PATH (default {d.source})")
    p.add_argument("--target", default=d.target, help=f"target law, as --source (default {d.target})")
    p.add_argument("--dim", type=int, default=d.dim, help="dimension of noise/p/q/outlier laws (default: from the "
                                                         "other side, else 1)")
    p.add_argument("--outlier-fraction", type=float, default=d.outlier_fraction,
                   help=f"share of the outlier mode in the 'outlier' law (default {d.outlier_fraction})")
    p.add_argument("--outlier-loc", type=float, default=d.outlier_loc,
                   help=f"location of the outlier mode (default {d.outlier_loc})")
    p.add_argument("--psi1", default=d.psi1, choices=PSI_NAMES, help=f"Psi* on the source side (default {d.psi1})")
    p.add_argument("--psi2", default=d.psi2, choices=PSI_NAMES, help=f"Psi* on the data side (default {d.psi2})")
    p.add_argument("--tau", type=float, default=d.tau, help=f"cost scale, c = tau |x-y|^2 (default {d.tau})")
    p.add_argument("--reg-lambda", type=float, default=d.reg_lambda,
                   help="weight of the source-gradient regulariser (default 0: off; the reference's is 0.01)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"passes over the data (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    p.add_argument("--lr-map", type=float, default=d.lr_map, help=f"Adam learning rate of the map (default {d.lr_map})")
    p.add_argument("--lr-potential", type=float, default=d.lr_potential,
                   help=f"Adam learning rate of the potential (default {d.lr_potential})")
    p.add_argument("--potential-steps", type=int, default=d.potential_steps,
                   help=f"potential steps per map step (default {d.potential_steps})")
    p.add_argument("--num-data", type=int, default=d.num_data, help=f"points per data set (default {d.num_data})")
    p.add_argument("--hidden", type=int, default=d.hidden, help=f"network width (default {d.hidden})")
    p.add_argument("--seed", type=int, default=d.seed, help=f"(default {d.seed})")
    p.add_argument("--log-every", type=int, default=d.log_every, help=f"iterations per metrics line "
                                                                      f"(default {d.log_every})")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_toy)


def _run_toy(args: argparse.Namespace) -> int:
    from .toy import ToyConfig, prepare_out_dir, train_toy, write_outputs

    cfg = ToyConfig(**{f.name: getattr(args, f.name) for f in fields(ToyConfig)})
    cfg.validate()  # all input errors surface before anything is written
    out = prepare_out_dir(args.out, args.overwrite)
    run = train_toy(cfg, out_dir=out, progress=not args.quiet)
    write_outputs(run, out)
    print(f"trained {cfg.epochs} epochs in {run.seconds:.1f} s; outputs in {out}")
    return 0


# ---------------------------------------------------------------------------------------------------------------
# image models

# ImageConfig fields that have their own flag (--batch-size for batch_size, ...); any field can be set with --set
TRAIN_FLAGS = ("dataset", "data_root", "epochs", "steps", "batch_size", "lr_map", "lr_potential", "tau",
               "r1_gamma", "psi1", "psi2", "ema_decay", "seed", "precision", "num_workers", "log_every",
               "sample_every", "snapshot_every")


def _train_parser(sub) -> None:
    from .presets import MODELS, PRESET_NAMES, ImageConfig

    d = ImageConfig()
    p = sub.add_parser("train", help="train UOTM or S-JKO on images (runs under torchrun as it is)",
                       description="Train UOTM (or S-JKO with --model sjko) on an image data set. The config is the "
                                   "preset's defaults for the model, then --config, then --set, then the flags. The "
                                   "run folder receives config.yaml, metrics.jsonl, samples-*.png and snapshot.pt.")
    from .sjko import TOY_PRESETS

    p.add_argument("--preset", choices=PRESET_NAMES + tuple(TOY_PRESETS),
                   help="the experiment to start from; the 2-D presets " + ", ".join(TOY_PRESETS)
                        + " need --model sjko and run the toy S-JKO trainer (uotm.sjko)")
    p.add_argument("--model", choices=MODELS, help="uotm (default) or sjko: the S-JKO defaults of --preset "
                                                   "(phases of JKO steps; change them with --set sjko.KEY=VALUE, e.g. "
                                                   "sjko.phases=50); default: --config's model, else uotm")
    p.add_argument("--config", help="a YAML file of config keys (e.g. a run's config.yaml)")
    p.add_argument("--run-dir", help="the run folder (default runs/PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its snapshot.pt")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --run-dir (its snapshot, "
                                                            "metrics, config and sample grids)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and the parameter counts, "
                                                          "then stop (no data, no training)")
    p.add_argument("--json", action="store_true", help="with --dry-run: print one JSON object")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config key, e.g. --set tau=2e-3 --set net.ch_mult=1,2,2 --set sjko.h=0.05 "
                        "(repeatable)")
    for name in TRAIN_FLAGS:
        kind = type(getattr(d, name))
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, default=None, metavar=name.upper(),
                       help=f"(preset's value unless given; cifar10: {getattr(d, name)})")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda:LOCAL_RANK if available, else cpu)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_train)


TOY_TRAIN_FLAGS = ("seed", "batch_size", "log_every")  # the train flags a toy S-JKO run also takes
SJKO_TOY_OUTPUTS = ("samples.npy", "flow.png")  # a 2-D S-JKO run that wrote these is done
SJKO_TOY_FILES = ("config.yaml", "metrics.jsonl", "phases.jsonl", *SJKO_TOY_OUTPUTS)


def _run_sjko_toy(args: argparse.Namespace) -> int:
    """``train --model sjko --preset 25gaussian|twocircles|gaussian2d``: the toy S-JKO trainer on 2-D data. A run
    takes minutes on a CPU, so it has no snapshot or DDP: it writes config.yaml, metrics.jsonl and phases.jsonl as
    it goes, then samples.npy (2 000 points of the last law) and flow.png."""
    from dataclasses import asdict, fields

    import numpy as np
    import yaml

    from .runs import check_new, check_writable, clear, write_atomic
    from .sjko import TOY_PRESETS, SJKOToyConfig, sample, train_sjko_toy

    if args.model != "sjko":
        raise ValueError(f"--preset {args.preset} is a 2-D S-JKO preset: add --model sjko (UOTM's 2-D runs are "
                         "`python -m uotm toy`)")
    if args.resume or args.config:
        raise ValueError("2-D S-JKO runs take minutes and keep no snapshot: --resume and --config are for image runs; "
                         "change the preset with --set KEY=VALUE")
    extra = [n for n in TRAIN_FLAGS if getattr(args, n) is not None and n not in TOY_TRAIN_FLAGS]
    if extra:
        raise ValueError(f"--{', --'.join(n.replace('_', '-') for n in extra)} do(es) not apply to a 2-D S-JKO run; "
                         f"use --set KEY=VALUE with a key of {sorted(f.name for f in fields(SJKOToyConfig))}")
    values = asdict(TOY_PRESETS[args.preset])
    for name in TOY_TRAIN_FLAGS:
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    cfg = SJKOToyConfig.from_dict(SJKOToyConfig.apply_settings(values, args.settings))
    cfg.validate()
    run_dir = args.run_dir or os.path.join("runs", f"sjko-{args.preset}")
    if args.dry_run:
        report = {"config": asdict(cfg), "run_dir": run_dir,
                  "iterations": (cfg.first_phase_steps or cfg.phase_steps) + (cfg.phases - 1) * cfg.phase_steps}
        print(json.dumps(report) if args.json else yaml.safe_dump(report, sort_keys=False).rstrip())
        return 0
    out = check_new(check_writable(run_dir, "--run-dir"), args.overwrite, used=SJKO_TOY_OUTPUTS, resumable=False)
    out.mkdir(parents=True, exist_ok=True)
    clear(out, SJKO_TOY_FILES)  # a stopped run's config and logs too: this run writes its own
    run = train_sjko_toy(cfg, out, progress=not args.quiet)
    write_atomic(out / "samples.npy", lambda p, pts=sample(run, 2000): np.save(p, pts))
    from .plots import plot_sjko_flow

    plot_sjko_flow(run, out / "flow.png")
    print(f"trained {len(run.phases)} JKO steps in {run.seconds:.1f} s; outputs in {run_dir}")
    return 0


def check_device(name: str | None) -> str | None:
    """``--device``: ``None`` (the default), or a device that exists here; otherwise one sentence."""
    if name is None:
        return None
    import torch

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ValueError(f"--device {name!r} is not a device: give cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {name}: no CUDA device is available here; use --device cpu")
        if device.index is not None and device.index >= count:
            raise ValueError(f"--device {name}: there are {count} CUDA device(s) here, cuda:0 to cuda:{count - 1}")
    return name


def _run_train(args: argparse.Namespace) -> int:
    from .presets import resolve
    from .sjko import TOY_PRESETS
    from .train import parameter_counts, train

    if args.preset in TOY_PRESETS:
        return _run_sjko_toy(args)
    cfg = resolve(args.preset, args.config, args.run_dir, args.resume, args.settings, model=args.model,
                  **{name: getattr(args, name) for name in TRAIN_FLAGS})
    if cfg.model == "sjko" and args.epochs is not None:
        raise ValueError(f"S-JKO's length is set by its phases (sjko.phases={cfg.sjko.phases}, "
                         f"{cfg.sjko.total_steps} iterations), not by --epochs: change --set sjko.phases=N, or stop "
                         f"early with --steps")
    run_dir = args.run_dir or os.path.join("runs", cfg.preset if cfg.model == "uotm" else f"{cfg.model}-{cfg.preset}")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if cfg.batch_size % world:
        raise ValueError(f"batch_size {cfg.batch_size} is not divisible by the {world} processes")
    if args.dry_run:
        counts = parameter_counts(cfg)
        report = {"config": cfg.to_dict(), "parameters": counts, "run_dir": run_dir, "world_size": world,
                  "batch_per_process": cfg.batch_size // world}
        if cfg.model == "sjko":
            sc = cfg.sjko
            report["sjko_schedule"] = {
                "phases": sc.phases, "first_phase_steps": sc.first_phase_steps, "phase_steps": sc.phase_steps,
                "total_steps": sc.total_steps, "steps_run": cfg.total_steps,
                "euclidean_h": float(f"{sc.h * (cfg.channels * cfg.image_size**2 if sc.cost_scale == 'per_coordinate' else 1):.6g}"),
                "cosine": f"{cfg.lr_map:g}/{cfg.lr_potential:g} -> {cfg.lr_floor:g} over {sc.total_steps} iterations",
            }
        if args.json:
            print(json.dumps(report))
        else:
            import yaml

            print(yaml.safe_dump(cfg.to_dict(), sort_keys=False), end="")
            print(f"parameters: transport_map {counts['transport_map']:,}, potential {counts['potential']:,}")
            print(f"run folder: {run_dir}; {world} process(es) of {cfg.batch_size // world} images each")
            if cfg.model == "sjko":
                sch = report["sjko_schedule"]
                print(f"S-JKO: {sch['phases']} phases ({sch['first_phase_steps']} iterations, then "
                      f"{sch['phase_steps']} each): {sch['total_steps']} iterations; runs {sch['steps_run']}; "
                      f"Euclidean step h = {sch['euclidean_h']:g}; cosine {sch['cosine']}")
        return 0
    check_device(args.device)
    state = train(cfg, run_dir, resume=args.resume, device=args.device, progress=not args.quiet,
                  overwrite=args.overwrite)
    if state.rank == 0:
        print(f"stopped after {state.step} iterations ({state.epoch} epochs); outputs in {run_dir}")
    return 0


def _sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="sample a trained run's EMA map into an .npz of uint8 images",
                       description="Write N samples of the EMA transport map of a run (UOTM or S-JKO: one forward "
                                   "of the map) as arr_0 (N, H, W, C) uint8.")
    p.add_argument("--run", required=True, help="the run folder (holds snapshot.pt)")
    p.add_argument("-n", type=int, default=50000, help="number of samples (default 50000)")
    p.add_argument("--out", required=True, help="the .npz file to write")
    p.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    p.add_argument("--batch", type=int, default=256, help="samples per forward pass (default 256)")
    p.add_argument("--seed", type=int, default=0, help="(default 0)")
    p.add_argument("--device", help="default cuda if available, else cpu")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_run_sample)


def _run_sample(args: argparse.Namespace) -> int:
    from .sample import check_out, sample, save_npz

    check_out(args.out, args.overwrite)
    check_device(args.device)
    if args.n < 1 or args.batch < 1:
        raise ValueError(f"-n and --batch must be positive, got {args.n} and {args.batch}")
    images = sample(args.run, args.n, args.batch, args.seed, args.device, progress=not args.quiet)
    path = save_npz(args.out, images)
    print(f"wrote {len(images)} samples {images.shape[1:]} to {path}")
    return 0


def _fid_parser(sub) -> None:
    from .presets import PRESET_NAMES

    p = sub.add_parser("fid", help="FID of an .npz of samples against the training set (the proxy for digits)",
                       description="FID (pytorch-fid Inception, 2048 features) of the uint8 images in --samples against "
                                   "the training set of --run's or --preset's data set, whose statistics are cached "
                                   "under data_root/fid-stats. For the digits data set: the proxy FID in the "
                                   "feature space of a small digits classifier.")
    p.add_argument("--samples", required=True, help="an .npz whose arr_0 holds uint8 images (N, H, W, C)")
    p.add_argument("--run", help="a run folder: its config names the data set")
    p.add_argument("--preset", choices=PRESET_NAMES, help="the data set of this preset (without --run)")
    p.add_argument("--data-root", help="where the data sets and the caches are (default: the config's)")
    p.add_argument("--weights", help="the Inception weights file (default $UOTM_FID_WEIGHTS, else the torch hub "
                                     "cache)")
    p.add_argument("--batch", type=int, default=100, help="images per Inception forward (default 100)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_fid)


def _run_fid(args: argparse.Namespace) -> int:
    from . import metrics
    from .presets import resolve

    if bool(args.run) == bool(args.preset):
        raise ValueError("give either --run DIR or --preset NAME")
    if args.batch < 1:
        raise ValueError(f"--batch must be positive, got {args.batch}")
    cfg = resolve(run_dir=args.run, resume=True) if args.run else resolve(args.preset)  # a run's own config.yaml
    if args.data_root:
        cfg.data_root = args.data_root
    images = metrics.load_samples(args.samples, cfg)  # refused up front: wrong size, NaNs, not uint8
    if cfg.dataset == "digits":
        kind, value = "proxy_fid", metrics.proxy_fid(images, cfg.data_root, cfg.image_size)
    else:
        net = metrics.inception(args.weights)
        reference = metrics.reference_statistics(cfg, net=net, cache=True, batch_size=args.batch)
        kind, value = "fid", metrics.fid(images, reference, net, args.batch)
    if args.json:
        print(json.dumps({kind: value, "samples": len(images), "dataset": cfg.dataset}))
    else:
        print(f"{kind}: {value:.4f} ({len(images)} samples against the {cfg.dataset} training set)")
    return 0


def _bench_parser(sub) -> None:
    from .presets import MODELS, PRESET_NAMES

    p = sub.add_parser("bench", help="time the trainer's iteration (train_step) on random data",
                       description="Time the very function the trainer calls for one iteration (potential step with "
                                   "R1, map step, Adam, EMA) on random images of the preset's shape; print images/s, "
                                   "ms per iteration, peak memory, GFLOP per image-iteration (counted with "
                                   "FlopCounterMode) and the share of the device's peak.")
    p.add_argument("--preset", required=True, choices=PRESET_NAMES, help="the networks and the image shape")
    p.add_argument("--model", choices=MODELS, default="uotm",
                   help="uotm (default) or sjko: the S-JKO iteration of a phase >= 1 (two map forwards)")
    p.add_argument("--batch", type=int, help="images per iteration (default: the preset's batch_size)")
    p.add_argument("--steps", type=int, default=20, help="timed iterations (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first (default 5)")
    p.add_argument("--precision", choices=("fp32", "bf16"),
                   help="default: the preset's; bf16 autocast is CUDA only (the CPU runs fp32 and says so)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="channels-last memory format (default: the config's channels_last, on CUDA only)")
    p.add_argument("--compile", metavar="NETS",
                   help="torch.compile: none, map, potential, map,potential or all (default: the config's compile, "
                        "none in every preset)")
    p.add_argument("--r1-every", type=int, default=None, metavar="K",
                   help="lazy R1: K times the penalty every K iterations (changes the algorithm; default: the "
                        "config's r1_every, 1 in every preset)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config key, as for train (repeatable)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default cuda if available, else cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    p.add_argument("--no-flops", dest="flops", action="store_false", help="skip the FLOP count")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import torch

    from .bench import format_report, parse_compile, run_bench

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be positive, got {args.threads}")
        torch.set_num_threads(args.threads)
    from .presets import resolve

    check_device(args.device)
    compile_ = parse_compile(args.compile) if args.compile is not None else None
    speed = dict(channels_last=args.channels_last, compile=compile_, r1_every=args.r1_every)
    cfg = resolve(args.preset, settings=args.settings, model=args.model, precision=args.precision,
                  **{k: v for k, v in speed.items() if v is not None})
    report = run_bench(cfg, batch=args.batch, steps=args.steps, warmup=args.warmup, device=args.device,
                       flops=args.flops)
    print(json.dumps(report) if args.json else format_report(report))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m uotm", description="Unbalanced OT generative models.")
    sub = parser.add_subparsers(dest="command", required=True)
    _toy_parser(sub)
    _train_parser(sub)
    _sample_parser(sub)
    _fid_parser(sub)
    _bench_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # uotm.runs.Interrupted names the steps; a toy run has nothing to resume
        text = str(exc) if exc.args else ("interrupted before anything could be resumed: run the command again (a "
                                          "run folder it was to resume is unchanged)")
        print(f"error: {text}", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
