#!/usr/bin/env bash
# The public UOTM reference's training iteration and this project's, side by side on one GPU, in one command.
#
# The reference is timed by the harness outside the project (ref_step.py in the shared bench folder, never copied
# into the project); the project by `python -m uotm bench`, which times uotm.train.train_step itself. Both run here,
# one after the other, on the same GPU, and a table follows:
#   GPU | command | reference images/s | project images/s | ratio (project / reference) | peak memory (GiB)
# Repeated runs of one command on these machines differ by about 4%.
#
# Before running it, fetch the reference's git directory: the public repository Jae-Moo/UOTM (also named
# Jae-Moo/Unbalanced-Optimal-Transport-Generative-Model), e.g. `git clone --bare
# https://github.com/Jae-Moo/UOTM.git /tmp/UOTM.git` on a machine with a network, copied to the GPU machine if it has
# none. The harness's README says how its .ref/ folder is made from it: `BENCH_DIR/get-reference.sh /tmp/UOTM.git`
# (this script does that itself when .ref/ is missing and REF_GIT names the git directory). To carry the harness
# with .ref/ to a GPU machine from a project checkout, copy the bench folder into an ignored folder of the checkout
# (e.g. results/ref-bench) and pass that folder.
#
# Usage: scripts/bench_side_by_side.sh [BENCH_DIR]
#   BENCH_DIR  the harness folder (ref_step.py, get-reference.sh); default $UOTM_REF_BENCH, else shared/bench in the
#              checkout, else /work/shared/bench
# Environment: PYTHON (default .venv/bin/python, else python3), REF_GIT (the reference's git directory, to make
#   .ref/), STEPS and WARMUP (timed and untimed iterations of every run; default 20 and 5), OUT (the folder for the
#   JSON lines and the table; default results/side-by-side-DATE).
# The reference's --ops cuda JIT-compiles its CUDA kernels at import: it needs nvcc and ninja on the machine.
set -uo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bench=${1:-${UOTM_REF_BENCH:-}}
if [ -z "$bench" ]; then
  for candidate in "$root/shared/bench" /work/shared/bench; do
    if [ -f "$candidate/ref_step.py" ]; then bench=$candidate; break; fi
  done
fi
if [ -z "$bench" ] || [ ! -f "$bench/ref_step.py" ]; then
  echo "error: no harness folder with ref_step.py (give it as the first argument or in UOTM_REF_BENCH)" >&2
  exit 2
fi
bench=$(cd "$bench" && pwd)
if [ ! -d "$bench/.ref/models" ]; then
  if [ -n "${REF_GIT:-}" ]; then
    "$bench/get-reference.sh" "$REF_GIT" || exit 2
  else
    echo "error: $bench/.ref is missing: run $bench/get-reference.sh GIT_DIR (the git directory of a clone of" \
         "Jae-Moo/UOTM) or set REF_GIT" >&2
    exit 2
  fi
fi
if [ -z "${PYTHON:-}" ]; then
  if [ -x "$root/.venv/bin/python" ]; then PYTHON=$root/.venv/bin/python; else PYTHON=python3; fi
fi
"$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" || {
  echo "error: $PYTHON sees no CUDA GPU; this comparison runs on a GPU machine" >&2; exit 2; }
steps=${STEPS:-20}
warmup=${WARMUP:-5}
out=${OUT:-$root/results/side-by-side-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader > "$out/gpu.txt" 2>/dev/null || true

# run NAME COMMAND...: the command's last line that starts with '{' goes to $out/NAME.json, its output to NAME.log
run() {
  local name=$1; shift
  echo "== $name: $*" >&2
  ( cd "$root" && "$@" ) > "$out/$name.log" 2>&1
  local rc=$?
  grep '^{' "$out/$name.log" | tail -n 1 > "$out/$name.json"
  if [ $rc -ne 0 ] || [ ! -s "$out/$name.json" ]; then
    echo "   failed (exit $rc): see $out/$name.log" >&2
    tail -n 5 "$out/$name.log" >&2
    rm -f "$out/$name.json"
  fi
  printf '%s\n' "$*" > "$out/$name.cmd"
}

ref="$PYTHON $bench/ref_step.py --steps $steps --warmup $warmup"
uotm="$PYTHON -m uotm bench --steps $steps --warmup $warmup --json"
run ref-cifar10 $ref --preset cifar10 --ops cuda --batch 256
run uotm-cifar10-bf16 $uotm --preset cifar10 --batch 256 --precision bf16
run uotm-cifar10-fp32 $uotm --preset cifar10 --batch 256 --precision fp32
run uotm-cifar10-bf16-compile $uotm --preset cifar10 --batch 256 --precision bf16 --compile map
run ref-celeba_256 $ref --preset celeba_256 --ops cuda --batch 32
run uotm-celeba_256-bf16 $uotm --preset celeba_256 --batch 32 --precision bf16

"$PYTHON" - "$out" "$PYTHON" <<'EOF' | tee "$out/table.md"
import json, os, sys

out, python = sys.argv[1], sys.argv[2]


def load(name):
    path = os.path.join(out, name + ".json")
    return json.load(open(path)) if os.path.isfile(path) and os.path.getsize(path) else None


def command(name):
    path = os.path.join(out, name + ".cmd")
    text = open(path).read().strip() if os.path.isfile(path) else name
    return text.replace(python, "python")


gpu = open(os.path.join(out, "gpu.txt")).read().strip().splitlines() if os.path.isfile(os.path.join(out, "gpu.txt")) else []
rows = [("ref-cifar10", "uotm-cifar10-bf16"), ("ref-cifar10", "uotm-cifar10-fp32"),
        ("ref-cifar10", "uotm-cifar10-bf16-compile"), ("ref-celeba_256", "uotm-celeba_256-bf16")]
print("| GPU | command (project) | reference images/s | project images/s | ratio | peak memory GiB (reference / project) |")
print("|---|---|---|---|---|---|")
for ref_name, uotm_name in rows:
    r, u = load(ref_name), load(uotm_name)
    device = (u or r or {}).get("device") or (gpu[0] if gpu else "?")
    ref_ips = f"{r['images_per_s']:.1f}" if r else "failed"
    uotm_ips = f"{u['images_per_s']:.1f}" if u else "failed"
    ratio = f"{u['images_per_s'] / r['images_per_s']:.2f}" if r and u else "-"
    mem_r = f"{r['max_mem_gb']:.1f}" if r and r.get("max_mem_gb") is not None else "-"
    mem_u = f"{u['peak_memory_gib']:.1f}" if u else "-"
    print(f"| {device} | `{command(uotm_name)}` | {ref_ips} | {uotm_ips} | {ratio} | {mem_r} / {mem_u} |")
print()
for name in ("ref-cifar10", "ref-celeba_256"):
    print(f"reference {name[4:]}: `{command(name)}`")
for name in ("uotm-cifar10-bf16", "uotm-celeba_256-bf16"):
    u = load(name)
    if u and u.get("gflop_per_image_iter") is not None:
        share = "unknown" if u["peak_share"] is None else f"{100 * u['peak_share']:.1f}% of {u['peak_tflops']:.0f}"
        print(f"project {u['preset']} bf16: {u['gflop_per_image_iter']:.1f} GFLOP per image-iteration, "
              f"{u['tflops']:.1f} TFLOP/s ({share} TFLOP/s, {u['peak_kind']}); torch {u['torch']}")
EOF
echo "JSON lines, logs and table.md in $out" >&2
