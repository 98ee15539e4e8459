#!/usr/bin/python3
"""Are two results HDF5 files the same result? Used by slurm_chain_test.sh to check that a job that
was requeued mid-run ends with the results of an uninterrupted run.

  h5_same.py A.h5 B.h5 [--ignore REGEX]... [--rtol R] [--atol A]

Compares the tree (every group and dataset present in both), dataset shapes, dtypes and values
(exact unless --rtol/--atol, NaN equal to NaN), and attributes, except objects/attributes whose path
matches an --ignore regex (default: provenance that differs between runs: times, dates, host,
command line, durations, restart counts, the config hash, which covers the output paths). Strings are compared after replacing each file's own
folder by a placeholder, since the two runs write into different folders.
Exit 0 if the same, 1 (listing the differences) if not.
"""
import argparse
import os
import re
import sys

import h5py
import numpy as np

# Attributes (path@name) about the run, not the result; a /provenance group, if any.
DEFAULT_IGNORE = [r"(?i)@\w*(time|date|host|command|argv|duration|elapsed|seconds|wall|pid|restart"
                  r"|started|finished|created|user|config_hash)",
                  r"(?i)/provenance(/|@|$)"]


def norm(value, folder):
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if isinstance(value, str):
        return value.replace(folder, "<run>")
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return np.array([norm(v, folder) for v in value.ravel()], dtype=object).reshape(value.shape)
    return value


def short(value):
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def same(a, b, rtol, atol=0.0):
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc" and b.dtype.kind in "fc":
        if rtol or atol:
            return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=True))
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))


def items(f):
    out = {}
    f.visititems(lambda name, obj: out.__setitem__("/" + name, obj))
    out["/"] = f
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--ignore", action="append", default=None)
    ap.add_argument("--rtol", type=float, default=0.0)
    ap.add_argument("--atol", type=float, default=0.0)
    args = ap.parse_args()
    ignore = [re.compile(r) for r in (args.ignore or DEFAULT_IGNORE)]
    skip = lambda path: any(r.search(path) for r in ignore)
    fa_dir = os.path.dirname(os.path.abspath(args.a))
    fb_dir = os.path.dirname(os.path.abspath(args.b))
    diffs = []
    compared = 0
    with h5py.File(args.a, "r") as fa, h5py.File(args.b, "r") as fb:
        ia, ib = items(fa), items(fb)
        for path in sorted(set(ia) | set(ib)):
            if skip(path):
                continue
            if path not in ia or path not in ib:
                diffs.append(f"{path}: only in {'A' if path in ia else 'B'}")
                continue
            oa, ob = ia[path], ib[path]
            if isinstance(oa, h5py.Dataset) != isinstance(ob, h5py.Dataset):
                diffs.append(f"{path}: dataset in one file, group in the other")
                continue
            if isinstance(oa, h5py.Dataset):
                va, vb = norm(oa[()], fa_dir), norm(ob[()], fb_dir)
                if oa.dtype != ob.dtype and not (oa.dtype.kind in "OSU" and ob.dtype.kind in "OSU"):
                    diffs.append(f"{path}: dtype {oa.dtype} vs {ob.dtype}")
                elif not same(va, vb, args.rtol, args.atol):
                    diffs.append(f"{path}: values differ")
                compared += 1
            for name in sorted(set(oa.attrs) | set(ob.attrs)):
                apath = f"{path}@{name}"
                if skip(apath):
                    continue
                if name not in oa.attrs or name not in ob.attrs:
                    diffs.append(f"{apath}: only in {'A' if name in oa.attrs else 'B'}")
                elif not same(norm(oa.attrs[name], fa_dir), norm(ob.attrs[name], fb_dir),
                              args.rtol, args.atol):
                    diffs.append(f"{apath}: {short(oa.attrs[name])} vs {short(ob.attrs[name])}")
    if compared == 0:
        diffs.append("no datasets compared")
    for d in diffs:
        print(f"h5_same: {d}", file=sys.stderr)
    if not diffs:
        print(f"h5_same: {compared} datasets equal")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
