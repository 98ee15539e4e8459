#!/usr/bin/env bash
# The out-of-sample ground truth over many synthetic cohorts (issue 17, slow benchmark, not CI):
# the quickstart configuration (configs/quickstart.yaml: the same base model) run through the whole
# pipeline for N cohort seeds, then tests/pipeline/ground_truth_check.py on each, as one table.
#   scripts/bench_ground_truth.sh seeds [N]   N cohort seeds (default 10) from FIRST_SEED (1), or
#                                             the list SEEDS, as configured
#   scripts/bench_ground_truth.sh null [N]    N null cohorts (default 100): no planted individual
#                                             differences (synth.cohort.weight_spread 0,
#                                             latency_jitter_ms 0, amplitude_spread 0,
#                                             shared_sensor_patterns true), seeds
#                                             1001..1000+N; prints
#                                             the rate at which the out-of-sample own-vs-other
#                                             test rejects at alpha 0.05, with its binomial
#                                             (Clopper-Pearson) 95 % CI, and the rate at which
#                                             the cluster test of individual - group finds a
#                                             significant cluster
#   scripts/bench_ground_truth.sh silent [N]  N cohorts (default 100) whose MEG carries no
#                                             stimulus information (null cohorts with
#                                             synth.cohort.visual_amplitude 0 and
#                                             semantic_amplitude 0), seeds 2001..2000+N: every
#                                             model then has the same expected out-of-sample
#                                             alignment (0) with every participant, so each
#                                             difference curve of /compare/meg is a true null;
#                                             prints each comparison's cluster-test rejection
#                                             rate with its Clopper-Pearson 95 % CI
# ~2.5 min per cohort on 2 cores (np 2). Environment: CLIPHBA_BUILD_DIR (default build), NP (2),
# FIRST_SEED (seeds mode: the first cohort seed, default 1; e.g. 11 for a confirmation set),
# SEEDS (seeds mode: an explicit space-separated list of cohort seeds instead, e.g. "2 15 18"),
# BENCH_DIR (the work folder, default $BUILD_DIR/bench/ground_truth_<mode>; emptied first),
# EXTRA_SETS (more --set KEY=VALUE arguments for every cohort and run, space-separated). Null
# cohorts share one pair of sensor patterns: with a pair per participant their noise-free RDMs
# differ (results/BENCHMARKS.md, session 13: 20 of 100 rejections that way; session 14, shared:
# null 4 of 100; silent: cluster tests 2-4 of 100, own vs other 6).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
MODE="${1:-seeds}"
N="${2:-$([ "$MODE" = seeds ] && echo 10 || echo 100)}"
NP="${NP:-2}"
PY=/usr/bin/python3
CLIPHBA="$BUILD_DIR/src/apps/cliphba"
SHARED="${CLIPHBA_SHARED_DIR:-$ROOT/../shared}"
null=()  # the cohort settings of the mode, and its first seed
case "$MODE" in
  seeds) first=${FIRST_SEED:-1} ;;
  null|silent)
    null=(--set synth.cohort.weight_spread=0 --set synth.cohort.latency_jitter_ms=0
      --set synth.cohort.amplitude_spread=0 --set synth.cohort.shared_sensor_patterns=true) ;;&
  null) first=1001 ;;
  silent) first=2001
    null+=(--set synth.cohort.visual_amplitude=0 --set synth.cohort.semantic_amplitude=0) ;;
  *) echo "usage: $0 seeds|null|silent [N]" >&2; exit 2 ;;
esac
W="${BENCH_DIR:-$BUILD_DIR/bench/ground_truth_$MODE}"
# BENCH_DIR is emptied: only a new folder, an empty one or an earlier run of this script (q.yaml).
if [ -n "${BENCH_DIR:-}" ] && [ -d "$W" ] && [ -n "$(ls -A "$W")" ] && [ ! -f "$W/q.yaml" ]; then
  echo "BENCH_DIR $W: not empty and not an earlier ground-truth run (no q.yaml); refusing to empty it" >&2
  exit 2
