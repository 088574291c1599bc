"""The command line: ``python -m uotm toy|train|sample|fid|bench ...`` (``python -m uotm COMMAND --help`` lists the
options). It only parses, resolves and calls: every job lives in its module.

* ``toy --model uotm|otm|sjko|wae``: the toy trainers, one family (:func:`uotm.toy.resolve_toy`,
  :func:`uotm.toy.run_toy`); ``--preset`` picks an S-JKO toy preset (:data:`uotm.sjko.TOY_PRESETS`);
* ``train --model uotm|sjko``: the image trainer (:func:`uotm.presets.resolve`, :func:`uotm.train.train`); it runs
  under torchrun unchanged: ``torchrun --nproc_per_node=N -m uotm train --preset cifar10``;
* ``sample``, ``fid``, ``bench``: :func:`uotm.sample.write_samples`, :func:`uotm.metrics.fid_of_samples`,
  :func:`uotm.bench.run_bench`.

A config is the defaults (of the preset and model), then ``--config YAML``, then ``--set KEY=VALUE`` (repeatable,
``net.KEY``/``sjko.KEY`` inside a block), then the flags. Every fault (a bad flag or config key, an unwritable or
used folder, a damaged file, a missing device, a batch too large for memory) is one sentence on stderr and exit
status 2; Ctrl-C is exit status 130 with the step to resume from.
"""

from __future__ import annotations

import argparse
import json
import sys

TRAIN_FLAGS = ("dataset", "data_root", "epochs", "steps", "batch_size", "lr_map", "lr_potential", "tau",
               "r1_gamma", "psi1", "psi2", "ema_decay", "seed", "precision", "num_workers", "log_every",
               "sample_every", "snapshot_every")  # ImageConfig fields with a flag of their own (others: --set)
TOY_FLAGS = ("source", "target", "seed")  # toy config fields with a flag of their own (others: --set)


def _config_args(p: argparse.ArgumentParser, example: str) -> None:
    p.add_argument("--config", help="a YAML file of config keys (e.g. a run's config.yaml)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help=f"set any config key, e.g. {example} (repeatable)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and plan; write nothing")
    p.add_argument("--json", action="store_true", help="with --dry-run: print one JSON object")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in the folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _toy_parser(sub) -> None:
    from .sjko import TOY_PRESETS
    from .toy import TOY_MODELS

    p = sub.add_parser("toy", help="train a toy model (UOTM, OTM, S-JKO or WAE) into a run folder: config.yaml, "
                                   "metrics.jsonl, snapshot.pt, arrays (.npy) and figures (.png)")
    p.add_argument("--model", choices=TOY_MODELS, default="uotm",
                   help="uotm (default), otm (UOTM with psi1 = psi2 = linear), sjko (a JKO flow), wae")
    p.add_argument("--preset", choices=tuple(TOY_PRESETS), help="an S-JKO toy preset (with --model sjko)")
    p.add_argument("--out", required=True, help="the run folder")
    for name in TOY_FLAGS:
        p.add_argument("--" + name, metavar=name.upper(), help=f"the same as --set {name}={name.upper()}")
    _config_args(p, "--set tau=0.3 --set psi1=chi --set epochs=50 (--model sjko: phases=5; wae: penalty=gan)")
    p.set_defaults(func=_run_toy)


def _run_toy(args: argparse.Namespace) -> int:
    from .toy import resolve_toy, run_toy, toy_plan

    flags = [f"{name}={getattr(args, name)}" for name in TOY_FLAGS if getattr(args, name) is not None]
    cfg = resolve_toy(args.model, args.preset, args.config, args.settings + flags)
    if args.dry_run:
        return _print(toy_plan(args.model, cfg, args.out), args.json)
    print(run_toy(args.model, cfg, args.out, args.overwrite, progress=not args.quiet))
    return 0


def _print(result: dict, as_json: bool, text: str | None = None) -> int:
    import yaml

    print(json.dumps(result) if as_json else text or yaml.safe_dump(result, sort_keys=False).rstrip())
    return 0


def _train_parser(sub) -> None:
    from .presets import MODELS, PRESET_NAMES, ImageConfig

    d = ImageConfig()
    p = sub.add_parser("train", help="train UOTM or S-JKO on images (under torchrun as it is); the config is the "
                                     "preset's, then --config, then --set, then the flags")
    p.add_argument("--preset", choices=PRESET_NAMES, help="the experiment to start from")
    p.add_argument("--model", choices=MODELS, help="uotm or sjko: the preset's S-JKO defaults, changed with --set "
                                                   "sjko.KEY=VALUE (default: --config's model, else uotm)")
    p.add_argument("--run-dir", help="the run folder (default runs/PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its snapshot.pt")
    _config_args(p, "--set tau=2e-3 --set net.ch_mult=1,2,2 --set sjko.h=0.05")
    for name in TRAIN_FLAGS:
        p.add_argument("--" + name.replace("_", "-"), dest=name, type=type(getattr(d, name)), metavar=name.upper(),
                       help=f"(preset's value unless given; cifar10: {getattr(d, name)})")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda:LOCAL_RANK if available, else cpu)")
    p.set_defaults(func=_run_train)


