#!/usr/bin/python3
"""Reference numbers for the C++ sign-flip statistics (src/stats/signflip, cluster, tdist).

Run with Debian's Python (mne 1.3, numpy 1.24, scipy 1.10, mpmath):
    /usr/bin/python3 scripts/reference/stats_reference.py [--out DIR]

Default DIR: tests/data_files/stats_reference. For every case it writes
  <case>_data.npy   (N x T) float64 participants x timepoints
  <case>_flips.npy  (n_permutations - 1, N) int8 of +-1: the sign flips MNE itself used
  <case>.json       threshold, MNE's cluster-test outputs and permutation_t_test outputs
and tdist.json with scipy.stats.t cdf/ppf values and 40-digit mpmath values of the same.

The flips are MNE's own draw: mne.stats.cluster_level._get_1samp_orders with a RandomState of the
same seed, orders 0/1 -> signs 2 * order - 1 (row k = permutation k + 1; the observed, unflipped
data is H0[0]). The script then proves they are the flips MNE used: an independent numpy
recomputation from the saved flips must reproduce MNE's H0 of both permutation_cluster_1samp_test
and permutation_t_test (and a draw with another seed must not).
"""
import argparse
import json
import os

import mne
import mpmath
import numpy as np
import scipy
import scipy.stats
from mne.stats import permutation_cluster_1samp_test, permutation_t_test, ttest_1samp_no_p
from mne.stats.cluster_level import _find_clusters, _get_1samp_orders
from mne.utils import check_random_state

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def mne_flips(n, n_permutations, tail, seed):
    """The (n_used - 1, n) int8 signs MNE draws for a 1-sample test with this seed."""
    orders, _, _ = _get_1samp_orders(n, n_permutations, tail, check_random_state(seed))
    return (2 * np.asarray(orders, dtype=np.int64) - 1).astype(np.int8)


def runs(t, threshold, tail):
    """Own clustering of a 1-D statistic: list of (start, stop, mass), MNE's order."""
    masks = {0: [t > threshold, t < -threshold], 1: [t > threshold], -1: [t < threshold]}[tail]
    out = []
    for m in masks:
        i = 0
        while i < len(t):
            if m[i]:
                j = i
                while j < len(t) and m[j]:
                    j += 1
                out.append((i, j, float(np.sum(t[i:j]))))
                i = j
            else:
                i += 1
    return out


def recompute_cluster_h0(X, flips, threshold, tail, observed_masses):
    """H0 of the cluster test recomputed from explicit flips (no MNE code but ttest_1samp_no_p)."""
    if tail == -1:
        orig = min(observed_masses)
    elif tail == 1:
        orig = max(observed_masses)
    else:
        orig = max(abs(m) for m in observed_masses)
    h0 = [orig]
    for s in flips:
        t = ttest_1samp_no_p(X * s[:, None].astype(np.float64))
        masses = [m for _, _, m in runs(t, threshold, tail)]
        h0.append(masses[int(np.argmax(np.abs(masses)))] if masses else 0.0)
    return np.array(h0)


def recompute_tmax_h0(X, flips):
    t_obs = ttest_1samp_no_p(X)
    h0 = [np.max(np.abs(t_obs))]
    for s in flips:
        h0.append(np.max(np.abs(ttest_1samp_no_p(X * s[:, None].astype(np.float64)))))
    return np.array(h0)


