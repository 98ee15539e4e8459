#!/usr/bin/env bash
# MEG training-step timings: cliphba (tests/bench/meg_bench.cc) and a PyTorch re-implementation
# of the reference's per-step structure (scripts/reference/meg_step_reference.py) on the same
# configurations, then the ratios (reference / cliphba) per phase.
#   scripts/bench_meg.sh [--quick]      (--quick: tiny only)
# Optional dependency (benchmarks only, not CI): python3-torch (Debian 1.13):
#   apt-get install -y python3-torch
# Environment: CLIPHBA_THREADS (threads of both, default 2), CLIPHBA_BUILD_DIR (default build),
# REF_STEPS (timed reference steps per configuration, default 2). JSON in $CLIPHBA_BUILD_DIR/bench/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
THREADS="${CLIPHBA_THREADS:-2}"
REF_STEPS="${REF_STEPS:-2}"
export OMP_WAIT_POLICY=PASSIVE CLIPHBA_THREADS="$THREADS"
if ! /usr/bin/python3 -c "import torch" 2>/dev/null; then
  echo "bench_meg.sh: python3-torch is missing (apt-get install -y python3-torch)" >&2
  exit 1
fi
cmake --build "$BUILD_DIR" --target cliphba_bench_meg
OUT="$BUILD_DIR/bench"
mkdir -p "$OUT"
FILTER="."
CONFIGS="tiny:16:29 vitb32:16:29 vitb32:32:29 vitb32:16:141 vitb32:32:141"
if [[ "${1:-}" == "--quick" ]]; then FILTER="tiny"; CONFIGS="tiny:16:29"; fi
"$BUILD_DIR/tests/bench/cliphba_bench_meg" --benchmark_filter="$FILTER" \
  --benchmark_out="$OUT/meg_bench.json" --benchmark_out_format=json
: > "$OUT/meg_reference.jsonl"
for c in $CONFIGS; do
  IFS=: read -r model batch t <<< "$c"
  for phase in 1 2; do
    /usr/bin/python3 "$ROOT/scripts/reference/meg_step_reference.py" --model "$model" \
      --batch "$batch" --timepoints "$t" --phase "$phase" --steps "$REF_STEPS" \
      --threads "$THREADS" | tee -a "$OUT/meg_reference.jsonl"
  done
done
/usr/bin/python3 - "$OUT/meg_bench.json" "$OUT/meg_reference.jsonl" <<'PY'
import json, sys
ours = {}
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    name = b["name"]  # BM_MegStep/vitb32/B:16/T:29/phase:2/iterations:2/real_time
    parts = dict(p.split(":") for p in name.split("/") if ":" in p and not p.startswith("iter"))
    model = name.split("/")[1]
    scale = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}[b["time_unit"]]
    ours[(model, int(parts["B"]), int(parts["T"]), int(parts["phase"]))] = (
        b["real_time"] * scale, b.get("first_loss"))
print(f"{'model':8} {'B':>3} {'T':>4} {'phase':>5} {'reference s':>12} {'cliphba s':>10} "
      f"{'ratio':>8} {'ref text%':>9} {'ref loop%':>9} {'loss ref/ours':>16}")
for line in open(sys.argv[2]):
    r = json.loads(line)
    key = (r["model"], r["batch"], r["timepoints"], r["phase"])
    if key not in ours:
        continue
    t, loss = ours[key]
    print(f"{key[0]:8} {key[1]:>3} {key[2]:>4} {key[3]:>5} {r['median_s']:>12.3f} {t:>10.4f} "
          f"{r['median_s'] / t:>7.1f}x {100 * r['text_share']:>8.0f}% {100 * r['loop_share']:>8.0f}% "
          f"{r['first_loss']:>7.4f}/{loss:.4f}")
PY
