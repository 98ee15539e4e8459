#!/usr/bin/env bash
# End-to-end tests of `cliphba run` on the behaviour stage (+ report) with real processes, the tiny
# fixture CLIP and a `cliphba synth images` data set:
#   ranks   : mpirun -np 1, 2, 3 give the same results file (within float tolerance) and manifest
#   rerun   : a rerun skips every done unit (log) and touches no file of the run folder (mtimes)
#   refuse  : a changed behaviour setting is refused (exit 2, units named, files intact); --force
#             redoes behaviour and the report; a report-only change redoes only the report
#   lock    : a run folder whose run.lock another process holds (flock, or a running cliphba run)
#             -> exit 3, clear message; SIGTERM stops a run with exit 75, its unit left running
#   kill    : kill -9 of one rank mid-training; the rerun resumes from the last epoch's state
#             (nothing finished is redone) and equals an uninterrupted run
#   full    : the results location is full (64 KiB tmpfs; if it cannot be mounted, a path below a
#             regular file): the report fails with exit 3 naming the file, the previous results
#             file stays intact, and the rerun after freeing space finishes
#   missing : a configuration naming a missing stage input fails before any work (exit 3)
# usage: run_cli_test.sh CASE CLIPHBA MPIEXEC SHARED_DIR OUT_DIR
set -euo pipefail
CASE=$1 CLIPHBA=$2 MPIEXEC=$3 SHARED=$4 OUT=$5
PY=/usr/bin/python3
rm -rf "$OUT" && mkdir -p "$OUT"
fail() { echo "FAIL: $*" >&2; exit 1; }

# The data set (40 images of 32 x 32, 66 target dimensions, 10 held out) and the configuration.
"$CLIPHBA" synth images --set synth.images.out_dir="$OUT/data" --set synth.images.seed=5 > /dev/null
config() {  # config FILE EPOCHS
  cat > "$1" <<EOF
train:
  behavior:
    checkpoint: "$SHARED/fixtures/clip/model/tiny_clip_vit.safetensors"
    vocab: "$SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz"
    vocab_remap: "tiny"
    prompts: "$OUT/data/prompts.json"
    targets_csv: "$OUT/data/targets.csv"
    image_dir: "$OUT/data/images"
    heldout_names: "$OUT/data/heldout.txt"
    batch: 8
    epochs: $2
    patience: 100
    lr: 0.003
    dora:
      rank: 8
    loader_threads: 1
    progress_seconds: 0.5
run:
  name: "cli"
  stages: ["behavior", "report"]
  report_script: ""
runtime:
  threads: 1
EOF
}
config "$OUT/run.yaml" 3
run() {  # run NP DIR ARGS... (stdout -> DIR.out, stderr -> DIR.log)
  local np=$1 dir=$2
  shift 2
  "$MPIEXEC" -np "$np" --oversubscribe "$CLIPHBA" run --config "$OUT/run.yaml" --out-dir "$dir" \
    "$@" > "$dir.out" 2> "$dir.log"
}
# Asserts that two results files hold the same behaviour numbers (float tolerance) and manifests.
same_results() {
  $PY - "$1" "$2" <<'PYEOF'
import sys, h5py, numpy as np
a, b = (h5py.File(p, "r") for p in sys.argv[1:3])
for d in ["/behavior/predicted", "/behavior/model_rdm/correlation", "/behavior/reference_rdm"]:
    x, y = a[d][()], b[d][()]
    assert x.shape == y.shape and np.allclose(x, y, atol=2e-4, rtol=0), (d, np.abs(x - y).max())
for k in ["spearman", "pearson", "target_mse", "triplet_accuracy"]:
    assert abs(a["/behavior"].attrs[k] - b["/behavior"].attrs[k]) < 2e-3, k
for k in ["epochs_done", "best_epoch"]:
    assert a["/behavior/training"].attrs[k] == b["/behavior/training"].attrs[k], k
units = lambda f: [u.decode() for u in f["/manifest/unit"][()]]
assert units(a) == units(b) == ["behavior", "report"], units(a)
assert [s.decode() for s in a["/manifest/state"][()]] == ["done", "done"]
assert a["/manifest/config_hash"][0] == b["/manifest/config_hash"][0]  # the behaviour unit's
print("same behaviour results; spearman", a["/behavior"].attrs["spearman"])
PYEOF
}
field() {  # field RECORD.json KEY
  $PY -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$1" "$2"
}