def make_case(name, X, tail, seed, n_permutations, threshold, out_dir, note):
    n, n_times = X.shape
    flips = mne_flips(n, n_permutations, tail, seed)
    assert flips.shape[1] == n and np.all(np.abs(flips) == 1)
    assert len({tuple(r) for r in flips}) == len(flips), "MNE draws without replacement"

    # --- MNE cluster test ---
    kw = dict(n_permutations=n_permutations, tail=tail, seed=seed, out_type="indices",
              verbose=False)
    if threshold is None:
        # MNE's default threshold (from _check_fun): p_thresh = 0.05 / (1 + (tail == 0)),
        # threshold = -t.ppf(p_thresh, n - 1), negated for tail -1.
        p_thresh = 0.05 / (1 + (tail == 0))
        thr = -scipy.stats.t.ppf(p_thresh, n - 1)
        if tail < 0:
            thr = -thr
        threshold_info = {"p_threshold": p_thresh, "threshold_is_default": True}
    else:
        thr = float(threshold)
        threshold_info = {"threshold_is_default": False}
    kw["threshold"] = None if threshold is None else thr
    t_obs, clusters, cluster_pv, H0 = permutation_cluster_1samp_test(X.copy(), **kw)
    assert np.array_equal(t_obs, ttest_1samp_no_p(X))

    sl, sums = _find_clusters(t_obs, thr, tail)
    found = []
    for c, s in zip(clusters, sums):
        idx = c[0]
        start, stop = int(idx[0]), int(idx[-1]) + 1
        assert np.array_equal(idx, np.arange(start, stop)), "1-D clusters are contiguous"
        found.append({"start": start, "stop": stop, "mass": float(s)})
    own = runs(t_obs, thr, tail)
    assert [(c["start"], c["stop"]) for c in found] == [(a, b) for a, b, _ in own]
    assert np.allclose([c["mass"] for c in found], [m for _, _, m in own], rtol=1e-13, atol=0)
    for c, p in zip(found, cluster_pv):
        c["p"] = float(p)

    if found:
        # Proof that the saved flips are MNE's: recompute H0 from them.
        assert len(H0) == len(flips) + 1
        h0 = recompute_cluster_h0(X, flips, thr, tail, [c["mass"] for c in found])
        assert np.allclose(h0, H0, rtol=1e-12, atol=1e-12), np.max(np.abs(h0 - H0))
        other = mne_flips(n, n_permutations, tail, seed + 1)
        if not np.array_equal(other, flips):  # (an exact test ignores the seed)
            h0_other = recompute_cluster_h0(X, other, thr, tail, [c["mass"] for c in found])
            assert not np.allclose(h0_other, H0, rtol=1e-12, atol=1e-12), "control must differ"
        # p exactly as _pval_from_histogram.
        for c in found:
            m = c["mass"]
            cnt = {1: np.sum(H0 >= m), -1: np.sum(H0 <= m), 0: np.sum(np.abs(H0) >= abs(m))}[tail]
            assert c["p"] == cnt / len(H0)
            c["count"] = int(cnt)
    else:
        assert len(H0) == 0

    # --- MNE permutation_t_test (t-max); same seed and tail -> the same flips ---
    assert np.array_equal(flips, mne_flips(n, n_permutations, tail, seed))
    T_obs, p_values, H0_t = permutation_t_test(X.copy(), n_permutations=n_permutations, tail=tail,
                                               seed=seed, verbose=False)
    h0t = recompute_tmax_h0(X, flips)
    assert np.allclose(np.sort(h0t), H0_t, rtol=1e-12, atol=0)
    assert np.allclose(T_obs, t_obs, rtol=1e-12, atol=0)

    np.save(os.path.join(out_dir, name + "_data.npy"), X.astype(np.float64))
    np.save(os.path.join(out_dir, name + "_flips.npy"), flips)
    doc = {
        "note": note,
        "n_participants": n, "n_times": n_times, "tail": tail, "seed": seed,
        "n_permutations": n_permutations, "n_flips": int(len(flips)),
        "data": name + "_data.npy", "flips": name + "_flips.npy",
        "threshold": thr, **threshold_info,
        "cluster": {
            "t_obs": t_obs.tolist(),
            "clusters": found,
            "h0": np.asarray(H0).tolist(),  # H0[0] observed, H0[k] = flip row k - 1
        },
        "ttest": {
            "t_obs": T_obs.tolist(),
            "p_values": p_values.tolist(),
            "h0_sorted": H0_t.tolist(),  # MNE returns H0 sorted ascending
        },
    }
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(doc, f, separators=(",", ":"))
    print("%-16s N=%d T=%d tail=%+d K=%d thr=%.6f clusters=%s" % (
        name, n, n_times, tail, len(flips), thr,
        [(c["start"], c["stop"], round(c["mass"], 3), c["p"]) for c in found]))
    return name


def mp_t_cdf(t, df):
    """P(T <= t) to 40 digits (mpmath)."""
    t, df = mpmath.mpf(t), mpmath.mpf(df)
    tail = mpmath.betainc(df / 2, mpmath.mpf(1) / 2, 0, df / (df + t * t), regularized=True) / 2
    return tail if t <= 0 else 1 - tail


