"""Measure every chapter's claims about trained networks at several seeds, at the chapters' default budget.

    python ci/seeds.py                       # every chapter with a check_networks parameter, seeds 0 1 2
    python ci/seeds.py 06_choosing_psi --seeds 0 1 2 3 4
    python ci/seeds.py --table-only          # the table of the runs recorded in _build/seeds/, nothing run

Each (chapter, seed) is executed by ci/execute.py with ``-p seed S -p check_networks true`` into
_build/seeds/NAME-seedS/, with the claims recorded (``UOTM_CLAIMS_LOG``) and not stopping the page
(``UOTM_CLAIMS_SOFT=1``), so that one run measures all of them. The table (Markdown, printed and written to
_build/seeds/table.md) gives each claim's bound and its value at each seed; a claim that fails is marked **fails**.
Chapters run ``--jobs`` at a time; the seeds of one chapter run one after the other (a page's run folders are
shared between its runs). Exit status 1 if a claim fails or a chapter fails for another reason.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import execute  # noqa: E402  (ci/execute.py)

ROOT = execute.ROOT
OUT = ROOT / "_build" / "seeds"
sys.path.insert(0, str(ROOT))
from uotm.book import CLAIMS_LOG_ENV, CLAIMS_SOFT_ENV, Claim, read_claims_log  # noqa: E402


def chapters_with_claims() -> list[str]:
    return [n for n in execute.chapter_names() if execute.CHECK_PARAMETER in execute.parameter_defaults(n)]


def run_one(name: str, seed: int, cell_timeout: int) -> tuple[str, int, bool, str, float]:
    """Execute chapter ``name`` at ``seed``; returns (name, seed, ran to the end, stderr tail, seconds)."""
    folder = OUT / f"{name}-seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / "claims.jsonl"
    log.unlink(missing_ok=True)
    env = dict(os.environ, **{CLAIMS_LOG_ENV: str(log), CLAIMS_SOFT_ENV: "1"})
    cmd = [sys.executable, str(ROOT / "ci" / "execute.py"), name, "-p", "seed", str(seed),
           "-p", execute.CHECK_PARAMETER, "true", "--out", str(folder), "--cell-timeout", str(cell_timeout)]
    start = time.perf_counter()
    result = subprocess.run(cmd, env=env, capture_output=True, text=True)
    tail = " ".join((result.stderr.strip().splitlines() or [""])[-1].split())
    return name, seed, result.returncode == 0, tail, time.perf_counter() - start


def fmt(value: float) -> str:
    return f"{value:.4g}"


def table(results: dict, seeds: list[int]) -> tuple[str, int]:
    """The Markdown table of claims by seed, and the number of failures (claims and chapters)."""
    header = "| chapter | claim | bound | " + " | ".join(f"seed {s}" for s in seeds) + " |"
    lines = [header, "|" + "---|" * (3 + len(seeds))]
    failures = 0
    for name in sorted({n for n, _ in results}):
        by_seed: dict[int, dict[str, Claim]] = {}
        order: list[str] = []
        for seed in seeds:
            ran, tail, claims = results[(name, seed)]
            by_seed[seed] = {c.name: c for c in claims}
            order += [c.name for c in claims if c.name not in order]
            if not ran:
                failures += 1
        for claim_name in order:
            first = next(by_seed[s][claim_name] for s in seeds if claim_name in by_seed[s])
            cells = []
            for seed in seeds:
                c = by_seed[seed].get(claim_name)
                if c is None:
                    cells.append("not reached")
                    failures += 1
                elif c.holds:
                    cells.append(fmt(c.value))
                else:
                    cells.append(f"**fails**: {fmt(c.value)}")
                    failures += 1
            lines.append(f"| {name} | `{claim_name}` | {first.relation} {fmt(first.bound)} | " + " | ".join(cells)
                         + " |")
        for seed in seeds:
            ran, tail, _ = results[(name, seed)]
            if not ran:
                lines.append(f"| {name} | (the page stopped at seed {seed}) | | {tail} |")
    return "\n".join(lines), failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help="chapters (default: every chapter with claims)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--jobs", type=int, default=2,
                        help="chapters run at once (default 2); a chapter's seeds run one at a time")
    parser.add_argument("--cell-timeout", type=int, default=1800)
    parser.add_argument("--table-only", action="store_true",
                        help="run nothing: make the table from the claims recorded by earlier runs")
    args = parser.parse_args(argv)
    with_claims = chapters_with_claims()
    names = args.names or with_claims
    for name in names:
        if name not in with_claims:
            print(f"error: {name} has no '{execute.CHECK_PARAMETER}' parameter, so no claims about trained "
                  f"networks; chapters with claims: {', '.join(with_claims)}", file=sys.stderr)
            return 2
    start = time.perf_counter()
    results = {}

    def record(name: str, seed: int, ran: bool, tail: str) -> list[Claim]:
        log = OUT / f"{name}-seed{seed}" / "claims.jsonl"
        claims = read_claims_log(log) if log.exists() else []
        results[(name, seed)] = (ran, tail, claims)
        return claims

    if args.table_only:
        for name in names:
            for seed in args.seeds:
                ran = (OUT / f"{name}-seed{seed}" / "claims.jsonl").exists()
                record(name, seed, ran, "" if ran else "no recorded run")
    else:
        def run_chapter(name: str) -> None:
            # a chapter's seeds run one after the other: a page's run folders (e.g. ../_build/runs/NAME) are shared
            for seed in args.seeds:
                _, _, ran, tail, seconds = run_one(name, seed, args.cell_timeout)
                claims = record(name, seed, ran, tail)
                bad = sum(not c.holds for c in claims)
                print(f"{'ok    ' if ran else 'FAILED'} {name} seed {seed}: {len(claims)} claims, {bad} failing, "
                      f"{seconds:.0f} s{'' if ran else ': ' + tail}", flush=True)

        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(run_chapter, names))
    text, failures = table(results, args.seeds)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "table.md").write_text(text + "\n")
    print(text)
    done = "recorded runs" if args.table_only else f"runs in {time.perf_counter() - start:.0f} s"
    print(f"{len(names) * len(args.seeds)} {done}; {failures} failure(s); table in "
          f"{(OUT / 'table.md').relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
