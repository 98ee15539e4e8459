#!/usr/bin/env bash
# End-to-end timings of `cliphba permute` at THINGS-MEG scale, in one session, against NumPy and
# MNE-Python on the same data, then a markdown table (results/BENCHMARKS.md holds the last one).
#
#   scripts/bench_permute.sh
#
# What it does:
#  1. Generates, into a scratch folder outside the repository (deleted at the end), a neural RDM
#     stack of condensed float32 rows (T x m, m = n(n-1)/2; n = 1854, T = 281: ~1.9 GB; T is
#     reduced if the disk is short, and the 10,000 x 281 figures are then extrapolated) and a
#     model RDM (n x n float64), with /usr/bin/python3 + numpy (seeded).
#  2. NumPy's Mantel cost per permutation x timepoint on that data (rank trick: ranks once; fancy
#     indexing per permutation), for a few permutations.
#  3. `cliphba permute mantel` under /usr/bin/time -v (wall time, peak RSS) for N1 and N2
#     permutations, 1 rank and `mpirun -np 2`, chunk_timepoints 64 and 128. The cost per
#     permutation is the slope (t(N2) - t(N1)) / (N2 - N1), so fixed costs (reading, ranking and
#     standardising every timepoint, observed statistics, writing) are separated from it; the
#     10,000-permutation time is fixed + 10,000 x slope.
#  4. MNE's permutation_cluster_1samp_test (20 x 200, n_permutations = 10000, threshold 2.0)
#     against `cliphba permute cluster --n 10000 --threshold 2.0` (whole-command wall time).
#
# Environment: CLIPHBA (binary; default build/src/apps/cliphba), SCRATCH (default: a fresh
# mktemp -d under /tmp), T (default 281), OBJECTS (default 1854), N1/N2 (default 256/1024),
# CHUNKS (default "64 128"), RANKS (default "1 2"), KEEP_SCRATCH=1 keeps the scratch folder (a
# later run with the same SCRATCH reuses its data; T and OBJECTS must then be unchanged).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLIPHBA="${CLIPHBA:-$ROOT/build/src/apps/cliphba}"
PY=/usr/bin/python3
T="${T:-281}"
OBJECTS="${OBJECTS:-1854}"
N1="${N1:-256}"
N2="${N2:-1024}"
CHUNKS="${CHUNKS:-64 128}"
RANKS="${RANKS:-1 2}"
NUMPY_MS=16.7  # the issue's measured NumPy cost per permutation x timepoint (n = 1854)

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMP_WAIT_POLICY=PASSIVE  # idle OpenMP workers must not spin while OpenBLAS works

