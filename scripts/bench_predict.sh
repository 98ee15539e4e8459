#!/usr/bin/env bash
# `cliphba predict` throughput and memory on a ViT-B/32-shaped model (224 px), side by side with
# a PyTorch re-implementation of the reference's inference structure
# (scripts/reference/predict_reference.py), then the ratios:
#   - predict behavior: seconds per image, cliphba vs the reference structure;
#   - predict meg (281 timepoints, RDMs written) against predict behavior on the same images;
#   - peak RSS at N_SMALL and N_LARGE images (PNG folders, decoded as they are needed).
#   scripts/bench_predict.sh          (N_SMALL=500 N_LARGE=5000 by default; ~25 min on 2 cores)
# Optional dependency (benchmarks only, not CI): python3-torch (Debian 1.13).
# Environment: CLIPHBA_THREADS (default 2), CLIPHBA_BUILD_DIR (default build), N_SMALL, N_LARGE.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
THREADS="${CLIPHBA_THREADS:-2}"
N_SMALL="${N_SMALL:-500}" N_LARGE="${N_LARGE:-5000}"
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS"
PY=/usr/bin/python3
CLIPHBA="$BUILD_DIR/src/apps/cliphba"
VOCAB="$ROOT/../shared/data/clip/bpe_simple_vocab_16e6.txt.gz"
if ! $PY -c "import torch" 2>/dev/null; then
  echo "bench_predict.sh: python3-torch is missing (apt-get install -y python3-torch)" >&2
  exit 1
fi
cmake --build "$BUILD_DIR" --target cliphba > /dev/null
W="$BUILD_DIR/bench/predict"
rm -rf "$W" && mkdir -p "$W"

# The model: OpenAI ViT-B/32 shapes, random init; images: synthetic PNGs (64 px, resized to 224).
# shellcheck source=scripts/bench_models.sh
. "$ROOT/scripts/bench_models.sh"
synth_vitb32 "$CLIPHBA" "$W/vitb32.safetensors"
for n in "$N_SMALL" "$N_LARGE"; do
  "$CLIPHBA" synth images --set synth.images.out_dir="$W/images_$n" --set synth.images.n_images="$n" \
    --set synth.images.image_size=64 --set synth.images.n_dims=66 --set synth.images.n_heldout=0 > /dev/null
done
PROMPTS="$W/images_$N_SMALL/prompts.json"
# A MEG model folder on that CLIP: random head (281 timepoints, -100..1300 ms at 5 ms).
$PY "$ROOT/scripts/write_meg_folder.py" "$W/meg" --base "$W/vitb32.safetensors" \
  --prompts "$PROMPTS" --vocab "$VOCAB" --timepoints 281 --blocks 12 --start-ms -100 --step-ms 5

run() {  # run NAME ARGS...: wall seconds and peak RSS of one cliphba command
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/$name.time" "$CLIPHBA" "$@" --threads "$THREADS" > /dev/null 2> "$W/$name.log"
  echo "$name $(cat "$W/$name.time")" | tee -a "$W/times.txt"
}
: > "$W/times.txt"
for n in "$N_SMALL" "$N_LARGE"; do
  run "behavior_$n" predict behavior --model "$W/vitb32.safetensors" --images "$W/images_$n/images" \
    --prompts "$PROMPTS" --vocab "$VOCAB" --out "$W/behavior_$n.h5"
  run "meg_norm_$n" predict meg --model "$W/meg" --images "$W/images_$n/images" --no-rdm --out "$W/meg_norm_$n.h5"
done
run "meg_$N_SMALL" predict meg --model "$W/meg" --images "$W/images_$N_SMALL/images" --out "$W/meg_$N_SMALL.h5"
$PY "$ROOT/scripts/reference/predict_reference.py" --task behavior --threads "$THREADS" | tee "$W/ref_behavior.json"
$PY "$ROOT/scripts/reference/predict_reference.py" --task meg --threads "$THREADS" | tee "$W/ref_meg.json"
$PY - "$W" "$N_SMALL" "$N_LARGE" <<'EOF'
import json, sys
w, ns, nl = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
t = {l.split()[0]: (float(l.split()[1]), int(l.split()[2]) / 2**20) for l in open(f"{w}/times.txt")}
rb, rm = json.load(open(f"{w}/ref_behavior.json")), json.load(open(f"{w}/ref_meg.json"))
b = t[f"behavior_{ns}"][0] / ns
print(f"{'what':44} {'s/image':>9} {'ratio':>8}")
print(f"{'reference structure, behaviour':44} {rb['s_per_image']:9.4f}")
print(f"{'cliphba predict behavior (N=%d)' % ns:44} {b:9.4f} {rb['s_per_image'] / b:7.1f}x")
m = t[f"meg_{ns}"][0] / ns
print(f"{'reference structure, meg (281 t)':44} {rm['s_per_image']:9.4f}")
print(f"{'cliphba predict meg, 281 t + RDMs (N=%d)' % ns:44} {m:9.4f} {rm['s_per_image'] / m:7.1f}x")
print(f"predict meg / predict behavior (N={ns}): {m / b:.2f}")
for k in ("behavior", "meg_norm"):
    print(f"peak RSS {k:9}: N={ns} {t[f'{k}_{ns}'][1]:.2f} GB, N={nl} {t[f'{k}_{nl}'][1]:.2f} GB"
          f" (time/image {t[f'{k}_{ns}'][0] / ns:.4f} s, {t[f'{k}_{nl}'][0] / nl:.4f} s)")
EOF
