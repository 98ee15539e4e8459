#!/usr/bin/python3
"""Convert a MATLAB .mat file of time-resolved RDMs to cliphba's MEG RDM HDF5 (meg.rdm.path).

    /usr/bin/python3 scripts/mat_to_h5.py FILE.mat OUT.h5 --variable NAME --axes AXES
        (--names NAMES.txt | --names-variable VAR)
        (--time-start-ms START --time-step-ms STEP | --time-variable VAR)
        [--participants a,b,...] [--force]

MATLAB v5/v7 files are read with scipy.io.loadmat, v7.3 files (HDF5 inside) with h5py; in both
cases the variable is seen in MATLAB's dimension order (h5py shows it reversed; this script turns it
back). --axes names the variable's dimensions in that order with the letters
  P participants, T timepoints, I and J the two object axes (RDM rows and columns),
  S an axis averaged away (e.g. sessions), and 1 a singleton axis,
e.g. Cichy et al.'s 118-image MEG decoding RDMs (subjects x sessions x 118 x 118 x time) are
--axes PSIJT; a single participant's (118 x 118 x time) matrix is --axes IJT.
Time axis: --time-start-ms/--time-step-ms, or --time-variable naming a vector of times in ms
(uniformly spaced; in seconds if all |t| < 10 and --time-in-seconds is given).
Names: a text file (one per line, RDM order) or a .mat variable holding a cell array / char matrix.

Writes (the layout `cliphba meg rdm` writes and meg::RdmStack reads, results/README.md):
  /meg/rdm           float32 (P, T, n, n)
  /meg/names         string (n)
  /meg/participants  string (P)
  attributes on /meg: time_start_ms, time_step_ms, source
as OUT.h5.partial, renamed when complete; an existing OUT.h5 is refused unless --force.
Exit codes: 0 ok, 2 usage (bad arguments, output exists), 3 unreadable input, 4 invalid content
(a missing variable, listing the file's variables; shapes that do not fit --axes; NaN/Inf).
Reduce the time resolution afterwards with meg.rdm.smooth_ms (the reference's smoothen_rdm).
"""
import argparse
import os
import sys


def fail(code, message):
    print(f"mat_to_h5: error: {message}", file=sys.stderr)
    sys.exit(code)


