#!/usr/bin/python3
"""The reference preset's differences from cliphba's MEG defaults, measured on the quickstart cohort.

    scripts/quickstart.sh                       # once: cohort, base model, stage-1 model
    /usr/bin/python3 scripts/meg_reference_ablation.py [--seeds 1,2,3] [--out DIR] [--np 1]

For every seed, 8 of the cohort's 32 objects are held out (a pure function of the seed). The group
MEG model is trained (`cliphba train meg`, configs/quickstart.yaml) with the defaults, with each
reference setting alone, and with all of them (the reference preset's behaviour), then evaluated on
the held-out objects (`cliphba evaluate meg`). Reported per variant, mean (sd) over seeds:
  - val P: the best checkpoint's validation Pearson loss (un-normalised, so comparable), objects
    of the training split's validation part;
  - held-out r: the model RDM of the held-out objects vs each participant's MEG RDM, Spearman,
    mean over participants and timepoints >= 0 ms (out-of-sample);
  - the paired difference of held-out r from the default, mean (sd) over seeds.
Writes DIR/ablation.md and DIR/ablation.json. A benchmark of choices, not a test.
"""
import argparse
import json
import os
import subprocess
import sys

import h5py
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

VARIANTS = [
    ("default", []),
    ("wfr_init last", ["train.meg.wfr_init=last"]),
    ("dora_from_start", ["train.meg.dora_from_start=true"]),
    ("noise_eval", ["train.meg.noise_eval=true"]),
    ("fixed_batches", ["train.meg.fixed_batches=true"]),
    ("window 15 ms", ["train.meg.window_ms=15"]),
    ("behavior_vision false", ["train.meg.behavior_vision=false"]),
    ("curves_from_all", ["train.meg.curves_from_all=true"]),
    ("reference (all)", ["train.meg.wfr_init=last", "train.meg.dora_from_start=true",
                         "train.meg.noise_eval=true", "train.meg.fixed_batches=true",
                         "train.meg.window_ms=15", "train.meg.behavior_vision=false",
                         "train.meg.curves_from_all=true"]),
]


def run(cmd, log):
    with open(log, "a") as f:
        f.write("$ " + " ".join(cmd) + "\n")
        f.flush()
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT)
    if r.returncode != 0:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", default="1,2,3")
    ap.add_argument("--out", default=os.path.join(ROOT, "results", "meg_ablation"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--np", type=int, default=1, help="MPI ranks per training (1 = no mpirun)")
    args = ap.parse_args()
    cliphba = os.path.join(args.build, "src", "apps", "cliphba")
    cohort = os.path.join(ROOT, "results", "quickstart", "cohort")
    stage1 = os.path.join(ROOT, "results", "quickstart", "run", "behavior", "best.safetensors")
    for need in (cohort + "/cohort.json", stage1):
        if not os.path.exists(need):
            sys.exit(f"{need} is missing: run scripts/quickstart.sh first")
    os.makedirs(args.out, exist_ok=True)
    log = os.path.join(args.out, "ablation.log")
    with h5py.File(os.path.join(cohort, "meg", "rdm.h5"), "r") as f:
        names = [s.decode() for s in f["/meg/names"][()]]
    prefix = ["mpirun", "-np", str(args.np), "--oversubscribe"] if args.np > 1 else []
    seeds = [int(s) for s in args.seeds.split(",")]
    results = {name: {"val_p": [], "heldout_r": []} for name, _ in VARIANTS}
    for seed in seeds:
        rng = np.random.default_rng(seed)
        held = sorted(rng.choice(names, size=8, replace=False).tolist())
        held_file = os.path.join(args.out, f"heldout_s{seed}.txt")
        with open(held_file, "w") as f:
            f.write("\n".join(held) + "\n")
        for name, sets in VARIANTS:
            out = os.path.join(args.out, name.replace(" ", "_").replace("(", "").replace(")", ""),
                               f"s{seed}")
            base = ["--config", "configs/quickstart.yaml",
                    "--set", "train.meg.mode=group", "--set", "train.meg.participants=[]",
                    "--set", f"train.meg.heldout_names={held_file}",
                    "--set", f"train.meg.behavior_checkpoint={stage1}",
                    "--set", f"train.meg.seed={seed}", "--set", f"train.meg.out_dir={out}",
                    "--set", "train.meg.progress_seconds=0"]
            for s in sets:
                base += ["--set", s]
            if not os.path.exists(os.path.join(out, "best.json")):
                run(prefix + [cliphba, "train", "meg"] + base + ["--force"], log)
            if not os.path.exists(os.path.join(out, "evaluation.h5")):
                run([cliphba, "evaluate", "meg"] + base, log)
            best = json.load(open(os.path.join(out, "best.json")))
            with h5py.File(os.path.join(out, "evaluation.h5"), "r") as f:
                times = f["/meg/times_ms"][()]
                r = f["/meg/group/alignment/spearman"][()]  # (P, T_full)
            results[name]["val_p"].append(float(best["val_pearson"]))
            results[name]["heldout_r"].append(float(r[:, times >= 0].mean()))
            print(f"seed {seed} {name:24s} val P {best['val_pearson']:.4f} held-out r "
                  f"{results[name]['heldout_r'][-1]:.4f}", flush=True)
    d0 = np.array(results["default"]["heldout_r"])
    lines = ["| variant | val P | held-out r (t >= 0) | paired Δ held-out r vs default |",
             "|---|---|---|---|"]
    for name, _ in VARIANTS:
        p = np.array(results[name]["val_p"])
        r = np.array(results[name]["heldout_r"])
        d = r - d0
        lines.append(f"| {name} | {p.mean():.4f} ({p.std(ddof=1) if len(p) > 1 else 0:.4f}) | "
                     f"{r.mean():.4f} ({r.std(ddof=1) if len(r) > 1 else 0:.4f}) | "
                     f"{d.mean():+.4f} ({d.std(ddof=1) if len(d) > 1 else 0:.4f}) |")
    text = (f"Quickstart cohort, group model, {len(seeds)} seeds ({args.seeds}), 8 held-out objects "
            f"per seed; mean (sd over seeds).\n\n" + "\n".join(lines) + "\n")
    open(os.path.join(args.out, "ablation.md"), "w").write(text)
    json.dump(results, open(os.path.join(args.out, "ablation.json"), "w"), indent=1)
    print(text)


if __name__ == "__main__":
    main()
