#!/usr/bin/env bash
# End-to-end tests of `cliphba permute` with real processes:
#   ranks   : the same sweep under mpirun -np 1, 2, 3 gives identical results (h5diff) and JSON
#   kill    : kill -9 of a 2-rank run midway, --resume, result equals an uninterrupted run (no
#             save_null, one chunk: the checkpoint holds counts only, no per-permutation maxima)
#   sigterm : SIGTERM (Slurm preemption) -> checkpoint + exit 75, --resume, equal result (save_null
#             and 3 timepoint chunks, stopped past the first chunk: every permutation's maximum
#             kept in OUT.ckpt.null_max and read back)
#   ckptsize: the checkpoint of a 10^6 and of a 10^8 sweep (no save_null) are the same size
#   sigfast : the same with checkpoint_every > N: exit 75 within 5 s of the signal
#   refuse  : resuming under different settings is refused (exit 2) and leaves files intact
#   cluster : `permute cluster --flips` equals MNE's permutation_cluster_1samp_test fixture
#   scipy   : `permute mantel --permutations` through the CLI equals the brute-force scipy reference
#             (scripts/reference/mantel_reference.py) for both statistics and tails: observed to
#             1e-12, p and p_fwer exactly (the tail mapping end to end)
#   policy  : the output policy: --out equal to an input, an existing result, a leftover
#             checkpoint and a folder are refused (exit 2) before any work, inputs byte-identical
#   fortran : Fortran-order NPY inputs (numpy's layout for F-contiguous arrays, e.g. scipy.io.loadmat
#             results) give the same results as C-order ones (one NPY policy, io/npy.h)
#   small   : Mantel with more permutations than the 4! relabellings of 4 objects: drawn with
#             replacement (mantel.h), so the identity recurs ~N/24 times and p stays near 1/24
# usage: permute_test.sh CASE CLIPHBA MPIEXEC DATA_DIR OUT_DIR
set -euo pipefail
CASE=$1 CLIPHBA=$2 MPIEXEC=$3 DATA=$4 OUT=$5
PY=/usr/bin/python3
rm -rf "$OUT" && mkdir -p "$OUT"
M="$DATA/mantel_reference"
fail() { echo "FAIL: $*" >&2; exit 1; }

# Compares the result datasets and attributes of two permute files (not created_utc/config_hash).
same_results() { h5diff "$1" "$2" /permute /permute || fail "$1 and $2 differ"; }

mantel_args=(permute mantel --model-rdm "$M/model.npy" --neural-rdm "$M/neural.npy"
             --set permute.save_null=true --set permute.progress_seconds=0.2)

case "$CASE" in
ranks)
  for np in 1 2 3; do
    "$MPIEXEC" -np $np --oversubscribe "$CLIPHBA" "${mantel_args[@]}" --n 3000 --seed 11 --tail 0 \
      --set permute.batch=16 --set permute.checkpoint_every=100 --set permute.chunk_timepoints=4 \
      --json --out "$OUT/np$np.h5" > "$OUT/np$np.json"
  done
  same_results "$OUT/np1.h5" "$OUT/np2.h5"
  same_results "$OUT/np1.h5" "$OUT/np3.h5"
  $PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
runs = [json.load(open(f"{out}/np{n}.json")) for n in (1, 2, 3)]
for r in runs: r.pop("out")
assert runs[0] == runs[1] == runs[2], "JSON differs between rank counts"
assert len(runs[0]["p"]) == 9 and runs[0]["n"] == 3000
print("identical for 1, 2, 3 ranks; p =", runs[0]["p"][:4])
PYEOF
  ;;
kill|sigterm)
  big=(--n 4000000 --seed 5 --set permute.checkpoint_every=200000)
  if [ "$CASE" = kill ]; then big+=(--set permute.save_null=false)
  else big+=(--set permute.chunk_timepoints=4); fi
  "$CLIPHBA" "${mantel_args[@]}" "${big[@]}" --out "$OUT/full.h5" > /dev/null
  setsid "$MPIEXEC" -np 2 --oversubscribe "$CLIPHBA" "${mantel_args[@]}" "${big[@]}" \
    --out "$OUT/run.h5" > "$OUT/first.log" 2>&1 &
  pid=$!
  for _ in $(seq 1 600); do [ -f "$OUT/run.h5.ckpt" ] && break; sleep 0.05; done
  [ -f "$OUT/run.h5.ckpt" ] || fail "no checkpoint appeared"
  sleep 0.3
  if [ "$CASE" = sigterm ]; then
    # Past the first of the 3 chunks: the resume then reads every permutation's maximum back
    # from OUT.ckpt.null_max and merges the next chunks into them.
    $PY - "$OUT/run.h5.ckpt" <<'PYEOF' || fail "the sweep did not reach its second chunk"
