#!/bin/bash
# scripts/plot_results.py and scripts/report.py on a small results file built here with h5py
# following results/README.md (MEG alignment + behaviour): every figure as PNG and SVG, report.md
# and report.html written, report.md holding the key numbers (computed here independently from
# the datasets), missing parts skipped, and a non-cliphba / non-HDF5 file refused (exit 4 / 3).
# Usage: plot_report_test.sh PYTHON SCRIPTS_DIR WORK_DIR
set -euo pipefail
PY=$1 SCRIPTS=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$PY" - "$WORK" <<'PYEOF'
import sys
import h5py
import numpy as np
work = sys.argv[1]
rng = np.random.default_rng(5)
P, T = 3, 21
times = -50.0 + 10.0 * np.arange(T)
labels = ["p01", "p02", "p03"]
str_dt = h5py.string_dtype("utf-8")
def curve(peak, amp):
    return amp * np.exp(-0.5 * ((times - peak) / 30.0) ** 2) + 0.01 * rng.normal(size=T)
with h5py.File(f"{work}/full.h5", "w") as f:
    f.attrs["cliphba_version"] = "0.1.0"; f.attrs["schema_version"] = 1; f.attrs["command"] = "run"
    f["/meg/times_ms"] = times
    f.create_dataset("/meg/participants", data=labels, dtype=str_dt)
    g = np.stack([curve(100 + 10 * p, 0.3) for p in range(P)])
    a = f.create_group("/meg/group/alignment")
    a["spearman"] = g; a["pearson"] = g * 0.9
    keep = times >= 0
    a["auc"] = np.array([np.trapz(r[keep], times[keep] / 1000) for r in g])
    a["peak_ms"] = np.array([times[keep][np.argmax(r[keep])] for r in g])
    a["significant"] = ((times >= 80) & (times <= 120)).astype(np.int8)
    a.attrs["participants"] = labels
    for i, lab in enumerate(labels):
        c = np.stack([curve(100, 0.5 if j == i else 0.2) for j in range(P)])
        b = f.create_group(f"/meg/individual/{lab}/alignment")
        b["spearman"] = c; b["pearson"] = c
        b["auc"] = np.array([np.trapz(r[keep], times[keep] / 1000) for r in c])
        b["peak_ms"] = np.array([times[keep][np.argmax(r[keep])] for r in c])
        b["clusters"] = np.array([[14.0, 17.0, 3.2, 0.01], [2.0, 4.0, 1.0, 0.4]])
    f["/meg/ceiling/lower"] = np.full((P, T), 0.4); f["/meg/ceiling/upper"] = np.full((P, T), 0.6)
    mx = np.array([[0.5, 0.2, 0.1], [0.1, 0.45, 0.2], [0.2, 0.1, 0.55]])
    d = f.create_dataset("/meg/own_vs_other/matrix", data=mx)
    f["/meg/own_vs_other/own"] = np.arange(3)
    d.attrs["statistic"] = 0.3625; d.attrs["p_value"] = 1 / 6; d.attrs["n_permutations"] = 6
    d.attrs["exact"] = 1
    d.attrs["rows"] = [f"individual/{l}" for l in labels]; d.attrs["columns"] = labels
    s = f.create_dataset("/behavior/scores", data=np.array([[0.61, 0.5432, 0.4, 0.9],
                                                            [0.55, 0.4876, 0.35, 0.88]]))
    s.attrs["rows"] = ["correlation", "cosine"]
    s.attrs["columns"] = ["pearson", "spearman", "kendall_tau_a", "cosine"]
    f["/behavior/reference_rdm"] = rng.random(45); f["/behavior/model_rdm/correlation"] = rng.random(45)
    # Expected numbers for the report, computed here from the datasets.
    with open(f"{work}/expected.txt", "w") as e:
        # group: the peak, AUC and maximum of the mean curve; the participants' own peaks last.
        m = g.mean(0); i = np.flatnonzero(keep)[np.argmax(m[keep])]
        pk = a["peak_ms"][()]
        e.write(f"| group | {times[i]:.1f} | {np.trapz(m[keep], times[keep] / 1000):.4f} | "
                f"{m[i]:.3f} | 0.400..0.600 | {pk.mean():.1f} +- {pk.std():.1f} |\n")
        b = f["/meg/individual/p02/alignment"]
        own = b["spearman"][1]
        e.write(f"| individual/p02 | {b['peak_ms'][1]:.1f} | {b['auc'][1]:.4f} | "
                f"{own[keep].max():.3f} |\n")
        e.write("own - other = 0.3625, p = 0.1667, 6 permutations (exact\n")
        e.write("| correlation | 0.543 |\n| cosine | 0.488 |\n")