case "$CASE" in
ranks)
  for np in 1 2 3; do
    run $np "$OUT/np$np" || { cat "$OUT/np$np.log"; fail "np $np exit $?"; }
    [ "$(field "$OUT/np$np/units/behavior.json" group_size)" = "$np" ] || fail "np $np: rank layout"
    grep -q "behavior *done" "$OUT/np$np.out" || fail "np $np: summary $(cat "$OUT/np$np.out")"
  done
  same_results "$OUT/np1/results.h5" "$OUT/np2/results.h5"
  same_results "$OUT/np1/results.h5" "$OUT/np3/results.h5"
  grep -q "images/s, ETA" "$OUT/np2.log" || fail "no progress line with images/s and ETA"
  ;;
rerun)
  run 2 "$OUT/r" || { cat "$OUT/r.log"; fail "first run"; }
  touch "$OUT/marker"
  sleep 1.1
  run 2 "$OUT/r" || { cat "$OUT/r.log"; fail "rerun"; }
  grep -q "unit behavior: done in an earlier run, skipped" "$OUT/r.log" || fail "behavior not skipped"
  grep -q "unit report: done in an earlier run, skipped" "$OUT/r.log" || fail "report not skipped"
  [ "$(grep -c "skipped (done)" "$OUT/r.out")" = 2 ] || fail "summary: $(cat "$OUT/r.out")"
  changed=$(find "$OUT/r" -newer "$OUT/marker" -type f ! -name run.lock)
  [ -z "$changed" ] || fail "the rerun modified: $changed"
  ;;
refuse)
  run 1 "$OUT/f" || { cat "$OUT/f.log"; fail "first run"; }
  find "$OUT/f" -type f ! -name run.lock -exec md5sum {} + | sort > "$OUT/before.md5"
  rc=0; run 1 "$OUT/f" --set train.behavior.lr=0.002 || rc=$?
  [ "$rc" -eq 2 ] || fail "changed config: exit $rc, expected 2"
  grep -q "configuration changed for units of run folder .*: behavior (their recorded" "$OUT/f.log" \
    || fail "message: $(cat "$OUT/f.log")"
  find "$OUT/f" -type f ! -name run.lock -exec md5sum {} + | sort | cmp -s - "$OUT/before.md5" \
    || fail "a refused run modified the run folder"
  run 1 "$OUT/f" --set train.behavior.lr=0.002 --force || { cat "$OUT/f.log"; fail "--force"; }
  grep -q "redoing unit behavior" "$OUT/f.log" && grep -q "redoing unit report" "$OUT/f.log" \
    || fail "--force did not redo behaviour and report"
  [ "$(field "$OUT/f/units/behavior.json" attempts)" = 1 ] || fail "behaviour resumed, not redone"
  # A report-only setting: the behaviour unit (and its checkpoint) stay, the report is redone.
  touch "$OUT/marker"
  sleep 1.1
  run 1 "$OUT/f" --set train.behavior.lr=0.002 --set run.results="$OUT/f/other.h5" --force \
    || { cat "$OUT/f.log"; fail "report-only --force"; }
  grep -q "unit behavior: done in an earlier run, skipped" "$OUT/f.log" || fail "behaviour redone"
  grep -q "redoing unit report" "$OUT/f.log" || fail "report not redone"
  [ -z "$(find "$OUT/f/behavior" -newer "$OUT/marker")" ] || fail "behaviour files touched"
  [ -f "$OUT/f/other.h5" ] || fail "no results at the new location"
  ;;
