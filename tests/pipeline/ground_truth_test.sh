#!/usr/bin/env bash
# The ground-truth checks of issue 6 on the quickstart configuration (configs/quickstart.yaml, its
# paths moved into OUT_DIR): `cliphba synth model` and `synth cohort`, `mpirun -np 2 cliphba run`
# (behaviour -> group
# -> 6 individual MEG models -> alignment -> report), then tests/pipeline/ground_truth_check.py.
#   run     : the cohort and the run (ctest fixture of the checks below); also asserts that the
#             report (report.md/html, PNG and SVG plots) was written and recomputes the alignment
#             with scipy (alignment_recompute.py)
#   CHECK   : a check of ground_truth_check.py on the run (the ones ctest enforces: see
#             tests/pipeline/CMakeLists.txt; `run` prints them all)
#   browser : the run's report.html opened in headless chromium (report_browser_check.py): it
#             renders, every image loads, every figure says which objects it is on
# usage: ground_truth_test.sh run|CHECK CLIPHBA MPIEXEC SHARED_DIR SOURCE_DIR OUT_DIR
set -euo pipefail
CASE=$1 CLIPHBA=$2 MPIEXEC=$3 SHARED=$4 SRC=$5 OUT=$6
PY=/usr/bin/python3
fail() { echo "FAIL: $*" >&2; exit 1; }

if [ "$CASE" = browser ]; then
  [ -f "$OUT/run/report/report.html" ] || fail "no report.html: the fixture test pipeline_ground_truth_run failed"
  exec "$PY" "$SRC/tests/pipeline/report_browser_check.py" "$OUT/run/report/report.html" \
    --min-figures 10
fi
if [ "$CASE" != run ]; then
  [ -f "$OUT/run/results.h5" ] || fail "no $OUT/run/results.h5: the fixture test pipeline_ground_truth_run failed"
  exec "$PY" "$SRC/tests/pipeline/ground_truth_check.py" "$OUT/run/results.h5" "$OUT/cohort" --check "$CASE"
fi

rm -rf "$OUT" && mkdir -p "$OUT"
# The quickstart configuration with its folders under OUT and the shared data by absolute path.
sed -e "s#\"results/quickstart/#\"$OUT/#g" -e "s#\"\.\./shared/#\"$SHARED/#g" \
  "$SRC/configs/quickstart.yaml" > "$OUT/quickstart.yaml"
! grep -q '"results/\|"\.\./' "$OUT/quickstart.yaml" || fail "a relative path is left in $OUT/quickstart.yaml"
"$CLIPHBA" synth model --config "$OUT/quickstart.yaml" --force > "$OUT/model.log" 2>&1 \
  || { cat "$OUT/model.log"; fail "synth model"; }
"$CLIPHBA" synth cohort --config "$OUT/quickstart.yaml" --force > "$OUT/cohort.log" 2>&1 \
  || { cat "$OUT/cohort.log"; fail "synth cohort"; }
MPLBACKEND=Agg "$MPIEXEC" -np 2 --oversubscribe "$CLIPHBA" run --config "$OUT/quickstart.yaml" \
  --set run.report_script="$SRC/scripts/report.py" > "$OUT/run.out" 2> "$OUT/run.log" \
  || { tail -40 "$OUT/run.log"; fail "cliphba run"; }
cat "$OUT/run.out"
for f in report/report.md report/report.html report/plots/alignment_group.png \
  report/plots/alignment_group.svg report/plots/own_vs_other.png report/plots/behavior.png \
  report/plots/alignment_clip.png report/plots/compare_group_vs_clip.png \
  report/plots/compare_individual_vs_group.png; do
  [ -s "$OUT/run/$f" ] || fail "no $OUT/run/$f"
done
[ -s "$OUT/run/report/plots/block_weights_group.png" ] || fail "no block-weights heatmap"
"$PY" "$SRC/tests/pipeline/ground_truth_check.py" "$OUT/run/results.h5" "$OUT/cohort" --report-only
# Every MEG model's learned block weights (/meg/<model>/block_weights): one row per timepoint of
# the axis and one column per vision block of the base model, rows of weights >= 0 summing to 1,
# and learned (the head starts one-hot on the last block; training moves some timepoint off it).
"$PY" - "$OUT/run/results.h5" "$OUT/model/clip_vit_6blocks.safetensors" <<'PYEOF' || fail "block weights"
import json, struct, sys
import h5py, numpy as np
with open(sys.argv[2], "rb") as fh:  # the base model's vision block count, from its header
    header = json.loads(fh.read(struct.unpack("<Q", fh.read(8))[0]))
L = len({k.split(".")[3] for k in header if k.startswith("visual.transformer.resblocks.")})
with h5py.File(sys.argv[1], "r") as f:
    T = f["/meg/times_ms"].shape[0]
    models = ["group"] + ["individual/" + p.decode() if isinstance(p, bytes) else "individual/" + p
                          for p in f["/meg/participants"][()]]
    for m in models:
        w = f[f"/meg/{m}/block_weights"][()]
        assert w.shape == (T, L), (m, w.shape, (T, L))
        assert np.isfinite(w).all() and (w >= 0).all(), m
        assert np.allclose(w.sum(1), 1, atol=1e-5), (m, w.sum(1)[:5])
        onehot = np.zeros(L); onehot[-1] = 1
        assert not np.allclose(w, onehot, atol=1e-6), f"{m}: block weights never left the one-hot start"
print(f"block weights: {len(models)} models, ({T}, {L}) each, rows sum to 1, learned")
PYEOF
# Every alignment value recomputed with scipy from the written model RDMs and the MEG stack, on
# the objects and folds the file says (and no fold model saw its fold).
"$PY" "$SRC/tests/pipeline/alignment_recompute.py" "$OUT/run" "$OUT/run/results.h5" \
  "$OUT/cohort/meg/rdm.h5" || fail "alignment recomputation"
# The behaviour comparison (plain CLIP vs CLIP-HBA-Behavior, held-out objects) recomputed.
"$PY" "$SRC/tests/pipeline/behavior_compare_check.py" "$OUT/run" "$OUT/run/results.h5" "$CLIPHBA" \
  "$OUT/model/clip_vit_6blocks.safetensors" "$OUT/cohort/behavior/prompts.json" \
  "$SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz" "$OUT/cohort/images" 1 \
  || fail "behaviour comparison recomputation"
# The alignment cluster tests (sign flips over participants) find MNE's clusters.
"$PY" "$SRC/tests/pipeline/alignment_clusters_check.py" "$OUT/run/results.h5" || fail "alignment clusters"
echo "run: pass"
