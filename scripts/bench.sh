#!/usr/bin/env bash
# RSA core timings: the C++ Google Benchmark (tests/bench/rsa_bench.cc) and SciPy/NumPy on the same
# data (scripts/reference/bench_scipy.py), in one session, then a comparison table.
#   scripts/bench.sh [extra Google Benchmark arguments, e.g. --benchmark_repetitions=3]
# Needs build/ (scripts/setup.sh). Environment: CLIPHBA_SHARED_DIR (data, default ../shared),
# CLIPHBA_THREADS (C++ threads, default 2), CLIPHBA_BUILD_DIR (default build). JSON results are
# kept in $CLIPHBA_BUILD_DIR/bench/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${CLIPHBA_BUILD_DIR:-$ROOT/build}"
SHARED_DIR="${CLIPHBA_SHARED_DIR:-$ROOT/../shared}"
export OMP_WAIT_POLICY=PASSIVE  # idle OpenMP workers must not spin while OpenBLAS works
export CLIPHBA_SHARED_DIR="$SHARED_DIR"

cmake --build "$BUILD_DIR" --target cliphba_bench_rsa
OUT="$BUILD_DIR/bench"
mkdir -p "$OUT"
"$BUILD_DIR/tests/bench/cliphba_bench_rsa" --benchmark_out="$OUT/rsa_bench.json" \
  --benchmark_out_format=json "$@"
/usr/bin/python3 "$ROOT/scripts/reference/bench_scipy.py" --shared "$SHARED_DIR/data" \
  --out "$OUT/scipy.json"

/usr/bin/python3 - "$OUT/rsa_bench.json" "$OUT/scipy.json" <<'PY'
import json, sys

cc = {}  # benchmark name -> ms (the fastest run when repeated)
for b in json.load(open(sys.argv[1]))["benchmarks"]:
    if b.get("run_type", "iteration") != "iteration":
        continue
    scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b["time_unit"]]
    name = b.get("run_name", b["name"])
    cc[name] = min(cc.get(name, float("inf")), b["real_time"] * scale)
py = {t["kernel"]: t["seconds"] * 1e3 for t in json.load(open(sys.argv[2]))["timings"]}

rows = [  # (kernel, C++ benchmark, scipy kernel, goal in ms)
    ("correlation RDM 1854", "BM_Rdm/correlation_1854/real_time", "pdist correlation 1854x66", 20),
    ("cosine RDM 1854", "BM_Rdm/cosine_1854/real_time", None, None),
    ("euclidean RDM 1854", "BM_Rdm/euclidean_1854/real_time", None, None),
    ("spearman 1.7M", "BM_Compare/spearman_1854/real_time", "spearmanr 1.7M pairs", 150),
    ("kendall tau-a 1.7M", "BM_Compare/kendall_tau_a_1854/real_time", "kendalltau(b) 1.7M pairs", 1000),
    ("pearson 1.7M", "BM_Compare/pearson_1854/real_time", None, None),
    ("triplet accuracy 48", "BM_TripletAll48/real_time", None, None),
    ("spose RDM 48", "BM_Spose48/real_time", "spose RDM 48 (numpy vectorised)", None),
    ("spose RDM 200", "BM_Rdm/spose_200/real_time", None, None),
]
fmt = "%-22s %12s %10s %8s  %s"
print()
print(fmt % ("kernel", "cliphba ms", "scipy ms", "ratio", "goal (cliphba)"))
for kernel, cname, pname, goal in rows:
    c, p = cc.get(cname), py.get(pname) if pname else None
    ratio = "%.1fx" % (p / c) if c and p else "-"
    g = "-" if goal is None or c is None else "<= %g ms: %s" % (goal, "met" if c <= goal else "MISSED")
    print(fmt % (kernel, "%.3f" % c if c is not None else "-", "%.3f" % p if p else "-", ratio, g))
print("ratio = scipy / cliphba (higher: cliphba faster)")
PY
