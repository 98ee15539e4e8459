#!/usr/bin/env bash
# shellcheck disable=SC2015  # `A && B || fail`: fail exits, so these are if-then-else.
# The jobs/ chain on a real one-node Slurm (tests/slurm/slurm_local.sh): submits the pipeline with
# jobs/submit_pipeline.sh, waits by polling squeue/scontrol (never sbatch --wait: it polls every
# 32 s), and checks
#   A. every job of the chain behavior -> group -> individual array -> alignment -> report ended
#      COMPLETED with ExitCode 0:0, each started after its dependency ended, every participant of
#      every array chunk was done, and the results are complete;
#   B. a running long job interrupted after its first checkpoint, (B1) by `scontrol requeue` and
#      (B2) by SIGTERM to the batch shell (what --signal=B:TERM@120 sends: cliphba exits 75, the
#      script requeues), starts again, resumes, ends COMPLETED 0:0 and with the same results as the
#      uninterrupted run of A (tests/slurm/h5_same.py: every dataset and non-provenance attribute);
#   C. (stand-in mode) jobs/permutation_sweep.sbatch runs the same sweep to the same results.
#
#   tests/slurm/slurm_chain_test.sh CLIPHBA_BINARY [SOURCE_DIR]
#
# Which `cliphba run` (SLURM_TEST_MODE=real|stand-in): the real one when the binary has `run`, on a
# generated tiny config (the stage-1 demo: behaviour -> report, the stages wired today); otherwise,
# or with stand-in, tests/slurm/run_stand_in.sh, which maps each of the five stages onto resumable
# `cliphba permute` sweeps (see there), so the Slurm side (participant array included) is tested.
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

# --- which `cliphba run` --------------------------------------------------------------------
mkdir -p "$WORK/logs"
export CLIPHBA_LOG_DIR="$WORK/logs"
# Small jobs on the 4 declared CPUs (2 real cores): 2 ranks x 1 thread each.
export SBATCH_EXTRA="--ntasks=2 --cpus-per-task=1 --mem-per-cpu=256M --time=00:10:00"
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
# real | stand-in; default (and "real" without `run` in this build): real when cliphba has `run`.
MODE="${SLURM_TEST_MODE:-}"
if [ "$MODE" != stand-in ]; then
  if "$BIN" --help | grep -qE "^  run +"; then MODE=real; else MODE=stand-in; fi
fi
if [ "$MODE" = real ]; then
  export CLIPHBA="$BIN"
  SHARED="${CLIPHBA_SHARED_DIR:-$SRC/../shared}"
  CONFIG="$WORK/run_test.yaml"
  # The stage-1 demo shrunk (configs/run_synth.yaml): the tiny CLIP on synthetic shape images.
  # Only the stages this build of `cliphba run` has wired (behavior, report); add the MEG stages
  # (group, individual array, alignment) here with a synthetic cohort once they are.
  cat >"$CONFIG" <<YAML
synth:
  images:
    out_dir: "$WORK/data"
    n_images: 24
    image_size: 32
    n_dims: 66
    n_heldout: 6
    seed: 5
train:
  behavior:
    checkpoint: "$SHARED/fixtures/clip/model/tiny_clip_vit.safetensors"
    vocab: "$SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz"
    vocab_remap: "tiny"
    prompts: "$WORK/data/prompts.json"
    targets_csv: "$WORK/data/targets.csv"
    image_dir: "$WORK/data/images"
    heldout_names: "$WORK/data/heldout.txt"
    batch: 8
    epochs: ${REAL_EPOCHS:-60}
    patience: 100
    lr: 0.003
    dora:
      rank: 8
    loader_threads: 1
    progress_seconds: 1.0
run:
  name: "slurm_test"
  stages: ["behavior", "report"]
  report_script: ""
YAML
  "$BIN" synth images --config "$CONFIG" >/dev/null || fail "cliphba synth images failed"
  run_opts() { echo "--set run.out_dir=$WORK/$1"; }
  results() { echo "$WORK/$1/results.h5"; }
  LONG_STAGE=behavior
  # Training resumes from the state after the last whole epoch: equal within float tolerance.
  SAME_OPTS=(--rtol 1e-4 --atol 1e-6 --ignore '(?i)^/manifest' --ignore '(?i)@\w*(time|date|host|pid|wall|attempt|created|command|config_hash)')
