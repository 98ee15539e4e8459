#!/usr/bin/python3
"""Reference numbers for the C++ FDR and bootstrap code (src/stats/fdr.h, bootstrap.h).

Run with Debian's Python (numpy, scipy):
    /usr/bin/python3 scripts/reference/bootstrap_reference.py [--out JSON]
Default output: tests/data_files/stats_bootstrap_reference.json (deterministic, small).

The C++ bootstrap draws its resampling indices from its own Philox streams, which numpy cannot
reproduce; so this script draws a fixed index matrix with numpy, stores it in the JSON, and the
C++ test feeds the same matrix to the explicit-index overloads (compared at 1e-12).

Contents:
  fdr:          p-values (ties, unsorted, 0 and 1) -> Benjamini-Hochberg q by the explicit formula
                q_(i) = min_{j >= i} min(1, p_(j) m / j), and statsmodels' step-up reject at alpha;
                cross-checked with scipy.stats.false_discovery_control when scipy >= 1.11.
  percentile:   numpy.percentile(samples, q, axis=0) (default 'linear').
  participants: mean-curve bootstrap over participants with a given (B, N) index matrix.
  objects:      object bootstrap of model-vs-neural Spearman / Pearson curves with a given (B, n)
                index matrix; pairs (a, b) with s_a == s_b are dropped; NaN samples (JSON null)
                are left out of the CIs.
"""
import argparse
import json
import os

import numpy as np
import scipy
import scipy.stats
from scipy.spatial.distance import squareform

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", ".."))


def bh(p):
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    ps = p[order]
    j = np.arange(1, m + 1, dtype=np.float64)
    raw = np.minimum(1.0, ps * m / j)
    qs = np.minimum.accumulate(raw[::-1])[::-1]
    q = np.empty(m)
    q[order] = qs
    return q


def bh_reject(p, alpha):
    """statsmodels.stats.multitest.multipletests(p, alpha, 'fdr_bh')[0]."""
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    order = np.argsort(p, kind="stable")
    ps = p[order]
    below = ps <= np.arange(1, m + 1) / float(m) * alpha
    rej = np.zeros(m, dtype=bool)
    if below.any():
        rej[: np.nonzero(below)[0].max() + 1] = True
    out = np.zeros(m, dtype=bool)
    out[order] = rej
    return out


def peak(c, t):
    return float(t[int(np.argmax(c))])


def auc(c, t):
    keep = t >= 0
    return float(np.trapz(c[keep], t[keep] / 1000.0))


def summarize(estimate, curves, t, level):
    peaks = np.array([peak(c, t) if np.all(np.isfinite(c)) else np.nan for c in curves])
    aucs = np.array([auc(c, t) if np.all(np.isfinite(c)) else np.nan for c in curves])
    valid = np.all(np.isfinite(curves), axis=1)
    lo, hi = 100.0 * (1.0 - level) / 2.0, 100.0 * (1.0 + level) / 2.0
    return {
        "estimate": estimate.tolist(),
        "peak_ms": peak(estimate, t),
        "auc": auc(estimate, t),
        "lower": np.percentile(curves[valid], lo, axis=0).tolist(),
        "upper": np.percentile(curves[valid], hi, axis=0).tolist(),
        "peak_lower": float(np.percentile(peaks[valid], lo)),
        "peak_upper": float(np.percentile(peaks[valid], hi)),
        "auc_lower": float(np.percentile(aucs[valid], lo)),
        "auc_upper": float(np.percentile(aucs[valid], hi)),
        "n_valid": int(valid.sum()),
        "sample_curves": [[None if not np.isfinite(v) else float(v) for v in c] for c in curves],
        "sample_peak_ms": [None if not np.isfinite(v) else float(v) for v in peaks],
        "sample_auc": [None if not np.isfinite(v) else float(v) for v in aucs],
    }


