#!/usr/bin/python3
"""Fixture of the `cliphba run` MEG test (run_cli_test.sh meg), as tests/train/meg_common.h does in
C++: a 4-block variant of the tiny fixture CLIP (blocks 2, 3 = blocks 0, 1 scaled by 1 + 0.1 N(0, 1),
so the Wfr block weights get a gradient) and a MEG RDM stack (P 3, T 12 from -20 ms by 10 ms) whose
RDMs are a time-varying multiple of the correlation distances of the synthetic images' targets
plus participant noise.

usage: run_meg_fixture.py TINY_CLIP.safetensors DATA_DIR OUT_DIR
"""
import json
import struct
import sys

import numpy as np

clip, data, out = sys.argv[1:4]
rng = np.random.default_rng(5)

# safetensors: u64 header length, JSON header, raw little-endian tensors.
with open(clip, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
    raw = f.read()
tensors = {}
for name, info in header.items():
    if name == "__metadata__":
        continue
    a, b = info["data_offsets"]
    dt = {"F32": np.float32, "F16": np.float16, "I64": np.int64}[info["dtype"]]
    tensors[name] = np.frombuffer(raw[a:b], dtype=dt).reshape(info["shape"])
pre = "visual.transformer.resblocks."
extra = {}
for name, t in tensors.items():
    if name.startswith(pre):
        block, rest = name[len(pre):].split(".", 1)
        scale = 1 + 0.1 * rng.standard_normal(t.shape)
        extra[f"{pre}{int(block) + 2}.{rest}"] = (t * scale).astype(t.dtype)
tensors.update(extra)
hdr, blobs, offset = {}, [], 0
for name in sorted(tensors):
    t = np.array(tensors[name], order="C")  # (ascontiguousarray would make 0-D tensors 1-D)
    dtype = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.int64): "I64"}[t.dtype]
    hdr[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + t.nbytes]}
    blobs.append(t.tobytes())
    offset += t.nbytes
text = json.dumps(hdr).encode()
text += b" " * ((8 - len(text) % 8) % 8)
with open(f"{out}/tiny_clip_vit_4blocks.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(text)))
    f.write(text)
    for b in blobs:
        f.write(b)

# MEG RDM stack over the images named in targets.csv.
rows = [line.rstrip("\n").split(",") for line in open(f"{data}/targets.csv")][1:]
names = [r[1] for r in rows]
x = np.array([[float(v) for v in r[2:]] for r in rows])
c = x - x.mean(1, keepdims=True)
c /= np.linalg.norm(c, axis=1, keepdims=True)
dist = np.clip(1 - c @ c.T, 0, None)
np.fill_diagonal(dist, 0)
P, T = 3, 12
stack = np.zeros((P, T, len(names), len(names)))
for p in range(P):
    for t in range(T):
        ms = -20 + 10 * t
        amp = 0.1 if ms < 0 else 0.4 + 0.5 * np.sin(0.03 * ms + 0.3 * p)
        e = 0.05 * rng.standard_normal(dist.shape)
        e = np.abs(e + e.T)
        np.fill_diagonal(e, 0)
        stack[p, t] = amp * dist + e
np.save(f"{out}/meg_rdm.npy", stack.astype(np.float32))
with open(f"{out}/meg_names.txt", "w") as f:
    f.write("\n".join(names) + "\n")
