#!/usr/bin/env bash
# Submits the whole cohort pipeline as a chain of Slurm jobs, each starting only after the previous
# one succeeded (--dependency=afterok):
#   behavior -> group -> individual (array over participant chunks) -> predict (when configured:
#   every model on run.predict.images) -> alignment (the permutation sweep) -> report
#
#   jobs/submit_pipeline.sh CONFIG.yaml [cliphba run options, e.g. --set key=value]
#
# Prints one line per job, machine-readable: `stage=<name> job=<id>` (the array's line is the array
# job id; afterok on it waits for every task). A stage that fails cancels the rest of the chain
# (the cluster needs DependencyParameters=kill_invalid_depend, else they stay pending).
#
# Environment (all optional):
#   CLIPHBA                 cliphba binary (default build/src/apps/cliphba)
#   N_PARTICIPANTS          participant count; default: the length of run.participants
#                           (`cliphba config --config CONFIG --get run.participants`), or, when
#                           that is [] (= all), the participants of the MEG RDM stack meg.rdm.path
#                           (/meg/participants of an HDF5 file, the first axis of an NPY file)
#   CHUNK                   participants per array task (default 1)
#   ARRAY_PARALLEL          array tasks running at once (default: no limit)
#   STAGES                  stages to submit, in chain order (default: the config's run.stages)
#   SBATCH_EXTRA            extra sbatch options for every job (e.g. "--partition=gpu --time=1:00:00")
#   SBATCH_EXTRA_<STAGE>    extra sbatch options for one stage (STAGE upper case, e.g.
#                           SBATCH_EXTRA_INDIVIDUAL="--ntasks=4")
#   CLIPHBA_LOG_DIR         folder for the job logs (default: the submission folder)
# Exit codes: 0 submitted; 2 usage (no sbatch on PATH, unreadable config, no participant count);
# 1 a submission failed (the jobs submitted before it are cancelled).
set -euo pipefail

die2() { echo "submit_pipeline.sh: $*" >&2; exit 2; }

[ $# -ge 1 ] || die2 "usage: jobs/submit_pipeline.sh CONFIG.yaml [cliphba run options]"
CONFIG="$1"
shift
command -v sbatch >/dev/null 2>&1 ||
  die2 "sbatch not found on PATH: run this on a Slurm login node (or load the Slurm module)"
if ! [ -f "$CONFIG" ] || ! [ -r "$CONFIG" ]; then die2 "config '$CONFIG' is not a readable file"; fi
CONFIG="$(cd "$(dirname "$CONFIG")" && pwd)/$(basename "$CONFIG")"

JOBS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CLIPHBA="${CLIPHBA:-build/src/apps/cliphba}"
[ -x "$CLIPHBA" ] || die2 "cliphba binary '$CLIPHBA' not found or not executable (set CLIPHBA)"
CLIPHBA="$(cd "$(dirname "$CLIPHBA")" && pwd)/$(basename "$CLIPHBA")"
# The jobs find the binary and jobs/preemptible_step.sh through these (sbatch exports the
# environment to the job).
export CLIPHBA CLIPHBA_JOBS_DIR="$JOBS_DIR"

CHUNK="${CHUNK:-1}"
ARRAY_PARALLEL="${ARRAY_PARALLEL:-}"
[[ "$CHUNK" =~ ^[1-9][0-9]*$ ]] || die2 "CHUNK must be a positive integer, not '$CHUNK'"
[[ -z "$ARRAY_PARALLEL" || "$ARRAY_PARALLEL" =~ ^[1-9][0-9]*$ ]] ||
  die2 "ARRAY_PARALLEL must be a positive integer, not '$ARRAY_PARALLEL'"

# `cliphba config --get KEY` under the configuration the jobs will see: the --set (and --out-dir)
# options among the extra arguments; run-only flags (--force, --participants) are not config.
CONFIG_SETS=()
args=("$@")
for ((i = 0; i < ${#args[@]}; ++i)); do
  case "${args[$i]}" in
    --set) CONFIG_SETS+=(--set "${args[$((i + 1))]:-}"); i=$((i + 1)) ;;
    --set=*) CONFIG_SETS+=(--set "${args[$i]#--set=}") ;;
    --out-dir) CONFIG_SETS+=(--set "run.out_dir=${args[$((i + 1))]:-}"); i=$((i + 1)) ;;
    --out-dir=*) CONFIG_SETS+=(--set "run.out_dir=${args[$i]#--out-dir=}") ;;
  esac
