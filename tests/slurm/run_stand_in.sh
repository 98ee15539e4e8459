#!/usr/bin/env bash
# Test stand-in for `cliphba run --only STAGE` while that command does not exist yet in this build:
# lets tests/slurm/slurm_chain_test.sh exercise jobs/ (dependencies, array chunks, SIGTERM
# forwarding, exit 75 -> requeue -> resume) with real, resumable, MPI-collective cliphba work.
# Every other command is passed to the real binary ($CLIPHBA_REAL).
#
# Each stage is a `cliphba permute --resume` Mantel sweep with the config's permute section,
# written into the folder of permute.out (the stand-in's "run folder"):
#   behavior, group -> <stage>.h5 (permute.mantel.n = STAND_IN_SHORT_N, default 200)
#   individual      -> individual_<p>.h5 for each p of --participants (seed 100 + p; serial, rank 0)
#   alignment       -> alignment.h5 with the config's permute.mantel.n (the long, requeueable job)
#   report          -> report.txt listing the files above (rank 0; fails if one is missing)
# Exit codes are cliphba's: 75 when a SIGTERM interrupted the sweep after a checkpoint.
set -uo pipefail
REAL="${CLIPHBA_REAL:?set CLIPHBA_REAL to the real cliphba binary}"
[ "${1:-}" = run ] || exec "$REAL" "$@"
shift
config="" stage="" participants=""
sets=()
while [ $# -gt 0 ]; do
  case "$1" in
    --config) config="$2"; shift 2 ;;
    --only) stage="$2"; shift 2 ;;
    --participants) participants="$2"; shift 2 ;;
    --set) sets+=(--set "$2"); shift 2 ;;
    *) echo "run_stand_in.sh: unsupported argument '$1'" >&2; exit 2 ;;
  esac
done
out="$("$REAL" config --config "$config" --get permute.out "${sets[@]}")" || exit 2
dir="$(dirname "$out")"
mkdir -p "$dir"
short=(--set "permute.mantel.n=${STAND_IN_SHORT_N:-200}")

sweep() {  # sweep NAME SEED [extra --set ...]
  local name="$1" seed="$2"
  shift 2
  local launcher=()
  [ "${SERIAL:-0}" = 1 ] &&
    launcher=(env -u PMIX_RANK -u PMI_SIZE -u OMPI_COMM_WORLD_SIZE -u MPI_LOCALNRANKS -u SLURM_STEP_ID)
  # In the background, so that this shell survives SIGTERM (forwarded below) and returns cliphba's
  # own exit code (75 after a checkpoint), as `cliphba run` itself would.
  "${launcher[@]}" "$REAL" permute --config "$config" --resume "${sets[@]}" \
    --set "permute.out=$dir/$name.h5" --set "permute.mantel.seed=$seed" "$@" &
  local child=$! rc
  trap 'kill -TERM "$child" 2>/dev/null' TERM
  wait "$child"
  rc=$?
  while [ "$rc" -gt 128 ] && kill -0 "$child" 2>/dev/null; do
    wait "$child"
    rc=$?
  done
  trap - TERM
  return "$rc"
}

case "$stage" in
  behavior) sweep behavior 11 "${short[@]}" ;;
  group) sweep group 12 "${short[@]}" ;;
  alignment) sweep alignment 13 ;;
  individual)
    [ -n "$participants" ] || { echo "run_stand_in.sh: --participants missing" >&2; exit 2; }
    IFS=, read -r -a ps <<<"$participants"
    # One srun step hosts one MPI job (a second MPI_Init in the same PMIx step fails), so the
    # per-participant sweeps run one after another without MPI on the step's first rank.
    [ "${SLURM_PROCID:-0}" = 0 ] || exit 0
    for p in "${ps[@]}"; do
      SERIAL=1 sweep "individual_$p" "$((100 + p))" "${short[@]}" || exit $?
    done ;;
  report)
    [ "${SLURM_PROCID:-0}" = 0 ] || exit 0
    files=(behavior.h5 group.h5 alignment.h5)
    for ((p = 0; p < ${N_PARTICIPANTS:?}; ++p)); do files+=("individual_$p.h5"); done
    for f in "${files[@]}"; do
      [ -f "$dir/$f" ] || { echo "run_stand_in.sh: report: $dir/$f missing" >&2; exit 4; }
    done
    printf '%s\n' "${files[@]}" >"$dir/report.txt" ;;
  *) echo "run_stand_in.sh: unknown stage '$stage'" >&2; exit 2 ;;
esac