lock)
  mkdir -p "$OUT/l"
  flock -o "$OUT/l/run.lock" sleep 60 &  # -o: only flock itself holds the lock, not the sleep
  holder=$!
  sleep 0.5
  rc=0; run 2 "$OUT/l" || rc=$?
  kill $(pgrep -P "$holder") "$holder" 2> /dev/null || true
  wait "$holder" 2> /dev/null || true
  [ "$rc" -eq 3 ] || { cat "$OUT/l.log"; fail "locked run folder: exit $rc, expected 3"; }
  grep -q "run.lock: run folder locked by another run (pid" "$OUT/l.log" || fail "message: $(cat "$OUT/l.log")"
  [ ! -e "$OUT/l/units/behavior.json" ] || fail "a refused run started a unit"
  # Two cliphba runs on one folder: the second is refused and names the first one's pid and host;
  # then SIGTERM (Slurm preemption) stops the first with exit 75, its unit left running.
  config "$OUT/run.yaml" 400
  "$CLIPHBA" run --config "$OUT/run.yaml" --out-dir "$OUT/l" > /dev/null 2> "$OUT/first.log" &
  first=$!
  for _ in $(seq 1 600); do [ -f "$OUT/l/units/behavior.json" ] && break; sleep 0.05; done
  rc=0; "$CLIPHBA" run --config "$OUT/run.yaml" --out-dir "$OUT/l" > /dev/null 2> "$OUT/l.log" || rc=$?
  kill -TERM "$first"
  rc1=0; wait "$first" || rc1=$?
  [ "$rc" -eq 3 ] && grep -q "locked by another run (pid $first, host $(hostname))" "$OUT/l.log" \
    || fail "second run: exit $rc $(cat "$OUT/l.log")"
  [ "$rc1" -eq 75 ] || fail "SIGTERM: exit $rc1, expected 75: $(tail -3 "$OUT/first.log")"
  grep -q "preempted (SIGTERM) during unit behavior" "$OUT/first.log" || fail "no preemption message"
  [ "$(field "$OUT/l/units/behavior.json" state)" = running ] || fail "preempted unit not running"
  ;;
kill)
  config "$OUT/run.yaml" 20
  run 2 "$OUT/full" || { cat "$OUT/full.log"; fail "uninterrupted run"; }
  setsid "$MPIEXEC" -np 2 --oversubscribe "$CLIPHBA" run --config "$OUT/run.yaml" \
    --out-dir "$OUT/k" > "$OUT/k.out" 2> "$OUT/k.log" &
  launcher=$!
  state="$OUT/k/behavior/last_state.json"
  for _ in $(seq 1 1200); do
    [ -f "$state" ] && [ "$(field "$state" epoch 2> /dev/null || echo 0)" -ge 2 ] && break
    sleep 0.05
  done
  [ -f "$state" ] || { cat "$OUT/k.log"; fail "no resume state appeared"; }
  rank=$(pgrep -P "$launcher" -f "cliphba run" | head -1)
  [ -n "$rank" ] || fail "no rank process found"
  kill -9 "$rank"
  wait "$launcher" || true
  pkill -9 -s "$launcher" 2> /dev/null || true  # whatever the launcher left in its session
  [ "$(field "$OUT/k/units/behavior.json" state)" = running ] || fail "record not left running"
  killed_at=$(field "$state" epoch)
  [ "$killed_at" -lt 20 ] || fail "training had finished before the kill"
  run 2 "$OUT/k" || { cat "$OUT/k.log"; fail "rerun after kill -9"; }
  grep -q "unit behavior resuming" "$OUT/k.log" || fail "the unit did not resume"
  grep -q "resumed after epoch $killed_at " "$OUT/k.log" || fail "trainer did not resume at $killed_at"
  [ "$(field "$OUT/k/units/behavior.json" attempts)" = 2 ] || fail "attempts"
  same_results "$OUT/full/results.h5" "$OUT/k/results.h5"
  echo "kill: resumed after epoch $killed_at, equal to the uninterrupted run"
  ;;