else
  MODE=stand-in
  export CLIPHBA="$SRC/tests/slurm/run_stand_in.sh" CLIPHBA_REAL="$BIN"
  export N_PARTICIPANTS=5 CHUNK=2 ARRAY_PARALLEL=3  # 3 array tasks, the last one with 1 participant
  CONFIG="$WORK/stand_in.yaml"
  # The alignment stage is the long one (~10-20 s on 2 ranks) that part B interrupts mid-run.
  cat >"$CONFIG" <<YAML
permute:
  out: "$WORK/runA/sweep.h5"
  checkpoint_every: ${STAND_IN_CHECKPOINT_EVERY:-2000}
  progress_seconds: 2.0
  time_start_ms: -100.0
  time_step_ms: 5.0
  mantel:
    model_rdm: "$SRC/tests/data_files/mantel_reference/model.npy"
    neural_rdm: "$SRC/tests/data_files/mantel_reference/neural.npy"
    statistic: "spearman"
    n: ${STAND_IN_LONG_N:-300000}
    seed: 1
YAML
  run_opts() { echo "--set permute.out=$WORK/$1/sweep.h5"; }
  results() { echo "$WORK/$1/alignment.h5"; }
  LONG_STAGE=alignment
  SAME_OPTS=()
  echo "NOTE: this cliphba has no 'run' command: the chain runs tests/slurm/run_stand_in.sh" \
       "(resumable cliphba permute sweeps) in each stage"
fi
step "mode: $MODE"

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
read -r -a OPTS_A <<<"$(run_opts runA)"
chain="$("$SRC/jobs/submit_pipeline.sh" "$CONFIG" "${OPTS_A[@]}")" || fail "submit_pipeline.sh: $chain"
echo "$chain"
stages=() ids=()
while read -r s j; do
  stages+=("${s#stage=}")
  ids+=("${j#job=}")
done <<<"$chain"
if [ "$MODE" = real ]; then expected_stages="behavior report"
else expected_stages="behavior group individual alignment report"; fi
[ "${stages[*]}" = "$expected_stages" ] ||
  fail "stage lines '${stages[*]}', expected '$expected_stages' (the config's run.stages)"
for id in "${ids[@]}"; do [[ "$id" =~ ^[0-9]+$ ]] || fail "job id '$id' is not a number"; done
WAIT_LIMIT=240 wait_gone "${ids[@]}"
step "chain A left the queue"
prev_end=""
for i in "${!ids[@]}"; do
  n="$(check_completed "${stages[$i]}" "${ids[$i]}")" || exit 1
  first_start="$(job_records "${ids[$i]}" | awk '{print $4}' | sort | head -n1)"
  last_end="$(job_records "${ids[$i]}" | awk '{print $5}' | sort | tail -n1)"
  # ISO times sort lexically: a stage may not start before its dependency ended.
  [ -z "$prev_end" ] || [[ ! "$first_start" < "$prev_end" ]] ||
    fail "stage ${stages[$i]} started at $first_start, before its dependency ended at $prev_end"
  prev_end="$last_end"
  echo "  ${stages[$i]}: $n job record(s) COMPLETED 0:0"
done
RESULTS_A="$(results runA)"
if [ "$MODE" = stand-in ]; then
  n_tasks="$(job_records "${ids[2]}" | wc -l)"
  [ "$n_tasks" -eq 3 ] || fail "individual array: $n_tasks tasks, expected ceil(5/2) = 3"
  expected=(behavior.h5 group.h5 alignment.h5)
  for ((p = 0; p < N_PARTICIPANTS; ++p)); do expected+=("individual_$p.h5"); done
  [ "$(cat "$WORK/runA/report.txt" 2>/dev/null)" = "$(printf '%s\n' "${expected[@]}")" ] ||
    fail "report.txt missing or incomplete"
  for f in "${expected[@]}"; do
    /usr/bin/python3 -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r') as f:
    n = []
    f.visititems(lambda k, o: n.append(k) if isinstance(o, h5py.Dataset) else None)
    assert n, 'no datasets'