fi
case "$W" in *[\#\&\\]*) echo "BENCH_DIR $W: '#', '&' and '\\' are not allowed" >&2; exit 2 ;; esac
for s in ${SEEDS:-}; do
  [[ "$s" =~ ^[0-9]+$ ]] || { echo "SEEDS: expected cohort seeds (integers), got '$s'" >&2; exit 2; }
done
cmake --build "$BUILD_DIR" --target cliphba > /dev/null
# shellcheck source=scripts/env.sh
. "$ROOT/scripts/env.sh"
rm -rf "$W" && mkdir -p "$W"
sed -e "s#\"results/quickstart/#\"$W/#g" -e "s#\"\.\./shared/#\"$SHARED/#g" \
  "$ROOT/configs/quickstart.yaml" > "$W/q.yaml"
extra=()
for kv in ${EXTRA_SETS:-}; do extra+=(--set "$kv"); done
"$CLIPHBA" synth model --config "$W/q.yaml" --force "${extra[@]}" > /dev/null 2>&1
seeds=()
if [ "$MODE" = seeds ] && [ -n "${SEEDS:-}" ]; then
  read -r -a seeds <<< "$SEEDS"
else
  for ((s = first; s < first + N; ++s)); do seeds+=("$s"); done
fi
for s in "${seeds[@]}"; do
  d="$W/seed$s"
  mkdir -p "$d"
  sed -e "s#\"$W/cohort/#\"$d/cohort/#g" -e "s#\"$W/cohort\"#\"$d/cohort\"#g" \
    -e "s#\"$W/run\"#\"$d/run\"#g" "$W/q.yaml" > "$d/q.yaml"
  "$CLIPHBA" synth cohort --config "$d/q.yaml" --force --set synth.cohort.seed=$s "${null[@]}" \
    "${extra[@]}" > "$d/cohort.log" 2>&1
  mpirun -np "$NP" --oversubscribe "$CLIPHBA" run --config "$d/q.yaml" --set run.report_script= \
    --set 'run.stages=["behavior","group","individual","alignment","report"]' "${extra[@]}" \
    > "$d/run.out" 2> "$d/run.log" \
    || { echo "seed $s: run failed (see $d/run.log)"; continue; }
  "$PY" "$ROOT/tests/pipeline/ground_truth_check.py" "$d/run/results.h5" "$d/cohort" \
    --report-only > "$d/check.txt" 2>&1 || true
  echo "seed $s: $(grep -c ': pass' "$d/check.txt") pass; $(grep '^ground truth checks' "$d/check.txt")"
done

# The table: one row per cohort.
"$PY" - "$W" "$MODE" <<'EOF'
import glob, os, re, sys
import h5py
from scipy import stats
w, mode = sys.argv[1:3]
CHECKS = ["behaviour", "behaviour_vs_clip", "latency", "individual", "own_best", "comparisons"]
rows = []
for d in sorted(glob.glob(f"{w}/seed*"), key=lambda p: int(p.rsplit("seed", 1)[1])):
    try:
        f = h5py.File(f"{d}/run/results.h5", "r")
    except OSError:
        continue
    text = open(f"{d}/check.txt").read() if os.path.exists(f"{d}/check.txt") else ""
    get = lambda pat: (re.search(pat, text) or [None, "nan"])[1]
    m = re.search(r"^ground truth checks(?: failing)?: (.*)$", text, re.M)
    # No summary line: the check itself failed, so nothing counts as passed.
    failing = set(CHECKS) if m is None else set() if m[1] == "all pass" else set(m[1].split(", "))
    o = f["/meg/own_vs_other/matrix"].attrs
    b = f["/compare/behavior"].attrs if "/compare/behavior" in f else None
    row = dict(seed=d.rsplit("seed", 1)[1],
               centre=float(get(r"centre ([-0-9.]+) ms, argmax")),
               own_p=float(o["p_value"]), own=float(o["statistic"]),
               own_best_n=(lambda v: int(v) if v.isdigit() else -1)(
                   get(r"own_best: own participant best-fitted for (\d+)")),
               clusters={k: bool(f[f"/compare/meg/{k}/significant"][()].any())
                         for k in f.get("/compare/meg", {}).keys()
                         if f"/compare/meg/{k}/significant" in f},
               delta=float(b["delta"]) if b is not None else float("nan"),
               delta_lo=float(b["delta_lower"]) if b is not None else float("nan"))
    row.update({c: c not in failing for c in CHECKS})
    rows.append(row)
print(f"\n{'seed':>5} {'beh':>5} {'d rho':>7} {'lower':>7} {'b>clip':>6} {'centre':>7} {'lat':>5} "
      f"{'own-oth':>8} {'p':>7} {'ind':>5} {'best':>4} {'best5':>5} {'signs':>5} {'all':>5}")
for r in rows:
    print(f"{r['seed']:>5} {str(r['behaviour']):>5} {r['delta']:7.3f} {r['delta_lo']:7.3f} "
          f"{str(r['behaviour_vs_clip']):>6} {r['centre']:7.1f} {str(r['latency']):>5} "
          f"{r['own']:8.4f} {r['own_p']:7.4f} {str(r['individual']):>5} {r['own_best_n']:>4} "
          f"{str(r['own_best']):>5} {str(r['comparisons']):>5} {str(all(r[c] for c in CHECKS)):>5}")
n = len(rows)
if mode == "seeds":
    print(f"\n{n} cohorts, passing: " + ", ".join(f"{c} {sum(r[c] for r in rows)}" for c in CHECKS)
          + f"; every check {sum(all(r[c] for c in CHECKS) for r in rows)}")
else:  # null or silent
    def rate(k, n):
        lo = stats.beta.ppf(0.025, k, n - k + 1) if k > 0 else 0.0
        hi = stats.beta.ppf(0.975, k + 1, n - k) if k < n else 1.0
        return f"{k} of {n} ({k / max(n, 1):.3f}, Clopper-Pearson 95 % CI {lo:.3f}..{hi:.3f})"
    k = sum(r["own_p"] < 0.05 for r in rows)
    print(f"\n{n} null cohorts: the out-of-sample own-vs-other test rejects at 0.05 in "
          f"{rate(k, n)}")
    if mode == "silent":
        print("no stimulus information in the MEG: every model's expected out-of-sample alignment "
              "is 0 for every participant, so each difference curve below is a true null")
        for name in sorted({k for r in rows for k in r["clusters"]}):
            hits = [r["clusters"][name] for r in rows if name in r["clusters"]]
            print(f"  cluster test of {name}: a significant cluster (alpha 0.05) in "
                  f"{rate(sum(hits), len(hits))}")
        anyc = [any(r["clusters"].values()) for r in rows if r["clusters"]]
        print(f"  any of the comparisons (not corrected across them): {rate(sum(anyc), len(anyc))}")
        sys.exit(0)
    ivg = [r["clusters"]["individual_vs_group"] for r in rows
           if "individual_vs_group" in r["clusters"]]
    print(f"the two-sided cluster test of individual - group (difference curves over "
          f"participants) finds a significant cluster in {rate(sum(ivg), len(ivg))} (not a "
          f"false-positive rate: an individual model is fitted to one participant's data, the "
          f"group model to all, so the two differ by design even without individual differences)")
EOF
