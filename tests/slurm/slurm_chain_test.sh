#!/usr/bin/env bash
# shellcheck disable=SC2015  # `A && B || fail`: fail exits, so these are if-then-else.
# The jobs/ chain on a real one-node Slurm (tests/slurm/slurm_local.sh): submits the pipeline with
# jobs/submit_pipeline.sh, waits by polling squeue/scontrol (never sbatch --wait: it polls every
# 32 s), and checks
#   A. on a tiny `cliphba synth cohort` (24 objects, 3 participants) and the fixture CLIP, every
#      job of the real `cliphba run` chain behavior -> group -> individual array (2 tasks: chunks
#      {0,1} and {2}) -> alignment -> report ended COMPLETED with ExitCode 0:0, each started after
#      its dependency ended, each array task ran its chunk, and the results file is complete
#      (/meg/group, /meg/individual/*, /meg/own_vs_other, every /manifest unit done);
#   B. the same chain with two running training jobs interrupted after their first checkpoint:
#      (B1) the group job by `scontrol requeue`, (B2) array task 0 by SIGTERM to its batch shell
#      (what --signal=B:TERM@120 sends: cliphba exits 75, the script requeues); each starts again,
#      resumes, ends COMPLETED 0:0, and the results equal A's (tests/slurm/h5_same.py: every
#      dataset and non-provenance attribute, rtol 1e-4 / atol 1e-6: training resumes from the
#      state after its last whole epoch);
#   C. jobs/permutation_sweep.sbatch, SIGTERMed mid-sweep, resumes from its .ckpt and writes
#      exactly the file of an uninterrupted `cliphba permute` run.
#
#   tests/slurm/slurm_chain_test.sh CLIPHBA_BINARY [SOURCE_DIR]
#
# Exit: 0 pass, 1 fail, 77 skipped (Slurm not installed: scripts/setup.sh installs it).
# KEEP_SLURM_TEST=1 keeps the scratch folder (cluster logs, job logs, results) for inspection.
set -uo pipefail

BIN="${1:?usage: slurm_chain_test.sh CLIPHBA_BINARY [SOURCE_DIR]}"
SRC="$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")/../..}" && pwd)"
for tool in slurmctld slurmd sbatch squeue scontrol; do
  if ! command -v "$tool" >/dev/null; then
    echo "SKIP: $tool is not installed (scripts/setup.sh installs slurmctld slurmd slurm-client)"
    exit 77
  fi
done
[ -x "$BIN" ] || { echo "FAIL: cliphba binary '$BIN' not found"; exit 1; }
BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"

