#!/usr/bin/python3
"""Reference values for the time-resolved alignment statistics (src/rsa/alignment.h), computed with
numpy and scipy.stats on small seeded data that contain ties, for tests/rsa/alignment_test.cc
(tolerance 1e-10, float64; p-values exactly).

  spearman[p, t] = spearmanr(model[t], meg[p, t]) (average ranks); pearson[p, t] = pearsonr(...)
  ceiling lower[p, t] = spearmanr(meg[p, t], mean of the other participants' meg[:, t])
          upper[p, t] = spearmanr(meg[p, t], mean of all participants' meg[:, t])
  auc  = np.trapz(c[t >= 0], t[t >= 0] / 1000)   (value x s), peak_ms = t[t >= 0][argmax c[t >= 0]]
  own-vs-other: stat = mean(M[i, own[i]]) - mean(other entries); permuting participant labels,
  own[i] -> perm[own[i]]; exact: p = #{stat_perm >= stat} / P! over itertools.permutations
  (identity included); explicit random permutations: p = (1 + #{>=}) / (1 + N).
Writes tests/data_files/alignment_reference/*.npy and reference.json.
Run with Debian's python: /usr/bin/python3 scripts/reference/alignment_reference.py
"""
import itertools
import json
import os

import numpy as np
import scipy
from scipy.stats import pearsonr, spearmanr

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data_files",
                   "alignment_reference")


def own_vs_other_stat(matrix, own, perm):
    # Same summation order as the C++ kernel (bit-identical statistics for equal permutations).
    m, p = matrix.shape
    total = 0.0
    for v in matrix.reshape(-1):
        total += float(v)
    own_sum = 0.0
    for i in range(m):
        own_sum += float(matrix[i, perm[own[i]]])
    return own_sum / m - (total - own_sum) / (m * (p - 1))


def main():
    rng = np.random.default_rng(20261131)
    n, T, P = 12, 7, 4
    m = n * (n - 1) // 2
    start_ms, step_ms = -20.0, 10.0
    times = start_ms + np.arange(T) * step_ms
    # One decimal: many ties in every RDM.
    latent = rng.normal(size=(T, m))
    model = np.round(latent + 0.5, 1)
    meg = np.empty((P, T, m))
    for p in range(P):
        w = np.exp(-0.5 * ((np.arange(T) - 3 - (p % 2)) / 1.5) ** 2)
        meg[p] = np.round(w[:, None] * latent + rng.normal(size=(T, m)) + 1.0, 1)

    spear = np.array([[spearmanr(model[t], meg[p, t]).correlation for t in range(T)]
                      for p in range(P)])
    pear = np.array([[pearsonr(model[t], meg[p, t])[0] for t in range(T)] for p in range(P)])
    lower = np.empty((P, T))
    upper = np.empty((P, T))
    for t in range(T):
        mean_all = meg[:, t].mean(0)
        for p in range(P):
            others = np.delete(meg[:, t], p, axis=0).mean(0)
            lower[p, t] = spearmanr(meg[p, t], others).correlation
            upper[p, t] = spearmanr(meg[p, t], mean_all).correlation
    keep = times >= 0
    auc = [float(np.trapz(spear[p][keep], times[keep] / 1000.0)) for p in range(P)]
    peak = [float(times[keep][np.argmax(spear[p][keep])]) for p in range(P)]
    mean0 = spear[:, keep].mean(1)

    # Own vs other, exact: M = P = 4 (24 permutations).
    own_exact = [2, 0, 3, 1]
    mx = rng.normal(size=(4, 4))  # no planted effect: an intermediate p
    obs = own_vs_other_stat(mx, own_exact, list(range(4)))
    ge = sum(own_vs_other_stat(mx, own_exact, perm) >= obs
             for perm in itertools.permutations(range(4)))
    # Own vs other with explicit random permutations: M = 5 models, P = 7 participants.
    own_rand = [6, 1, 4, 0, 2]
    mr = rng.normal(size=(5, 7))
    for i, j in enumerate(own_rand):
        mr[i, j] += 0.2
    N = 199
    perms = np.array([rng.permutation(7) for _ in range(N)], dtype=np.int64)
    obs_r = own_vs_other_stat(mr, own_rand, list(range(7)))
    ge_r = sum(own_vs_other_stat(mr, own_rand, perm) >= obs_r for perm in perms)

    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "model.npy"), model)
    np.save(os.path.join(OUT, "meg.npy"), meg)
    np.save(os.path.join(OUT, "ovo_exact_matrix.npy"), mx)
    np.save(os.path.join(OUT, "ovo_random_matrix.npy"), mr)
    np.save(os.path.join(OUT, "ovo_random_perms.npy"), perms)
    ref = {
        "scipy_version": scipy.__version__, "numpy_version": np.__version__,
        "start_ms": start_ms, "step_ms": step_ms,
        "spearman": spear.tolist(), "pearson": pear.tolist(),
        "ceiling_lower": lower.tolist(), "ceiling_upper": upper.tolist(),
        "auc": auc, "peak_ms": peak, "mean_from_zero": mean0.tolist(),
        "ovo_exact": {"own": own_exact, "statistic": obs, "p_value": ge / 24.0,
                      "n_permutations": 24},
        "ovo_random": {"own": own_rand, "statistic": obs_r, "p_value": (1 + ge_r) / (1 + N),
                       "n_permutations": N},
    }
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(ref, f, indent=1)
    print("wrote", OUT, "ovo exact p", ge / 24.0, "random p", (1 + ge_r) / (1 + N))


if __name__ == "__main__":
    main()
