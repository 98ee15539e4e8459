# shellcheck shell=bash
# Sourced by the jobs/*.sbatch scripts (not submitted itself): runs one srun step so that the batch
# shell can take Slurm's SIGTERM, and turns cliphba's "preempted" exit into a requeue.
#
#   source "$CLIPHBA_JOBS_DIR/preemptible_step.sh"
#   preemptible_step srun --mpi=pmix "$CLIPHBA" run --config "$CONFIG" ...
#
# Slurm sends SIGTERM to the batch shell 120 s before the time limit or a preemption
# (`--signal=B:TERM@120`), and to the whole job on `scontrol requeue`/`scancel`. The trap passes it
# on to the ranks with `scancel --signal=TERM $SLURM_JOB_ID` (every step's tasks, not this shell)
# - not to srun itself: srun answers SIGTERM with "forcing job termination", i.e. SIGKILL to the
# ranks before they can checkpoint. cliphba then checkpoints and exits 75. Exit 75 means
# "stopped cleanly, resume me": this function requeues the job (it needs `--requeue`) and exits 0,
# and the requeued job resumes from the checkpoint. Any other exit code is the job's exit code.
# A requeue Slurm already started (`scontrol requeue` from outside) makes the second requeue a
# harmless no-op.

# The TERM trap. Only while the job is RUNNING: when Slurm itself ends the job (scontrol requeue,
# scancel, preemption) the ranks get SIGTERM from Slurm, and a scancel then would retry "try again
# later" for ~30 s and could hit the requeued job's next start (same job id). Hence also the
# timeout and the background: this shell keeps waiting for the step.
_preemptible_forward_term() {
  local state
  state="$(squeue -h -o %T -j "${SLURM_JOB_ID:?}" 2>/dev/null | head -n1)"
  if [ "$state" = RUNNING ]; then
    echo "SIGTERM: asking the ranks to checkpoint"
    (timeout 5 scancel --signal=TERM "$SLURM_JOB_ID" 2>/dev/null ||
      echo "scancel --signal=TERM $SLURM_JOB_ID failed") &
  else
    echo "SIGTERM while the job is ${state:-unknown}: Slurm is stopping the ranks itself"
  fi
}

preemptible_step() {
  echo "job ${SLURM_JOB_ID:-?}${SLURM_ARRAY_TASK_ID:+ (array task $SLURM_ARRAY_TASK_ID)}" \
       "restart ${SLURM_RESTART_COUNT:-0} on $(hostname): $*"
  "$@" &
  local step=$! rc
  trap _preemptible_forward_term TERM
  wait "$step"
  rc=$?
  # wait returns > 128 when the trap interrupted it: wait again for the step's own exit code.
  while [ "$rc" -gt 128 ] && kill -0 "$step" 2>/dev/null; do
    wait "$step"
    rc=$?
  done
  if [ "$rc" -gt 128 ]; then  # the step ended while the trap ran: bash kept its status
    local again
    wait "$step" 2>/dev/null
    again=$?
    [ "$again" -ne 127 ] && rc=$again
  fi
  trap - TERM
  if [ "$rc" -eq 75 ]; then
    echo "step preempted after a checkpoint (exit 75): requeueing job ${SLURM_JOB_ID:-?}"
    scontrol requeue "${SLURM_JOB_ID:?}" || echo "scontrol requeue failed (already requeued?)"
    exit 0
  fi
  echo "step finished with exit code $rc"
  exit "$rc"
}