import sys, time
import h5py
for _ in range(1200):
    try:
        with h5py.File(sys.argv[1], "r") as f:
            if f["/"].attrs["next_chunk"] >= 1:
                sys.exit(0)
    except (OSError, KeyError):
        pass  # between two atomic rewrites
    time.sleep(0.1)
sys.exit(1)
PYEOF
  fi
  if [ "$CASE" = kill ]; then
    kill -9 -- -"$pid"  # the whole process group: mpirun and both ranks
    wait "$pid" || true
    [ ! -f "$OUT/run.h5" ] || fail "a killed run left a results file under the final name"
  else
    # As Slurm's --signal does: SIGTERM to every rank (here: the children of mpirun).
    pkill -TERM -P "$pid" || fail "no rank processes to signal"
    rc=0; wait "$pid" || rc=$?
    [ "$rc" -eq 75 ] || { cat "$OUT/first.log"; fail "SIGTERM exit code $rc, expected 75"; }
    grep -q "rerun with --resume" "$OUT/first.log" || fail "no resume hint after SIGTERM"
  fi
  [ -f "$OUT/run.h5.ckpt" ] || fail "checkpoint lost"
  if [ "$CASE" = kill ]; then
    [ ! -e "$OUT/run.h5.ckpt.null_max" ] || fail "per-permutation maxima kept without need"
  else
    [ -s "$OUT/run.h5.ckpt.null_max" ] || fail "no per-permutation maxima beside the checkpoint"
  fi
  "$MPIEXEC" -np 3 --oversubscribe "$CLIPHBA" "${mantel_args[@]}" "${big[@]}" --resume \
    --out "$OUT/run.h5" > "$OUT/resume.log" 2>&1 || { cat "$OUT/resume.log"; fail "resume failed"; }
  grep -q "resuming from" "$OUT/resume.log" || fail "the rerun did not resume from the checkpoint"
  [ ! -f "$OUT/run.h5.ckpt" ] || fail "checkpoint not removed after completion"
  [ ! -e "$OUT/run.h5.ckpt.null_max" ] || fail "OUT.ckpt.null_max not removed after completion"
  same_results "$OUT/full.h5" "$OUT/run.h5"
  echo "$CASE: resumed result equals the uninterrupted run"
  ;;
ckptsize)
  # The checkpoint holds O(T) numbers whatever N (no save_null, one chunk): stop a 10^6 and a 10^8
  # sweep after their first checkpoint and compare the files' sizes.
  for n in 1000000 100000000; do
    setsid "$CLIPHBA" "${mantel_args[@]}" --n $n --seed 7 --set permute.save_null=false \
      --set permute.checkpoint_every=2000 --set permute.batch=1000 --out "$OUT/n$n.h5" \
      > "$OUT/n$n.log" 2>&1 &
    pid=$!
    for _ in $(seq 1 600); do [ -f "$OUT/n$n.h5.ckpt" ] && break; sleep 0.05; done
    [ -f "$OUT/n$n.h5.ckpt" ] || fail "no checkpoint appeared for N = $n"
    kill -TERM "$pid"
    rc=0; wait "$pid" || rc=$?
    [ "$rc" -eq 75 ] || { cat "$OUT/n$n.log"; fail "SIGTERM exit code $rc, expected 75"; }
    [ ! -e "$OUT/n$n.h5.ckpt.null_max" ] || fail "per-permutation maxima kept without need"
  done
  a=$(stat -c %s "$OUT/n1000000.h5.ckpt") b=$(stat -c %s "$OUT/n100000000.h5.ckpt")
  [ "$a" -eq "$b" ] || fail "checkpoint of N = 10^6 is $a bytes, of N = 10^8 $b bytes"
  echo "ckptsize: $a bytes for N = 10^6 and for N = 10^8"
  ;;
