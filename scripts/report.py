#!/usr/bin/python3
"""One-page report of a cliphba results file: OUTDIR/report.md and OUTDIR/report.html.

Usage: /usr/bin/python3 scripts/report.py RESULTS.h5 OUTDIR

Makes the figures with scripts/plot_results.py (into OUTDIR/plots) and writes the key numbers:
per model the peak latency, AUC from 0 ms, the maximum Spearman and the noise ceiling there; the
model comparisons with their CIs; the dynamic behavioural validation (each MEG model's RDM over
time vs the human behaviour RDM, and collapsed over time vs plain CLIP); the own-vs-other
statistic and its p-value; a section per participant (every model on that participant, peak and
AUC with bootstrap CIs, own vs other there); the time-generalisation matrices; each MEG model's
learned block weights; the behaviour model-vs-reference Spearman. Every figure's caption says
which objects it is on (held-out, cross-validated or in-sample). report.md links the PNGs
(relative paths); report.html embeds them (base64), so it is a single self-contained file.
Missing parts are left out. Exit status as plot_results.py: 3 unreadable file, 4 not a cliphba
results file.
"""
import base64
import html
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import plot_results  # noqa: E402


def fmt(x, spec):
    return "n/a" if x is None else format(x, spec)


def build(summary, written, outdir):
    """Returns (markdown lines, html body parts)."""
    md, body = [], []
    pngs = {os.path.splitext(os.path.basename(p))[0]: p for p in written if p.endswith(".png")}

    def image(name, caption):
        if name not in pngs:
            return
        rel = os.path.relpath(pngs[name], outdir)
        md.append(f"![{caption}]({rel})")
        md.append("")
        with open(pngs[name], "rb") as fh:
            data = base64.b64encode(fh.read()).decode()
        body.append(f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
                    f"<figcaption>{html.escape(caption)}</figcaption></figure>")

    def table(header, rows):
        md.append("| " + " | ".join(header) + " |")
        md.append("|" + "---|" * len(header))
        for r in rows:
            md.append("| " + " | ".join(r) + " |")
        md.append("")
        h = "".join(f"<th>{html.escape(c)}</th>" for c in header)
        b = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                    for r in rows)
        body.append(f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>")

    def heading(text, level=2):
        md.append("#" * level + " " + text)
        md.append("")
        body.append(f"<h{level}>{html.escape(text)}</h{level}>")

    def para(text):
        md.append(text)
        md.append("")
        body.append(f"<p>{html.escape(text)}</p>")

    heading("cliphba report", 1)
    a = summary.get("attrs", {})
    para(f"Results file: {summary['file']}" +
         "".join(f"; {k}: {a[k]}" for k in ("command", "cliphba_version", "created_utc") if k in a))

    if summary["models"]:
        heading("MEG alignment")
        kinds = sorted({s["objects"] for s in summary["models"]})
        para("Spearman of the model RDM with the MEG RDM per timepoint, on "
             + "; ".join(sorted({s["objects_label"] for s in summary["models"]})) + ". "
             + ("These are IN-SAMPLE numbers (objects the models trained on): a diagnostic of "
                "the fit, not a result. " if "insample" in kinds or "unknown" in kinds else
                "Out-of-sample: no model is compared on objects it trained on. ")
             + "Group model: the mean curve over participants; individual models: their own "
             "participant. Peak latency, AUC (rho x s, from 0 ms), the maximum and the noise "
             "ceiling (lower..upper, on the same objects) are those of that curve; the last "
             "column is the mean +- sd of the per-participant peaks.")
        rows = []
        for s in summary["models"]:
            ceil = s.get("ceiling_at_max")
            pk = s.get("participant_peaks")
            rows.append([s["model"], fmt(s.get("peak_ms"), ".1f"), fmt(s.get("auc"), ".4f"),
                         fmt(s.get("max_spearman"), ".3f"),
                         "n/a" if ceil is None else f"{ceil[0]:.3f}..{ceil[1]:.3f}",
                         "n/a" if pk is None else
                         (f"{pk[0]:.1f}" if pk[2] == 1 else f"{pk[0]:.1f} +- {pk[1]:.1f}")])
        table(["model", "peak latency (ms)", "AUC (rho x s)", "max Spearman",
               "noise ceiling at peak", "participants' peaks (ms)"], rows)
        if any("insample_curve" in s for s in summary["models"]):
            rows = [[s["model"], f"{np.nanmax(s['insample_curve'][s['times'] >= 0]):.3f}",
                     fmt(s.get("max_spearman"), ".3f")]
                    for s in summary["models"] if "insample_curve" in s]
            para("Diagnostic, not a result: the maximum of each model's IN-SAMPLE curve (the "
                 "objects it trained on; dashed in the figures) beside its out-of-sample one. A "
                 "large gap means the model fits its training objects' noise.")
            table(["model", "in-sample max (diagnostic)", "out-of-sample max"], rows)
        if "alignment_overview" in pngs:
            image("alignment_overview",
                  f"Alignment of every model ({summary['models'][0]['objects_label']})")
        for s in summary["models"]:
            image("alignment_" + plot_results.slug(s["model"]),
                  f"Alignment: {s['model']} ({s['objects_label']})")

    parts = summary.get("participants") or []
    if parts:
        heading("Participants")
        para("One section per participant: every model's curve against this participant's MEG "
             "(" + parts[0]["objects_label"] + "), the individual model being the participant's "
             "own, with this participant's noise ceiling; peak, maximum and AUC (rho x s) from "
             "0 ms of each curve, with 95 % bootstrap CIs over objects (within folds) for the "
             "group model and the participant's own model; and the own-vs-other comparison on "
             "this participant's data.")

        def ci(r, key, spec):
            c = r.get(key)
            return "" if c is None else f" [{fmt(c[0], spec)}, {fmt(c[1], spec)}]"

        for part in parts:
            heading(f"Participant {part['label']}", 3)
            table(["model", "peak latency (ms) [95% CI]", "max Spearman", "AUC (rho x s) [95% CI]"],
                  [[r["model"], fmt(r.get("peak_ms"), ".1f") + ci(r, "peak_ci", ".0f"),
                    fmt(r.get("max"), ".3f"), fmt(r.get("auc"), ".4f") + ci(r, "auc_ci", ".4f")]
                   for r in part["rows"]])
            ovo = summary.get("own_vs_other")
            if ovo is not None and part["label"] in ovo["columns"]:
                j = ovo["columns"].index(part["label"])
                col = ovo["matrix"][:, j]
                name = "individual/" + part["label"]
                if name in ovo["rows"] and len(col) > 1:
                    own_row = ovo["rows"].index(name)
                    others = np.delete(col, own_row)
                    rank = 1 + int(np.sum(others > col[own_row]))
                    para(f"Own vs other on {part['label']}'s MEG (mean Spearman from 0 ms): own "
                         f"model {col[own_row]:.3f}; the other participants' models "
                         f"{others.mean():.3f} on average (own model ranks {rank} of "
                         f"{len(col)}).")
            image("participant_" + plot_results.slug(part["label"]),
                  f"Participant {part['label']}: every model ({part['objects_label']})")

    tg = summary.get("time_generalization")
    if tg is not None:
        heading("Time generalisation")
        para("Spearman of the RDM at time i with the MEG RDM at time j, per participant then "
             "averaged (" + tg["objects_label"] + "; the same objects and pairs as the curves): "
             "the group model against the MEG, and the MEG against itself. Off-diagonal "
             "structure shows codes that persist or recur over time.")
        image("time_generalization", f"Time generalisation ({tg['objects_label']})")

    bws = summary.get("block_weights") or []
    if bws:
        heading("Learned block weights (Wfr)")
        para("How each MEG model mixes the vision blocks' CLS features at each timepoint (rows "
             "of /meg/<model>/block_weights sum to 1; the line is the weighted mean block). A "
             "parameter of the unit's own model, fitted on its training objects: it describes "
             "the model, it is not an out-of-sample result.")
        for b in bws:
            image("block_weights_" + plot_results.slug(b["model"]),
                  f"Block weights over time: {b['model']} (model parameter, in-sample fit)")

    cmps = summary.get("comparisons") or []
    if cmps:
        heading("Model comparisons (MEG)")
        para("Differences between models' alignment curves (" + cmps[0]["objects_label"] + "), "
             "per participant then averaged: clip = plain CLIP (no adapters), behavior = "
             "CLIP-HBA-Behavior (static: the same RDM at every timepoint), group and individual "
             "= the MEG models (individual: each participant's own model on that participant). "
             "Delta AUC (rho x s, from 0 ms) and delta peak latency with 95 % bootstrap CIs "
             "over participants; significant: two-sided sign-flip cluster test over "
             "participants (p < 0.05).")

        def stretches(c):
            m = c["significant"]
            if m is None or not m.any():
                return "none"
            t = c["times"]
            idx = np.flatnonzero(m)
            runs = np.split(idx, np.flatnonzero(np.diff(idx) > 1) + 1)
            return ", ".join(f"{t[r[0]]:.0f}..{t[r[-1]]:.0f} ms" for r in runs)

        rows = [[f"{c['a']} - {c['b']}",
                 f"{c['delta_auc']:+.4f} [{c['delta_auc_lower']:+.4f}, {c['delta_auc_upper']:+.4f}]",
                 f"{c['delta_peak_ms']:+.0f} [{c['delta_peak_lower']:+.0f}, "
                 f"{c['delta_peak_upper']:+.0f}]", stretches(c)] for c in cmps]
        table(["comparison", "delta AUC [95% CI]", "delta peak ms [95% CI]",
               "significant stretches"], rows)
        for c in cmps:
            image("compare_" + c["name"], f"{c['a']} vs {c['b']} ({c['objects_label']})")

    dyn = summary.get("dynamic_behavior")
    if dyn is not None:
        heading("Dynamic behavioural validation")
        caveat = ""
        if dyn["meg_init"].startswith("behavior"):
            k = dyn["behavior_heldout"]
            caveat = (" The MEG models started from CLIP-HBA-Behavior, so they inherited its "
                      "fine-tune on the behaviour stage's training objects: only "
                      f"{k if k >= 0 else 'an unknown number'} of these {dyn['n_objects']} "
                      "objects are out of sample for that part (as for the behavior row).")
        para("Each MEG model's RDM at every timepoint against the human behaviour RDM ("
             + dyn["reference"] + "; " + dyn["objects_label"] + "): each object's RDM rows come "
             "from a fold model that never trained on its MEG. clip = plain CLIP and behavior = "
             "CLIP-HBA-Behavior (static). Collapsed: the model's RDM averaged over t >= 0 ms; "
             "delta vs clip with a 95 % bootstrap CI over objects." + caveat)
        table(["model", "peak (ms)", "collapsed rho", "delta vs clip [95% CI]"],
              [[r["model"], f"{r['peak_ms']:.0f}", f"{r['collapsed']:.3f}",
                "" if r["model"] == "clip" or not np.isfinite(r["delta"]) else
                f"{r['delta']:+.3f} [{r['lower']:+.3f}, {r['upper']:+.3f}]"]
               for r in dyn["rows"]])
        image("dynamic_behavior", f"Dynamic behavioural validation ({dyn['objects_label']})")

    ovo = summary.get("own_vs_other")
    if ovo is not None:
        heading("Own vs other")
        kind = ("" if ovo["exact"] is None else
                " (exact: all label permutations)" if ovo["exact"] else " (random permutations)")
        para(f"Individual models vs participants ({len(ovo['rows'])} x {len(ovo['columns'])}"
             f"{', ' + ovo['objects_label'] if ovo.get('objects_label') else ''}): "
             f"own - other = {fmt(ovo['statistic'], '.4f')}, p = {fmt(ovo['p_value'], '.4g')}, "
             f"{fmt(ovo['n_permutations'], 'd')} permutations{kind}.")
        image("own_vs_other",
              f"Own vs other matrix ({ovo.get('objects_label') or 'objects not recorded'})")

    beh = summary.get("behavior")
    bc = summary.get("behavior_comparison")
    if bc is not None:
        heading("Behaviour: CLIP-HBA-Behavior vs plain CLIP")
        para(f"Spearman of each model's RDM with the reference RDM ({bc['reference']}) on "
             f"{int(bc['n_objects'])} held-out objects ({int(bc['n_pairs'])} pairs; out of "
             "sample). Delta with its 95 % bootstrap CI over objects and a two-sided "
             f"object-swap permutation p ({int(bc['n_permutations'])} permutations).")
        table(["model", "Spearman with reference"],
              [["clip (plain CLIP, no adapters)", f"{bc['spearman_clip']:.3f}"],
               ["behavior (CLIP-HBA-Behavior)", f"{bc['spearman_behavior']:.3f}"],
               ["delta (behavior - clip)",
                f"{bc['delta']:+.3f} [{bc['delta_lower']:+.3f}, {bc['delta_upper']:+.3f}], "
                f"p = {bc['p_value']:.4g}"]])
    if beh is not None:
        heading("Behaviour")
        rows = [[k, f"{v:.3f}"] for k, v in beh["spearman"].items()]
        if rows:
            table(["model RDM", "Spearman with reference"], rows)
        if "triplet_accuracy" in beh:
            para(f"Triplet accuracy: {beh['triplet_accuracy']:.3f}")
        image("behavior", f"Behaviour RDM comparison ({beh['objects_label']})")

    if not summary["models"] and ovo is None and beh is None and bc is None:
        para("The file holds no MEG alignment, own-vs-other or behaviour results.")
    return md, body


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    path, outdir = argv[1], argv[2]
    try:
        summary, written = plot_results.plot_all(path, os.path.join(outdir, "plots"))
    except plot_results.ResultsError as e:
        print(f"report: error: {e}", file=sys.stderr)
        return e.code
    md, body = build(summary, written, outdir)
    with open(os.path.join(outdir, "report.md"), "w") as fh:
        fh.write("\n".join(md))
    style = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 8px}"
             "img{max-width:100%}")
    with open(os.path.join(outdir, "report.html"), "w") as fh:
        fh.write("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cliphba report"
                 f"</title><style>{style}</style></head><body>\n" + "\n".join(body) +
                 "\n</body></html>\n")
    print(os.path.join(outdir, "report.md"))
    print(os.path.join(outdir, "report.html"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