T0=$SECONDS
WORK="$(mktemp -d "${TMPDIR:-/tmp}/cliphba-slurm.XXXXXX")"
LOCAL="$SRC/tests/slurm/slurm_local.sh"
cleanup() {
  "$LOCAL" stop "$WORK/cluster" >/dev/null 2>&1
  if [ "${KEEP_SLURM_TEST:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# Prints the failure with the job and daemon logs (to stderr: also from inside $(...)), exits 1.
fail() {
  {
    echo "FAIL: $*"
    for f in "$WORK"/logs/*.out; do
      [ -f "$f" ] && { echo "--- $f"; tail -n 15 "$f"; }
    done
    echo "--- slurmctld.log (tail)"; tail -n 10 "$WORK/cluster/log/slurmctld.log" 2>/dev/null
  } >&2
  exit 1
}
step() { echo "[$((SECONDS - T0)) s] $*"; }

eval "$("$LOCAL" start "$WORK/cluster" 4)" || fail "could not start the test cluster"
export SLURM_CONF
step "cluster up: $(sinfo -h -o '%N %T %c CPUs')"

# --- the tiny synthetic cohort and its run configuration ----------------------------------
mkdir -p "$WORK/logs"
export CLIPHBA_LOG_DIR="$WORK/logs" CLIPHBA="$BIN"
# Small jobs on the 4 declared CPUs (2 real cores): 2 ranks x 1 thread each.
export SBATCH_EXTRA="--ntasks=2 --cpus-per-task=1 --mem-per-cpu=256M --time=00:10:00"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# N_PARTICIPANTS is left to submit_pipeline.sh (it counts /meg/participants of meg.rdm.path);
# 3 participants in chunks of 2: array tasks {sub-01, sub-02} (2 participant groups of 1 rank)
# and {sub-03} (a partial chunk).
export CHUNK=2
unset N_PARTICIPANTS STAGES
SHARED="${CLIPHBA_SHARED_DIR:-$SRC/../shared}"
CLIP="$SHARED/fixtures/clip/model/tiny_clip_vit.safetensors"
CONFIG="$WORK/run_test.yaml"
# `cliphba synth cohort` (configs/synth.yaml shrunk: 24 objects, 3 participants, 12 samples from
# -20 ms by 10 ms) and the tiny fixture CLIP; the MEG settings are configs/meg_synth.yaml's (small
# DoRA: with 2 vision blocks only phase 2 moves). 24 objects leave 4 validation objects, so that
# training improves on both validation losses (with 16 the MEG stages find no best epoch). 60 MEG
# epochs (~4 s a model) leave part B time to interrupt a running training job after a checkpoint.
cat >"$CONFIG" <<YAML
synth:
  cohort:
    out_dir: "$WORK/cohort"
    n_objects: 24
    n_exemplars: 1
    image_size: 32
    n_dims: 8
    n_heldout: 4
    choice_repeats: 1
    n_participants: 3
    n_sensors: 16
    n_times: 12
    sfreq: 100.0
    tmin_ms: -20.0
    n_trials: 4
    visual_latency_ms: 30.0
    semantic_latency_ms: 60.0
    latency_jitter_ms: 5.0
    visual_width_ms: 15.0
    semantic_width_ms: 20.0
    noise: 0.3
    seed: 3
meg:
  rdm:
    path: "$WORK/cohort/meg/rdm.h5"
train:
  behavior:
    checkpoint: "$CLIP"
    vocab: "$SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz"
    vocab_remap: "tiny"
    prompts: "$WORK/cohort/behavior/prompts.json"
    targets_csv: "$WORK/cohort/behavior/embedding.csv"
    image_dir: "$WORK/cohort/images"
    heldout_names: "$WORK/cohort/behavior/heldout.txt"
    batch: 8
    epochs: 20
    patience: 100
    lr: 0.003
    dora:
      rank: 8
    loader_threads: 1
    progress_seconds: 1.0
  meg:
    checkpoint: "$CLIP"
    vocab: "$SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz"
    vocab_remap: "tiny"
    prompts: "$WORK/cohort/behavior/prompts.json"
    image_dir: "$WORK/cohort/images"
    heldout_names: "$WORK/cohort/behavior/heldout.txt"
    train_start_ms: 0.0
    train_end_ms: 80.0
    train_step_ms: 10.0
    window_ms: 10.0
    noise: false
    batch: 9
    epochs: ${MEG_EPOCHS:-60}
    phase1_epochs: 1
    patience_phase1: 100
    patience_phase2: 100
    lr_wfr_1: 0.03
    lr_wfr_2: 0.01
    lr_dora: 0.001
    dora:
      rank: 4
      alpha: 0.5
    loader_threads: 1
    progress_seconds: 1.0
run:
  name: "slurm_test"
  stages: ["behavior", "group", "individual", "alignment", "report"]
  report_script: ""
YAML
"$BIN" synth cohort --config "$CONFIG" >/dev/null 2>"$WORK/synth.log" ||
  { cat "$WORK/synth.log"; fail "cliphba synth cohort failed"; }
run_opts() { echo "--set run.out_dir=$WORK/$1"; }
results() { echo "$WORK/$1/results.h5"; }
# Training resumes from the state after the last whole epoch: equal within float tolerance.
SAME_OPTS=(--rtol 1e-4 --atol 1e-6 --ignore '(?i)^/manifest' --ignore '(?i)@\w*(time|date|host|pid|wall|attempt|created|command|config_hash)')
EXPECTED_UNITS="alignment behavior group individual/sub-01 individual/sub-02 individual/sub-03 report"
step "cohort: 24 objects, 3 participants in $WORK/cohort"

# --- helpers ------------------------------------------------------------------------------
# Waits until none of the jobs (ids, array ids included) is in the queue; 240 s at most.
wait_gone() {
  local deadline=$((SECONDS + ${WAIT_LIMIT:-240}))
  while [ -n "$(squeue -h -o %i -j "$(IFS=,; echo "$*")" 2>/dev/null)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "jobs $* still queued after ${WAIT_LIMIT:-240} s: $(squeue -h)"
    sleep 1
  done
}
# Every record of job $1 (all tasks of an array): "JobState ExitCode Restarts StartTime EndTime".
job_records() {
  scontrol -o show job "$1" | sed -E 's/.*JobState=([^ ]+).* Restarts=([0-9]+).* ExitCode=([^ ]+).* StartTime=([^ ]+) EndTime=([^ ]+).*/\1 \3 \2 \4 \5/'
}
check_completed() {  # check_completed STAGE JOB
  local n=0 state code rest
  while read -r state code rest; do
    n=$((n + 1))
    [ "$state" = COMPLETED ] && [ "$code" = 0:0 ] ||
      fail "stage $1 (job $2): JobState=$state ExitCode=$code"
  done < <(job_records "$2")
  [ "$n" -gt 0 ] || fail "stage $1 (job $2): scontrol shows no record"
  echo "$n"
}

# --- refusals -------------------------------------------------------------------------------
mkdir -p "$WORK/empty_path"  # (/bin is /usr/bin on Debian: it would hold sbatch)
out="$(PATH="$WORK/empty_path" /bin/bash "$SRC/jobs/submit_pipeline.sh" "$CONFIG" 2>&1)"
[ $? -eq 2 ] && [[ "$out" == *"sbatch not found"* ]] ||
  fail "submit_pipeline.sh without sbatch: expected exit 2 and 'sbatch not found', got: $out"
out="$("$SRC/jobs/submit_pipeline.sh" "$WORK/no_such.yaml" 2>&1)"
[ $? -eq 2 ] && [[ "$out" == *"not a readable file"* ]] ||
  fail "submit_pipeline.sh with a missing config: expected exit 2, got: $out"
[ -z "$(squeue -h)" ] || fail "a refused submission left jobs: $(squeue -h)"
step "refusals ok (no sbatch, missing config: exit 2, nothing submitted)"

# --- A: the whole chain, uninterrupted ------------------------------------------------------
# submit_chain NAME: submits the config's five stages into run folder $WORK/NAME; sets the arrays
# stages and ids (one per stage, the individual array's id included).
submit_chain() {
  local chain s j
  read -r -a opts <<<"$(run_opts "$1")"
  chain="$("$SRC/jobs/submit_pipeline.sh" "$CONFIG" "${opts[@]}")" || fail "submit_pipeline.sh ($1): $chain"
  echo "$chain"
  stages=() ids=()
  while read -r s j; do
    stages+=("${s#stage=}")
    ids+=("${j#job=}")
  done <<<"$chain"
  [ "${stages[*]}" = "behavior group individual alignment report" ] ||
    fail "stage lines '${stages[*]}', expected the config's run.stages (all five)"
  for j in "${ids[@]}"; do [[ "$j" =~ ^[0-9]+$ ]] || fail "job id '$j' is not a number"; done
}
# check_chain NAME: every job COMPLETED 0:0, each stage started after its dependency ended, the
# array ran ceil(3 / CHUNK) = 2 tasks with the right participants, the results file is complete.
check_chain() {
  local name="$1" prev_end="" i n first_start last_end
  for i in "${!ids[@]}"; do
    n="$(check_completed "${stages[$i]}" "${ids[$i]}")" || exit 1
    first_start="$(job_records "${ids[$i]}" | awk '{print $4}' | sort | head -n1)"
    last_end="$(job_records "${ids[$i]}" | awk '{print $5}' | sort | tail -n1)"
    # ISO times sort lexically: a stage may not start before its dependency ended.
    [ -z "$prev_end" ] || [[ ! "$first_start" < "$prev_end" ]] ||
      fail "$name: stage ${stages[$i]} started at $first_start, before its dependency ended at $prev_end"
    prev_end="$last_end"
    echo "  ${stages[$i]}: $n job record(s) COMPLETED 0:0"
  done
  n="$(job_records "${ids[2]}" | wc -l)"
  [ "$n" -eq 2 ] || fail "$name: individual array ran $n tasks, expected ceil(3/2) = 2"
  grep -q -- "--participants 0,1 " "$WORK/logs/cliphba-individual-${ids[2]}_0.out" ||
    fail "$name: array task 0 did not run participants 0,1"
  grep -q -- "--participants 2 " "$WORK/logs/cliphba-individual-${ids[2]}_1.out" ||
    fail "$name: array task 1 did not run participant 2"
  /usr/bin/python3 - "$(results "$name")" "$EXPECTED_UNITS" <<'PY' || fail "$name: results incomplete"
import sys, h5py, numpy as np
path, expected = sys.argv[1], sorted(sys.argv[2].split())
with h5py.File(path, "r") as f:
    units = sorted(u.decode() for u in f["/manifest/unit"][()])
    states = [s.decode() for s in f["/manifest/state"][()]]
    assert units == expected, f"manifest units {units}, expected {expected}"
    assert states == ["done"] * len(units), f"manifest states {states}"
    for m in ["group"] + [f"individual/sub-0{p}" for p in (1, 2, 3)]:
        s = f[f"/meg/{m}/alignment/spearman"][()]
        assert s.shape == (3, 12) and np.isfinite(s).all(), (m, s.shape)
        assert f[f"/meg/{m}/alignment/peak_ms"].shape == (3,), m
    assert f["/meg/ceiling/lower"].shape == (3, 12)
    o = f["/meg/own_vs_other/matrix"]
    assert o.shape == (3, 3) and np.isfinite(o[()]).all(), o.shape
    assert 0 < o.attrs["p_value"] <= 1, o.attrs["p_value"]
    assert "spearman" in f["/behavior"].attrs
    print(f"  results: {len(units)} units done, own-vs-other statistic {o.attrs['statistic']:.4f}"
          f" p {o.attrs['p_value']:.3f}")
PY
}
submit_chain runA
WAIT_LIMIT=240 wait_gone "${ids[@]}"
step "chain A left the queue"
check_chain runA
RESULTS_A="$(results runA)"
step "A ok: ${#ids[@]} stages COMPLETED 0:0 in dependency order, results complete"

# --- B, C: interrupt running jobs; they must resume and end with the uninterrupted results -----
# `scontrol requeue` (an administrator; Slurm SIGTERMs the job and requeues it itself), or SIGTERM
# to the batch shell only, as --signal=B:TERM@120 sends before a time limit or a preemption: the
# script forwards it, cliphba checkpoints and exits 75, the script requeues.
# Slurm holds a requeued job back for 120 s (reason BeginTime); the test releases it as soon as the
# interrupted run has left the node.
# interrupt NAME requeue|signal JOB(_TASK) LOG FOLDER PATTERN: once FOLDER holds a file PATTERN
# (a checkpoint), interrupts the running job; waits until the restarted job ended COMPLETED 0:0.
interrupt() {
  local name="$1" how="$2" spec="$3" log="$4" dir="$5" pattern="$6" deadline state code restarts jid
  # Interrupt once a checkpoint exists, so the second start has to resume from it.
  deadline=$((SECONDS + 150))
  until [ -n "$(find "$dir" -name "$pattern" 2>/dev/null)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "$name: no $pattern in $dir after 150 s"
    [ -n "$(squeue -h -o %T -j "$spec" 2>/dev/null)" ] ||
      fail "$name: job $spec ended before it could be interrupted (make it longer)"
    sleep 0.2
  done
  state="$(squeue -h -o %T -j "$spec" | head -n1)"
  [ "$state" = RUNNING ] || fail "$name: job $spec is $state, not RUNNING, at its first checkpoint"
  jid="$(squeue -h -o %A -j "$spec" | head -n1)"  # an array task's own job id
  if [ "$how" = requeue ]; then
    scontrol requeue "$spec" || fail "scontrol requeue $spec failed"
  else
    scancel --batch --signal=TERM "$spec" || fail "scancel --batch --signal=TERM $spec failed"
  fi
  step "$name: $how of running job $spec after its first checkpoint"
  deadline=$((SECONDS + 120))
  while :; do
    state="$(squeue -h -o %T -j "$spec" 2>/dev/null | head -n1)"
    [ -n "${state:-}" ] || fail "$name: job $spec left the queue instead of being requeued"
    if [ "$state" = PENDING ]; then
      # Only once the last run's step daemons are gone: a restart before that is refused
      # ("credential revoked") or fails to launch its step (the old step's PMIx socket
      # spool/stepd.slurm.pmix.<job>.0 is still bound) - Slurm's 120 s hold avoids both.
      while compgen -G "$WORK/cluster/spool/*_$jid.*" >/dev/null ||
        compgen -G "$WORK/cluster/spool/*pmix.$jid.*" >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "job $spec: step daemons of the last run still there"
        sleep 0.2
      done
      sleep 1  # credentials are compared in whole seconds
      # (The reason reads None for a moment before BeginTime: release in any case.)
      scontrol update JobId="$spec" StartTime=now || fail "could not release requeued job $spec"
      break
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "$name: job $spec not requeued after 120 s (state $state)"
    sleep 0.2
  done
  WAIT_LIMIT=180 wait_gone "$spec"
  read -r state code restarts _ < <(job_records "$spec" | head -n1)
  [ "$state" = COMPLETED ] && [ "$code" = 0:0 ] ||
    fail "$name: interrupted job $spec: JobState=$state ExitCode=$code"
  [ "$restarts" -ge 1 ] || fail "$name: job $spec shows Restarts=$restarts: it was not requeued"
  grep -q "restart 1" "$log" || fail "$name: log of job $spec shows no second start"
  if [ "$how" = signal ]; then
    grep -q "exit 75" "$log" || fail "$name: job $spec: no 'exit 75' -> requeue in its log"
  fi
  grep -qiE "resuming from|resumed after" "$log" || fail "$name: job $spec did not resume from its checkpoint"
  step "$name ok: job $spec interrupted ($how), requeued (Restarts=$restarts), resumed, COMPLETED 0:0"
}

# B: the whole chain again; (B1) the group training job is requeued by `scontrol requeue`, then
# (B2) the first array task (two participants training side by side) is SIGTERMed. The rest of the
# chain waits for them (afterok), and the results equal A's (tests/slurm/h5_same.py: every dataset
# and non-provenance attribute within the training's resume tolerance).
submit_chain runB
interrupt B1 requeue "${ids[1]}" "$WORK/logs/cliphba-group-${ids[1]}.out" "$WORK/runB/group" last_state.json
# (Watching sub-01: the unit of world rank 0, the rank that logs; sub-02 trains on rank 1.)
interrupt B2 signal "${ids[2]}_0" "$WORK/logs/cliphba-individual-${ids[2]}_0.out" \
  "$WORK/runB/individual/sub-01" last_state.json
# The interrupted units were resumed by their second attempt (their records were left running).
for unit in group individual/sub-01 individual/sub-02; do
  attempts="$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["attempts"])' \
    "$WORK/runB/units/$unit.json")" || fail "runB: no unit record $unit"
  [ "$attempts" = 2 ] || fail "runB: unit $unit has $attempts attempt(s), expected 2 (interrupted, resumed)"
done
WAIT_LIMIT=180 wait_gone "${ids[@]}"
check_chain runB
/usr/bin/python3 "$SRC/tests/slurm/h5_same.py" "${SAME_OPTS[@]}" "$RESULTS_A" "$(results runB)" ||
  fail "runB: results after the interruptions differ from the uninterrupted run"
step "B ok: chain with a requeued group job and a SIGTERMed array task COMPLETED 0:0, results equal A's"

# --- C: jobs/permutation_sweep.sbatch (the Statistics issue's sweep), SIGTERMed mid-sweep ------
# The sweep checkpoints every 2000 permutations; the requeued job resumes from its .ckpt and must
# write exactly the file of an uninterrupted `cliphba permute` outside Slurm.
PCONFIG="$WORK/sweep.yaml"
cat >"$PCONFIG" <<YAML
permute:
  out: "$WORK/runC_ref/sweep.h5"
  checkpoint_every: 2000
  progress_seconds: 2.0
  time_start_ms: -100.0
  time_step_ms: 5.0
  mantel:
    model_rdm: "$SRC/tests/data_files/mantel_reference/model.npy"
    neural_rdm: "$SRC/tests/data_files/mantel_reference/neural.npy"
    statistic: "spearman"
    n: ${SWEEP_N:-300000}
    seed: 13
YAML
mkdir -p "$WORK/runC"
# Submitted directly (not through submit_pipeline.sh): the job finds jobs/preemptible_step.sh
# through CLIPHBA_JOBS_DIR (else <submission folder>/jobs, and ctest submits from the build tree).
jc="$(CLIPHBA_JOBS_DIR="$SRC/jobs" sbatch --parsable --ntasks-per-node=2 --cpus-per-task=1 --mem-per-cpu=256M \
      --time=00:10:00 --output="$WORK/logs/%x-%j.out" "$SRC/jobs/permutation_sweep.sbatch" \
      "$PCONFIG" --set "permute.out=$WORK/runC/sweep.h5")" || fail "sbatch permutation_sweep.sbatch: $jc"
jc="${jc%%;*}"
interrupt C signal "$jc" "$WORK/logs/cliphba-permute-$jc.out" "$WORK/runC" '*.ckpt'
[ ! -e "$WORK/runC/sweep.h5.ckpt" ] || fail "C: sweep.h5.ckpt left behind after a completed sweep"
# The reference while nothing else runs (1 rank: the sweep's results do not depend on the ranks).
"$BIN" permute --config "$PCONFIG" --set runtime.threads=1 >/dev/null 2>"$WORK/logs/sweep_reference.log" ||
  fail "cliphba permute (reference sweep) failed: $(tail -n 5 "$WORK/logs/sweep_reference.log")"
/usr/bin/python3 "$SRC/tests/slurm/h5_same.py" "$WORK/runC_ref/sweep.h5" "$WORK/runC/sweep.h5" ||
  fail "C: permutation_sweep.sbatch after SIGTERM differs from the uninterrupted sweep"
step "C ok: permutation_sweep.sbatch job $jc resumed after SIGTERM, results equal the uninterrupted sweep"
echo "PASS ($((SECONDS - T0)) s)"
