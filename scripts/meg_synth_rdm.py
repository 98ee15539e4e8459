#!/usr/bin/python3
"""A synthetic MEG RDM stack for the MEG demo (configs/meg_synth.yaml).

Reads the targets CSV written by `cliphba synth images` (,image_name,0..K-1) and writes
  OUT_DIR/meg_rdm.npy    float32 (P, T, n, n): participant p, time t (-20 .. 90 ms, 10 ms):
                         amp(t, p) * D + |noise|, D = correlation distance of the targets,
                         amp = 0.1 before 0 ms, else 0.4 + 0.5 sin(0.03 t + 0.3 p)
  OUT_DIR/meg_names.txt  the object names in RDM order (= the CSV order)
so the model can learn something: the RDMs are a time-varying multiple of a known geometry.
Usage: scripts/meg_synth_rdm.py TARGETS_CSV OUT_DIR [--participants 3] [--seed 11]
"""
import argparse
import csv
import os

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("targets_csv")
    ap.add_argument("out_dir")
    ap.add_argument("--participants", type=int, default=3)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    with open(a.targets_csv, newline="") as f:
        rows = list(csv.reader(f))
    header = rows[0]
    col = header.index("image_name")
    names = [r[col] for r in rows[1:]]
    x = np.array([[float(v) for v in r[col + 1:]] for r in rows[1:]])
    c = x - x.mean(axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    d = np.clip(1 - c @ c.T, 0, None)
    np.fill_diagonal(d, 0)
    n, times = len(names), np.arange(-20, 91, 10)
    rng = np.random.default_rng(a.seed)
    stack = np.zeros((a.participants, len(times), n, n))
    for p in range(a.participants):
        for t, ms in enumerate(times):
            amp = 0.1 if ms < 0 else 0.4 + 0.5 * np.sin(0.03 * ms + 0.3 * p)
            noise = np.triu(np.abs(rng.normal(0, 0.05, (n, n))), 1)
            stack[p, t] = amp * d + noise + noise.T
    os.makedirs(a.out_dir, exist_ok=True)
    np.save(os.path.join(a.out_dir, "meg_rdm.npy"), stack.astype(np.float32))
    with open(os.path.join(a.out_dir, "meg_names.txt"), "w") as f:
        f.write("\n".join(names) + "\n")
    print(f"{a.out_dir}/meg_rdm.npy: {stack.shape} (time -20 .. 90 ms, step 10 ms)")


if __name__ == "__main__":
    main()