full)
  mkdir -p "$OUT/space"
  mounted=0
  if mount -t tmpfs -o size=64k tmpfs "$OUT/space" 2> /dev/null; then
    mounted=1
    trap 'umount "$OUT/space" 2> /dev/null || true' EXIT
    results="$OUT/space/results.h5"
  else
    results="$OUT/space/results.h5"  # first run writes here; then the folder becomes a file
  fi
  run 1 "$OUT/d" --set run.results="$results" || { cat "$OUT/d.log"; fail "first run"; }
  cp "$results" "$OUT/results.before"
  if [ "$mounted" = 1 ]; then
    dd if=/dev/zero of="$OUT/space/filler" bs=1k 2> /dev/null || true  # fill the file system
    target="$results"
  else
    echo "tmpfs not available: using a results path below a regular file" >&2
    touch "$OUT/notadir"
    target="$OUT/notadir/results.h5"
  fi
  # A report-only change (the report script) makes the report unit rewrite the results file.
  rc=0; run 1 "$OUT/d" --set run.results="$target" --set run.report_script=none.py --force || rc=$?
  [ "$rc" -eq 3 ] || { cat "$OUT/d.log"; fail "full disk: exit $rc, expected 3"; }
  grep -q "cliphba: error: .*$(basename "$target")" "$OUT/d.log" || fail "message: $(tail -3 "$OUT/d.log")"
  cmp -s "$results" "$OUT/results.before" || fail "the previous results file was damaged"
  [ ! -e "$target.partial" ] || fail "a partial file was left behind: $(ls -la "$(dirname "$target")"; tail -5 "$OUT/d.log")"
  [ "$(field "$OUT/d/units/report.json" state)" = failed ] || fail "report record not failed"
  grep -q "unit behavior: done in an earlier run, skipped" "$OUT/d.log" || fail "behaviour redone"
  if [ "$mounted" = 1 ]; then
    rm -f "$OUT/space/filler"
    run 1 "$OUT/d" --set run.results="$target" --set run.report_script=none.py \
      || { cat "$OUT/d.log"; fail "rerun after freeing space"; }
    grep -q "unit report resuming" "$OUT/d.log" || fail "the failed report was not retried"
    same_results "$OUT/results.before" "$results"
  fi
  echo "full: clear error (exit 3), previous results intact"
  ;;
missing)
  rc=0; run 1 "$OUT/m" --set train.behavior.targets_csv="$OUT/nope.csv" || rc=$?
  [ "$rc" -eq 3 ] || { cat "$OUT/m.log"; fail "missing input: exit $rc, expected 3"; }
  grep -q "train.behavior.targets_csv: '$OUT/nope.csv' does not exist (an input of stage behavior)" \
    "$OUT/m.log" || fail "message: $(cat "$OUT/m.log")"
  [ ! -e "$OUT/m/units/behavior.json" ] || fail "a unit was started"
  rc=0; run 1 "$OUT/m" --only report || rc=$?
  [ "$rc" -eq 2 ] && grep -q "needs the outputs of units that are not done: behavior (never run)" \
    "$OUT/m.log" || fail "report without behaviour: exit $rc $(cat "$OUT/m.log")"
  rc=0; run 1 "$OUT/m" --set 'run.stages=["behavior","group"]' || rc=$?
  [ "$rc" -eq 2 ] && grep -q "stage 'group' is not available" "$OUT/m.log" \
    || fail "unavailable stage: exit $rc $(cat "$OUT/m.log")"
  ;;
*) fail "unknown case $CASE" ;;
esac
echo "$CASE: pass"
