#!/usr/bin/env bash
# `predict behavior` per-image time in float32 and bfloat16 (issue 18), with cliphba's heap policy
# (core/memory.h) and with glibc's defaults (CLIPHBA_GLIBC_MALLOC_DEFAULTS=1), side by side in
# one session. ViT-B/32-shaped random model (224 px, 66 prompts), random normalised images from
# NPY (no decoding). Per image = the slope between N_A and N_B images, so model loading and text
# encoding are not counted. Prints one line per setting and the ratios.
#   scripts/bench_predict_precision.sh        (~3 min on 2 cores)
# Environment: CLIPHBA_THREADS (default 2), CLIPHBA_BUILD_DIR (default build), CLIPHBA_SHARED_DIR,
# N_A (64), N_B (256), REPEATS (1: each point timed REPEATS times, the minimum kept).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
THREADS="${CLIPHBA_THREADS:-2}"
N_A="${N_A:-64}" N_B="${N_B:-256}" REPEATS="${REPEATS:-1}"
export OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS="$THREADS" OPENBLAS_NUM_THREADS="$THREADS"
PY=/usr/bin/python3
CLIPHBA="$BUILD_DIR/src/apps/cliphba"
VOCAB="${CLIPHBA_SHARED_DIR:-$ROOT/../shared}/data/clip/bpe_simple_vocab_16e6.txt.gz"
cmake --build "$BUILD_DIR" --target cliphba > /dev/null
W="$BUILD_DIR/bench/predict_precision"
mkdir -p "$W"
# shellcheck source=scripts/bench_models.sh
. "$ROOT/scripts/bench_models.sh"
[[ -f "$W/vitb32.safetensors" ]] || synth_vitb32 "$CLIPHBA" "$W/vitb32.safetensors"
[[ -f "$W/prompts/prompts.json" ]] || "$CLIPHBA" synth images \
  --set synth.images.out_dir="$W/prompts" --set synth.images.n_images=4 --set synth.images.image_size=64 --set synth.images.n_dims=66 \
  --set synth.images.n_heldout=0 > /dev/null
for n in "$N_A" "$N_B"; do
  [[ -f "$W/images_$n.npy" ]] || $PY -c "import numpy as np; np.save('$W/images_$n.npy', \
np.random.default_rng(0).standard_normal(($n, 3, 224, 224)).astype(np.float32))"
done

seconds() {  # seconds HEAP PRECISION N: the fastest of REPEATS runs (HEAP: cliphba | glibc)
  local heap_env=(env -u CLIPHBA_GLIBC_MALLOC_DEFAULTS)
  [[ "$1" == glibc ]] && heap_env=(env CLIPHBA_GLIBC_MALLOC_DEFAULTS=1)
  local best="" s e t
  for _ in $(seq "$REPEATS"); do
    s=$(date +%s.%N)
    "${heap_env[@]}" "$CLIPHBA" predict behavior --model "$W/vitb32.safetensors" \
      --images-npy "$W/images_$3.npy" --prompts "$W/prompts/prompts.json" --vocab "$VOCAB" \
      --out "$W/out.h5" --force --threads "$THREADS" --precision "$2" > /dev/null 2> "$W/log" ||
      { echo "predict failed ($1, $2, $3 images): see $W/log" >&2; return 1; }
    e=$(date +%s.%N)
    t=$(echo "$e - $s" | bc)
    if [[ -z "$best" ]] || (( $(echo "$t < $best" | bc) )); then best=$t; fi
  done
  echo "$best"
}
: > "$W/results.txt"
for heap in cliphba glibc; do
  for p in float32 bfloat16; do
    a=$(seconds "$heap" "$p" "$N_A"); b=$(seconds "$heap" "$p" "$N_B")
    ms=$(echo "scale=2; 1000 * ($b - $a) / ($N_B - $N_A)" | bc)
    echo "$heap $p $ms" | tee -a "$W/results.txt" | \
      awk '{printf "heap %-8s %-9s %7.1f ms per image\n", $1, $2, $3}'
  done
done
awk '{t[$1" "$2] = $3}
  END {
    printf "bf16 speed-up, cliphba heap: %.2fx; glibc defaults: %.2fx\n",
      t["cliphba float32"] / t["cliphba bfloat16"], t["glibc float32"] / t["glibc bfloat16"]
    printf "heap policy speed-up: float32 %.2fx, bfloat16 %.2fx\n",
      t["glibc float32"] / t["cliphba float32"], t["glibc bfloat16"] / t["cliphba bfloat16"]
  }' "$W/results.txt"
