#!/usr/bin/python3
"""Timing of prediction with the REFERENCE's inference structure (PyTorch), per image.

Written for cliphba from the description of the reference's inference scripts (issue 16,
METHOD.md); no reference code copied. What makes it the reference's structure:
  * inference_behavior.py: batches of images through the CLIPHBA forward, which re-encodes the
    66 prompts ONE BY ONE through the text tower at every batch (the text tower is part of the
    forward), logit_scale x cosine; the embeddings of all batches are stacked, then the
    correlation RDM of all images (numpy);
  * inference_meg_*.py: the same image pass (per-block CLS projections) and, per batch, the head
    in a Python loop over all timepoints (window means of Wfr, richness and beta, logits, jitter),
    the embeddings of every timepoint kept in memory, then an RDM per timepoint.
Random weights (the OpenAI-style ViT CLIP of meg_step_reference.py), random images. Prints one
JSON line: seconds per image (median over the timed batches), peak RSS.

  /usr/bin/python3 scripts/reference/predict_reference.py --model vitb32 --task behavior --batches 3
Needs python3-torch (Debian 1.13); benchmarks only (scripts/bench_predict.sh), not CI.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meg_step_reference import CONFIGS, Clip, DoRA  # noqa: E402  (same folder)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=CONFIGS, default="vitb32")
    ap.add_argument("--task", choices=("behavior", "meg"), default="behavior")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--batches", type=int, default=3, help="timed batches (after one warm-up)")
    ap.add_argument("--timepoints", type=int, default=281)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(1)
    c = CONFIGS[a.model]
    model = Clip(c).eval()
    for b in model.vblocks[-2:]:  # stage-1 DoRA on the last 2 vision blocks (the weight property)
        b.out_proj = DoRA(b.out_proj, 32, 16.0, True)
    ids = torch.randint(1, c["vocab"] - 1, (66, 1, 77))
    ids[:, 0, 12] = c["vocab"] - 1
    ids[:, 0, 13:] = 0
    t_full, l_blocks = a.timepoints, c["vl"]
    wfr, richness, beta = torch.rand(t_full, l_blocks), torch.rand(t_full), torch.rand(t_full)

    text_s = []

    def batch_forward(images):
        with torch.no_grad():
            feats = model.block_cls_proj(images)  # (L) x (B, E); the last is the image feature
            t_text = time.perf_counter()
            text = torch.cat([model.encode_text(ids[k]) for k in range(66)])  # one by one
            text_s.append(time.perf_counter() - t_text)
            text = text / text.norm(dim=-1, keepdim=True)
            if a.task == "behavior":
                img = feats[-1] / feats[-1].norm(dim=-1, keepdim=True)
                return (model.logit_scale.exp() * img @ text.t()).numpy()
            stack = torch.stack(feats)
            out = []
            for t in range(t_full):  # the reference's per-timepoint loop
                lo, hi = max(0, t - 2), min(t + 3, t_full)
                v = wfr[lo:hi].mean(0)
                v = (v - v.min()) / (v.max() - v.min() + 1e-10)
                v = torch.relu(v / (v.sum() + 1e-10))
                h = (v[:, None, None] * richness[lo:hi].mean() * stack).sum(0)
                raw = torch.relu(model.logit_scale.exp() * h @ text.t())
                out.append((torch.relu(beta[lo:hi].mean() * raw) + torch.rand_like(raw) * 1e-5).numpy())
            return np.stack(out)  # (T, B, K)

    images = torch.randn(a.batch, 3, c["res"], c["res"])
    batch_forward(images)  # warm-up
    times, kept = [], []
    for _ in range(a.batches):
        t0 = time.perf_counter()
        kept.append(batch_forward(images))
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()  # the RDMs of everything predicted
    if a.task == "behavior":
        np.corrcoef(np.concatenate(kept, 0))
    else:
        emb = np.concatenate(kept, 1)
        for t in range(t_full):
            np.corrcoef(emb[t])
    rdm_s = time.perf_counter() - t0
    n = a.batch * a.batches
    print(json.dumps({
        "impl": "reference_structure_pytorch", "task": a.task, "model": a.model,
        "batch": a.batch, "timepoints": t_full if a.task == "meg" else 0, "threads": a.threads,
        "s_per_image": (sum(times) + rdm_s) / n, "median_batch_s": statistics.median(times),
        "rdm_s": rdm_s, "images": n, "text_share": sum(text_s[1:]) / sum(times),
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