def mp_t_ppf(p, df):
    """The t with mp_t_cdf(t, df) == p, to ~30 digits (bisection then Newton in mpmath)."""
    p = mpmath.mpf(p)
    if p == mpmath.mpf(1) / 2:
        return mpmath.mpf(0)
    lo, hi = mpmath.mpf(-1), mpmath.mpf(1)
    while mp_t_cdf(lo, df) > p:
        lo *= 2
    while mp_t_cdf(hi, df) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        if mp_t_cdf(mid, df) < p:
            lo = mid
        else:
            hi = mid
    return mpmath.findroot(lambda x: mp_t_cdf(x, df) - p, (lo + hi) / 2, tol=mpmath.mpf(10) ** -35)


def tdist_reference(out_dir):
    """scipy.stats.t values and 40-digit mpmath values of the same (p is the double given).

    scipy 1.10's t.ppf (cdflib's stdtrit) is only accurate to ~1e-10 relative (its own t.cdf of the
    result misses p by that much), so the C++ quantile is tested against mpmath at 1e-12 and
    against scipy at 1e-8; t.cdf is tested against both at 1e-12.
    """
    mpmath.mp.dps = 40
    dfs = [3, 11, 19, 200]
    ts = [-30.0, -8.0, -5.0, -2.5, -1.0, -0.1, 0.0, 0.3, 1.0, 2.0, 3.5, 8.0, 30.0]
    ps = [1e-10, 1e-6, 0.001, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.95, 0.975, 0.99,
          0.999, 1 - 1e-6]
    doc = {"cdf": [], "ppf": []}
    for df in dfs:
        for t in ts:
            mp = float(mp_t_cdf(t, df))
            sc = float(scipy.stats.t.cdf(t, df))
            assert abs(sc - mp) <= 1e-12 * abs(mp), (t, df, sc, mp)
            doc["cdf"].append({"df": df, "t": t, "value": sc, "mpmath": mp})
        for p in ps:
            mp = float(mp_t_ppf(p, df))
            sc = float(scipy.stats.t.ppf(p, df))
            assert abs(sc - mp) <= 1e-8 * max(1.0, abs(mp)), (p, df, sc, mp)
            doc["ppf"].append({"df": df, "p": p, "value": sc, "mpmath": mp})
    with open(os.path.join(out_dir, "tdist.json"), "w") as f:
        json.dump(doc, f, indent=1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data_files", "stats_reference"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    print("mne %s numpy %s scipy %s" % (mne.__version__, np.__version__, scipy.__version__))

    rs = np.random.RandomState(20240501)
    cases = []

    X = rs.randn(12, 60)
    X[:, 20:36] += 1.2
    cases.append(make_case("upper_effect", X, 1, 42, 512, None, args.out,
                           "N=12, positive effect in [20,36), tail 1, MNE default threshold"))

    X = rs.randn(12, 60)
    X[:, 5:15] += 1.5
    X[:, 30:42] -= 1.3
    X[:, 50:53] += 1.0
    cases.append(make_case("two_sided_multi", X, 0, 7, 512, 1.5, args.out,
                           "N=12, effects of both signs, tail 0, threshold 1.5"))

    X = rs.randn(24, 60)
    X[:, 10:25] -= 0.9
    cases.append(make_case("lower_effect", X, -1, 3, 512, None, args.out,
                           "N=24 (MNE's uniform-draw path for N > 20), negative effect, tail -1, "
                           "default threshold"))

    X = rs.randn(12, 60)
    cases.append(make_case("no_cluster", X, 0, 11, 256, 6.0, args.out,
                           "N=12, pure noise, tail 0, threshold 6: no cluster (MNE: empty H0)"))

    X = rs.randn(8, 40)
    X[:, :6] += 1.5
    X[:, 33:] -= 1.5
    cases.append(make_case("exact_ends", X, 0, 5, 1000, None, args.out,
                           "N=8, tail 0, n_permutations > 2**7 - 1: MNE's exact test (all 127 "
                           "flips with participant 0 negated); clusters touching both ends"))

    tdist_reference(args.out)
    with open(os.path.join(args.out, "cases.json"), "w") as f:
        json.dump({"cases": cases, "mne": mne.__version__, "scipy": scipy.__version__}, f,
                  indent=1)


if __name__ == "__main__":
    main()
