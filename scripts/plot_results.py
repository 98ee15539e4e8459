#!/usr/bin/python3
"""Plots of a cliphba results file (layout: results/README.md), as PNG and SVG.

Usage: /usr/bin/python3 scripts/plot_results.py RESULTS.h5 OUTDIR

Figures (each part is skipped when its datasets are absent):
  alignment_<model>.{png,svg}  per model ("group", "individual/<label>"): Spearman vs time, the
                               noise-ceiling band (lower..upper) and significance bars from
                               /meg/<model>/alignment/{significant, clusters, cluster_p}
  alignment_overview.{png,svg} every model's curve in one panel
  own_vs_other.{png,svg}       the individual models x participants matrix with its p-value
  behavior.{png,svg}           model-vs-reference RDM comparison (Spearman bars; scatter of the
                               condensed RDMs when stored)
  time_generalization.{png,svg} time-generalisation matrices (mean over participants): the group
                               model x MEG (/meg/group/time_generalization) and MEG x MEG
                               (/meg/time_generalization)
  participant_<label>.{png,svg} one participant: every model's curve against that participant's
                               MEG (the individual model: its own), with the participant's ceiling
  block_weights_<model>.{png,svg}  a MEG model's learned block weights over time
                               (/meg/<model>/block_weights) as a heatmap
  dynamic_behavior.{png,svg}   each MEG model's RDM over time vs the human behaviour RDM, plain
                               CLIP as a flat baseline (/compare/dynamic_behavior)
Exit status: 0 on success (also when there is nothing to plot), 3 when the file cannot be read,
4 when it is not a cliphba results file (no cliphba root attributes).
Needs Debian's python3-h5py and python3-matplotlib (Agg backend; no display).
"""
import os
import sys

import numpy as np

ALPHA = 0.05


