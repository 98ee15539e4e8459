#!/usr/bin/python3
"""Reference values for the Mantel (object-label permutation) test, computed by brute force with
scipy on small deterministic data, for tests/stats/mantel_test.cc and the CLI tests.

For every permutation p (rows of perms.npy) the model RDM is relabelled, M'[i, j] = M[p[i], p[j]],
and correlated (scipy.stats.spearmanr / pearsonr) with the neural RDM of every timepoint.
  p[t]      = (1 + #{k : null[k, t] >= obs[t]}) / (1 + N)          (|.| for two-sided)
  p_fwer[t] = (1 + #{k : max_t' null[k, t'] >= obs[t]}) / (1 + N)
Writes tests/data_files/mantel_reference/{model.npy, neural.npy, perms.npy, reference.json}.
Run with Debian's python: /usr/bin/python3 scripts/reference/mantel_reference.py
"""
import json
import os
import sys

import numpy as np
import scipy
from scipy.spatial.distance import pdist, squareform
from scipy.stats import pearsonr, spearmanr

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "data_files",
                   "mantel_reference")


def main():
    rng = np.random.default_rng(20261129)
    n, d, T, N = 14, 5, 9, 299
    latent = rng.normal(size=(n, d))
    model = squareform(pdist(latent, "correlation"))
    neural = np.empty((T, n, n))
    for t in range(T):
        # The model's structure rises and falls over time on top of noise.
        w = np.exp(-0.5 * ((t - 4) / 1.5) ** 2)
        feats = w * latent + rng.normal(size=(n, d))
        neural[t] = squareform(pdist(feats, "euclidean"))
    perms = np.array([rng.permutation(n) for _ in range(N)], dtype=np.int64)
    iu = np.triu_indices(n, 1)

    def stat(kind, a, b):
        return spearmanr(a, b).correlation if kind == "spearman" else pearsonr(a, b)[0]

    out = {"n_objects": n, "n_timepoints": T, "n_permutations": N, "scipy_version": scipy.__version__,
           "cases": {}}
    for kind in ("spearman", "pearson"):
        obs = np.array([stat(kind, model[iu], neural[t][iu]) for t in range(T)])
        null = np.empty((N, T))
        for k, p in enumerate(perms):
            mp = model[np.ix_(p, p)][iu]
            for t in range(T):
                null[k, t] = stat(kind, mp, neural[t][iu])
        for tail in (1, 0):
            o = np.abs(obs) if tail == 0 else obs
            nl = np.abs(null) if tail == 0 else null
            p_unc = (1 + (nl >= o[None, :]).sum(0)) / (1 + N)
            mx = nl.max(1)
            p_fwer = (1 + (mx[:, None] >= o[None, :]).sum(0)) / (1 + N)
            out["cases"][f"{kind}_tail{tail}"] = {
                "observed": obs.tolist(), "p": p_unc.tolist(), "p_fwer": p_fwer.tolist(),
                "null_max_mean": float(mx.mean()),
            }
    os.makedirs(OUT, exist_ok=True)
    np.save(os.path.join(OUT, "model.npy"), model)
    np.save(os.path.join(OUT, "neural.npy"), neural)
    np.save(os.path.join(OUT, "perms.npy"), perms)
    with open(os.path.join(OUT, "reference.json"), "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", OUT, file=sys.stderr)


if __name__ == "__main__":
    main()
