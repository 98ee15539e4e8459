#!/usr/bin/python3
"""Recomputes the MEG alignment block of a `cliphba run` results file with scipy from the files the
run wrote, and checks that it was computed on the objects it says (issues 14 and 17).

usage: alignment_recompute.py RUN_DIR RESULTS.h5 STACK [NAMES.txt]
  STACK: the MEG RDM stack of meg.rdm: an HDF5 file (/meg/rdm (P, T, m) condensed with /meg/names)
         or an NPY (P, T, n, n) with NAMES.txt. Rescaled by the whole file's range (meg.rdm.rescale
         minmax, as the run does).

For every model of /meg (group, individual/<label>), from <RUN_DIR>/<model>/model_rdms.h5 (the out-of-sample RDMs:
/model/rdm (T, m), /model/names, /model/fold) and model_rdms_insample.h5:
  * the model RDMs are finite exactly on the pairs of two objects of the same fold;
  * with folds (objects = cross_validated), the fold of every object is the one listed in
    <model>/cv/fold-<k>.txt, and fold k's model was trained without those objects (the object
    lists of <model>/cv/fold-<k>/best.json: held out = the fold, train + validation disjoint);
  * /meg/<model>/alignment/{spearman, pearson}[p, t] = mean over folds of scipy's spearmanr /
    pearsonr of the model's and participant p's within-fold pairs at t; likewise
    alignment_insample from model_rdms_insample.h5 (one set of objects);
  * the attributes objects, n_objects, n_pairs, n_folds match the files;
  * the static baselines /meg/{clip,behavior}/alignment from /meg/<b>/rdm on the same folds;
  * every /compare/meg/<a>_vs_<b>: difference = A - B of the written curves (individual: each
    participant's own model), mean, delta_auc, delta_peak_ms, CIs that bracket them;
  * /meg/ceiling/{lower, upper} = the mean over the same folds of the Spearman of participant p's
    within-fold pairs with the mean of the others / of all participants;
  * /meg/group/time_generalization and /meg/time_generalization [p, i, j] = the mean over the
    same folds of the Spearman of the group model's (or participant p's) RDM at i with
    participant p's MEG RDM at j;
  * /compare/dynamic_behavior (when written): the human RDM recomputed from its source (the
    targets CSV: scipy's correlation distance of the embedding rows of the models' objects;
    an NPY reference is taken as written), spearman[i, t] = mean over the same folds of
    spearmanr(model i's RDM at t, human) on the within-fold pairs (clip and behavior from
    /meg/<b>/rdm),
    peak_ms, collapsed = the same on the model's mean RDM over t >= 0 ms, the deltas vs clip;
    the run must write it whenever the run had a behaviour reference and clip.
Exit 1 with the first mismatch; prints the largest difference.
"""
import json
import os
import sys

import h5py
import numpy as np
from scipy import stats

TOL = 1e-6  # float64 everywhere; the run's own average ranks vs scipy's


def load_stack(path, names_txt):
    if path.endswith((".h5", ".hdf5")):
        with h5py.File(path, "r") as f:
            x = f["/meg/rdm"][()].astype(np.float64)
            names = [n.decode() for n in f["/meg/names"][()]]
        if x.ndim == 4:
            iu = np.triu_indices(x.shape[2], 1)
            x = x[:, :, iu[0], iu[1]]
    else:
        sq = np.load(path).astype(np.float64)
        iu = np.triu_indices(sq.shape[2], 1)
        x = sq[:, :, iu[0], iu[1]]
        names = [l.strip() for l in open(names_txt) if l.strip()]
    return (x - x.min()) / (x.max() - x.min()), names


