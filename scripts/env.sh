# Sourced by the scripts: the process environment cliphba is measured and tested with.
# ATen's OpenMP pool and OpenBLAS's pthread pool share the cores; passive OpenMP waiting stops idle
# OpenMP workers from spinning while OpenBLAS runs (measured: a ViT-B/32 step 21 s -> 8 s on 2 cores).
export OMP_WAIT_POLICY="${OMP_WAIT_POLICY:-PASSIVE}"
# Open MPI refuses to run as root (containers, CI) without explicit consent.
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
