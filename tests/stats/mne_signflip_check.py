#!/usr/bin/python3
"""`cliphba permute cluster` against MNE 1.3 itself, exactly, on the paths a user meets.

For every case the script draws data with its own seed and shape, runs MNE-Python's
permutation_cluster_1samp_test (clusters, cluster p-values, masses via MNE's _find_clusters) and
permutation_t_test (t-max p-values), runs `cliphba permute cluster --json` on the same data, and
requires equality to the last bit:
  * exact path (4-10 participants, tails -1/0/1, n = 2^P >= 2^(P - (tail == 0))): MNE enumerates
    every sign pattern; cliphba must choose the exact test itself (no --flips), report
    exact: true and n = 2^(P - (tail == 0)), and give MNE's t, clusters, masses and p-values;
  * random path (12-20 participants, n = 1000): cliphba is given MNE's own flips (--flips, from
    mne.stats.cluster_level._get_1samp_orders with the same seed) and must give MNE's numbers.
t-max p-values are compared too: MNE computes its t-max null with a BLAS product and another
variance formula, so an entry may differ where a null value ties |t| within rounding; such entries
are counted and must be none here.

usage: mne_signflip_check.py CLIPHBA WORKDIR       (Debian's python3: mne 1.3, numpy, scipy)
"""
import json
import os
import subprocess
import sys

import mne
import numpy as np
import scipy.stats
from mne.stats import permutation_cluster_1samp_test, permutation_t_test
from mne.stats.cluster_level import _find_clusters, _get_1samp_orders
from mne.utils import check_random_state

mne.set_log_level("ERROR")


def make_data(rng, n, t, tail):
    """Participants x timepoints with an effect of the tail's sign in a window (two for tail 0)."""
    x = rng.standard_normal((n, t))
    sign = -1.0 if tail == -1 else 1.0
    x[:, t // 4: t // 4 + t // 5] += sign * 0.9
    if tail == 0:
        x[:, 3 * t // 5: 3 * t // 5 + t // 6] -= 0.8
    return x


def run_case(cliphba, work, name, n, t, tail, n_perm, seed, with_flips):
    rng = np.random.default_rng(1000 + seed)
    X = make_data(rng, n, t, tail)
    p_thr = 0.05
    thr = scipy.stats.t.ppf(1 - (p_thr / 2 if tail == 0 else p_thr), n - 1)
    if tail == -1:
        thr = -thr
    t_obs, clusters, cluster_pv, h0 = permutation_cluster_1samp_test(
        X, threshold=thr, n_permutations=n_perm, tail=tail, seed=seed, out_type="indices",
        adjacency=None, n_jobs=None)
    _, sums = _find_clusters(t_obs, thr, tail=tail)
    t_tm, p_tmax, _ = permutation_t_test(X, n_permutations=n_perm, tail=tail, seed=seed)
    assert np.array_equal(t_tm, t_obs) or np.allclose(t_tm, t_obs, rtol=1e-12)

    data = os.path.join(work, name + "_data.npy")
    np.save(data, X)
    cmd = [cliphba, "permute", "cluster", "--data", data, "--tail", str(tail),
           "--threshold", repr(float(thr)), "--n", str(n_perm), "--seed", str(seed), "--json"]
    max_perms = 2 ** (n - (tail == 0)) - 1
    exact = max_perms < n_perm
    if with_flips:
        orders, _, _ = _get_1samp_orders(n, n_perm, tail, check_random_state(seed))
        flips = (2 * np.asarray(orders, dtype=np.int64) - 1).astype(np.int8)
        np.save(os.path.join(work, name + "_flips.npy"), flips)
        cmd += ["--flips", os.path.join(work, name + "_flips.npy")]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    got = json.loads(out)

    problems = []
    if not with_flips and got["exact"] != exact:
        problems.append(f"exact {got['exact']} != MNE's {exact}")
    n_used = max_perms + 1 if exact else n_perm
    if got["n"] != n_used:
        problems.append(f"n {got['n']} != MNE's {n_used} (H0 size)")
    if len(h0) != n_used and len(clusters) > 0:
        problems.append(f"MNE's H0 has {len(h0)} entries, expected {n_used}")
    if not np.array_equal(np.asarray(got["t_obs"]), t_obs):
        problems.append("t_obs differs (max |diff| %g)" % np.max(np.abs(np.asarray(got["t_obs"]) - t_obs)))
    ref = [(int(c[0].min()), int(c[0].max()) + 1, float(s), float(p))
           for c, s, p in zip(clusters, sums, cluster_pv)]
    mine = [(c["start"], c["stop"], c["mass"], c["p"]) for c in got["clusters"]]
    if ref != mine:
        problems.append(f"clusters differ: MNE {ref} cliphba {mine}")
    tmax_diff = int(np.sum(np.asarray(got["p_tmax"]) != p_tmax))
    if tmax_diff:
        problems.append(f"{tmax_diff} t-max p-values differ")
    status = "ok" if not problems else "FAIL: " + "; ".join(problems)
    print(f"{name:>24}: P={n:2d} T={t} tail={tail:+d} n={n_perm:5d} "
          f"{'exact' if exact else 'flips'} clusters={len(ref)} "
          f"p={[round(r[3], 5) for r in ref][:4]} {status}", flush=True)
    return not problems, len(ref)


def main():
    cliphba, work = sys.argv[1], sys.argv[2]
    os.makedirs(work, exist_ok=True)
    print("MNE", mne.__version__, "numpy", np.__version__, "scipy", scipy.__version__)
    cases = []
    for n in range(4, 11):  # exact path: cliphba must choose it itself
        for tail in (-1, 0, 1):
            cases.append((f"exact_p{n}_t{tail:+d}", n, 30 + n, tail, 2 ** n, 10 * n + tail + 1, False))
    for n in (12, 16, 20):  # random path: MNE's own flips
        for tail in (-1, 0, 1):
            cases.append((f"flips_p{n}_t{tail:+d}", n, 50, tail, 1000, 7 * n + tail + 2, True))
    results = [run_case(cliphba, work, *c) for c in cases]
    ok = sum(r[0] for r in results)
    with_clusters = sum(1 for r in results if r[1] > 0)
    print(f"{ok} passed, {len(results) - ok} failed")
    print(f"({len(results)} cases, {with_clusters} with clusters; exact path "
          f"{sum(1 for c in cases if not c[6])}, MNE flips {sum(1 for c in cases if c[6])})")
    if with_clusters < len(results) * 3 // 4:
        print("too few cases with clusters: the comparison would be weak")
        return 1
    return 0 if ok == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
