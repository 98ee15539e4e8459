#!/usr/bin/python3
"""Reference numbers for src/meg (RDM stacks, the head's curves, epochs -> RDMs), from NumPy/SciPy.

    /usr/bin/python3 scripts/reference/meg_reference.py [--out tests/data_files/meg_reference]

Writes seeded random inputs and the expected outputs:
  stack.npy            (P, T, n, n) float64 symmetric RDM stacks, zero diagonal
  stack_f32.npy        the same as float32;  stack_condensed.npy  (P, T, m) float32
  names.txt            the n object names
  curves.json          richness, beta, noise (np.mean, np.corrcoef, min-max,
                       scipy.ndimage.gaussian_filter1d) of objects `idx`, plus gaussian cases
  rescaled_p0.npy      global min-max of participant 0's (T, k, k) selection (load_rdm)
  epochs_p<i>.h5       epochs files (layout of results/README.md)
  epochs_<method>_<case>.npy   (P, T, m) float64 RDMs and epochs.json (axes)
The curve definitions follow CLIP-HBA's get_richness / compute_rdm_generalization /
compute_noise_level; crossnobis is written out as explicit loops over condition pairs.
"""
import argparse
import json
import os

import h5py
import numpy as np
from scipy.ndimage import gaussian_filter1d


def minmax(v):
    return (v - v.min()) / (v.max() - v.min())


def random_stacks(rng, P, T, n):
    x = rng.random((P, T, n, n))
    x = (x + x.transpose(0, 1, 3, 2)) / 2
    # a slow drift over time so that the curves have structure
    x += np.linspace(0, 1, T)[None, :, None, None] * rng.random((P, 1, n, n))
    x = (x + x.transpose(0, 1, 3, 2)) / 2
    for i in range(n):
        x[:, :, i, i] = 0
    return x


def curves(stacks, zpos, noise_scale, sigma):
    """stacks: (P, T, k, k). Reference definitions (see src/meg/curves.h)."""
    rich = np.mean([np.mean(s, axis=(1, 2)) for s in stacks], axis=0)
    rich = minmax(rich)
    rich[:zpos] = 0
    iu = np.triu_indices(stacks.shape[-1], k=1)
    gens = []
    for s in stacks:
        flat = s[:, iu[0], iu[1]]
        gens.append(minmax(np.mean(np.corrcoef(flat), axis=1)))
    beta = np.mean(gens, axis=0)
    beta[:zpos] = 0
    noise = gaussian_filter1d(1 - beta, sigma=sigma)
    noise = minmax(noise) * noise_scale
    return rich, beta, noise


def boxcar(x, w):
    """Centred mean over w (odd) samples along the last axis; edges use the samples that exist."""
    half = w // 2
    S = x.shape[-1]
    out = np.empty_like(x, dtype=np.float64)
    for s in range(S):
        a, b = max(0, s - half), min(S, s + half + 1)
        out[..., s] = x[..., a:b].mean(axis=-1)
    return out