def object_curve(M, N3, s, method):
    """M: (n, n) model, N3: (T, n, n) neural; s: resampled object indices."""
    n = len(s)
    rows, cols = [], []
    for a in range(n):
        for b in range(a + 1, n):
            if s[a] != s[b]:
                rows.append(s[a])
                cols.append(s[b])
    T = N3.shape[0]
    if len(rows) < 2:
        return np.full(T, np.nan)
    mv = M[rows, cols]
    if np.all(mv == mv[0]):
        return np.full(T, np.nan)
    out = np.empty(T)
    for t in range(T):
        nv = N3[t][rows, cols]
        if np.all(nv == nv[0]):
            out[t] = np.nan
        elif method == "spearman":
            out[t] = scipy.stats.spearmanr(mv, nv)[0]
        else:
            out[t] = scipy.stats.pearsonr(mv, nv)[0]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "data_files",
                                                  "stats_bootstrap_reference.json"))
    args = ap.parse_args()
    rng = np.random.default_rng(20240607)
    out = {"numpy": np.__version__, "scipy": scipy.__version__}

    # ---- FDR ----
    p_small = [0.01, 0.04, 0.03, 0.04, 0.2, 0.001, 0.5, 0.04, 1.0, 0.0, 0.03, 0.9, 0.0125, 0.75]
    p_rand = np.round(rng.beta(0.4, 2.0, size=120), 3)  # many ties after rounding
    fdr = {"alpha": 0.05, "cases": []}
    scipy_checked = hasattr(scipy.stats, "false_discovery_control")
    for p in (np.array(p_small), p_rand):
        q = bh(p)
        if scipy_checked:
            assert np.allclose(q, scipy.stats.false_discovery_control(p, method="bh"),
                               rtol=0, atol=1e-15)
        rej = bh_reject(p, fdr["alpha"])
        assert np.array_equal(rej, q <= fdr["alpha"])
        fdr["cases"].append({"p": p.tolist(), "q": q.tolist(), "reject": rej.tolist()})
    fdr["scipy_checked"] = scipy_checked
    out["fdr"] = fdr

    # ---- numpy.percentile ----
    samples = np.round(rng.normal(size=(17, 5)), 1)
    qs = [0.0, 2.5, 5.0, 25.0, 33.3, 50.0, 97.5, 100.0]
    out["percentile"] = {
        "samples": samples.tolist(),
        "q": qs,
        "values": [np.percentile(samples, q, axis=0).tolist() for q in qs],
        "single": {"samples": [3.5], "value": float(np.percentile([3.5], 97.5))},
    }

    # ---- bootstrap over participants ----
    N, T, B = 7, 12, 40
    times = np.arange(-100.0, 500.0, 50.0)
    signal = np.exp(-0.5 * ((times - 180.0) / 80.0) ** 2) * 0.3
    values = signal[None, :] + 0.08 * rng.normal(size=(N, T))
    idx = rng.integers(0, N, size=(B, N))
    level = 0.9
    curves = values[idx].mean(axis=1)
    part = {"times_ms": times.tolist(), "values": values.tolist(), "indices": idx.tolist(),
            "level": level}
    part.update(summarize(values.mean(axis=0), curves, times, level))
    out["participants"] = part

    # ---- bootstrap over objects ----
    n, T, B = 9, 6, 40
    times = np.array([-50.0, 0.0, 50.0, 100.0, 150.0, 200.0])
    m = n * (n - 1) // 2
    model = np.round(rng.uniform(0.0, 1.0, size=m), 1)  # ties
    gain = np.array([0.0, 0.2, 1.0, 2.0, 1.0, 0.5])
    neural = gain[:, None] * model[None, :] + 0.4 * rng.normal(size=(T, m))
    idx = rng.integers(0, n, size=(B, n))
    idx[0, :] = 3                    # one object only: no pairs left -> NaN sample
    idx[1, :] = [0] * 8 + [1]        # one distinct pair 8 times: constant model -> NaN sample
    M = squareform(model)
    N3 = np.stack([squareform(r) for r in neural])
    obj = {"times_ms": times.tolist(), "n": n, "model": model.tolist(),
           "neural": neural.tolist(), "indices": idx.tolist(), "level": 0.95}
    for method in ("spearman", "pearson"):
        est = np.array([scipy.stats.spearmanr(model, r)[0] if method == "spearman"
                        else scipy.stats.pearsonr(model, r)[0] for r in neural])
        curves = np.stack([object_curve(M, N3, s, method) for s in idx])
        obj[method] = summarize(est, curves, times, obj["level"])
    out["objects"] = obj

    with open(args.out, "w") as f:
        json.dump(out, f, indent=None, separators=(",", ":"))
        f.write("\n")
    print("wrote %s (%d bytes); scipy FDR cross-check: %s" %
          (args.out, os.path.getsize(args.out), scipy_checked))


if __name__ == "__main__":
    main()