class ResultsError(Exception):
    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def open_results(path):
    """Opens `path` read-only; ResultsError(3) if unreadable, (4) if not a cliphba results file."""
    import h5py
    if not os.path.isfile(path):
        raise ResultsError(3, f"{path}: no such file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ResultsError(3, f"{path}: not a readable HDF5 file ({e})")
    attrs = set(f.attrs.keys())
    if "cliphba_version" not in attrs and not {"schema_version", "command"} <= attrs:
        f.close()
        raise ResultsError(4, f"{path}: not a cliphba results file (the root attributes "
                              "'cliphba_version' or 'schema_version' + 'command' are missing; "
                              "see results/README.md)")
    return f


def _str(x):
    return x.decode() if isinstance(x, bytes) else str(x)


def _strings(ds):
    return [_str(v) for v in ds[()]]


def model_names(f):
    """The models with an alignment block: "group" first, then "individual/<label>" sorted, then
    the static baselines "behavior" and "clip"."""
    out = []
    if "meg" not in f:
        return out
    meg = f["meg"]
    if "group" in meg and "alignment" in meg["group"]:
        out.append("group")
    if "individual" in meg:
        for label in sorted(meg["individual"].keys()):
            if "alignment" in meg["individual"][label]:
                out.append("individual/" + label)
    for baseline in ("behavior", "clip"):
        if baseline in meg and "alignment" in meg[baseline]:
            out.append(baseline)
    return out


def behavior_comparison(f):
    """/compare/behavior: plain CLIP vs CLIP-HBA-Behavior on held-out objects, or None."""
    if "/compare/behavior" not in f:
        return None
    a = f["/compare/behavior"].attrs
    return {k: (float(a[k]) if k not in ("objects", "reference") else _str(a[k]))
            for k in ("spearman_clip", "spearman_behavior", "delta", "delta_lower",
                      "delta_upper", "p_value", "n_permutations", "n_objects", "n_pairs",
                      "objects", "reference") if k in a}


def dynamic_behavior(f):
    """/compare/dynamic_behavior: each model's RDM over time vs the human behaviour RDM, and the
    models collapsed over time vs plain CLIP, or None."""
    if "/compare/dynamic_behavior" not in f:
        return None
    g = f["/compare/dynamic_behavior"]
    rows = []
    for i, m in enumerate(_strings(g["models"])):
        rows.append({"model": m, "curve": g["spearman"][()][i], "peak_ms": float(g["peak_ms"][i]),
                     "collapsed": float(g["collapsed"][i]),
                     "delta": float(g["collapsed_delta_vs_clip"][i]),
                     "lower": float(g["collapsed_delta_lower"][i]),
                     "upper": float(g["collapsed_delta_upper"][i])})
    return {"rows": rows, "times": f["/meg/times_ms"][()].astype(float),
            "reference": _str(g.attrs["reference"]), "objects_label": objects_of(g)[1],
            "meg_init": _str(g.attrs["meg_init"]) if "meg_init" in g.attrs else "",
            "behavior_heldout": int(g.attrs.get("behavior_heldout_objects", -1)),
            "n_objects": int(g.attrs["n_objects"]) if "n_objects" in g.attrs else 0}


def participant_ci(f, model, label):
    """The bootstrap CIs of one participant's peak and AUC with one model
    (/meg/<model>/alignment/participant_ci), as peak_ci / auc_ci (lower, upper), or {}."""
    d = f"/meg/{model}/alignment/participant_ci"
    if d not in f or label not in [_str(x) for x in f[d].attrs["participants"]]:
        return {}
    row = f[d][()][[_str(x) for x in f[d].attrs["participants"]].index(label)]
    return {"peak_ci": (float(row[1]), float(row[2])), "auc_ci": (float(row[4]), float(row[5]))}


def comparisons(f):
    """The MEG model comparisons (/compare/meg/<a>_vs_<b>): list of dicts with the mean difference
    curve, its CI, the significance mask and the deltas with their CIs."""
    out = []
    if "/compare/meg" not in f:
        return out
    t = f["/meg/times_ms"][()].astype(float)
    for name in sorted(f["/compare/meg"]):
        g = f["/compare/meg/" + name]
        a = g.attrs
        out.append({"name": name, "a": _str(a["model_a"]), "b": _str(a["model_b"]), "times": t,
                    "mean": g["mean"][()], "lower": g["ci_lower"][()], "upper": g["ci_upper"][()],
                    "significant": significance_mask(g, t.size),
                    "objects_label": objects_of(g)[1],
                    **{k: float(a[k]) for k in ("delta_auc", "delta_auc_lower", "delta_auc_upper",
                                                "delta_peak_ms", "delta_peak_lower",
                                                "delta_peak_upper")}})
    return out


def slug(model):
    return model.replace("/", "_")


def times_of(f, block):
    if "/meg/times_ms" in f:
        return f["/meg/times_ms"][()].astype(float)
    a = block.attrs
    T = block["spearman"].shape[1]
    return float(a.get("time_start_ms", 0.0)) + np.arange(T) * float(a.get("time_step_ms", 1.0))


def participants_of(f, block):
    if "participants" in block.attrs:
        return [_str(v) for v in block.attrs["participants"]]
    if "/meg/participants" in f:
        return _strings(f["/meg/participants"])
    return [str(i) for i in range(block["spearman"].shape[0])]


def significance_mask(block, T):
    """Boolean (T) mask of significant timepoints, or None when the block has none stored."""
    if "significant" in block:
        m = np.asarray(block["significant"][()]).astype(bool).reshape(-1)
        if m.size == T:
            return m
    if "clusters" in block:
        c = np.asarray(block["clusters"][()], dtype=float).reshape(-1, 4)
        m = np.zeros(T, bool)
        for start, stop, _mass, p in c:
            if p < ALPHA:
                m[int(start):int(stop)] = True
        return m
    if "cluster_p" in block:
        p = np.asarray(block["cluster_p"][()], dtype=float).reshape(-1)
        if p.size == T:
            return np.nan_to_num(p, nan=1.0) < ALPHA
    return None


OBJECTS_LABEL = {"heldout": "held-out objects", "cross_validated": "cross-validated",
                 "insample": "IN-SAMPLE (diagnostic)"}


def objects_of(block):
    """What a block was computed on: (kind, label such as 'cross-validated: 4 folds, 32 objects,
    112 pairs'); kind "unknown" for files written before the objects attributes."""
    a = block.attrs
    if "objects" not in a:
        return "unknown", "objects not recorded"
    kind = _str(a["objects"])
    label = OBJECTS_LABEL.get(kind, kind)
    folds = int(a.get("n_folds", 1))
    parts = ([f"{folds} folds"] if kind == "cross_validated" else []) + \
        [f"{int(a.get('n_objects', 0))} objects", f"{int(a.get('n_pairs', 0))} pairs"]
    return kind, label + ": " + ", ".join(parts)


def peak_and_auc(t, curve):
    """(index of the maximum, trapezoid area in rho x s) of curve over the timepoints >= 0 ms, or
    None when there is none."""
    keep = t >= 0
    if not keep.any():
        return None
    i = int(np.flatnonzero(keep)[np.argmax(curve[keep])])
    return i, float(np.sum((curve[keep][1:] + curve[keep][:-1]) / 2 * np.diff(t[keep] / 1000.0)))


def model_summary(f, model):
    """Key numbers of one model: the curve shown (group: mean over participants; individual: its
    own participant), the peak of THAT curve, its AUC, the maximum, the ceiling there, and the
    in-sample diagnostic curve when the file has one."""
    block = f["/meg/" + model + "/alignment"]
    t = times_of(f, block)
    labels = participants_of(f, block)
    sp = np.asarray(block["spearman"][()], dtype=float)
    own = None
    if model.startswith("individual/") and model.split("/", 1)[1] in labels:
        own = labels.index(model.split("/", 1)[1])
    rows = [own] if own is not None else list(range(sp.shape[0]))
    curve = sp[rows].mean(0)
    s = {"model": model, "times": t, "curve": curve, "own": own, "labels": labels,
         "n_participants": sp.shape[0], "spearman": sp}
    s["objects"], s["objects_label"] = objects_of(block)
    pa = peak_and_auc(t, curve)
    if pa is not None:
        i, s["auc"] = pa
        s["max_spearman"] = float(curve[i])
        s["max_time_ms"] = float(t[i])
        s["peak_ms"] = float(t[i])  # the peak of the curve shown, as the maximum
    if "peak_ms" in block:
        peaks = np.asarray(block["peak_ms"][()], dtype=float)[rows]
        s["participant_peaks"] = (float(peaks.mean()), float(peaks.std()), len(peaks))
    if "/meg/ceiling/lower" in f and "/meg/ceiling/upper" in f:
        lo = np.asarray(f["/meg/ceiling/lower"][()], dtype=float)
        up = np.asarray(f["/meg/ceiling/upper"][()], dtype=float)
        if lo.shape == sp.shape and up.shape == sp.shape:
            s["ceiling_lower"] = lo[rows].mean(0)
            s["ceiling_upper"] = up[rows].mean(0)
            if "max_time_ms" in s:
                s["ceiling_at_max"] = (float(s["ceiling_lower"][i]), float(s["ceiling_upper"][i]))
    ins = "/meg/" + model + "/alignment_insample"
    if ins in f:
        s["insample_curve"] = np.asarray(f[ins]["spearman"][()], dtype=float)[rows].mean(0)
        s["insample_label"] = objects_of(f[ins])[1]
    s["significant"] = significance_mask(block, t.size)
    return s


def own_vs_other(f):
    if "/meg/own_vs_other/matrix" not in f:
        return None
    ds = f["/meg/own_vs_other/matrix"]
    g = f["/meg/own_vs_other"]
    attrs = dict(g.attrs)
    attrs.update(dict(ds.attrs))
    mx = np.asarray(ds[()], dtype=float)
    rows = [_str(v) for v in attrs.get("rows", [f"model {i}" for i in range(mx.shape[0])])]
    cols = [_str(v) for v in attrs.get("columns", [str(j) for j in range(mx.shape[1])])]
    own = (np.asarray(g["own"][()], dtype=int) if "own" in g else None)
    return {"matrix": mx, "rows": rows, "columns": cols, "own": own,
            "statistic": float(attrs["statistic"]) if "statistic" in attrs else None,
            "p_value": float(attrs["p_value"]) if "p_value" in attrs else None,
            "n_permutations": int(attrs["n_permutations"]) if "n_permutations" in attrs else None,
            "exact": bool(attrs["exact"]) if "exact" in attrs else None,
            "objects_label": objects_of(g)[1] if "objects" in g.attrs else None}


def behavior(f):
    """Model-vs-reference Spearman per model RDM: {name: rho}, and RDMs for a scatter."""
    if "behavior" not in f:
        return None
    b = f["behavior"]
    out = {"spearman": {}, "scatter": None, "objects_label": objects_of(b)[1]}
    if "scores" in b:
        s = np.asarray(b["scores"][()], dtype=float)
        rows = [_str(v) for v in b["scores"].attrs.get("rows", [str(i) for i in range(s.shape[0])])]
        cols = [_str(v) for v in b["scores"].attrs.get("columns", [])]
        j = cols.index("spearman") if "spearman" in cols else 1
        for name, row in zip(rows, s):
            out["spearman"][name] = float(row[j])
    elif "spearman" in b.attrs:  # train behavior evaluation.h5
        out["spearman"]["model"] = float(b.attrs["spearman"])
    for key in ("triplet_accuracy",):
        if key in b.attrs:
            out[key] = float(b.attrs[key])
    if "reference_rdm" in b and "model_rdm" in b and len(b["model_rdm"].keys()):
        name = "correlation" if "correlation" in b["model_rdm"] else sorted(b["model_rdm"].keys())[0]
        out["scatter"] = (name, np.asarray(b["model_rdm"][name][()], dtype=float).reshape(-1),
                          np.asarray(b["reference_rdm"][()], dtype=float).reshape(-1))
    if not out["spearman"] and out["scatter"] is None:
        return None
    return out


def _save(fig, outdir, name, written):
    for ext in ("png", "svg"):
        p = os.path.join(outdir, f"{name}.{ext}")
        fig.savefig(p, dpi=120 if ext == "png" else None, bbox_inches="tight")
        written.append(p)


def _significance_bars(ax, t, mask, y):
    if mask is None or not mask.any():
        return
    step = float(t[1] - t[0]) if t.size > 1 else 1.0
    idx = np.flatnonzero(mask)
    # One bar per run of consecutive significant timepoints.
    runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
    for k, r in enumerate(runs):
        ax.plot([t[r[0]] - step / 2, t[r[-1]] + step / 2], [y, y], color="black", lw=3,
                solid_capstyle="butt", label=f"significant (p < {ALPHA})" if k == 0 else None)


def plot_all(path, outdir):
    """Writes every figure the file supports into outdir; returns (summary dict, written paths)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    matplotlib.rcParams["svg.hashsalt"] = "cliphba"  # reproducible SVG ids

    os.makedirs(outdir, exist_ok=True)
    written = []
    summary = {"file": path, "models": [], "own_vs_other": None, "behavior": None,
               "comparisons": []}
    with open_results(path) as f:
        summary["attrs"] = {k: _str(v) for k, v in f.attrs.items()
                            if k in ("cliphba_version", "command", "created_utc", "config_hash")}
        models = model_names(f)
        for model in models:
            s = model_summary(f, model)
            summary["models"].append(s)
            t, curve = s["times"], s["curve"]
            fig, ax = plt.subplots(figsize=(7, 4))
            if s["own"] is None and s["n_participants"] > 1:
                for row in s["spearman"]:
                    ax.plot(t, row, color="tab:blue", alpha=0.25, lw=0.8)
            label = (f"own participant {s['labels'][s['own']]}" if s["own"] is not None
                     else f"mean of {s['n_participants']} participants")
            ax.plot(t, curve, color="tab:blue", lw=2, label=label)
            if "insample_curve" in s:
                ax.plot(t, s["insample_curve"], color="0.45", lw=1, ls="--",
                        label=s["insample_label"])
            if "ceiling_lower" in s:
                ax.fill_between(t, s["ceiling_lower"], s["ceiling_upper"], color="0.6",
                                alpha=0.4, lw=0, label="noise ceiling (lower..upper)")
            lo = min(np.nanmin(curve), np.nanmin(s.get("ceiling_lower", curve)))
            hi = max(np.nanmax(curve), np.nanmax(s.get("ceiling_upper", curve)))
            _significance_bars(ax, t, s["significant"], lo - 0.05 * max(hi - lo, 1e-3))
            ax.axvline(0, color="0.3", lw=0.8, ls=":")
            ax.axhline(0, color="0.3", lw=0.8)
            if "peak_ms" in s:
                ax.axvline(s["peak_ms"], color="tab:red", lw=1, ls="--",
                           label=f"peak {s['peak_ms']:.1f} ms")
            ax.set_xlabel("time (ms)")
            ax.set_ylabel("Spearman rho (model vs MEG RDM)")
            ax.set_title(f"Alignment: {model}\n{s['objects_label']}", fontsize=10)
            ax.legend(loc="best", fontsize=8)
            _save(fig, outdir, "alignment_" + slug(model), written)
            plt.close(fig)
        if len(models) > 1:
            fig, ax = plt.subplots(figsize=(7, 4))
            for s in summary["models"]:
                ax.plot(s["times"], s["curve"], lw=2 if s["model"] == "group" else 1,
                        label=s["model"])
            ax.axvline(0, color="0.3", lw=0.8, ls=":")
            ax.set_xlabel("time (ms)")
            ax.set_ylabel("Spearman rho")
            ax.set_title("Alignment of every model\n" + summary["models"][0]["objects_label"],
                         fontsize=10)
            ax.legend(loc="best", fontsize=7)
            _save(fig, outdir, "alignment_overview", written)
            plt.close(fig)

        summary["block_weights"] = []
        for model in models:
            d = "/meg/" + model + "/block_weights"
            if d not in f:
                continue
            w = np.asarray(f[d][()], dtype=float)  # (T, L)
            a = f[d].attrs
            t = float(a.get("time_start_ms", 0)) + float(a.get("time_step_ms", 1)) * np.arange(w.shape[0])
            centre = (w * np.arange(w.shape[1])).sum(1)  # weighted mean block per timepoint
            summary["block_weights"].append({"model": model, "weights": w, "times": t})
            fig, ax = plt.subplots(figsize=(7, 3.2))
            im = ax.imshow(w.T, aspect="auto", origin="lower", cmap="magma",
                           extent=[t[0], t[-1], -0.5, w.shape[1] - 0.5], vmin=0)
            ax.plot(t, centre, color="tab:cyan", lw=1, label="weighted mean block")
            fig.colorbar(im, ax=ax, label="weight")
            ax.axvline(0, color="0.8", lw=0.8, ls=":")
            ax.set_xlabel("time (ms)")
            ax.set_ylabel("vision block")
            ax.set_title(f"Learned block weights (Wfr): {model}\nmodel parameter fitted on its "
                         "training objects (in-sample; not an evaluation)", fontsize=9)
            ax.legend(loc="upper right", fontsize=7)
            _save(fig, outdir, "block_weights_" + slug(model), written)
            plt.close(fig)

        summary["participants"] = []
        if summary["models"]:
            first = summary["models"][0]
            labels, t = first["labels"], first["times"]
            lo = f["/meg/ceiling/lower"][()] if "/meg/ceiling/lower" in f else None
            up = f["/meg/ceiling/upper"][()] if "/meg/ceiling/upper" in f else None
            for p, lab in enumerate(labels):
                fig, ax = plt.subplots(figsize=(7, 4))
                rows = []
                for s in summary["models"]:
                    name = s["model"]
                    if name.startswith("individual/") and name != "individual/" + lab:
                        continue
                    if s["spearman"].shape[0] != len(labels):
                        continue
                    c = s["spearman"][p]
                    own = name == "individual/" + lab
                    ax.plot(t, c, lw=2 if own else 1,
                            label=f"{name} (own model)" if own else name)
                    row = {"model": name + (" (own model)" if own else "")}
                    pa = peak_and_auc(t, c)
                    if pa is not None:
                        row.update(peak_ms=float(t[pa[0]]), max=float(c[pa[0]]), auc=pa[1])
                    row.update(participant_ci(f, name, lab))
                    rows.append(row)
                if lo is not None and up is not None and lo.shape[0] == len(labels):
                    ax.fill_between(t, lo[p], up[p], color="0.6", alpha=0.4, lw=0,
                                    label="noise ceiling (lower..upper)")
                ax.axvline(0, color="0.3", lw=0.8, ls=":")
                ax.axhline(0, color="0.3", lw=0.8)
                ax.set_xlabel("time (ms)")
                ax.set_ylabel("Spearman rho (model vs MEG RDM)")
                ax.set_title(f"Participant {lab}: every model\n{first['objects_label']}",
                             fontsize=10)
                ax.legend(loc="best", fontsize=7)
                _save(fig, outdir, "participant_" + slug(lab), written)
                plt.close(fig)
                summary["participants"].append({"label": lab, "rows": rows,
                                                "objects_label": first["objects_label"]})

        panels = [(d, title) for d, title in
                  (("/meg/group/time_generalization", "group model (time i) x MEG (time j)"),
                   ("/meg/time_generalization", "MEG (time i) x MEG (time j)")) if d in f]
        summary["time_generalization"] = None
        if panels:
            fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.4),
                                     squeeze=False, constrained_layout=True)
            label = objects_of(f[panels[0][0]])[1]
            summary["time_generalization"] = {"objects_label": label, "panels": []}
            for ax, (d, title) in zip(axes[0], panels):
                m = np.asarray(f[d][()], dtype=float).mean(0)  # (T, T): mean over participants
                a = f[d].attrs
                t = float(a["time_start_ms"]) + float(a["time_step_ms"]) * np.arange(m.shape[0])
                lim = max(float(np.nanmax(np.abs(m))), 1e-6)
                im = ax.imshow(m, origin="lower", cmap="RdBu_r", vmin=-lim, vmax=lim,
                               extent=[t[0], t[-1], t[0], t[-1]], aspect="auto")
                ax.plot([t[0], t[-1]], [t[0], t[-1]], color="0.3", lw=0.6, ls=":")
                fig.colorbar(im, ax=ax, label="Spearman rho")
                ax.set_xlabel("MEG time j (ms)")
                ax.set_ylabel("time i (ms)")
                ax.set_title(title + ", mean over participants", fontsize=9)
                summary["time_generalization"]["panels"].append({"path": d, "mean": m, "times": t})
            fig.suptitle("Time generalisation (" + label + ")", fontsize=10)
            _save(fig, outdir, "time_generalization", written)
            plt.close(fig)

        summary["comparisons"] = comparisons(f)
        summary["behavior_comparison"] = behavior_comparison(f)
        for cmp in summary["comparisons"]:
            t = cmp["times"]
            fig, ax = plt.subplots(figsize=(7, 4))
            ax.fill_between(t, cmp["lower"], cmp["upper"], color="tab:purple", alpha=0.25, lw=0,
                            label="95% bootstrap CI (participants)")
            ax.plot(t, cmp["mean"], color="tab:purple", lw=2,
                    label=f"{cmp['a']} - {cmp['b']} (mean over participants)")
            lo = float(np.nanmin(cmp["lower"]))
            hi = float(np.nanmax(cmp["upper"]))
            _significance_bars(ax, t, cmp["significant"], lo - 0.05 * max(hi - lo, 1e-3))
            ax.axvline(0, color="0.3", lw=0.8, ls=":")
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_xlabel("time (ms)")
            ax.set_ylabel("difference in Spearman rho")
            ax.set_title(f"{cmp['a']} vs {cmp['b']}\n{cmp['objects_label']}", fontsize=10)
            ax.legend(loc="best", fontsize=8)
            _save(fig, outdir, "compare_" + cmp["name"], written)
            plt.close(fig)

        dyn = dynamic_behavior(f)
        summary["dynamic_behavior"] = dyn
        if dyn is not None:
            fig, ax = plt.subplots(figsize=(7, 4))
            for r in dyn["rows"]:
                ind = r["model"].startswith("individual/")
                ax.plot(dyn["times"], r["curve"], lw=0.8 if ind else 2,
                        alpha=0.6 if ind else 1.0,
                        ls="--" if r["model"] in ("clip", "behavior") else "-",
                        label=r["model"])
            ax.axvline(0, color="0.3", lw=0.8, ls=":")
            ax.axhline(0, color="0.3", lw=0.8)
            ax.set_xlabel("time (ms)")
            ax.set_ylabel("Spearman rho with the behaviour RDM")
            ax.set_title("Dynamic behavioural validation\n" + dyn["objects_label"], fontsize=10)
            ax.legend(loc="best", fontsize=7, ncol=2)
            _save(fig, outdir, "dynamic_behavior", written)
            plt.close(fig)

        ovo = own_vs_other(f)
        summary["own_vs_other"] = ovo
        if ovo is not None:
            mx = ovo["matrix"]
            fig, ax = plt.subplots(figsize=(1.2 + 0.6 * mx.shape[1], 1.2 + 0.5 * mx.shape[0]))
            im = ax.imshow(mx, cmap="viridis", aspect="auto")
            fig.colorbar(im, ax=ax, label="mean Spearman from 0 ms")
            ax.set_xticks(range(mx.shape[1]))
            ax.set_xticklabels(ovo["columns"], rotation=45, ha="right", fontsize=8)
            ax.set_yticks(range(mx.shape[0]))
            ax.set_yticklabels(ovo["rows"], fontsize=8)
            if ovo["own"] is not None:
                for i, j in enumerate(ovo["own"]):
                    ax.add_patch(matplotlib.patches.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False,
                                                              ec="red", lw=2))
            title = "Own vs other" + (f" ({ovo['objects_label']})" if ovo["objects_label"] else "")
            if ovo["statistic"] is not None:
                title += f": own - other = {ovo['statistic']:.3f}"
            if ovo["p_value"] is not None:
                title += f", p = {ovo['p_value']:.4g}"
            ax.set_title(title, fontsize=9)
            ax.set_xlabel("participant (MEG)")
            ax.set_ylabel("individual model")
            _save(fig, outdir, "own_vs_other", written)
            plt.close(fig)

        beh = behavior(f)
        summary["behavior"] = beh
        if beh is not None:
            n = 1 + (beh["scatter"] is not None)
            fig, axes = plt.subplots(1, n, figsize=(5 * n, 4), squeeze=False)
            ax = axes[0][0]
            if beh["spearman"]:
                names = list(beh["spearman"].keys())
                vals = [beh["spearman"][k] for k in names]
                ax.bar(range(len(vals)), vals, color="tab:green")
                ax.set_xticks(range(len(vals)))
                ax.set_xticklabels(names, rotation=30, ha="right")
                for k, v in enumerate(vals):
                    ax.text(k, v, f"{v:.3f}", ha="center", va="bottom", fontsize=8)
            ax.set_ylabel("Spearman rho with the reference RDM")
            ax.set_title("Behaviour: model vs reference RDM\n" + beh["objects_label"], fontsize=10)
            if beh["scatter"] is not None:
                name, model_rdm, ref_rdm = beh["scatter"]
                ax = axes[0][1]
                ax.scatter(ref_rdm, model_rdm, s=4, alpha=0.5)
                ax.set_xlabel("reference dissimilarity")
                ax.set_ylabel(f"model dissimilarity ({name})")
                ax.set_title("Condensed RDM entries")
            _save(fig, outdir, "behavior", written)
            plt.close(fig)
    return summary, written


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        summary, written = plot_all(argv[1], argv[2])
    except ResultsError as e:
        print(f"plot_results: error: {e}", file=sys.stderr)
        return e.code
    if not written:
        print(f"plot_results: {argv[1]} has no MEG alignment, own-vs-other or behaviour results; "
              "nothing to plot")
    for p in written:
        print(p)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
