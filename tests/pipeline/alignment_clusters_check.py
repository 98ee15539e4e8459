#!/usr/bin/env python3
"""Checks the alignment cluster test of a `cliphba run` results file against MNE.

For every model with /meg/<model>/alignment/significant: MNE 1.3's permutation_cluster_1samp_test on
the (P, T) Spearman curves, tail 1, threshold t.ppf(1 - cluster_p, P - 1) must find the same
clusters (start, stop, mass within 1e-9). The p-values depend on the random sign flips, so only
their range is checked, and `significant` must be 1 exactly inside the clusters with p < 0.05.
Usage: alignment_clusters_check.py RESULTS.h5
"""
import sys

import h5py
import numpy as np
from scipy import stats

import mne

mne.set_log_level("ERROR")


def main(path):
    checked = 0
    with h5py.File(path, "r") as f:
        models = ["group"] + ["individual/" + k for k in f["/meg/individual"].keys()] \
            if "/meg/individual" in f else ["group"]
        for model in models:
            g = "/meg/%s/alignment" % model
            if g + "/significant" not in f:
                continue
            sp = f[g + "/spearman"][()]
            sig = f[g + "/significant"][()]
            thr = f[g + "/significant"].attrs["threshold"]
            P = sp.shape[0]
            assert abs(thr - stats.t.ppf(0.95, P - 1)) < 1e-9, (model, thr)
            _, clusters, _, _ = mne.stats.permutation_cluster_1samp_test(
                sp, threshold=thr, tail=1, n_permutations=64, out_type="indices", seed=1)
            t_obs = mne.stats.ttest_1samp_no_p(sp)
            ref = sorted((int(c[0][0]), int(c[0][-1]) + 1, float(t_obs[c[0]].sum())) for c in clusters)
            ours = f[g + "/clusters"][()] if g + "/clusters" in f else np.zeros((0, 4))
            got = sorted((int(r[0]), int(r[1]), float(r[2])) for r in ours)
            assert len(ref) == len(got), (model, ref, got)
            for (a0, a1, am), (b0, b1, bm) in zip(ref, got):
                assert (a0, a1) == (b0, b1) and abs(am - bm) < 1e-9, (model, ref, got)
            assert np.all((ours[:, 3] > 0) & (ours[:, 3] <= 1)), model
            expect = np.zeros(sp.shape[1], dtype=np.int8)
            for r in ours:
                if r[3] < 0.05:
                    expect[int(r[0]):int(r[1])] = 1
            assert np.array_equal(expect, sig), model
            checked += 1
    if checked == 0:
        sys.exit("no alignment cluster test in %s" % path)
    print("alignment clusters equal MNE's for %d models" % checked)


if __name__ == "__main__":
    main(sys.argv[1])