# A behaviour-only file as `cliphba train behavior` writes evaluation.h5 (no cliphba_version).
with h5py.File(f"{work}/behavior_only.h5", "w") as f:
    f.attrs["schema_version"] = 1; f.attrs["command"] = "train behavior"
    f["/behavior/reference_rdm"] = rng.random(10); f["/behavior/model_rdm/correlation"] = rng.random(10)
    f["/behavior"].attrs["spearman"] = 0.7777; f["/behavior"].attrs["triplet_accuracy"] = 0.61
# An HDF5 file that is not a cliphba results file.
with h5py.File(f"{work}/foreign.h5", "w") as f:
    f["x"] = np.zeros(3)
PYEOF

# Full file: every figure in both formats, report with the numbers.
"$PY" "$SCRIPTS/plot_results.py" "$WORK/full.h5" "$WORK/plots" > "$WORK/plots.log"
for name in alignment_group alignment_individual_p01 alignment_individual_p02 \
            alignment_individual_p03 alignment_overview own_vs_other behavior; do
  for ext in png svg; do
    [ -s "$WORK/plots/$name.$ext" ] || fail "missing $name.$ext"
  done
done
head -c 8 "$WORK/plots/own_vs_other.png" | od -An -c | grep -q "P   N   G" || fail "not a PNG"
grep -q "<svg" "$WORK/plots/alignment_group.svg" || fail "not an SVG"

"$PY" "$SCRIPTS/report.py" "$WORK/full.h5" "$WORK/report" > "$WORK/report.log"
[ -s "$WORK/report/report.md" ] || fail "no report.md"
[ -s "$WORK/report/report.html" ] || fail "no report.html"
[ -s "$WORK/report/plots/alignment_group.png" ] || fail "report did not make the plots"
while IFS= read -r want; do
  grep -qF -- "$want" "$WORK/report/report.md" || fail "report.md lacks '$want'"
done < "$WORK/expected.txt"
grep -q "](plots/own_vs_other.png)" "$WORK/report/report.md" || fail "report.md does not link the PNG"
grep -q "data:image/png;base64," "$WORK/report/report.html" || fail "report.html does not embed PNGs"

# Behaviour-only file: MEG parts skipped, behaviour figure and number present.
"$PY" "$SCRIPTS/report.py" "$WORK/behavior_only.h5" "$WORK/beh" > /dev/null
[ -s "$WORK/beh/plots/behavior.png" ] && [ -s "$WORK/beh/plots/behavior.svg" ] || fail "no behaviour plot"
ls "$WORK/beh/plots" | grep -q alignment && fail "alignment plot from a file without MEG results"
grep -qF "0.778" "$WORK/beh/report.md" || fail "behaviour Spearman missing"
grep -q "MEG alignment" "$WORK/beh/report.md" && fail "MEG section for a file without MEG results"

# Not a cliphba results file (exit 4) and not HDF5 at all / missing (exit 3), with a clear message.
for script in plot_results.py report.py; do
  set +e
  "$PY" "$SCRIPTS/$script" "$WORK/foreign.h5" "$WORK/x" 2> "$WORK/err.txt"; rc=$?
  set -e
  [ $rc -eq 4 ] || fail "$script: foreign.h5 exit $rc, expected 4"
  grep -q "not a cliphba results file" "$WORK/err.txt" || fail "$script: unclear message: $(cat "$WORK/err.txt")"
  echo "not hdf5" > "$WORK/text.h5"
  set +e
  "$PY" "$SCRIPTS/$script" "$WORK/text.h5" "$WORK/x" 2> "$WORK/err.txt"; rc=$?
  set -e
  [ $rc -eq 3 ] || fail "$script: text.h5 exit $rc, expected 3"
  grep -q "not a readable HDF5 file" "$WORK/err.txt" || fail "$script: unclear message: $(cat "$WORK/err.txt")"
  set +e
  "$PY" "$SCRIPTS/$script" "$WORK/missing.h5" "$WORK/x" 2> "$WORK/err.txt"; rc=$?
  set -e
  [ $rc -eq 3 ] || fail "$script: missing file exit $rc, expected 3"
done
echo "plot_report_test: OK"
