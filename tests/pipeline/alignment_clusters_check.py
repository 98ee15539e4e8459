#!/usr/bin/env python3
"""Checks the cluster tests of a `cliphba run` results file against MNE.

Models: for every model with /meg/<model>/alignment/significant (group, individual/<p> and the
static baselines clip, behavior): MNE 1.3's permutation_cluster_1samp_test on the (P, T)
Spearman curves, tail 1, threshold t.ppf(1 - cluster_p, P - 1).
Comparisons: for every /compare/meg/<a>_vs_<b> with a significant mask: the same on the (P, T)
difference from its first_timepoint on, tail 0 (two-sided), threshold t.ppf(1 - cluster_p / 2,
P - 1).
Each must find the same clusters (start, stop, mass within 1e-9); when the file's test was exact
(every sign pattern: MNE's exact test at n_permutations >= 2^(P - (tail == 0))) the p-values must
equal MNE's exactly, otherwise lie in (0, 1]; `significant` must be 1 exactly inside the clusters
with p < 0.05.
Usage: alignment_clusters_check.py RESULTS.h5
"""
import sys

import h5py
import numpy as np
from scipy import stats

import mne

mne.set_log_level("ERROR")


def check(name, data, sig_ds, clusters_ds, tail):
    a = sig_ds.attrs
    first = int(a.get("first_timepoint", 0))
    x = data[:, first:]
    P = x.shape[0]
    q = 0.05 if tail != 0 else 0.025
    thr = float(a["threshold"])
    assert abs(thr - stats.t.ppf(1 - q, P - 1)) < 1e-9, (name, thr)
    exact = int(a["exact"]) == 1
    n_perm = 2 ** (P - (tail == 0)) if exact else 64
    _, clusters, p_mne, _ = mne.stats.permutation_cluster_1samp_test(
        x, threshold=thr, tail=tail, n_permutations=n_perm, out_type="indices", seed=1)
    t_obs = mne.stats.ttest_1samp_no_p(x)
    ref = sorted((int(c[0][0]) + first, int(c[0][-1]) + 1 + first, float(t_obs[c[0]].sum()),
                  float(p)) for c, p in zip(clusters, p_mne))
    ours = clusters_ds[()] if clusters_ds is not None else np.zeros((0, 4))
    got = sorted((int(r[0]), int(r[1]), float(r[2]), float(r[3])) for r in ours)
    assert len(ref) == len(got), (name, ref, got)
    for (a0, a1, am, ap), (b0, b1, bm, bp) in zip(ref, got):
        assert (a0, a1) == (b0, b1) and abs(am - bm) < 1e-9, (name, ref, got)
        assert 0 < bp <= 1, (name, got)
        if exact:
            assert abs(ap - bp) < 1e-12, (name, "exact p", ap, bp)
    expect = np.zeros(data.shape[1], dtype=np.int8)
    for r in ours:
        if r[3] < 0.05:
            expect[int(r[0]):int(r[1])] = 1
    assert np.array_equal(expect, sig_ds[()]), name
    return exact


def main(path):
    checked = exact = 0
    with h5py.File(path, "r") as f:
        models = (["group"] if "/meg/group" in f else []) + \
            (["individual/" + k for k in f["/meg/individual"].keys()]
             if "/meg/individual" in f else []) + \
            [b for b in ("clip", "behavior") if "/meg/" + b in f]
        for model in models:
            g = "/meg/%s/alignment" % model
            if g + "/significant" not in f:
                continue
            exact += check(model, f[g + "/spearman"][()], f[g + "/significant"],
                           f[g + "/clusters"] if g + "/clusters" in f else None, 1)
            checked += 1
        for name in (f["/compare/meg"].keys() if "/compare/meg" in f else []):
            g = "/compare/meg/" + name
            if g + "/significant" not in f:
                continue
            exact += check(name, f[g + "/difference"][()], f[g + "/significant"],
                           f[g + "/clusters"] if g + "/clusters" in f else None, 0)
            checked += 1
    if checked == 0:
        sys.exit("no alignment cluster test in %s" % path)
    print("cluster tests equal MNE's for %d model curves and comparisons (%d exact: p-values "
          "equal)" % (checked, exact))


if __name__ == "__main__":
    main(sys.argv[1])