def _run_train(args: argparse.Namespace) -> int:
    from .dist import check_device
    from .presets import resolve
    from .train import format_plan, run_plan, train

    cfg = resolve(args.preset, args.config, args.run_dir, args.resume, args.settings, model=args.model,
                  **{name: getattr(args, name) for name in TRAIN_FLAGS})
    plan = run_plan(cfg, args.run_dir, count=args.dry_run)
    if args.dry_run:
        return _print(plan, args.json, format_plan(plan))
    check_device(args.device)
    state = train(cfg, plan["run_dir"], resume=args.resume, device=args.device, progress=not args.quiet,
                  overwrite=args.overwrite)
    if state.rank == 0:
        print(f"stopped after {state.step} iterations ({state.epoch} epochs); outputs in {plan['run_dir']}")
    return 0


def _sample_parser(sub) -> None:
    p = sub.add_parser("sample", help="write N samples of a run's EMA map as arr_0 (N, H, W, C) uint8 of an .npz")
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
    from .dist import check_device
    from .sample import write_samples

    check_device(args.device)
    path, images = write_samples(args.run, args.n, args.out, args.overwrite, args.batch, args.seed, args.device,
                                 progress=not args.quiet)
    print(f"wrote {len(images)} samples {images.shape[1:]} to {path}")
    return 0


def _fid_parser(sub) -> None:
    from .presets import PRESET_NAMES

    p = sub.add_parser("fid", help="FID of an .npz of samples against the training set (the proxy FID for digits)")
    p.add_argument("--samples", required=True, help="an .npz whose arr_0 holds uint8 images (N, H, W, C)")
    p.add_argument("--run", help="a run folder: its config names the data set")
    p.add_argument("--preset", choices=PRESET_NAMES, help="the data set of this preset (without --run)")
    p.add_argument("--data-root", help="where the data sets and the caches are (default: the config's)")
    p.add_argument("--weights", help="the Inception weights (default $UOTM_FID_WEIGHTS, else the torch hub cache)")
    p.add_argument("--batch", type=int, default=100, help="images per Inception forward (default 100)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_fid)


def _run_fid(args: argparse.Namespace) -> int:
    from .metrics import fid_of_samples, load_samples
    from .presets import resolve

    if bool(args.run) == bool(args.preset):
        raise ValueError("give either --run DIR or --preset NAME")
    cfg = resolve(run_dir=args.run, resume=True) if args.run else resolve(args.preset)  # a run's own config.yaml
    cfg.data_root = args.data_root or cfg.data_root
    images = load_samples(args.samples, cfg)  # refused up front: wrong size, NaNs, not uint8
    kind, value = fid_of_samples(cfg, images, args.weights, args.batch)
    result = {kind: value, "samples": len(images), "dataset": cfg.dataset}
    return _print(result, args.json, f"{kind}: {value:.4f} ({len(images)} samples against the {cfg.dataset} "
                                          "training set)")


def _bench_parser(sub) -> None:
    from .presets import MODELS, PRESET_NAMES

    p = sub.add_parser("bench", help="time the trainer's own iteration on random images: images/s, memory, FLOPs")
    p.add_argument("--preset", required=True, choices=PRESET_NAMES, help="the networks and the image shape")
    p.add_argument("--model", choices=MODELS, default="uotm", help="uotm (default) or sjko (a phase >= 1)")
    p.add_argument("--batch", type=int, help="images per iteration (default: the preset's batch_size)")
    p.add_argument("--steps", type=int, default=20, help="timed iterations (default 20)")
    p.add_argument("--warmup", type=int, default=5, help="untimed iterations first (default 5)")
    p.add_argument("--precision", choices=("fp32", "bf16"), help="default: the preset's (bf16 on CUDA only)")
    p.add_argument("--set", dest="settings", action="append", default=[], metavar="KEY=VALUE",
                   help="set any config key, as for train (repeatable): e.g. the speed-ups channels_last=true, "
                        "compile=[map,potential], or lazy R1 r1_every=2 (changes the algorithm)")
    p.add_argument("--device", help="cpu, cuda or cuda:N (default cuda if available, else cpu)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's)")
    p.add_argument("--no-flops", dest="flops", action="store_false", help="skip the FLOP count")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    import torch

    from .bench import format_report, run_bench
    from .dist import check_device
    from .presets import resolve

    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads must be positive, got {args.threads}")
        torch.set_num_threads(args.threads)
    check_device(args.device)
    cfg = resolve(args.preset, settings=args.settings, model=args.model, precision=args.precision)
    report = run_bench(cfg, batch=args.batch, steps=args.steps, warmup=args.warmup, device=args.device,
                       flops=args.flops)
    return _print(report, args.json, format_report(report))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m uotm", description="Unbalanced OT generative models.")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_toy_parser, _train_parser, _sample_parser, _fid_parser, _bench_parser):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
