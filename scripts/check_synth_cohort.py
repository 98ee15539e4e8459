#!/usr/bin/python3
"""Recovers the planted ground truth of a `cliphba synth cohort` folder with numpy/h5py alone.

Usage: /usr/bin/python3 scripts/check_synth_cohort.py OUT_DIR

Per participant: condition-mean correlation-distance RDMs at every timepoint; Pearson r of each
with the behaviour RDM (behavior/rdm.npy) and with the low-level visual-feature RDM
(ground_truth.json visual_features, exemplar means); the centre of the top of each curve (the
contiguous run within 80% of the maximum) against the planted latencies. Then the own-vs-other
test of the planted-weight model RDMs (mean over t >= 0 of Spearman; exact permutations).
An independent cross-check of tests/data/synth_cohort_test.cc.
"""
import csv
import itertools
import json
import sys

import h5py
import numpy as np
from scipy.stats import spearmanr


def centre(curve, times):
    k = int(curve.argmax())
    thr = 0.8 * curve[k]
    a = b = k
    while a > 0 and curve[a - 1] >= thr:
        a -= 1
    while b < len(curve) - 1 and curve[b + 1] >= thr:
        b += 1
    return (times[a] + times[b]) / 2


def main(d):
    gt = json.load(open(d + "/ground_truth.json"))
    # The MEG conditions are the last n_objects objects (behaviour-only objects come first).
    n = gt["config"]["n_objects"]
    beh = np.load(d + "/behavior/rdm.npy")[-n:, -n:]
    iu = np.triu_indices(n, 1)
    n_ex = gt["config"]["n_exemplars"]
    feats = np.array(gt["visual_features"]).reshape(n, n_ex, -1).mean(1)
    vis = (1 - np.corrcoef(feats))[iu]
    rows = list(csv.reader(open(d + "/behavior/embedding.csv")))[1:]
    emb = np.array([[float(v) for v in r[2:]] for r in rows])[-n:]
    ax = gt["time_axis"]
    times = ax["start_ms"] + ax["step_ms"] * np.arange(ax["size"])
    megs, models = [], []
    print("participant  semantic: planted  found  max r   visual: planted  found  max r")
    for p in gt["participants"]:
        with h5py.File(d + "/meg/%s_epochs.h5" % p["label"], "r") as f:
            x = f["epochs/data"][()]
            c = f["epochs/condition"][()]
        means = np.stack([x[c == i].mean(0) for i in range(n)])  # (n, sensors, T)
        rdms = np.stack([(1 - np.corrcoef(means[:, :, t]))[iu] for t in range(len(times))])
        cs = np.array([np.corrcoef(r, beh[iu])[0, 1] for r in rdms])
        cv = np.array([np.corrcoef(r, vis)[0, 1] for r in rdms])
        print("%-11s  %16.1f %6.1f %6.3f %16.1f %6.1f %6.3f" % (
            p["label"], p["semantic_latency_ms"], centre(cs, times), cs.max(),
            p["visual_latency_ms"], centre(cv, times), cv.max()))
        megs.append(rdms)
        models.append((1 - np.corrcoef(emb * np.array(p["semantic_weights"])))[iu])
    P = len(megs)
    after = np.where(times >= 0)[0]
    fit = np.array([[np.mean([spearmanr(models[q], megs[p][t])[0] for t in after])
                     for p in range(P)] for q in range(P)])

    def stat(perm):
        own = sum(fit[q, perm[q]] for q in range(P))
        return own / P - (fit.sum() - own) / (P * P - P)

    obs = stat(range(P))
    null = np.array([stat(perm) for perm in itertools.permutations(range(P))])
    print("behaviour vs visual RDM r %.3f" % np.corrcoef(beh[iu], vis)[0, 1])
    print("own-vs-other (planted weights, mean Spearman over t >= 0): statistic %.4f, exact p %.4f"
          % (obs, np.mean(null >= obs - 1e-12)))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
