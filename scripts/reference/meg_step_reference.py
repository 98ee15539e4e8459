#!/usr/bin/python3
"""Timing of one CLIP-HBA-MEG training step with the REFERENCE's computation structure (PyTorch).

Written for cliphba from the description in design/CONTRACTS.md ("Head math") and METHOD.md (no
reference code copied). What makes it the reference's structure:
  * every forward re-encodes the 66 prompts ONE BY ONE through the text tower (even though the
    text tower is frozen), as CLIP-HBA's forward does;
  * the head loops over the training timepoints in Python: window means of Wfr rows, richness
    and beta, then logits, noise and the Pearson RDM per timepoint, stacked at the end;
  * phase 1 runs the full forward (images through the vision tower) and the full backward although
    only Wfr learns (the other parameters merely have learning rate 0); phase 2 the same with the
    DoRA parameters trainable too.
Random weights (OpenAI-style ViT CLIP built here), random images, random target RDMs; the loss is
PearsonMSELongLoss. Prints one JSON line per configuration: median / min seconds per step, the
share of the timepoint loop and of the text tower, and the loss of the first step.

  /usr/bin/python3 scripts/reference/meg_step_reference.py --model tiny --batch 16 --timepoints 29
Needs python3-torch (Debian 1.13); only for benchmarks (scripts/bench_meg.sh, scripts/bench_precision.sh), not for CI.
"""
import argparse
import json
import math
import resource
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

CONFIGS = {  # embed, resolution, patch, vision width/layers, text width/layers, vocab
    "tiny": dict(embed=32, res=32, patch=8, vw=64, vl=2, tw=64, tl=2, vocab=4096),
    "vitb32": dict(embed=512, res=224, patch=32, vw=768, vl=12, tw=512, tl=12, vocab=49408),
}


class DoRA(nn.Module):
    """Weight-decomposed low-rank adapter of a Linear (METHOD.md "Adapters"); weight property."""

    def __init__(self, linear, r, alpha, train_magnitude):
        super().__init__()
        w = linear.weight.detach()
        self.m = nn.Parameter(w.t().norm(dim=0), requires_grad=train_magnitude)
        self.register_buffer("D", (w.t() / w.t().norm(dim=0)).clone())
        self.A = nn.Parameter(torch.empty(r, w.shape[0]))
        self.B = nn.Parameter(torch.empty(w.shape[1], r))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))
        nn.init.kaiming_uniform_(self.B, a=math.sqrt(5))
        self.bias = nn.Parameter(linear.bias.detach().clone(), requires_grad=False)
        self.scale = alpha / r

    @property
    def weight(self):
        d = self.D + (self.B @ self.A) * self.scale
        return (d / (d.norm(dim=0, keepdim=True) + 1e-8) * self.m).t()


class Block(nn.Module):
    def __init__(self, w, mask=None):
        super().__init__()
        self.heads = w // 64
        self.in_proj = nn.Linear(w, 3 * w)
        self.out_proj = nn.Linear(w, w)
        self.ln_1, self.ln_2 = nn.LayerNorm(w), nn.LayerNorm(w)
        self.c_fc, self.c_proj = nn.Linear(w, 4 * w), nn.Linear(4 * w, w)
        self.mask = mask

    def forward(self, x):  # (L, N, W)
        h = self.ln_1(x)
        a, _ = F.multi_head_attention_forward(
            h, h, h, h.shape[-1], self.heads, self.in_proj.weight, self.in_proj.bias, None, None,
            False, 0.0, self.out_proj.weight, self.out_proj.bias, training=False,
            need_weights=False, attn_mask=self.mask)
        x = x + a
        g = self.c_fc(self.ln_2(x))
        return x + self.c_proj(g * torch.sigmoid(1.702 * g))


class Clip(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        vw, tw, e = c["vw"], c["tw"], c["embed"]
        grid = c["res"] // c["patch"]
        self.conv1 = nn.Conv2d(3, vw, c["patch"], c["patch"], bias=False)
        self.cls = nn.Parameter(torch.randn(vw) * vw ** -0.5)
        self.vpos = nn.Parameter(torch.randn(grid * grid + 1, vw) * vw ** -0.5)
        self.ln_pre, self.ln_post = nn.LayerNorm(vw), nn.LayerNorm(vw)
        self.vblocks = nn.ModuleList([Block(vw) for _ in range(c["vl"])])
        self.proj = nn.Parameter(torch.randn(vw, e) * vw ** -0.5)
        mask = torch.full((77, 77), float("-inf")).triu_(1)
        self.tok = nn.Embedding(c["vocab"], tw)
        self.tpos = nn.Parameter(torch.randn(77, tw) * 0.01)
        self.tblocks = nn.ModuleList([Block(tw, mask) for _ in range(c["tl"])])
        self.ln_final = nn.LayerNorm(tw)
        self.text_projection = nn.Parameter(torch.randn(tw, e) * tw ** -0.5)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))

    def block_cls_proj(self, images):  # -> list of (N, E), CLS of every block @ proj (no ln_post)
        x = self.conv1(images).flatten(2).transpose(1, 2)
        x = torch.cat([self.cls.expand(x.shape[0], 1, -1), x], 1) + self.vpos
        x = self.ln_pre(x).permute(1, 0, 2)
        out = []
        for b in self.vblocks:
            x = b(x)
            out.append(x[0] @ self.proj)
        return out

    def encode_text(self, ids):  # (1, 77) -> (1, E)
        x = (self.tok(ids) + self.tpos).permute(1, 0, 2)
        for b in self.tblocks:
            x = b(x)
        x = self.ln_final(x.permute(1, 0, 2))
        return x[torch.arange(x.shape[0]), ids.argmax(-1)] @ self.text_projection