done
get() { "$CLIPHBA" config --config "$CONFIG" --get "$1" "${CONFIG_SETS[@]}"; }

if [ -z "${STAGES:-}" ]; then
  # The config's run.stages, in chain order (cliphba run refuses --only for other stages).
  configured="$(get run.stages)" || die2 "cannot read run.stages from $CONFIG (see the error above)"
  STAGES=""
  for s in behavior group individual predict alignment report; do
    grep -qx "$s" <<<"$configured" && STAGES+="$s "
  done
  [ -n "$STAGES" ] || die2 "run.stages of $CONFIG names no stage"
fi

if [[ " $STAGES " == *" individual "* ]] && [ -z "${N_PARTICIPANTS:-}" ]; then
  value="$(get run.participants)" || die2 "cannot read run.participants from $CONFIG"
  N_PARTICIPANTS="$(grep -c . <<<"$value")" || true
  if [ "$N_PARTICIPANTS" -eq 0 ]; then  # [] = every participant of the MEG RDM stack
    rdm="$(get meg.rdm.path)" || die2 "cannot read meg.rdm.path from $CONFIG"
    if [ -z "$rdm" ] || ! [ -r "$rdm" ]; then
      die2 "run.participants is [] and meg.rdm.path ('$rdm') is not a readable file: set N_PARTICIPANTS"
    fi
    N_PARTICIPANTS="$(/usr/bin/python3 - "$rdm" <<'PY'
import sys
path = sys.argv[1]
if path.endswith(".npy"):
    import numpy as np
    print(np.load(path, mmap_mode="r").shape[0])
else:
    import h5py
    with h5py.File(path, "r") as f:
        print(len(f["/meg/participants"]) if "/meg/participants" in f else f["/meg/rdm"].shape[0])
PY
)" || die2 "cannot count the participants in $rdm: set N_PARTICIPANTS"
  fi
fi
if [[ " $STAGES " == *" individual "* ]]; then
  if ! [[ "${N_PARTICIPANTS:-}" =~ ^[1-9][0-9]*$ ]]; then
    die2 "no participants in $CONFIG (N_PARTICIPANTS='${N_PARTICIPANTS:-}')"
  fi
  export N_PARTICIPANTS CHUNK
fi

LOG_OPT=()
if [ -n "${CLIPHBA_LOG_DIR:-}" ]; then
  mkdir -p "$CLIPHBA_LOG_DIR"
  LOG_OPT=(--output="$CLIPHBA_LOG_DIR/%x-%j.out")
fi

submitted=()
cancel_submitted() {
  if ((${#submitted[@]})); then scancel "${submitted[@]}" 2>/dev/null || true; fi
}

prev=""
for stage in $STAGES; do
  extra_var="SBATCH_EXTRA_${stage^^}"
  # Word splitting of the SBATCH_EXTRA* strings is intended: they hold several options.
  # shellcheck disable=SC2206
  opts=(--parsable --job-name="cliphba-$stage" ${SBATCH_EXTRA:-} ${!extra_var:-})
  [ -n "$prev" ] && opts+=(--dependency="afterok:$prev")
  case "$stage" in
    individual)
      tasks=$(((N_PARTICIPANTS + CHUNK - 1) / CHUNK))
      log=()
      [ -n "${CLIPHBA_LOG_DIR:-}" ] && log=(--output="$CLIPHBA_LOG_DIR/%x-%A_%a.out")
      cmd=(sbatch "${opts[@]}" "${log[@]}" --array="0-$((tasks - 1))${ARRAY_PARALLEL:+%$ARRAY_PARALLEL}"
           "$JOBS_DIR/cohort_array.sbatch" "$CONFIG" "$@") ;;
    behavior | group | predict | alignment | report)
      cmd=(sbatch "${opts[@]}" "${LOG_OPT[@]}" "$JOBS_DIR/stage.sbatch" "$stage" "$CONFIG" "$@") ;;
    *) cancel_submitted; die2 "unknown stage '$stage' in STAGES" ;;
  esac
  if ! out="$("${cmd[@]}")"; then
    echo "submit_pipeline.sh: sbatch failed for stage $stage; cancelling ${submitted[*]:-nothing}" >&2
    cancel_submitted
    exit 1
  fi
  id="${out%%;*}"  # --parsable prints "id" or "id;cluster"
  submitted+=("$id")
  prev="$id"
  echo "stage=$stage job=$id"
done