sigfast)
  # checkpoint_every larger than N (one round for the whole run): SIGTERM is still honoured within
  # a batch, exit 75 in under 5 s with a checkpoint, and the resumed result equals a full run.
  big=(--n 8000000 --seed 6 --set permute.checkpoint_every=100000000)
  "$CLIPHBA" "${mantel_args[@]}" "${big[@]}" --out "$OUT/full.h5" > /dev/null
  setsid "$MPIEXEC" -np 2 --oversubscribe "$CLIPHBA" "${mantel_args[@]}" "${big[@]}" \
    --out "$OUT/run.h5" > "$OUT/first.log" 2>&1 &
  pid=$!
  # Signal once the sweep runs (rank 0 logs its set-up after every rank installed its handler),
  # not after a fixed sleep: on a loaded machine the ranks can take longer than that to start,
  # and a signal before the handler ends them with 143 (seen once in CI under a parallel build).
  for _ in $(seq 1 1200); do grep -q "mantel: " "$OUT/first.log" && break; sleep 0.05; done
  grep -q "mantel: " "$OUT/first.log" || fail "the sweep did not start within 60 s"
  sleep 1
  kill -0 "$pid" 2> /dev/null || fail "the run ended before the signal (too fast to test)"
  t0=$(date +%s.%N)
  pkill -TERM -P "$pid" || fail "no rank processes to signal"
  rc=0; wait "$pid" || rc=$?
  took=$($PY -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.2f}')" "$t0" "$(date +%s.%N)")
  [ "$rc" -eq 75 ] || { cat "$OUT/first.log"; fail "SIGTERM exit code $rc, expected 75"; }
  $PY -c "import sys; sys.exit(0 if float(sys.argv[1]) < 5 else 1)" "$took" ||
    fail "exit took $took s after SIGTERM (limit 5 s)"
  [ -f "$OUT/run.h5.ckpt" ] || fail "no checkpoint after SIGTERM"
  "$MPIEXEC" -np 3 --oversubscribe "$CLIPHBA" "${mantel_args[@]}" "${big[@]}" --resume \
    --out "$OUT/run.h5" > "$OUT/resume.log" 2>&1 || { cat "$OUT/resume.log"; fail "resume failed"; }
  grep -q "resuming from" "$OUT/resume.log" || fail "the rerun did not resume from the checkpoint"
  same_results "$OUT/full.h5" "$OUT/run.h5"
  echo "sigfast: exit 75 $took s after SIGTERM with checkpoint_every > N; resumed result equal"
  ;;
refuse)
  "$CLIPHBA" "${mantel_args[@]}" --n 200 --seed 1 --out "$OUT/a.h5" > /dev/null
  cp "$OUT/a.h5" "$OUT/a.before"
  rc=0
  "$CLIPHBA" "${mantel_args[@]}" --n 200 --seed 2 --resume --out "$OUT/a.h5" > /dev/null 2> "$OUT/err" || rc=$?
  [ "$rc" -eq 2 ] || fail "exit $rc, expected 2"
  grep -q "different settings" "$OUT/err" || fail "message: $(cat "$OUT/err")"
  cmp -s "$OUT/a.h5" "$OUT/a.before" || fail "the existing result was modified"
  "$CLIPHBA" "${mantel_args[@]}" --n 200 --seed 2 --resume --force --out "$OUT/a.h5" > /dev/null
  # N < 1 and NaN in the neural stack: clear errors, output untouched.
  rc=0; "$CLIPHBA" "${mantel_args[@]}" --n 0 --out "$OUT/a.h5" 2> "$OUT/err" >/dev/null || rc=$?
  [ "$rc" -eq 2 ] && grep -q "permute.mantel.n" "$OUT/err" || fail "N=0: exit $rc $(cat "$OUT/err")"
  $PY -c "
import numpy as np; a = np.load('$M/neural.npy'); a[3, 2, 5] = a[3, 5, 2] = np.nan; np.save('$OUT/nan.npy', a)"
  rc=0; "$CLIPHBA" permute mantel --model-rdm "$M/model.npy" --neural-rdm "$OUT/nan.npy" --n 10 \
    --out "$OUT/b.h5" 2> "$OUT/err" > /dev/null || rc=$?
  [ "$rc" -eq 4 ] && grep -q "nan.npy (timepoint 3)" "$OUT/err" || fail "NaN: exit $rc $(cat "$OUT/err")"
  [ ! -e "$OUT/b.h5" ] && [ ! -e "$OUT/b.h5.partial" ] || fail "NaN run left a file"
  # A constant RDM (correlation undefined): named by file and timepoint, not "row 0".
  $PY -c "
