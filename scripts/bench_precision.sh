#!/usr/bin/env bash
# Issue 18's done-when in one session: the ViT-B/32 b16 behaviour step and MEG phase-2 step (B16
# T29) in float32 and bfloat16 (cliphba_bench_train / cliphba_bench_meg, REPEATS rounds, the two
# binaries interleaved), then the reference's step for each (scripts/reference/
# {behavior,meg}_step_reference.py on Debian's python3-torch), as one table: means over the
# rounds, the bf16 speed-up and the reference / cliphba ratios.
#   scripts/bench_precision.sh            (~4 min on 2 cores; python3-torch needed)
# Environment: CLIPHBA_THREADS (threads of both, default 2), CLIPHBA_BUILD_DIR (default build),
# REPEATS (rounds, default 3), REF_STEPS (timed reference steps, default 2). JSON in
# $CLIPHBA_BUILD_DIR/bench/precision/. predict's speed-up: scripts/bench_predict_precision.sh.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
THREADS="${CLIPHBA_THREADS:-2}"
REPEATS="${REPEATS:-3}"
REF_STEPS="${REF_STEPS:-2}"
export OMP_WAIT_POLICY=PASSIVE CLIPHBA_THREADS="$THREADS"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "bench_precision.sh: python3-torch is missing (apt-get install -y python3-torch)" >&2
  exit 1
fi
cmake --build "$BUILD_DIR" --target cliphba_bench_train cliphba_bench_meg > /dev/null
OUT="$BUILD_DIR/bench/precision"
rm -rf "$OUT"
mkdir -p "$OUT"
[[ "$REPEATS" =~ ^[1-9][0-9]*$ ]] || { echo "REPEATS: expected a positive integer" >&2; exit 2; }
for r in $(seq "$REPEATS"); do
  # The binary's equal-loss check of its variants runs once (round 1), not in every round.
  [[ "$r" -gt 1 ]] && export CLIPHBA_SKIP_LOSS_CHECK=1
  "$BUILD_DIR/tests/bench/cliphba_bench_train" \
    --benchmark_filter='vitb32_b16_text_batched(_bf16)?/' \
    --benchmark_out="$OUT/train_$r.json" --benchmark_out_format=json > "$OUT/train_$r.txt"
  "$BUILD_DIR/tests/bench/cliphba_bench_meg" \
    --benchmark_filter='vitb32(_bf16)?/B:16/T:29/phase:2' \
    --benchmark_out="$OUT/meg_$r.json" --benchmark_out_format=json > "$OUT/meg_$r.txt"
done
/usr/bin/python3 "$ROOT/scripts/reference/behavior_step_reference.py" --model vitb32 --batch 16 \
  --steps "$REF_STEPS" --threads "$THREADS" > "$OUT/reference_behavior.json"
/usr/bin/python3 "$ROOT/scripts/reference/meg_step_reference.py" --model vitb32 --batch 16 \
  --timepoints 29 --phase 2 --steps "$REF_STEPS" --threads "$THREADS" > "$OUT/reference_meg.json"
/usr/bin/python3 - "$OUT" <<'PY'
import glob, json, statistics, sys
out = sys.argv[1]
times = {}  # benchmark name -> [ms per step, one per round]
for f in sorted(glob.glob(f"{out}/*_[0-9]*.json")):
    for b in json.load(open(f))["benchmarks"]:
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
        times.setdefault(b["name"].split("/iterations")[0], []).append(b["real_time"] * scale)
rows = [("behaviour b16", "BM_TrainStep/vitb32_b16_text_batched",
         "BM_TrainStep/vitb32_b16_text_batched_bf16", "reference_behavior.json"),
        ("MEG phase 2 B16 T29", "BM_MegStep/vitb32/B:16/T:29/phase:2",
         "BM_MegStep/vitb32_bf16/B:16/T:29/phase:2", "reference_meg.json")]
print(f"{'step (ViT-B/32)':22} {'float32 ms':>17} {'bf16 ms':>17} {'bf16 x':>7} "
      f"{'reference s':>11} {'ref/f32':>8} {'ref/bf16':>8}")
for label, f32, bf16, ref in rows:
    a, b = times[f32], times[bf16]
    r = json.load(open(f"{out}/{ref}"))["median_s"] * 1e3
    ma, mb = statistics.mean(a), statistics.mean(b)
    span = lambda v: f"{statistics.mean(v):6.0f} ({min(v):.0f}-{max(v):.0f})"
    print(f"{label:22} {span(a):>17} {span(b):>17} {ma / mb:6.2f}x {r / 1e3:10.2f} "
          f"{r / ma:7.1f}x {r / mb:7.1f}x")
print(f"means over {len(times[rows[0][1]])} rounds (min-max); reference: median of its timed steps")
PY
