"""The command line: ``python -m uotm toy ...`` (``python -m uotm toy --help`` lists the options)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields

from .data.toy import TOY_NAMES
from .psi import PSI_NAMES


def _toy_parser(sub) -> None:
    from .toy import ToyConfig

    d = ToyConfig()
    p = sub.add_parser("toy", help="train a toy UOTM map between low-dimensional distributions",
                       description="Train UOTM on a toy problem and write config.yaml, metrics.jsonl, source.npy, "
                                   "transported.npy, target.npy, checkpoint.pt and figures into --out.")
    names = ", ".join(TOY_NAMES)
    p.add_argument("--source", default=d.source, help=f"source law: {names}, or npy:PATH (default {d.source})")
    p.add_argument("--target", default=d.target, help=f"target law, as --source (default {d.target})")
    p.add_argument("--dim", type=int, default=d.dim, help="dimension of noise/p/q/outlier laws (default: from the "
                                                         "other side, else 1)")
    p.add_argument("--outlier-fraction", type=float, default=d.outlier_fraction,
                   help=f"share of the outlier mode in the 'outlier' law (default {d.outlier_fraction})")
    p.add_argument("--outlier-loc", type=float, default=d.outlier_loc,
                   help=f"location of the outlier mode (default {d.outlier_loc})")
    p.add_argument("--phi1", default=d.phi1, choices=PSI_NAMES, help=f"Psi* on the source side (default {d.phi1})")
    p.add_argument("--phi2", default=d.phi2, choices=PSI_NAMES, help=f"Psi* on the data side (default {d.phi2})")
    p.add_argument("--tau", type=float, default=d.tau, help=f"cost scale, c = tau |x-y|^2 (default {d.tau})")
    p.add_argument("--reg-lambda", type=float, default=d.reg_lambda,
                   help="weight of the source-gradient regulariser (default 0: off; the reference's is 0.01)")
    p.add_argument("--epochs", type=int, default=d.epochs, help=f"passes over the data (default {d.epochs})")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help=f"(default {d.batch_size})")
    p.add_argument("--lr", type=float, default=d.lr, help=f"Adam learning rate of both networks (default {d.lr})")
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m uotm", description="Unbalanced OT generative models.")
    sub = parser.add_subparsers(dest="command", required=True)
    _toy_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