import numpy as np; a = np.load('$M/neural.npy'); a[2] = 1.0 - np.eye(a.shape[1]); np.save('$OUT/const.npy', a)
np.save('$OUT/const_model.npy', 1.0 - np.eye(a.shape[1]))"
  rc=0; "$CLIPHBA" permute mantel --model-rdm "$M/model.npy" --neural-rdm "$OUT/const.npy" --n 10 \
    --out "$OUT/c.h5" 2> "$OUT/err" > /dev/null || rc=$?
  [ "$rc" -eq 4 ] && grep -q "const.npy (timepoint 2): every pair has the same" "$OUT/err" ||
    fail "constant neural RDM: exit $rc $(cat "$OUT/err")"
  rc=0; "$CLIPHBA" permute mantel --model-rdm "$OUT/const_model.npy" --neural-rdm "$M/neural.npy" \
    --n 10 --out "$OUT/c.h5" 2> "$OUT/err" > /dev/null || rc=$?
  [ "$rc" -eq 4 ] && grep -q "const_model.npy: the model RDM gives every pair" "$OUT/err" ||
    fail "constant model RDM: exit $rc $(cat "$OUT/err")"
  # Seed out of range, object counts that differ, time axes of different lengths: refused, and the
  # existing result stays byte-identical.
  cp "$OUT/a.h5" "$OUT/a.forced"
  rc=0; "$CLIPHBA" "${mantel_args[@]}" --seed -1 --out "$OUT/a.h5" 2> "$OUT/err" >/dev/null || rc=$?
  [ "$rc" -eq 2 ] && grep -q "permute.mantel.seed" "$OUT/err" || fail "seed: exit $rc $(cat "$OUT/err")"
  $PY -c "
import numpy as np; m = np.load('$M/model.npy'); np.save('$OUT/model13.npy', m[:13, :13])
np.save('$OUT/cluster5.npy', np.random.default_rng(0).normal(size=(6, 5)))"
  # --force gets past the output policy (a.h5 exists) to the data checks; a failed forced run must
  # still leave the existing result as it was.
  rc=0; "$CLIPHBA" permute mantel --model-rdm "$OUT/model13.npy" --neural-rdm "$M/neural.npy" \
    --n 10 --force --out "$OUT/a.h5" 2> "$OUT/err" >/dev/null || rc=$?
  [ "$rc" -eq 4 ] && grep -q "13 objects" "$OUT/err" || fail "objects: exit $rc $(cat "$OUT/err")"
  rc=0; "$CLIPHBA" permute --set permute.mantel.model_rdm="$M/model.npy" \
    --set permute.mantel.neural_rdm="$M/neural.npy" --set permute.cluster.data="$OUT/cluster5.npy" \
    --force --out "$OUT/a.h5" 2> "$OUT/err" >/dev/null || rc=$?
  [ "$rc" -eq 4 ] && grep -q "time axis" "$OUT/err" || fail "time axes: exit $rc $(cat "$OUT/err")"
  cmp -s "$OUT/a.h5" "$OUT/a.forced" || fail "a failed run modified the existing result"
  echo "refuse: different settings refused, bad inputs rejected, files intact"
  ;;
hdf5)
  # The same stack as an HDF5 dataset (streamed by hyperslabs) gives the same result as NPY.
  $PY -c "
import h5py, numpy as np
with h5py.File('$OUT/neural.h5', 'w') as f: f.create_dataset('/meg/rdm', data=np.load('$M/neural.npy'))"
  "$CLIPHBA" "${mantel_args[@]}" --n 500 --seed 4 --out "$OUT/npy.h5" > /dev/null
  "$CLIPHBA" permute mantel --model-rdm "$M/model.npy" --neural-rdm "$OUT/neural.h5" \
    --set permute.mantel.neural_dataset=/meg/rdm --set permute.save_null=true --n 500 --seed 4 \
    --out "$OUT/h5.h5" > /dev/null
  for d in observed p p_fwer null_max; do
    h5diff "$OUT/npy.h5" "$OUT/h5.h5" /permute/mantel/$d /permute/mantel/$d || fail "$d differs"
  done
  rc=0; "$CLIPHBA" permute mantel --model-rdm "$M/model.npy" --neural-rdm "$OUT/neural.h5" \
    --n 5 2> "$OUT/err" > /dev/null || rc=$?
  [ "$rc" -eq 2 ] && grep -q "neural.h5 is an HDF5 file: set permute.mantel.neural_dataset" "$OUT/err" ||
    fail "HDF5 without a dataset: exit $rc $(cat "$OUT/err")"
  rc=0; "$CLIPHBA" permute mantel --model-rdm "$M/model.npy" --neural-rdm "$OUT/neural.h5" \
    --set permute.mantel.neural_dataset=/meg/nope --n 5 2> "$OUT/err" > /dev/null || rc=$?
  [ "$rc" -ne 0 ] && grep -q "/meg/nope" "$OUT/err" || fail "missing dataset: exit $rc $(cat "$OUT/err")"
  echo "hdf5: identical to the NPY input"
  ;;