def pair_index(n, objs):
    """Condensed indices (over n objects) of the pairs of objs, in objs' own condensed order."""
    out = []
    for a in range(len(objs)):
        for b in range(a + 1, len(objs)):
            i, j = min(objs[a], objs[b]), max(objs[a], objs[b])
            out.append(i * n - i * (i + 1) // 2 + (j - i - 1))
    return np.array(out, dtype=np.int64)


def read_model(path):
    with h5py.File(path, "r") as f:
        names = [s.decode() for s in f["/model/names"][()]]
        fold = f["/model/fold"][()] if "/model/fold" in f else np.zeros(len(names), np.int64)
        kind = f["/model"].attrs["objects"]
        kind = kind.decode() if isinstance(kind, bytes) else str(kind)
        return f["/model/rdm"][()], names, np.asarray(fold, np.int64), kind


def folds_of(names, fold, stack_names):
    n, N = len(names), len(stack_names)
    sets = []
    for k in range(int(fold.max()) + 1):
        local = [i for i in range(n) if fold[i] == k]
        glob = [stack_names.index(names[i]) for i in local]
        sets.append((pair_index(n, local), pair_index(N, glob), [names[i] for i in local]))
    return sets


def main(run, results, stack_path, names_txt=None):
    stack, stack_names = load_stack(stack_path, names_txt)
    P, T = stack.shape[:2]
    f = h5py.File(results, "r")
    worst = 0.0

    def same(got, want, what):
        nonlocal worst
        d = float(np.abs(got - want).max())
        worst = max(worst, d)
        if not np.allclose(got, want, atol=TOL, rtol=0):
            sys.exit(f"FAIL: {what}: differs from scipy by {d:.3g}")

    def attrs_match(group, kind, sets):
        a = f[group].attrs
        got = (a["objects"].decode() if isinstance(a["objects"], bytes) else str(a["objects"]),
               int(a["n_objects"]), int(a["n_pairs"]), int(a["n_folds"]))
        want = (kind, sum(len(s[2]) for s in sets), sum(len(s[0]) for s in sets), len(sets))
        if got != want:
            sys.exit(f"FAIL: {group} attributes (objects, n_objects, n_pairs, n_folds) {got}, "
                     f"the files say {want}")

    def align(rdm, sets):
        sp, pe = np.zeros((P, T)), np.zeros((P, T))
        for mp, sp_idx, _ in sets:
            for p in range(P):
                for t in range(T):
                    sp[p, t] += stats.spearmanr(rdm[t, mp], stack[p, t, sp_idx])[0]
                    pe[p, t] += stats.pearsonr(rdm[t, mp], stack[p, t, sp_idx])[0]
        return sp / len(sets), pe / len(sets)

    models = (["group"] if "/meg/group/alignment" in f else []) + \
        ([f"individual/{p}" for p in sorted(f["/meg/individual"])] if "/meg/individual" in f
         else [])
    first_sets = None
    for model in models:
        rdm, names, fold, kind = read_model(f"{run}/{model}/model_rdms.h5")
        iu = np.triu_indices(len(names), 1)
        within = fold[iu[0]] == fold[iu[1]]
        if not np.array_equal(np.isfinite(rdm).all(0), within):
            sys.exit(f"FAIL: {model}: model RDMs not finite exactly on the within-fold pairs")
        sets = folds_of(names, fold, stack_names)
        if kind == "cross_validated":
            for k, (_, _, objs) in enumerate(sets):
                listed = [l.strip() for l in open(f"{run}/{model}/cv/fold-{k + 1}.txt") if l.strip()]
                if sorted(listed) != sorted(objs):
                    sys.exit(f"FAIL: {model} fold {k + 1}: cv/fold-{k + 1}.txt lists other objects")
                seen = json.load(open(f"{run}/{model}/cv/fold-{k + 1}/best.json"))["objects"]
                if sorted(seen["heldout"]) != sorted(objs) or \
                        set(objs) & set(seen["train"] + seen["validation"]):
                    sys.exit(f"FAIL: {model} fold {k + 1}: its model trained or validated on "
                             f"objects of the fold (best.json objects)")
        elif kind == "heldout":
            seen = json.load(open(f"{run}/{model}/best.json"))["objects"]
            if set(names) & set(seen["train"] + seen["validation"]):
                sys.exit(f"FAIL: {model}: held-out objects were trained or validated on")
        else:
            sys.exit(f"FAIL: {model}: model_rdms.h5 holds {kind} RDMs, not out-of-sample ones")
        first_sets = first_sets or sets
        sp, pe = align(rdm, sets)
        same(f[f"/meg/{model}/alignment/spearman"][()], sp, f"{model} spearman")
        same(f[f"/meg/{model}/alignment/pearson"][()], pe, f"{model} pearson")
        attrs_match(f"/meg/{model}/alignment", kind, sets)
        ins = f"{run}/{model}/model_rdms_insample.h5"
        if os.path.exists(ins):
            rdm_i, names_i, fold_i, kind_i = read_model(ins)
            if kind_i != "insample":
                sys.exit(f"FAIL: {ins} holds {kind_i} RDMs")
            sets_i = folds_of(names_i, fold_i, stack_names)
            sp, pe = align(rdm_i, sets_i)
            same(f[f"/meg/{model}/alignment_insample/spearman"][()], sp, f"{model} in-sample")
            attrs_match(f"/meg/{model}/alignment_insample", "insample", sets_i)
    # The static baselines (clip, behavior): /meg/<b>/rdm over every stack object, compared on the
    # models' objects, folds and within-fold pairs.
    baselines = [b for b in ("clip", "behavior") if f"/meg/{b}/rdm" in f]
    for b in baselines:
        full = f[f"/meg/{b}/rdm"][()]
        if full.shape != (stack.shape[2],):
            sys.exit(f"FAIL: /meg/{b}/rdm has shape {full.shape}, not ({stack.shape[2]},)")
        T_rdm = np.repeat(full[None, :], T, 0)
        static_sets = [(sidx, sidx, objs) for _, sidx, objs in first_sets]
        sp, pe = align(T_rdm, static_sets)
        same(f[f"/meg/{b}/alignment/spearman"][()], sp, f"{b} spearman")
        same(f[f"/meg/{b}/alignment/pearson"][()], pe, f"{b} pearson")
    # The comparisons: differences of the written curves, their means, delta AUC (trapezoid from
    # 0 ms of the mean difference) and delta peak (peak of A's mean curve minus B's); the CIs
    # bracket the estimates.
    times = f["/meg/times_ms"][()]
    labels = [x.decode() for x in f["/meg/participants"][()]]
    keep = times >= 0
    n_cmp = 0
    for name in (f["/compare/meg"] if "/compare/meg" in f else []):
        g = f["/compare/meg/" + name]
        a, b = (g.attrs[k].decode() if isinstance(g.attrs[k], bytes) else str(g.attrs[k])
                for k in ("model_a", "model_b"))
        if a == "individual":
            A = np.stack([f[f"/meg/individual/{p}/alignment/spearman"][()][i]
                          for i, p in enumerate(labels)])
        else:
            A = f[f"/meg/{a}/alignment/spearman"][()]
        B = f[f"/meg/{b}/alignment/spearman"][()]
        same(g["difference"][()], A - B, f"{name} difference")
        same(g["mean"][()], (A - B).mean(0), f"{name} mean")
        md = (A - B).mean(0)
        auc = float(np.sum((md[keep][1:] + md[keep][:-1]) / 2 * np.diff(times[keep] / 1000)))
        same(np.array(g.attrs["delta_auc"]), np.array(auc), f"{name} delta_auc")
        peak = lambda c: times[keep][int(np.argmax(c[keep]))]
        same(np.array(g.attrs["delta_peak_ms"]), np.array(peak(A.mean(0)) - peak(B.mean(0))),
             f"{name} delta_peak_ms")
        if not (g.attrs["delta_auc_lower"] <= auc <= g.attrs["delta_auc_upper"]) or \
                not np.all(g["ci_lower"][()] <= md + 1e-12) or \
                not np.all(md <= g["ci_upper"][()] + 1e-12):
            sys.exit(f"FAIL: {name}: a CI does not bracket its estimate")
        attrs_match("/compare/meg/" + name,
                    f[f"/meg/{models[0]}/alignment"].attrs["objects"].decode()
                    if isinstance(f[f"/meg/{models[0]}/alignment"].attrs["objects"], bytes)
                    else str(f[f"/meg/{models[0]}/alignment"].attrs["objects"]), first_sets)
        n_cmp += 1
    if "/meg/ceiling/lower" in f:
        lo, up = np.zeros((P, T)), np.zeros((P, T))
        for _, idx, _ in first_sets:
            x = stack[:, :, idx]
            for p in range(P):
                others = np.delete(x, p, 0).mean(0)
                for t in range(T):
                    lo[p, t] += stats.spearmanr(x[p, t], others[t])[0]
                    up[p, t] += stats.spearmanr(x[p, t], x[:, t].mean(0))[0]
        same(f["/meg/ceiling/lower"][()], lo / len(first_sets), "ceiling lower")
        same(f["/meg/ceiling/upper"][()], up / len(first_sets), "ceiling upper")
        kind = f[f"/meg/{models[0]}/alignment"].attrs["objects"]
        attrs_match("/meg/ceiling", kind.decode() if isinstance(kind, bytes) else str(kind),
                    first_sets)
    # Time generalisation: [p, i, j] = mean over the same folds of spearmanr(A[i], MEG_p[j]) on the
    # within-fold pairs, A = the group model's RDMs (/meg/group/time_generalization) or participant
    # p's own MEG RDMs (/meg/time_generalization). Spearman = Pearson of scipy's average ranks.
    def tg_of(rows_a, rows_b):  # (T, m), (T, m) -> (T, T)
        ra = stats.rankdata(rows_a, axis=1); rb = stats.rankdata(rows_b, axis=1)
        return np.corrcoef(ra, rb)[:T, T:]
    n_tg = 0
    group_rdm = read_model(f"{run}/group/model_rdms.h5")[0] if "group" in models else None
    for path, first in (("/meg/group/time_generalization", "group"),
                        ("/meg/time_generalization", "meg")):
        if path not in f:
            if first == "meg" or group_rdm is not None:
                sys.exit(f"FAIL: {path} is missing")
            continue
        want = np.zeros((P, T, T))
        for mp, sp_idx, _ in first_sets:
            for p in range(P):
                a = group_rdm[:, mp] if first == "group" else stack[p][:, sp_idx]
                want[p] += tg_of(a, stack[p][:, sp_idx])
        same(f[path][()], want / len(first_sets), path)
        kind = f[f"/meg/{models[0]}/alignment"].attrs["objects"]
        attrs_match(path, kind.decode() if isinstance(kind, bytes) else str(kind), first_sets)
        n_tg += 1
    n_dyn = 0
    g = f.get("/compare/dynamic_behavior")
    if g is None and "/meg/clip/rdm" in f and "/behavior" in f:
        sys.exit("FAIL: /compare/dynamic_behavior is missing")
    if g is not None:
        from scipy.spatial.distance import pdist
        names = read_model(f"{run}/{models[0]}/model_rdms.h5")[1]
        ref = g.attrs["reference"]
        ref = ref.decode() if isinstance(ref, bytes) else str(ref)
        human = g["reference_rdm"][()]
        if ref.startswith("targets: "):
            import csv
            rows = {r["image_name"]: [float(v) for k, v in r.items() if k not in ("", "image_name")]
                    for r in csv.DictReader(open(ref[len("targets: "):]))}
            same(human, pdist(np.array([rows[x] for x in names]), "correlation"),
                 "dynamic_behavior reference_rdm")
        dyn_models = [m.decode() for m in g["models"][()]]
        curves = g["spearman"][()]
        coll = g["collapsed"][()]
        for i, m in enumerate(dyn_models):
            if m in ("clip", "behavior"):
                full = f[f"/meg/{m}/rdm"][()]
                rdm = np.repeat(full[None, :], T, 0)
                sets = [(sidx, mp) for mp, sidx, _ in first_sets]
            else:
                rdm = read_model(f"{run}/{m}/model_rdms.h5")[0]
                sets = [(mp, mp) for mp, _, _ in first_sets]
            want = np.zeros(T)
            for idx, hidx in sets:
                want += np.array([stats.spearmanr(rdm[t, idx], human[hidx])[0] for t in range(T)])
            same(curves[i], want / len(sets), f"dynamic_behavior {m}")
            mean_rdm = rdm[keep].mean(0)
            want_c = np.mean([stats.spearmanr(mean_rdm[idx], human[hidx])[0] for idx, hidx in sets])
            same(np.array(coll[i]), np.array(want_c), f"dynamic_behavior collapsed {m}")
            c0 = (want / len(sets))[keep]
            same(np.array(g["peak_ms"][()][i]), np.array(times[keep][int(np.argmax(c0))]),
                 f"dynamic_behavior peak_ms {m}")
        if "clip" in dyn_models:
            c = coll[dyn_models.index("clip")]
            d = g["collapsed_delta_vs_clip"][()]
            for i, m in enumerate(dyn_models):
                if m == "clip":
                    continue
                same(np.array(d[i]), np.array(coll[i] - c), f"dynamic_behavior delta {m}")
                if not g["collapsed_delta_lower"][()][i] <= g["collapsed_delta_upper"][()][i]:
                    sys.exit(f"FAIL: dynamic_behavior {m}: CI lower > upper")
        want_rows = models + [b for b in ("clip", "behavior") if f"/meg/{b}/rdm" in f]
        if dyn_models != want_rows:
            sys.exit(f"FAIL: dynamic_behavior rows {dyn_models}, expected {want_rows}")
        ev = f"{run}/behavior/evaluation.h5"
        if "/meg/behavior/rdm" in f and os.path.exists(ev):
            held = {x.decode() for x in h5py.File(ev, "r")["/behavior/object_names"][()]}
            if int(g.attrs["behavior_heldout_objects"]) != sum(x in held for x in names):
                sys.exit("FAIL: dynamic_behavior behavior_heldout_objects")
        kind = f[f"/meg/{models[0]}/alignment"].attrs["objects"]
        attrs_match("/compare/dynamic_behavior",
                    kind.decode() if isinstance(kind, bytes) else str(kind), first_sets)
        n_dyn = len(dyn_models)
    # Per-participant CIs: the estimates are the peak and AUC from 0 ms of the written curve rows;
    # lower <= upper; the samples are checked in tests/stats (the time-resolved bootstrap equals
    # the static one per timepoint, which equals scipy).
    n_pci = 0
    for model in models:
        d = f"/meg/{model}/alignment/participant_ci"
        if d not in f:
            continue
        sp = f[f"/meg/{model}/alignment/spearman"][()]
        for i, lab in enumerate(x.decode() if isinstance(x, bytes) else str(x)
                                for x in f[d].attrs["participants"]):
            row = f[d][()][i]
            c = sp[labels.index(lab)][keep]
            auc = float(np.sum((c[1:] + c[:-1]) / 2 * np.diff(times[keep] / 1000)))
            same(np.array([row[0], row[3]]), np.array([times[keep][int(np.argmax(c))], auc]),
                 f"{d} {lab} peak/auc")
            if not (row[1] <= row[2] and row[4] <= row[5]):
                sys.exit(f"FAIL: {d} {lab}: a CI's lower bound exceeds its upper")
            n_pci += 1
    print(f"per-participant CIs checked for {n_pci} curve(s)")
    print(f"dynamic behavioural validation recomputed for {n_dyn} model(s)")
    print(f"alignment recomputed with scipy for {len(models)} model(s) and "
          f"{len(baselines)} baseline(s) on {len(first_sets)} fold(s), {n_cmp} comparison(s) "
          f"from the written curves, {n_tg} time-generalisation matrices: largest difference "
          f"{worst:.1e}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__.strip().splitlines()[3])
    sys.exit(main(*sys.argv[1:]))