class MatFile:
    """Variables of a v5/v7 (scipy) or v7.3 (h5py) .mat file, in MATLAB's dimension order."""

    def __init__(self, path):
        import h5py
        import numpy as np
        import scipy.io

        self.path = path
        self.np = np
        if not os.path.isfile(path):
            fail(3, f"{path}: no such file")
        self.v73 = h5py.is_hdf5(path)
        try:
            if self.v73:
                self.h5 = h5py.File(path, "r")
                self.vars = {k: self.h5[k] for k in self.h5.keys() if not k.startswith("#")}
            else:
                d = scipy.io.loadmat(path)
                self.vars = {k: v for k, v in d.items() if not k.startswith("__")}
        except Exception as e:  # noqa: BLE001 - any reader failure, with the file name
            fail(3, f"{path}: cannot read as a MATLAB .mat file (v5, v7 or v7.3): {e}")

    def names(self):
        return sorted(self.vars)

    def need(self, name, what):
        if name not in self.vars:
            listed = ", ".join(f"'{n}'" for n in self.names()) or "none"
            fail(4, f"{self.path}: no variable '{name}' ({what}); the file has: {listed}")
        return self.vars[name]

    def array(self, name, what):
        v = self.need(name, what)
        np = self.np
        if self.v73:
            import h5py
            if not isinstance(v, h5py.Dataset):
                fail(4, f"{self.path}: variable '{name}' is a struct/group, not an array")
            return np.asarray(v[()]).transpose()  # h5py shows MATLAB dims reversed
        return np.asarray(v)

    def strings(self, name, what):
        np = self.np
        v = self.need(name, what)
        if self.v73:
            import h5py
            out = []
            data = np.asarray(v[()])
            if data.dtype == object:  # cell array: references to char arrays
                for ref in data.transpose().reshape(-1):
                    chars = np.asarray(self.h5[ref][()]).reshape(-1)
                    out.append("".join(chr(int(c)) for c in chars))
            else:  # char matrix, stored (chars, rows) as uint16
                rows = data.transpose()
                out = ["".join(chr(int(c)) for c in r).rstrip() for r in np.atleast_2d(rows)]
            return out
        a = np.asarray(v)
        if a.dtype == object:  # cell array
            return [str(np.asarray(x).reshape(-1)[0]) if np.asarray(x).size else ""
                    for x in a.reshape(-1, order="F")]
        if a.dtype.kind in "US":  # char matrix: one row per name
            return [str(r).rstrip() for r in np.atleast_1d(a).reshape(-1)]
        fail(4, f"{self.path}: variable '{name}' ({what}) is not a cell array or char matrix of "
                f"names (dtype {a.dtype})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("mat", help="MATLAB .mat file (v5, v7 or v7.3)")
    ap.add_argument("out", help="MEG RDM HDF5 to write")
    ap.add_argument("--variable", required=True, help="the RDM array's variable name")
    ap.add_argument("--axes", required=True,
                    help="the variable's dimensions in MATLAB order: letters P T I J S 1")
    ap.add_argument("--names", help="object names, one per line, RDM order")
    ap.add_argument("--names-variable", help="variable holding the object names")
    ap.add_argument("--time-start-ms", type=float, help="time of timepoint 0 (ms)")
    ap.add_argument("--time-step-ms", type=float, help="timepoint spacing (ms), > 0")
    ap.add_argument("--time-variable", help="variable holding the time of every timepoint")
    ap.add_argument("--time-in-seconds", action="store_true",
                    help="--time-variable is in seconds (converted to ms)")
    ap.add_argument("--participants", help="comma-separated labels, one per participant")
    ap.add_argument("--force", action="store_true", help="replace an existing OUT")
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        sys.exit(2 if e.code else 0)

    import h5py
    import numpy as np

    axes = args.axes.upper()
    if sorted(c for c in axes if c in "TIJ") != ["I", "J", "T"] or any(c not in "PTIJS1" for c in axes) \
            or axes.count("P") > 1:
        fail(2, f"--axes {args.axes}: expected each of T, I, J once, at most one P, and S or 1 "
                f"for other axes (e.g. PSIJT, IJT, PTIJ)")
    if (args.names is None) == (args.names_variable is None):
        fail(2, "give exactly one of --names and --names-variable")
    if args.time_variable is None and (args.time_start_ms is None or args.time_step_ms is None):
        fail(2, "give --time-start-ms and --time-step-ms, or --time-variable")
    if args.time_step_ms is not None and not args.time_step_ms > 0:
        fail(2, f"--time-step-ms {args.time_step_ms}: expected > 0")
    if os.path.exists(args.out) and not args.force:
        fail(2, f"{args.out} exists; pass --force to replace it")

    mat = MatFile(args.mat)
    data = mat.array(args.variable, "the RDMs")
    if data.ndim != len(axes):
        fail(4, f"{args.mat}: variable '{args.variable}' has {data.ndim} dimensions "
                f"{tuple(data.shape)}, --axes {args.axes} names {len(axes)}")
    if not np.issubdtype(data.dtype, np.number):
        fail(4, f"{args.mat}: variable '{args.variable}' is not numeric (dtype {data.dtype})")
    for ax, c in enumerate(axes):
        if c == "1" and data.shape[ax] != 1:
            fail(4, f"{args.mat}: axis {ax} of '{args.variable}' has size {data.shape[ax]}, "
                    f"--axes says 1")
    data = data.astype(np.float64)
    s_axes = tuple(i for i, c in enumerate(axes) if c in "S1")
    if s_axes:
        data = data.mean(axis=s_axes)
        axes = "".join(c for c in axes if c not in "S1")
    if "P" not in axes:
        data = data[None]
        axes = "P" + axes
    data = np.transpose(data, [axes.index(c) for c in "PTIJ"])
    P, T, n, n2 = data.shape
    if n != n2 or n < 2:
        fail(4, f"{args.mat}: RDMs of {n} x {n2} objects: expected square with >= 2 objects")
    if not np.isfinite(data).all():
        bad = np.argwhere(~np.isfinite(data))[0]
        fail(4, f"{args.mat}: {int((~np.isfinite(data)).sum())} NaN/Inf value(s) in "
                f"'{args.variable}', first at (participant, timepoint, i, j) = {tuple(bad)}")

    if args.names is not None:
        try:
            with open(args.names) as f:
                names = [line.strip() for line in f if line.strip()]
        except OSError as e:
            fail(3, f"{args.names}: cannot read the names: {e}")
        names_src = args.names
    else:
        names = mat.strings(args.names_variable, "the object names")
        names_src = f"{args.mat} variable '{args.names_variable}'"
    if len(names) != n:
        fail(4, f"{names_src} lists {len(names)} names, the RDMs have {n} objects")
    if len(set(names)) != len(names):
        fail(4, f"{names_src}: repeated object names")

    if args.time_variable is not None:
        t = mat.array(args.time_variable, "the times").astype(np.float64).reshape(-1)
        if args.time_in_seconds:
            t = t * 1000.0
        if len(t) != T:
            fail(4, f"{args.mat}: '{args.time_variable}' has {len(t)} times, the RDMs {T} "
                    f"timepoints")
        steps = np.diff(t)
        if T > 1 and (not (steps > 0).all() or np.abs(steps - steps[0]).max() > 1e-6 * abs(steps[0])):
            fail(4, f"{args.mat}: '{args.time_variable}' is not uniformly spaced and increasing")
        start, step = float(t[0]), float(steps[0]) if T > 1 else 1.0
    else:
        start, step = args.time_start_ms, args.time_step_ms

    labels = ([p.strip() for p in args.participants.split(",")] if args.participants
              else [str(p) for p in range(P)])
    if len(labels) != P:
        fail(2, f"--participants lists {len(labels)} labels, the RDMs have {P} participants")

    partial = args.out + ".partial"
    try:
        with h5py.File(partial, "w") as f:
            g = f.create_group("meg")
            g.create_dataset("rdm", data=data.astype(np.float32))
            g.create_dataset("names", data=np.array(names, dtype=object),
                             dtype=h5py.string_dtype())
            g.create_dataset("participants", data=np.array(labels, dtype=object),
                             dtype=h5py.string_dtype())
            g.attrs["time_start_ms"] = float(start)
            g.attrs["time_step_ms"] = float(step)
            g.attrs["source"] = os.path.abspath(args.mat)
        os.replace(partial, args.out)
    except BaseException:
        if os.path.exists(partial):
            os.remove(partial)
        raise
    print(f"{args.out}: {P} participant(s), {T} timepoints ({start:g} ms, step {step:g} ms), "
          f"{n} objects")


if __name__ == "__main__":
    main()