" "$WORK/runA/$f" || fail "$f is not a readable results file"
    [ ! -e "$WORK/runA/$f.ckpt" ] || fail "$f.ckpt left behind after a completed sweep"
  done
  # Each participant exactly once, in the array task of its chunk.
  for ((p = 0; p < N_PARTICIPANTS; ++p)); do
    task=$((p / CHUNK))
    grep -q "individual_$p.h5" "$WORK"/logs/cliphba-individual-"${ids[2]}"_"$task".out 2>/dev/null ||
      grep -q "array task $task" "$WORK"/logs/cliphba-individual-"${ids[2]}"_"$task".out ||
      fail "no log of array task $task"
  done
else
  [ -f "$RESULTS_A" ] || fail "no results file $RESULTS_A"
  # Every unit of the manifest done.
  for rec in "$WORK"/runA/units/*.json; do
    grep -q '"state": *"done"' "$rec" || fail "unit record $rec is not done: $(cat "$rec")"
  done
  /usr/bin/python3 -c "
import h5py, sys
with h5py.File(sys.argv[1], 'r') as f:
    n = []
    f.visititems(lambda k, o: n.append(k) if isinstance(o, h5py.Dataset) else None)
    assert len(n) > 1, n
" "$RESULTS_A" || fail "$RESULTS_A is not a complete results file"
fi
step "A ok: ${#ids[@]} stages COMPLETED 0:0 in dependency order, results complete"

# --- B: interrupt a running long job; it must resume and end with A's results -----------------
# B1 `scontrol requeue` (an administrator; Slurm SIGTERMs the job and requeues it itself).
# B2 SIGTERM to the batch shell only, as --signal=B:TERM@120 sends before a time limit or a
#    preemption: the script forwards it, cliphba checkpoints and exits 75, the script requeues.
# Slurm holds a requeued job back for 120 s (reason BeginTime); the test releases it as soon as the
# interrupted run has left the node.
interrupt_case() {  # interrupt_case NAME requeue|signal
  local name="$1" how="$2" chain jb deadline state code restarts log
  read -r -a opts <<<"$(run_opts "$name")"
  chain="$(STAGES="$LONG_STAGE" "$SRC/jobs/submit_pipeline.sh" "$CONFIG" "${opts[@]}")" ||
    fail "submit_pipeline.sh ($name): $chain"
  echo "$chain"
  jb="$(sed -n 's/.* job=//p' <<<"$chain" | head -n1)"
  # Interrupt once a checkpoint exists, so the second start has to resume from it.
  deadline=$((SECONDS + 120))
  until [ -n "$(find "$WORK/$name" \( -name '*.ckpt' -o -name last_state.json \) 2>/dev/null)" ]
  do
    [ "$SECONDS" -lt "$deadline" ] || fail "no checkpoint in $WORK/$name after 120 s"
    [ -n "$(squeue -h -o %T -j "$jb" 2>/dev/null)" ] ||
      fail "job $jb ended before it could be interrupted (make the long stage longer)"
    sleep 0.2
  done
  state="$(squeue -h -o %T -j "$jb" | head -n1)"
  [ "$state" = RUNNING ] || fail "job $jb is $state, not RUNNING, at its first checkpoint"
  if [ "$how" = requeue ]; then
    scontrol requeue "$jb" || fail "scontrol requeue $jb failed"
  else
    scancel --batch --signal=TERM "$jb" || fail "scancel --batch --signal=TERM $jb failed"
  fi
  step "$name: $how of running job $jb after its first checkpoint"
  deadline=$((SECONDS + 120))
  while :; do
    state="$(squeue -h -o %T -j "$jb" 2>/dev/null | head -n1)"
    [ -n "${state:-}" ] || fail "job $jb left the queue instead of being requeued"
    if [ "$state" = PENDING ]; then
      # Only once the last run's step daemons are gone: a restart before that is refused
      # ("credential revoked") or fails to launch its step (the old step's PMIx socket
      # spool/stepd.slurm.pmix.<job>.0 is still bound) - Slurm's 120 s hold avoids both.
      while compgen -G "$WORK/cluster/spool/*_$jb.*" >/dev/null ||
        compgen -G "$WORK/cluster/spool/*pmix.$jb.*" >/dev/null; do
        [ "$SECONDS" -lt "$deadline" ] || fail "job $jb: step daemons of the last run still there"
        sleep 0.2
      done
      sleep 1  # credentials are compared in whole seconds
      # (The reason reads None for a moment before BeginTime: release in any case.)
      scontrol update JobId="$jb" StartTime=now || fail "could not release requeued job $jb"
      break
    fi
    [ "$SECONDS" -lt "$deadline" ] || fail "job $jb not requeued after 120 s (state $state)"
    sleep 0.2
  done
  WAIT_LIMIT=180 wait_gone "$jb"
  read -r state code restarts _ < <(job_records "$jb" | head -n1)
  [ "$state" = COMPLETED ] && [ "$code" = 0:0 ] ||
    fail "interrupted job $jb: JobState=$state ExitCode=$code"
  [ "$restarts" -ge 1 ] || fail "job $jb shows Restarts=$restarts: it was not requeued"
  log="$(find "$WORK/logs" -name "cliphba-$LONG_STAGE-$jb*.out" | head -n1)"
  grep -q "restart 1" "$log" || fail "log of job $jb shows no second start"
  if [ "$how" = signal ]; then
    grep -q "exit 75" "$log" || fail "job $jb: no 'exit 75' -> requeue in its log"
  fi
  grep -qiE "resuming from|resumed after" "$log" || fail "job $jb did not resume from its checkpoint"
  if [ "$MODE" = real ] && [ "$LONG_STAGE" != report ]; then
    # The rest of the chain on the interrupted run, so that it has a results file to compare.
    chain="$(STAGES=report "$SRC/jobs/submit_pipeline.sh" "$CONFIG" "${opts[@]}")" ||
      fail "submit_pipeline.sh (report of $name): $chain"
    local jr
    jr="$(sed -n 's/.* job=//p' <<<"$chain" | head -n1)"
    WAIT_LIMIT=120 wait_gone "$jr"
    check_completed report "$jr" >/dev/null || exit 1
  fi
  /usr/bin/python3 "$SRC/tests/slurm/h5_same.py" "${SAME_OPTS[@]}" "$RESULTS_A" "$(results "$name")" ||
    fail "$name: results after the interruption differ from the uninterrupted run"
  step "$name ok: job $jb interrupted ($how), requeued (Restarts=$restarts), resumed, COMPLETED 0:0, results equal A's"
}
interrupt_case runB1 requeue
interrupt_case runB2 signal

# --- C: jobs/permutation_sweep.sbatch (the Statistics issue's sweep) with the same sweep ----------
if [ "$MODE" = stand-in ]; then
  mkdir -p "$WORK/runC"
  # Submitted directly (not through submit_pipeline.sh): the job finds jobs/preemptible_step.sh
  # through CLIPHBA_JOBS_DIR (else <submission folder>/jobs, and ctest submits from the build tree).
  jc="$(CLIPHBA_JOBS_DIR="$SRC/jobs" sbatch --parsable --ntasks-per-node=2 --cpus-per-task=1 --mem-per-cpu=256M \
        --time=00:10:00 --output="$WORK/logs/%x-%j.out" "$SRC/jobs/permutation_sweep.sbatch" \
        "$CONFIG" --set "permute.out=$WORK/runC/alignment.h5" --set permute.mantel.seed=13)" ||
    fail "sbatch permutation_sweep.sbatch: $jc"
  jc="${jc%%;*}"
  WAIT_LIMIT=120 wait_gone "$jc"
  check_completed permutation_sweep "$jc" >/dev/null || exit 1
  /usr/bin/python3 "$SRC/tests/slurm/h5_same.py" "$RESULTS_A" "$WORK/runC/alignment.h5" ||
    fail "permutation_sweep.sbatch: results differ from the alignment stage's"
  step "C ok: permutation_sweep.sbatch job $jc COMPLETED 0:0 with the alignment stage's results"
fi
echo "PASS ($((SECONDS - T0)) s)"