cluster)
  S="$DATA/stats_reference"
  for c in two_sided_multi upper_effect lower_effect; do
    read -r tail thr < <($PY -c "import json; d = json.load(open('$S/$c.json')); print(d['tail'], d['threshold'])")
    "$CLIPHBA" permute cluster --data "$S/${c}_data.npy" --flips "$S/${c}_flips.npy" \
      --tail "$tail" --threshold "$thr" --json > "$OUT/$c.json"
    $PY - "$S/$c.json" "$OUT/$c.json" <<'PYEOF'
import json, sys
ref, got = json.load(open(sys.argv[1]))["cluster"], json.load(open(sys.argv[2]))
assert max(abs(a - b) for a, b in zip(ref["t_obs"], got["t_obs"])) < 1e-10
rc = [(c["start"], c["stop"], c["p"]) for c in ref["clusters"]]
gc = [(c["start"], c["stop"], c["p"]) for c in got["clusters"]]
assert rc == gc, (rc, gc)
assert all(abs(a["mass"] - b["mass"]) < 1e-10 for a, b in zip(ref["clusters"], got["clusters"]))
print(sys.argv[1].split("/")[-1], "equals MNE:", gc[:3])
PYEOF
  done
  ;;
scipy)
  for stat in spearman pearson; do
    for tail in 1 0; do
      "$CLIPHBA" permute mantel --model-rdm "$M/model.npy" --neural-rdm "$M/neural.npy" \
        --permutations "$M/perms.npy" --statistic "$stat" --tail "$tail" \
        --set permute.precision=float64 --json > "$OUT/${stat}_$tail.json"
      $PY - "$M/reference.json" "$OUT/${stat}_$tail.json" "${stat}_tail$tail" <<'PYEOF'
import json, sys
ref = json.load(open(sys.argv[1]))["cases"][sys.argv[3]]
got = json.load(open(sys.argv[2]))
assert len(got["observed"]) == len(ref["observed"])
d = max(abs(a - b) for a, b in zip(got["observed"], ref["observed"]))
assert d < 1e-12, f"observed differs by {d}"
assert got["p"] == ref["p"], (sys.argv[3], got["p"], ref["p"])
assert got["p_fwer"] == ref["p_fwer"], (sys.argv[3], got["p_fwer"], ref["p_fwer"])
print(sys.argv[3], "equals scipy: p =", got["p"][:3])
PYEOF
    done
  done
  ;;