def frozen_clip(name, threads):
    """Threads set, torch seeded (1), the random CLIP of CONFIGS[name] built with every
    parameter frozen: the start of both reference steps. Returns (config, model)."""
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    c = CONFIGS[name]
    model = Clip(c)
    for p in model.parameters():
        p.requires_grad_(False)
    return c, model


def prompt_ids(c):  # (66, 1, 77): 12 random tokens, then EOT (the row maximum), then padding
    ids = torch.randint(1, c["vocab"] - 1, (66, 1, 77))
    ids[:, 0, 12] = c["vocab"] - 1
    ids[:, 0, 13:] = 0
    return ids


def pearson_rdm(x):  # (B, K) -> (B, B)
    c = x - x.mean(1, keepdim=True)
    n = c.norm(dim=1, keepdim=True)
    rdm = 1 - (c @ c.t()) / (n @ n.t())
    return rdm.fill_diagonal_(0)  # in place, as the reference (no gradient through the diagonal)


def pearson(x, y):
    xm, ym = x - x.mean(), y - y.mean()
    return (xm * ym).sum() / torch.sqrt((xm ** 2).sum() * (ym ** 2).sum())


def generalization(u):  # (T, m)
    z = (u - u.mean(1, keepdim=True)) / u.std(1, unbiased=False, keepdim=True)
    return (z @ z.t() / (u.shape[1] - 1)).mean(1)


def meg_loss(pred, target, w=(1.0, 0.1, 0.15)):
    b = pred.shape[1]
    iu = torch.triu_indices(b, b, 1)
    pu, tu = pred[:, iu[0], iu[1]], target[:, iu[0], iu[1]]
    p = 1 - pearson(pu.flatten(), tu.flatten())
    m = torch.stack([F.mse_loss(pu[t], tu[t]) for t in range(len(pu))]).mean()
    g = 1 - pearson(generalization(pu), generalization(tu))
    return w[0] * p + w[1] * m + w[2] * g


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=CONFIGS, default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--timepoints", type=int, default=29, help="29: 0..700 ms / 25; 141: / 5")
    ap.add_argument("--phase", type=int, choices=(1, 2), default=2)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up)")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    c, model = frozen_clip(a.model, a.threads)
    dora = []
    for b in model.vblocks:  # DoRA on every vision block, direction only (METHOD.md group)
        b.out_proj = DoRA(b.out_proj, 32, 16.0, False)
        dora += [b.out_proj.A, b.out_proj.B]
    t_full, l_blocks = 281, c["vl"]  # THINGS-MEG axis: -100 .. 1300 ms at 5 ms
    wfr = torch.zeros(t_full, l_blocks)
    wfr[:, -1] = 1
    wfr.requires_grad_(True)
    for p in dora:
        p.requires_grad_(True)
    groups = [{"params": [wfr], "lr": 3e-3}, {"params": dora, "lr": 3e-5 if a.phase == 2 else 0.0}]
    opt = torch.optim.AdamW(groups)
    richness, beta = torch.rand(t_full), torch.rand(t_full)
    noise = torch.rand(t_full)
    step_ms = 700 / (a.timepoints - 1)
    times = [i * step_ms for i in range(a.timepoints)]
    ids = prompt_ids(c)
    images = torch.randn(a.batch, 3, c["res"], c["res"])
    u = torch.rand(a.timepoints, a.batch, a.batch)
    target = (u + u.transpose(1, 2)) / 2 * (1 - torch.eye(a.batch))
    w_half = 10 // 5  # window 10 ms on a 5 ms axis

    def step():
        t0 = time.perf_counter()
        feats = torch.stack(model.block_cls_proj(images))  # (L, B, E)
        t1 = time.perf_counter()
        text = torch.cat([model.encode_text(ids[k]) for k in range(66)])  # one by one
        text = text / text.norm(dim=-1, keepdim=True)
        t2 = time.perf_counter()
        rdms = []
        for t in times:  # the per-timepoint loop
            i = int((t + 100) // 5)
            lo, hi = max(0, i - w_half), min(i + w_half + 1, t_full)
            v = wfr[lo:hi].mean(0)
            v = (v - v.min()) / (v.max() - v.min() + 1e-10)
            v = torch.relu(v / (v.sum() + 1e-10))
            h = (v[:, None, None] * richness[lo:hi].mean() * feats).sum(0)
            raw = torch.relu(model.logit_scale.exp() * h @ text.t())
            e = raw + torch.randn_like(raw) * raw.std(0) * noise[i]
            e = torch.relu(beta[lo:hi].mean() * e) + torch.rand_like(raw) * 1e-5 + 1e-6
            rdms.append(pearson_rdm(e))
        t3 = time.perf_counter()
        loss = meg_loss(torch.stack(rdms), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        t4 = time.perf_counter()
        return t4 - t0, t2 - t1, t3 - t2, float(loss)

    step()  # warm-up
    runs = [step() for _ in range(a.steps)]
    tot = [r[0] for r in runs]
    print(json.dumps({
        "impl": "reference_structure_pytorch", "model": a.model, "batch": a.batch,
        "timepoints": a.timepoints, "phase": a.phase, "threads": a.threads,
        "median_s": statistics.median(tot), "min_s": min(tot),
        "text_share": statistics.median(r[1] / r[0] for r in runs),
        "loop_share": statistics.median(r[2] / r[0] for r in runs),
        "first_loss": runs[0][3],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20,
        "torch": torch.__version__}))


if __name__ == "__main__":
    main()
