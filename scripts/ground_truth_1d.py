"""The learned 1-D map `p -> q` against the exact answers (the README's 1-D table; the book's chapter 4).

For each tau and Psi* pair: train the toy model, average the map over 64 draws of z at 1 000 source points, and print
the RMS distance to (i) the barycentric map of the exact KL-UOT plan (no entropy, cost tau * |x - y|^2) between
those 1 000 source points and 1 000 data points, and (ii) the monotone rearrangement F_q^-1 o F_p of the two training
sets. The exact plan comes from `uotm.exact.uot_plan` (semi-dual solver with a certified duality gap, printed);
POT's `ot.unbalanced.mm_unbalanced` solves the same problem but converges slowly at small tau, so its map's RMS
distance to the certified one is printed beside it.

    python scripts/ground_truth_1d.py                          # the default sweep, writes results/ground_truth_1d.json
    python scripts/ground_truth_1d.py --taus 0.5 --phis kl --epochs 400 --lr 1e-4

The cost is c(x, y) = tau * |x - y|^2 (the paper's and this project's). The reference's toy trainer used
tau/2 * |x - y|^2, so its OT-map command (`--tau 0.02`) is tau = 0.01 here, the first tau of the default sweep.
The last thing printed is the Markdown table that the README shows.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from uotm.exact import kl_uot_plan, monotone_rearrangement, uot_plan
from uotm.toy import ToyConfig, train_toy


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


REFERENCE_TAU = 0.01  # the reference's --tau 0.02 under its cost tau/2 * |x - y|^2


def number(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) and abs(value) < 100 else f"{value:.2g} (diverged)"


def markdown_table(rows: list[dict]) -> str:
    """The README's table: one row per (tau, Psi*)."""
    lines = ["| τ | Ψ* | RMS to the exact KL-UOT map | RMS to the monotone rearrangement | "
             "exact KL-UOT map vs monotone | exact plan's duality gap |", "|---|---|---|---|---|---|"]
    for r in rows:
        tau = f"{r['tau']:g}" + (" (the reference's `--tau 0.02`)" if r["tau"] == REFERENCE_TAU else "")
        lines.append(f"| {tau} | {r['phi']}/{r['phi']} | {number(r['rms_to_exact_kl_uot'])} | "
                     f"{number(r['rms_to_monotone'])} | {r['rms_exact_kl_uot_to_monotone']:.3f} | "
                     f"{r['exact_gap']:.0e} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--taus", type=float, nargs="+", default=[REFERENCE_TAU, 0.1, 0.5])
    parser.add_argument("--phis", nargs="+", default=["kl", "linear"], choices=["kl", "linear", "chi", "softplus"])
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--reg-lambda", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--out", default="results/ground_truth_1d.json")
    args = parser.parse_args()
    torch.set_num_threads(1)

    rows = []
    exact_maps: dict[float, np.ndarray] = {}
    exact_info: dict[float, dict] = {}
    for tau in args.taus:
        for phi in args.phis:
            cfg = ToyConfig(source="p", target="q", psi1=phi, psi2=phi, tau=tau, epochs=args.epochs, lr_map=args.lr,
                            lr_potential=args.lr, reg_lambda=args.reg_lambda, seed=args.seed)
            start = time.perf_counter()
            run = train_toy(cfg, progress=False)
            train_s = time.perf_counter() - start
            x = run.source[: args.points]
            y = run.target[np.random.default_rng(args.seed).permutation(len(run.target))[: args.points]]
            if tau not in exact_maps:
                plan = uot_plan(x, y, tau)
                exact_maps[tau] = plan.barycentric_map()[:, 0]
                mm_map = kl_uot_plan(x, y, tau).barycentric_map()[:, 0]
                exact_info[tau] = {"exact_gap": plan.gap, "rms_pot_mm_to_exact": rms(mm_map, exact_maps[tau])}
                print(f"tau={tau}: exact plan's duality gap {plan.gap:.1e}; POT MM (5 000 iterations) map is "
                      f"{exact_info[tau]['rms_pot_mm_to_exact']:.3f} RMS away from it", flush=True)
            learned = run.mean_map(x)[:, 0]
            monotone = monotone_rearrangement(run.source, run.target, x)
            row = {"tau": tau, "phi": phi, "epochs": args.epochs, "lr": args.lr, "reg_lambda": args.reg_lambda,
                   "rms_to_exact_kl_uot": rms(learned, exact_maps[tau]), "rms_to_monotone": rms(learned, monotone),
                   "rms_exact_kl_uot_to_monotone": rms(exact_maps[tau], monotone),
                   "final_map_loss": run.metrics[-1]["map_loss"], "train_seconds": round(train_s, 1),
                   **exact_info[tau]}
            rows.append(row)
            print(f"tau={tau:<5} Psi*={phi:7s} RMS to exact KL-UOT map {row['rms_to_exact_kl_uot']:.3f}  "
                  f"to monotone rearrangement {row['rms_to_monotone']:.3f}  (exact KL-UOT vs monotone "
                  f"{row['rms_exact_kl_uot_to_monotone']:.3f})  train {train_s:.0f} s", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1))
    print(f"wrote {out}\n")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