[[ -x "$CLIPHBA" ]] || { echo "no cliphba binary at $CLIPHBA (set CLIPHBA)" >&2; exit 1; }
SCRATCH="${SCRATCH:-$(mktemp -d /tmp/cliphba_bench_permute.XXXXXX)}"
mkdir -p "$SCRATCH"
case "$(cd "$SCRATCH" && pwd)/" in "$ROOT"/*) echo "SCRATCH must be outside $ROOT" >&2; exit 1;; esac
cleanup() { [[ "${KEEP_SCRATCH:-0}" == 1 ]] || rm -rf "$SCRATCH"; }
trap cleanup EXIT
RESULTS="$SCRATCH/results.tsv"
: >"$RESULTS"

# --- 1. data -------------------------------------------------------------------------------------
M=$((OBJECTS * (OBJECTS - 1) / 2))
need_mb=$(((T * M * 4) / 1048576 + 512))
avail_mb=$(df -Pm "$SCRATCH" | awk 'NR == 2 {print $4}')
T_FULL=281
if ((avail_mb < need_mb)); then
  T=$(((avail_mb - 512) * 1048576 / (M * 4)))
  echo "only ${avail_mb} MB free in $SCRATCH: T reduced to $T (figures for 281 extrapolated)" >&2
  ((T >= 8)) || { echo "not enough disk for any useful stack" >&2; exit 1; }
fi
if [[ -f "$SCRATCH/neural.npy" && -f "$SCRATCH/model.npy" && -f "$SCRATCH/cluster_X.npy" ]]; then
  echo "== reusing the data in $SCRATCH (KEEP_SCRATCH=1 run)"
else
echo "== generating n=$OBJECTS, T=$T ($((T * M * 4 / 1048576)) MB) in $SCRATCH (${avail_mb} MB free)"
"$PY" - "$SCRATCH" "$OBJECTS" "$T" <<'PY'
import sys, numpy as np
out, n, T = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
m = n * (n - 1) // 2
rng = np.random.default_rng(0)
# Model: Euclidean distances of a random 10-d embedding (realistic ties-free RDM).
x = rng.standard_normal((n, 10))
sq = np.sqrt(np.maximum(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1), 0))
np.fill_diagonal(sq, 0)
np.save(f"{out}/model.npy", sq)
# Neural stack: condensed float32 rows, a shared structure plus noise per timepoint.
iu = np.triu_indices(n, 1)
base = sq[iu].astype(np.float32)
base = (base - base.mean()) / base.std()
neural = np.lib.format.open_memmap(f"{out}/neural.npy", mode="w+", dtype=np.float32, shape=(T, m))
for t in range(T):
    w = np.float32(0.3 * np.exp(-((t - T / 3) / (T / 10)) ** 2))
    neural[t] = w * base + rng.standard_normal(m, dtype=np.float32)
neural.flush()
del neural
# Cluster data: 20 participants x 200 timepoints with an effect at 80..119.
X = rng.standard_normal((20, 200))
X[:, 80:120] += 0.8
np.save(f"{out}/cluster_X.npy", X)
PY
fi

# --- 2. NumPy Mantel reference -------------------------------------------------------------------
echo "== numpy Mantel reference"
"$PY" - "$SCRATCH" "$RESULTS" <<'PY'
import sys, time, numpy as np
from scipy.stats import rankdata
out, res = sys.argv[1], sys.argv[2]
sq = np.load(f"{out}/model.npy")
neural = np.load(f"{out}/neural.npy", mmap_mode="r")
n = sq.shape[0]
iu0, iu1 = np.triu_indices(n, 1)
def z(v):  # rank trick: rank once, centre, scale to unit norm
    r = rankdata(v)
    r -= r.mean()
    return r / np.linalg.norm(r)
t0 = time.perf_counter()
zm = z(sq[iu0, iu1])
zsq = np.zeros((n, n)); zsq[iu0, iu1] = zm; zsq += zsq.T
zt = np.stack([z(np.asarray(neural[t], dtype=np.float64)) for t in range(4)])  # 4 timepoints
t_std = (time.perf_counter() - t0) / 5
rng = np.random.default_rng(1)
perms = [rng.permutation(n) for _ in range(3)]
# Naive: every (permutation, timepoint) gathers and correlates.
t0 = time.perf_counter(); k = 0
for t in range(zt.shape[0]):
    for p in perms:
        float(zsq[p[iu0], p[iu1]] @ zt[t]); k += 1
naive = (time.perf_counter() - t0) / k
# Shared gather: one fancy-indexing gather per permutation, then all timepoints at once.
t0 = time.perf_counter()
for p in perms:
    zsq[p[iu0], p[iu1]] @ zt.T
shared = (time.perf_counter() - t0) / (len(perms) * zt.shape[0])
print(f"numpy: {naive*1e3:.2f} ms per perm x tp (naive), {shared*1e3:.2f} ms (gather shared over "
      f"{zt.shape[0]} tps), rank+standardise {t_std*1e3:.0f} ms per RDM")
with open(res, "a") as f:
    f.write(f"numpy_naive_s\t{naive}\nnumpy_shared_s\t{shared}\nnumpy_std_s\t{t_std}\n")
PY

# --- 3. cliphba permute mantel -------------------------------------------------------------------
# run_mantel RANKS CHUNK N: wall seconds, max peak RSS over ranks (MB) -> results.tsv
run_mantel() {
  local ranks=$1 chunk=$2 n=$3 tag="mantel_r$1_c$2_n$3"
  local dir="$SCRATCH/$tag"
  mkdir -p "$dir"
  local cmd=("$CLIPHBA" permute mantel --model-rdm "$SCRATCH/model.npy"
    --neural-rdm "$SCRATCH/neural.npy" --n "$n" --out "$dir/out.h5"
    --set "permute.chunk_timepoints=$chunk")
  local start end
  start=$(date +%s.%N)
  if ((ranks == 1)); then
    /usr/bin/time -v -o "$dir/time.0" "${cmd[@]}" >"$dir/log" 2>&1
  else
    mpirun -np "$ranks" --oversubscribe sh -c \
      '/usr/bin/time -v -o "$0/time.$OMPI_COMM_WORLD_RANK" "$@"' "$dir" "${cmd[@]}" >"$dir/log" 2>&1
  fi
  end=$(date +%s.%N)
  local wall rss
  wall=$(echo "$end - $start" | bc -l)
  rss=$(cat "$dir"/time.* | awk '/Maximum resident set size/ {if ($6 > m) m = $6} END {print m / 1024}')
  printf '%s\t%s\t%s\n' "$tag" "$wall" "$rss" >>"$RESULTS"
  printf '  %-26s wall %7.1f s  peak RSS/rank %6.0f MB\n' "$tag" "$wall" "$rss"
}
echo "== cliphba permute mantel ($CLIPHBA)"
for chunk in $CHUNKS; do
  for ranks in $RANKS; do
    for n in $N1 $N2; do run_mantel "$ranks" "$chunk" "$n"; done
  done
done

# --- 4. cluster test: MNE vs cliphba -------------------------------------------------------------
echo "== cluster test 20 x 200, 10000 permutations"
"$PY" - "$SCRATCH" "$RESULTS" <<'PY'
import sys, time, numpy as np
t_import = time.perf_counter()
import mne
from mne.stats import permutation_cluster_1samp_test
t_import = time.perf_counter() - t_import
out, res = sys.argv[1], sys.argv[2]
X = np.load(f"{out}/cluster_X.npy")
t0 = time.perf_counter()
t_obs, clusters, p, h0 = permutation_cluster_1samp_test(
    X, threshold=2.0, n_permutations=10000, tail=0, seed=0, out_type="mask", verbose=False)
dt = time.perf_counter() - t0
print(f"MNE {mne.__version__}: {dt:.2f} s ({len(clusters)} clusters; import {t_import:.1f} s)")
with open(res, "a") as f:
    f.write(f"mne_cluster_s\t{dt}\nmne_import_s\t{t_import}\n")
PY
start=$(date +%s.%N)
/usr/bin/time -v -o "$SCRATCH/time.cluster" "$CLIPHBA" permute cluster --data "$SCRATCH/cluster_X.npy" \
  --n 10000 --threshold 2.0 --out "$SCRATCH/cluster.h5" >"$SCRATCH/cluster.log" 2>&1
end=$(date +%s.%N)
printf 'cliphba_cluster_s\t%s\n' "$(echo "$end - $start" | bc -l)" >>"$RESULTS"
echo "cliphba permute cluster: $(tail -1 "$RESULTS" | cut -f2) s"

# --- 5. table ------------------------------------------------------------------------------------
"$PY" - "$RESULTS" "$T" "$T_FULL" "$N1" "$N2" "$NUMPY_MS" "$CHUNKS" "$RANKS" <<'PY'
import sys
res, T, T_full, N1, N2, numpy_ms = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), \
    int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
chunks, ranks = [int(c) for c in sys.argv[7].split()], [int(r) for r in sys.argv[8].split()]
v = {}
for line in open(res):
    k, *rest = line.rstrip("\n").split("\t")
    v[k] = [float(x) for x in rest]
np_naive, np_shared = v["numpy_naive_s"][0], v["numpy_shared_s"][0]
print()
print(f"NumPy Mantel (this run, n = 1854): {np_naive*1e3:.2f} ms per permutation x timepoint "
      f"(naive), {np_shared*1e3:.2f} ms with the gather shared over timepoints; issue: {numpy_ms} ms")
print()
print("| ranks | chunk | wall N=%d (s) | wall N=%d (s) | fixed (s) | us / perm x tp | "
      "10,000 x 281 (min) | x numpy 16.7 ms | x numpy (this run) | peak RSS / rank (MB) |" % (N1, N2))
print("|---|---|---|---|---|---|---|---|---|---|")
slope_at = {}
for c in chunks:
    for r in ranks:
        a, b = v.get(f"mantel_r{r}_c{c}_n{N1}"), v.get(f"mantel_r{r}_c{c}_n{N2}")
        if not a or not b:
            continue
        slope = (b[0] - a[0]) / (N2 - N1)          # s per permutation (all T timepoints)
        fixed = a[0] - slope * N1                   # reading, standardising, writing
        per_tp = slope / T
        # Extrapolated to 281 timepoints: fixed and per-permutation costs scale with T.
        full = (fixed + slope * 10000) * T_full / T
        slope_at[(r, c)] = slope
        print(f"| {r} | {c} | {a[0]:.1f} | {b[0]:.1f} | {fixed:.1f} | {per_tp*1e6:.1f} | "
              f"{full/60:.1f} | {numpy_ms*1e-3/per_tp:.0f}x | {np_naive/per_tp:.0f}x | "
              f"{max(a[1], b[1]):.0f} |")
print()
for c in chunks:
    if (1, c) in slope_at and (2, c) in slope_at:
        print(f"chunk {c}: 1 -> 2 ranks speed-up of the per-permutation cost "
              f"{slope_at[(1, c)] / slope_at[(2, c)]:.2f}x; of the whole N={N2} run "
              f"{v[f'mantel_r1_c{c}_n{N2}'][0] / v[f'mantel_r2_c{c}_n{N2}'][0]:.2f}x")
if T != T_full:
    print(f"(T = {T} measured; 10,000 x 281 extrapolated linearly in T)")
mne_s, cc_s = v["mne_cluster_s"][0], v["cliphba_cluster_s"][0]
print()
print("| cluster test 20 x 200 x 10,000 | seconds |")
print("|---|---|")
print(f"| MNE permutation_cluster_1samp_test (call only) | {mne_s:.2f} |")
print(f"| cliphba permute cluster (whole command) | {cc_s:.2f} |")
print(f"| ratio MNE / cliphba | {mne_s / cc_s:.1f}x |")
PY
