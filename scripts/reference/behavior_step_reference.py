#!/usr/bin/python3
"""Timing of one CLIP-HBA-Behavior training step with the REFERENCE's computation structure.

Written for cliphba from METHOD.md ("Stage 1") with the modules of meg_step_reference.py (no
reference code copied). What makes it the reference's structure:
  * every forward encodes the 66 prompts ONE BY ONE through the text tower, whose last block
    carries a trainable DoRA adapter (so the text tower also runs backward);
  * DoRA rank 32, alpha 32, magnitude trainable, on the last 2 vision blocks and the last text
    block; everything else frozen; float32;
  * output logit_scale.exp() * cos(image feature, text feature_k), MSE to targets >= 0, AdamW
    lr 3e-4.
The model, batch, image size and 66 prompts of cliphba's `BM_TrainStep/vitb32_b16_text_batched`
(tests/bench/train_bench.cc). Differences: the reference's text tower runs all 77 positions of
each prompt (cliphba's stops after the last end-of-text token: most of the speed-up); the prompts
are 12 random tokens and an end-of-text token (cliphba's: the real prompts66.json); targets and
weights are drawn differently, so the first losses are not comparable. Random weights and
images. Prints one JSON line: median / min seconds per step, the text tower's share, the loss of
the first step.

  /usr/bin/python3 scripts/reference/behavior_step_reference.py --model vitb32 --batch 16
Needs python3-torch (Debian 1.13); only for benchmarks (scripts/bench_precision.sh), not for CI.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from meg_step_reference import CONFIGS, DoRA, frozen_clip, prompt_ids  # noqa: E402


def encode_image(model, images):  # (N, 3, R, R) -> (N, E): ln_post(CLS of the last block) @ proj
    x = model.conv1(images).flatten(2).transpose(1, 2)
    x = torch.cat([model.cls.expand(x.shape[0], 1, -1), x], 1) + model.vpos
    x = model.ln_pre(x).permute(1, 0, 2)
    for b in model.vblocks:
        x = b(x)
    return model.ln_post(x[0]) @ model.proj


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=CONFIGS, default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--steps", type=int, default=2, help="timed steps (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    c, model = frozen_clip(a.model, a.threads)
    trainable = []
    for b in list(model.vblocks)[-2:] + list(model.tblocks)[-1:]:
        b.out_proj = DoRA(b.out_proj, 32, 32.0, True)
        trainable += [b.out_proj.m, b.out_proj.A, b.out_proj.B]
    for p in trainable:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(trainable, lr=3e-4)
    ids = prompt_ids(c)
    images = torch.randn(a.batch, 3, c["res"], c["res"])
    targets = torch.rand(a.batch, 66)

    def step():
        t0 = time.perf_counter()
        img = encode_image(model, images)
        t1 = time.perf_counter()
        text = torch.cat([model.encode_text(ids[k]) for k in range(66)])  # one by one
        t2 = time.perf_counter()
        img = img / img.norm(dim=-1, keepdim=True)
        text = text / text.norm(dim=-1, keepdim=True)
        loss = F.mse_loss(model.logit_scale.exp() * img @ text.t(), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t3 = time.perf_counter()
        return t3 - t0, t2 - t1, float(loss)

    step()  # warm-up
    runs = [step() for _ in range(a.steps)]
    tot = [r[0] for r in runs]
    print(json.dumps({
        "impl": "reference_structure_pytorch", "stage": "behavior", "model": a.model,
        "batch": a.batch, "threads": a.threads,
        "median_s": statistics.median(tot), "min_s": min(tot),
        "text_share": statistics.median(r[1] / r[0] for r in runs),
        "first_loss": runs[0][2],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
