#!/usr/bin/env bash
# The quickstart: the whole pipeline on a synthetic cohort with known ground truth, in a few minutes
# on 2 cores (configs/quickstart.yaml):
#   0. set-up if needed: scripts/setup.sh when a package or the build is missing; otherwise only
#      the cliphba target is brought up to date (incremental, ccache)
#   1. cliphba synth model   -> results/quickstart/model: the base CLIP (6 vision blocks, 16 px),
#                               pre-trained contrastively on captioned shapes-world images (~1 min)
#      cliphba synth cohort  -> results/quickstart/cohort: 704 images of 352 objects, a behavioural
#                               embedding (six colour categories) with its triplet RDM; 72 of the
#                               objects are MEG conditions, held out of the behaviour fine-tune;
#                               6 participants' MEG epochs and RDM stack with planted
#                               visual/semantic latencies and individual weights (ground_truth.json)
#   2. mpirun -np 2 cliphba run -> results/quickstart/run: behaviour fine-tuning of that CLIP
#                               -> group MEG model -> 6 individual MEG models ->
#                               alignment + own-vs-other test -> results.h5 and the report
#                               (report/report.md, report/report.html, report/plots/*.png|svg)
#   3. the ground-truth checks of tests/pipeline/ground_truth_check.py, printed (not enforced here;
#      the ctest pipeline_ground_truth enforces them)
# A rerun starts from a fresh cohort and run folder (QUICKSTART_KEEP=1 reuses both: the run then
# skips every finished unit).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
CONFIG="${QUICKSTART_CONFIG:-configs/quickstart.yaml}"
NP="${QUICKSTART_NP:-2}"
PY=/usr/bin/python3
CLIPHBA="$BUILD_DIR/src/apps/cliphba"
cd "$ROOT"

# 0. Set-up: the full scripts/setup.sh (packages + whole build) only when something is missing.
need_setup=0
for p in libtorch-dev openmpi-bin libhdf5-openmpi-dev python3-h5py python3-matplotlib python3-scipy; do
  dpkg-query -W -f='${Status}' "$p" 2> /dev/null | grep -q "install ok installed" || need_setup=1
done
[ -f "$BUILD_DIR/CMakeCache.txt" ] || need_setup=1
if [ "$need_setup" = 1 ]; then
  "$ROOT/scripts/setup.sh"
else
  CCACHE_BASEDIR="${CCACHE_BASEDIR:-$ROOT}" cmake --build "$BUILD_DIR" --target cliphba -j "${CLIPHBA_JOBS:-$(nproc)}" > /dev/null
fi
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
export MPLBACKEND=Agg

"$CLIPHBA" version
echo
RUN_DIR="results/quickstart/run"
COHORT="results/quickstart/cohort"
MODEL="$("$CLIPHBA" config --config "$CONFIG" --get synth.model.out)"
if [ "${QUICKSTART_KEEP:-0}" != 1 ]; then
  rm -rf "$RUN_DIR"
  "$CLIPHBA" synth model --config "$CONFIG" --force
  "$CLIPHBA" synth cohort --config "$CONFIG" --force
else
  [ -f "$MODEL" ] || "$CLIPHBA" synth model --config "$CONFIG" --force
  [ -f "$COHORT/cohort.json" ] || "$CLIPHBA" synth cohort --config "$CONFIG" --force
fi
echo
mpirun -np "$NP" --oversubscribe "$CLIPHBA" run --config "$CONFIG"
echo
"$PY" tests/pipeline/ground_truth_check.py "$RUN_DIR/results.h5" "$COHORT" --report-only

# The old behaviour-RSA demo on the real THINGS data, when they are beside the checkout (seconds).
THINGS="${CLIPHBA_SHARED_DIR:-$ROOT/../shared}/data/things"
if [ -f "$THINGS/RDM48_triplet.npy" ]; then
  echo
  "$CLIPHBA" rsa behavior --config configs/behavior_rsa_things.yaml --force \
    --embedding "$THINGS/spose_embedding66d_rescaled.csv" --rdm "$THINGS/RDM48_triplet.npy" \
    --rdm-names "$THINGS/RDM48_image_names.txt" || echo "quickstart: THINGS behaviour RSA failed" >&2
fi
echo
echo "quickstart: report $ROOT/$RUN_DIR/report/report.html (and report.md, plots/*.png|svg)"
echo "quickstart: results $ROOT/$RUN_DIR/results.h5 (HDF5 layout: results/README.md)"