def epochs_rdms(data, cond, K, method, w, first, stride, T):
    data = boxcar(data.astype(np.float64), w)  # smooth every trial (linear: same as smoothing means)
    C = data.shape[1]
    out = np.zeros((T, K * (K - 1) // 2))
    iu = np.triu_indices(K, k=1)
    for t in range(T):
        s = first + t * stride
        x = data[:, :, s]
        if method == "correlation":
            means = np.stack([x[cond == c].mean(axis=0) for c in range(K)])
            d = 1 - np.corrcoef(means)
        else:
            A, B = [], []
            for c in range(K):
                trials = x[cond == c]  # file order
                A.append(trials[0::2].mean(axis=0))
                B.append(trials[1::2].mean(axis=0))
            d = np.zeros((K, K))
            for i in range(K):
                for j in range(K):
                    if i != j:
                        d[i, j] = np.dot(A[i] - A[j], B[i] - B[j]) / C
        out[t] = d[iu]
    return out


def write_epochs(path, data, cond, names, sfreq, tmin_ms, participant):
    with h5py.File(path, "w") as f:
        g = f.create_group("epochs")
        g.create_dataset("data", data=data.astype(np.float32))
        g.create_dataset("condition", data=cond.astype(np.int64))
        g.create_dataset("condition_names", data=names, dtype=h5py.string_dtype("utf-8"))
        g.create_dataset("channel_names", data=[f"MEG{c:03d}" for c in range(data.shape[1])],
                         dtype=h5py.string_dtype("utf-8"))
        g.attrs["sfreq"] = float(sfreq)
        g.attrs["tmin_ms"] = float(tmin_ms)
        g.attrs["participant"] = participant


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "..", "tests",
                                                  "data_files", "meg_reference"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(20261129)

    # --- RDM stacks and curves -------------------------------------------------------------
    P, T, n = 3, 40, 8
    start_ms, step_ms = -20.0, 5.0
    zpos = int((0 - start_ms) // step_ms + 1)
    stack = random_stacks(rng, P, T, n)
    names = [f"object_{i:02d}.jpg" for i in range(n)]
    np.save(os.path.join(args.out, "stack.npy"), stack)
    np.save(os.path.join(args.out, "stack_f32.npy"), stack.astype(np.float32))
    iu = np.triu_indices(n, k=1)
    np.save(os.path.join(args.out, "stack_condensed.npy"),
            np.ascontiguousarray(stack[:, :, iu[0], iu[1]]).astype(np.float32))
    with open(os.path.join(args.out, "names.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    idx = [6, 1, 3, 0, 7, 4]
    sel = stack[:, :, idx][:, :, :, idx]
    noise_scale, sigma = 0.5, 3.0
    rich, beta, noise = curves(sel, zpos, noise_scale, sigma)
    # rescale of participant 0's selection, as load_rdm (global min-max)
    s0 = sel[0]
    np.save(os.path.join(args.out, "rescaled_p0.npy"),
            np.ascontiguousarray((s0 - s0.min()) / (s0.max() - s0.min())))
    short = rng.random(5)
    gauss = {
        "x": rng.random(23).tolist(),
        "sigma": 1.7,
        "short_x": short.tolist(),
        "short_sigma": 3.0,
    }
    gauss["y"] = gaussian_filter1d(np.array(gauss["x"]), sigma=1.7).tolist()
    gauss["short_y"] = gaussian_filter1d(short, sigma=3.0).tolist()  # radius 12 > length 5
    with open(os.path.join(args.out, "curves.json"), "w") as f:
        json.dump({"participants": P, "timepoints": T, "objects": n, "time_start_ms": start_ms,
                   "time_step_ms": step_ms, "zero_ms_position": zpos, "idx": idx,
                   "noise_scale": noise_scale, "sigma": sigma, "richness": rich.tolist(),
                   "beta": beta.tolist(), "noise": noise.tolist(), "gaussian": gauss}, f, indent=1)

    # --- epochs -> RDMs --------------------------------------------------------------------
    K, C, S, sfreq, tmin_ms = 5, 6, 50, 500.0, -20.0
    cond_names = [f"image_{c}.jpg" for c in range(K)]
    ep = {"conditions": cond_names, "sfreq": sfreq, "tmin_ms": tmin_ms, "cases": {}}
    datas = []
    for p in range(2):
        counts = rng.integers(2, 6, size=K)
        cond = rng.permutation(np.repeat(np.arange(K), counts))
        pattern = rng.normal(size=(K, C, 1)) * np.sin(np.linspace(0, 3, S))[None, None, :]
        data = pattern[cond] + rng.normal(scale=0.8, size=(len(cond), C, S))
        data = data.astype(np.float32)
        write_epochs(os.path.join(args.out, f"epochs_p{p}.h5"), data, cond, cond_names, sfreq,
                     tmin_ms, f"sub-{p + 1:02d}")
        datas.append((data, cond))
    # case "raw": every sample, no window; case "smooth": window 10 ms (5 samples), step 4 ms
    # (every 2nd sample), crop [-10, 60] ms -> samples 5..40.
    cases = {"raw": dict(window_ms=0.0, step_ms=0.0, tmin_ms=-1e9, tmax_ms=1e9, w=1, first=0,
                         stride=1, last=S - 1),
             "smooth": dict(window_ms=10.0, step_ms=4.0, tmin_ms=-10.0, tmax_ms=60.0, w=5,
                            first=5, stride=2, last=40)}
    for case, c in cases.items():
        T_out = (c["last"] - c["first"]) // c["stride"] + 1
        ep["cases"][case] = {k: c[k] for k in ("window_ms", "step_ms", "tmin_ms", "tmax_ms")}
        ep["cases"][case]["timepoints"] = T_out
        ep["cases"][case]["time_start_ms"] = tmin_ms + c["first"] * 1000.0 / sfreq
        ep["cases"][case]["time_step_ms"] = c["stride"] * 1000.0 / sfreq
        for method in ("correlation", "crossnobis"):
            r = np.stack([epochs_rdms(d, cd, K, method, c["w"], c["first"], c["stride"], T_out)
                          for d, cd in datas])
            np.save(os.path.join(args.out, f"epochs_{method}_{case}.npy"), r)
    with open(os.path.join(args.out, "epochs.json"), "w") as f:
        json.dump(ep, f, indent=1)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
