#!/usr/bin/env bash
# Long Mantel sweeps (issue 13): is the rate, and the size of the checkpoint, independent of N?
#
#   scripts/bench_permute_long.sh
#
# For each N in NS (default 10^7 and 10^8) the same small case (OBJECTS objects, T timepoints,
# seeded NumPy data in a scratch folder) runs `cliphba permute mantel --out` for SECONDS_EACH seconds
# (default 60), is stopped by SIGTERM as Slurm preempts, and the script reads how far it got from
# its checkpoint (next_perm, h5py) and the checkpoint's size. Rate = permutations / seconds.
# The checkpoint is rewritten every CHECKPOINT_EVERY permutations (default 40,000); without
# save_null it holds O(T) numbers, so both columns should not depend on N. With SAVE_NULL=1 the
# per-permutation maxima go to OUT.ckpt.null_max, written slice by slice (its size is listed).
# Environment: CLIPHBA (binary; default build/src/apps/cliphba), OBJECTS (64), T (64: one chunk
# at the default permute.chunk_timepoints; with more chunks every maximum is kept in
# OUT.ckpt.null_max), NS, SECONDS_EACH (60), CHECKPOINT_EVERY, SAVE_NULL (0).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIPHBA="${CLIPHBA:-$ROOT/build/src/apps/cliphba}"
PY=/usr/bin/python3
OBJECTS="${OBJECTS:-64}"
T="${T:-64}"
NS="${NS:-10000000 100000000}"
DURATION="${SECONDS_EACH:-60}"
CHECKPOINT_EVERY="${CHECKPOINT_EVERY:-40000}"
SAVE_NULL="${SAVE_NULL:-0}"
[[ -x "$CLIPHBA" ]] || { echo "no cliphba binary at $CLIPHBA (set CLIPHBA)" >&2; exit 1; }
export OMP_WAIT_POLICY=PASSIVE
W="$(mktemp -d /tmp/cliphba_bench_permute_long.XXXXXX)"
trap 'rm -rf "$W"' EXIT

$PY - "$W" "$OBJECTS" "$T" <<'PYEOF'
import sys
import numpy as np
w, n, t = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = np.random.default_rng(13)
x = rng.standard_normal((n, 8))
model = np.linalg.norm(x[:, None] - x[None], axis=-1)
neural = np.empty((t, n, n), np.float32)
for k in range(t):
    y = x + rng.standard_normal((n, 8)) * 3
    neural[k] = np.linalg.norm(y[:, None] - y[None], axis=-1)
np.save(f"{w}/model.npy", model)
np.save(f"{w}/neural.npy", neural)
PYEOF

save=false; [[ "$SAVE_NULL" == 1 ]] && save=true
echo "| N | permutations in ${DURATION} s | rate (/s) | OUT.ckpt bytes | OUT.ckpt.null_max bytes |"
echo "|---|---|---|---|---|"
for n in $NS; do
  out="$W/n$n.h5"
  "$CLIPHBA" permute mantel --model-rdm "$W/model.npy" --neural-rdm "$W/neural.npy" --n "$n" \
    --seed 3 --set permute.save_null=$save --set permute.checkpoint_every="$CHECKPOINT_EVERY" \
    --set permute.progress_seconds=1000 --out "$out" > "$W/n$n.log" 2>&1 &
  pid=$!
  sleep "$DURATION"
  kill -TERM "$pid"
  rc=0; wait "$pid" || rc=$?
  [[ "$rc" == 75 ]] || { cat "$W/n$n.log"; echo "exit $rc, expected 75 (preempted)" >&2; exit 1; }
  done_n=$($PY -c "import h5py, sys; print(h5py.File(sys.argv[1])['/'].attrs['next_perm'])" "$out.ckpt")
  side=$([[ -f "$out.ckpt.null_max" ]] && stat -c %s "$out.ckpt.null_max" || echo "-")
  rate=$($PY -c "import sys; print(f'{int(sys.argv[1]) / float(sys.argv[2]):,.0f}')" "$done_n" "$DURATION")
  echo "| $n | $done_n | $rate | $(stat -c %s "$out.ckpt") | $side |"
done
