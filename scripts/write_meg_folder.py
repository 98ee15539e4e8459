#!/usr/bin/python3
"""Writes a `cliphba train meg`-shaped model folder with a random head, for benchmarks and tests.

best.safetensors: wfr (T, L), beta and visual_scaler (0.5 + U(0,1), T), noise_level (T), float32;
best.json: the model record `cliphba predict meg` reads (no DoRA, group mode).

  write_meg_folder.py OUT_DIR --base CLIP.safetensors --prompts P.json --vocab BPE.gz
      [--vocab-remap tiny] --timepoints T --blocks L --start-ms S --step-ms D [--window-ms W]
      [--seed S] [--batch B]
"""
import argparse
import json
import os
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out")
    ap.add_argument("--base", required=True)
    ap.add_argument("--prompts", required=True)
    ap.add_argument("--vocab", required=True)
    ap.add_argument("--vocab-remap", default="")
    ap.add_argument("--timepoints", type=int, required=True)
    ap.add_argument("--blocks", type=int, required=True)
    ap.add_argument("--start-ms", type=float, required=True)
    ap.add_argument("--step-ms", type=float, required=True)
    ap.add_argument("--window-ms", type=float, default=10.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    t, l = a.timepoints, a.blocks
    tensors = {"wfr": rng.random((t, l)), "beta": 0.5 + rng.random(t),
               "visual_scaler": 0.5 + rng.random(t), "noise_level": rng.random(t)}
    header, blobs, off = {}, [], 0
    for k, v in tensors.items():
        b = np.ascontiguousarray(v, "<f4").tobytes()
        header[k] = {"dtype": "F32", "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    os.makedirs(a.out, exist_ok=True)
    with open(f"{a.out}/best.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(blobs))
    texts = json.load(open(a.prompts))
    json.dump({"format": "cliphba MEG checkpoint", "mode": "group", "participants": [],
               "base_checkpoint": a.base, "prompts": a.prompts, "vocab": a.vocab,
               "vocab_remap": a.vocab_remap, "normalization": "things", "prompt_texts": texts,
               "labels": texts, "behavior_checkpoint": "", "behavior_vision": False,
               "seed": a.seed, "batch": a.batch,
               "axis": {"start_ms": a.start_ms, "step_ms": a.step_ms, "size": t},
               "window_ms": a.window_ms, "dora": {"applied": False}},
              open(f"{a.out}/best.json", "w"))


if __name__ == "__main__":
    main()
