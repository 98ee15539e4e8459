#!/usr/bin/python3
"""Recomputes /compare/behavior of a `cliphba run` results file (plain CLIP vs CLIP-HBA-Behavior
on the behaviour stage's held-out objects) independently (issue 17).

usage: behavior_compare_check.py RUN_DIR RESULTS.h5 CLIPHBA CHECKPOINT PROMPTS VOCAB IMAGE_DIR SEED

  * rdm_behavior = 1 - Pearson r of <run>/behavior/evaluation.h5 /behavior/predicted (numpy);
  * rdm_clip = the same of `cliphba predict behavior --model CHECKPOINT --prompts --vocab` on the
    held-out images (the command-line path, float32 embeddings);
  * spearman_clip / spearman_behavior = scipy's spearmanr with /behavior/reference_rdm;
  * p_value = the object-swap permutation test recomputed in numpy, its coins drawn by a Python
    Philox4x32-10 (checked against Random123's known answers) on the streams the C++ uses:
    CounterRng(SEED, 0xC5 << 56 | k), coin i = bit 0 of the i-th 32-bit draw;
  * the bootstrap CI brackets delta.
"""
import os
import subprocess
import sys
import tempfile

import h5py
import numpy as np
from scipy import stats

M0, M1, W0, W1 = 0xD2511F53, 0xCD9E8D57, 0x9E3779B9, 0xBB67AE85
MASK = 0xFFFFFFFF


def philox(c, k):
    c, k = list(c), list(k)
    for _ in range(10):
        p0, p1 = M0 * c[0], M1 * c[2]
        c = [((p1 >> 32) ^ c[1] ^ k[0]) & MASK, p1 & MASK, ((p0 >> 32) ^ c[3] ^ k[1]) & MASK,
             p0 & MASK]
        k = [(k[0] + W0) & MASK, (k[1] + W1) & MASK]
    return c


def u32_stream(seed, stream, count):
    out, block = [], 0
    while len(out) < count:
        out += philox([block & MASK, block >> 32, stream & MASK, stream >> 32],
                      [seed & MASK, seed >> 32])
        block += 1
    return out[:count]


def rdm(x):
    x = np.asarray(x, dtype=np.float64)
    c = np.corrcoef(x)
    iu = np.triu_indices(len(x), 1)
    return 1.0 - c[iu]


def main(run, results, cliphba, checkpoint, prompts, vocab, image_dir, seed):
    seed = int(seed)
    kat = [([0, 0, 0, 0], [0, 0], [0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]),
           ([MASK] * 4, [MASK] * 2, [0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd])]
    for c, k, want in kat:
        assert philox(c, k) == want, "the Python Philox does not match Random123"
    f = h5py.File(results, "r")
    g = f["/compare/behavior"]
    ev = h5py.File(f"{run}/behavior/evaluation.h5", "r")
    names = [n.decode() for n in ev["/behavior/object_names"][()]]
    ref = ev["/behavior/reference_rdm"][()]
    beh = ev["/behavior/predicted"][()]
    worst = 0.0

    def same(got, want, what, tol):
        nonlocal worst
        d = float(np.max(np.abs(np.asarray(got) - np.asarray(want))))
        worst = max(worst, d)
        if d > tol:
            sys.exit(f"FAIL: {what}: differs by {d:.3g} (tolerance {tol:g})")

    same(g["rdm_behavior"][()], rdm(beh), "rdm_behavior", 1e-12)
    with tempfile.TemporaryDirectory() as tmp:
        with open(f"{tmp}/images.txt", "w") as fh:
            folder = os.path.abspath(image_dir)
            fh.write("\n".join(os.path.join(folder, n) for n in names) + "\n")
        subprocess.run([cliphba, "predict", "behavior", "--model", checkpoint, "--prompts",
                        prompts, "--vocab", vocab, "--image-list", f"{tmp}/images.txt", "--out",
                        f"{tmp}/clip.h5"], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        with h5py.File(f"{tmp}/clip.h5", "r") as p:
            clip = p["/predict/embedding"][()].astype(np.float64)
    same(g["rdm_clip"][()], rdm(clip), "rdm_clip (predict behavior)", 1e-9)
    rho_c = stats.spearmanr(rdm(clip), ref)[0]
    rho_b = stats.spearmanr(rdm(beh), ref)[0]
    same(g.attrs["spearman_clip"], rho_c, "spearman_clip", 1e-9)
    same(g.attrs["spearman_behavior"], rho_b, "spearman_behavior", 1e-9)
    delta = rho_b - rho_c
    same(g.attrs["delta"], delta, "delta", 1e-9)
    n_perm, n = int(g.attrs["n_permutations"]), len(names)
    extreme = 0
    for k in range(n_perm):
        coin = np.array([u & 1 for u in u32_stream(seed, (0xC5 << 56) | k, n)], bool)[:, None]
        h1, h2 = np.where(coin, clip, beh), np.where(coin, beh, clip)
        d = stats.spearmanr(rdm(h1), ref)[0] - stats.spearmanr(rdm(h2), ref)[0]
        extreme += abs(d) >= abs(delta) - 1e-12
    same(g.attrs["p_value"], (1 + extreme) / (1 + n_perm), "p_value", 1e-12)
    if not g.attrs["delta_lower"] <= delta <= g.attrs["delta_upper"]:
        sys.exit("FAIL: the bootstrap CI does not bracket delta")
    print(f"behaviour comparison recomputed (predict CLI, scipy, Python Philox): clip "
          f"{rho_c:.4f}, behavior {rho_b:.4f}, delta {delta:+.4f} "
          f"[{g.attrs['delta_lower']:+.4f}, {g.attrs['delta_upper']:+.4f}], p "
          f"{g.attrs['p_value']:.4g}; largest difference {worst:.1e}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 9:
        sys.exit(__doc__.strip().splitlines()[3])
    sys.exit(main(*sys.argv[1:]))