policy)
  cp "$M/model.npy" "$OUT/model.npy"
  sum_before=$(sha256sum "$OUT/model.npy")
  expect_refusal() {  # expect_refusal NEEDLE ARGS...: exit 2 naming NEEDLE, no result written
    local needle=$1; shift
    local rc=0
    "$CLIPHBA" permute mantel --model-rdm "$OUT/model.npy" --neural-rdm "$M/neural.npy" --n 50 \
      "$@" > /dev/null 2> "$OUT/err" || rc=$?
    [ "$rc" -eq 2 ] || fail "expected exit 2 for $*, got $rc: $(cat "$OUT/err")"
    grep -q -- "$needle" "$OUT/err" || fail "message lacks '$needle': $(cat "$OUT/err")"
  }
  expect_refusal "is the input" --out "$OUT/model.npy"
  expect_refusal "is the input" --out "$OUT/model.npy" --force
  [ "$(sha256sum "$OUT/model.npy")" = "$sum_before" ] || fail "the input was changed"
  mkdir -p "$OUT/folder.h5"
  expect_refusal "is a folder" --out "$OUT/folder.h5"
  "$CLIPHBA" permute mantel --model-rdm "$OUT/model.npy" --neural-rdm "$M/neural.npy" --n 50 \
    --out "$OUT/r.h5" > /dev/null
  r_before=$(sha256sum "$OUT/r.h5")
  expect_refusal "--force" --out "$OUT/r.h5" --seed 9
  [ "$(sha256sum "$OUT/r.h5")" = "$r_before" ] || fail "an existing result was replaced"
  "$CLIPHBA" permute mantel --model-rdm "$OUT/model.npy" --neural-rdm "$M/neural.npy" --n 50 \
    --out "$OUT/r.h5" --seed 9 --force > /dev/null || fail "--force did not replace the result"
  : > "$OUT/s.h5.ckpt"
  expect_refusal "--resume continues it" --out "$OUT/s.h5"
  [ -e "$OUT/s.h5.ckpt" ] || fail "the checkpoint was discarded"
  # A bad value given through a key flag names the flag (it was reported as --set).
  rc=0; "$CLIPHBA" permute mantel --model-rdm "$OUT/model.npy" --neural-rdm "$M/neural.npy" \
    --tail 5 --n 50 2> "$OUT/err" > /dev/null || rc=$?
  [ "$rc" -eq 2 ] && grep -q -- "--tail: permute.mantel.tail" "$OUT/err" ||
    fail "--tail 5: exit $rc $(cat "$OUT/err")"
  rc=0; "$CLIPHBA" permute mantel --model-rdm "$OUT/model.npy" --neural-rdm "$M/neural.npy" \
    --n many 2> "$OUT/err" > /dev/null || rc=$?
  [ "$rc" -eq 2 ] && grep -q -- "--n: permute.mantel.n" "$OUT/err" ||
    fail "--n many: exit $rc $(cat "$OUT/err")"
  echo "policy: inputs, results and checkpoints are kept unless asked"
  ;;
fortran)
  $PY - "$M" "$OUT" <<'PYEOF'
import sys, numpy as np
src, out = sys.argv[1], sys.argv[2]
for name in ("model", "neural"):
    a = np.load(f"{src}/{name}.npy")
    np.save(f"{out}/{name}_f.npy", np.asfortranarray(a))
    assert np.load(f"{out}/{name}_f.npy").flags.f_contiguous or a.ndim < 2
PYEOF
  "$CLIPHBA" permute mantel --model-rdm "$M/model.npy" --neural-rdm "$M/neural.npy" --n 300 \
    --seed 2 --out "$OUT/c.h5" > /dev/null
  "$CLIPHBA" permute mantel --model-rdm "$OUT/model_f.npy" --neural-rdm "$OUT/neural_f.npy" \
    --n 300 --seed 2 --out "$OUT/f.h5" > /dev/null
  for d in observed p p_fwer; do
    h5diff "$OUT/c.h5" "$OUT/f.h5" /permute/mantel/$d /permute/mantel/$d || fail "$d differs"
  done
  echo "fortran: Fortran-order model and neural RDMs give the C-order results"
  ;;
small)
  # 4 objects, the neural RDM equal to the model RDM at every timepoint (r = 1 only for the
  # identity and for no other of the 24 relabellings: the 6 distances are distinct).
  $PY - "$OUT" <<'PYEOF'
import sys, numpy as np
d = np.array([[0, 1, 2, 4], [1, 0, 3, 5.5], [2, 3, 0, 7], [4, 5.5, 7, 0]])
np.save(sys.argv[1] + "/model4.npy", d)
np.save(sys.argv[1] + "/neural4.npy", np.stack([d, d + 0.0]))
PYEOF
  "$CLIPHBA" permute mantel --model-rdm "$OUT/model4.npy" --neural-rdm "$OUT/neural4.npy" \
    --n 4800 --seed 5 --tail 1 --json > "$OUT/small.json"
  $PY - "$OUT/small.json" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
n = r["n"]
for p in r["p"]:
    count = p * (1 + n) - 1  # permutations with r >= 1: the identity's recurrences
    # Binomial(4800, 1/24): mean 200, sd 13.8; +-5 sd.
    assert 131 <= count <= 269, f"identity recurred {count} times in {n} draws (expected ~{n / 24:.0f})"
    assert p > 1 / 48, f"p = {p} fell far below 1/4! = {1 / 24:.4f}"
print("4 objects, N = 4800 > 4! = 24: p =", r["p"], "(~1/24: the identity recurs, as documented)")
PYEOF
  ;;
*) fail "unknown case $CASE" ;;
esac
