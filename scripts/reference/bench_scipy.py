#!/usr/bin/python3
"""Timings of the SciPy/NumPy counterparts of the C++ RSA kernels, on this machine.

    /usr/bin/python3 scripts/reference/bench_scipy.py [--shared DIR] [--out JSON]

Uses the full 1854 x 66 SPoSE embedding (1,717,731 condensed pairs). Thread counts come from the
environment (OPENBLAS_NUM_THREADS / OMP_NUM_THREADS); set them before running to compare.
"""
import argparse
import json
import os
import platform
import sys
import time

import numpy as np
import scipy
import scipy.stats
from scipy.spatial.distance import pdist

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import rsa_reference as ref  # noqa: E402


def best_of(k, fn):
    ts = []
    for _ in range(k):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return min(ts)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shared", default=os.path.join(ref.ROOT, "..", "shared", "data"))
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()
    td = ref.things_dir(args.shared)

    all_names, E = ref.load_embedding(os.path.join(td, "spose_embedding66d_rescaled.csv"))
    with open(os.path.join(td, "RDM48_image_names.txt")) as f:
        names48 = [ln.strip() for ln in f if ln.strip()]
    pos = {nm: i for i, nm in enumerate(all_names)}
    X48 = E[[pos[nm] for nm in names48]]

    rows = []
    rows.append(("pdist correlation 1854x66", 7, best_of(7, lambda: pdist(E, "correlation"))))
    a = pdist(E, "correlation")
    b = pdist(E, "euclidean")
    rows.append(("spearmanr 1.7M pairs", 3, best_of(3, lambda: scipy.stats.spearmanr(a, b))))
    rows.append(("kendalltau(b) 1.7M pairs", 3, best_of(3, lambda: scipy.stats.kendalltau(a, b))))
    rows.append(("spose RDM 48 (numpy vectorised)", 7, best_of(7, lambda: ref.spose_similarity(X48))))
    rows.append(("spose RDM 48 (python scalar ref)", 3, best_of(3, lambda: ref.spose_similarity_scalar(X48))))

    env = {k: os.environ.get(k) for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    info = {"threads_env": env, "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "numpy_version": np.__version__,
            "scipy_version": scipy.__version__, "n_pairs_1854": int(a.size)}
    try:  # threadpoolctl is optional
        from threadpoolctl import threadpool_info
        info["threadpools"] = [{k: p.get(k) for k in ("internal_api", "num_threads")} for p in threadpool_info()]
    except Exception:
        pass

    print("threads env:", env, "| cpu_count:", info["cpu_count"], "| numpy", np.__version__, "scipy", scipy.__version__)
    if "threadpools" in info:
        print("threadpools:", info["threadpools"])
    print("%-36s %6s %12s" % ("kernel", "best-of", "seconds"))
    for name, k, t in rows:
        print("%-36s %6d %12.6f" % (name, k, t))
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"info": info, "timings": [{"kernel": n, "best_of": k, "seconds": t} for n, k, t in rows]},
                      f, indent=1)
            f.write("\n")
        print("wrote", args.out)


if __name__ == "__main__":
    main()
