#!/usr/bin/python3
"""Convert MNE epochs files (-epo.fif) to cliphba's epochs HDF5 layout (results/README.md).

    /usr/bin/python3 scripts/fif_to_h5.py SUB-epo.fif OUT.h5 [--picks meg,eeg]
        [--names-from-metadata COLUMN] [--participant LABEL]

Writes (one file per participant):
  /epochs/data            float32 (trials, channels, times)  the picked channels, MNE's units
  /epochs/condition       int64   (trials)                   index into condition_names
  /epochs/condition_names string  (C)                        RDM order
  /epochs/channel_names   string  (channels)
  attributes on /epochs: sfreq (Hz), tmin_ms (time of sample 0, ms), participant, source
Conditions: by default the event_id keys ordered by their event code, and each trial's condition
is the position of its event code in that order. With --names-from-metadata COLUMN the names are
the sorted distinct values of epochs.metadata[COLUMN] and each trial's condition is the position
of its value. The file is written as OUT.h5.partial and renamed, so a failed run leaves no OUT.h5.
Exit codes: 0 ok, 2 usage, 3 unreadable input, 4 invalid content.
"""
import argparse
import os
import sys


def fail(code, message):
    print(f"fif_to_h5: error: {message}", file=sys.stderr)
    sys.exit(code)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("fif", help="MNE epochs file (-epo.fif)")
    ap.add_argument("out", help="epochs HDF5 to write")
    ap.add_argument("--picks", default="meg,eeg",
                    help="comma-separated channel types or names for mne.pick (default meg,eeg)")
    ap.add_argument("--names-from-metadata", default=None, metavar="COLUMN",
                    help="condition names from this epochs.metadata column instead of event_id")
    ap.add_argument("--participant", default=None,
                    help="participant label (default: the file name before -epo)")
    args = ap.parse_args(argv)

    import h5py
    import mne
    import numpy as np

    mne.set_log_level("WARNING")
    if not os.path.isfile(args.fif):
        fail(3, f"{args.fif}: no such file")
    try:
        epochs = mne.read_epochs(args.fif, preload=True, verbose="ERROR")
    except Exception as e:  # noqa: BLE001 - report any reader failure with the file name
        fail(3, f"{args.fif}: cannot read MNE epochs: {e}")
    picks = [p.strip() for p in args.picks.split(",") if p.strip()]
    try:
        epochs = epochs.pick(picks)
    except Exception as e:  # noqa: BLE001
        fail(4, f"{args.fif}: --picks {args.picks}: {e}")
    if len(epochs.ch_names) == 0:
        fail(4, f"{args.fif}: --picks {args.picks} selects no channel")
    data = epochs.get_data().astype(np.float32)  # (trials, channels, times)
    if not np.isfinite(data).all():
        fail(4, f"{args.fif}: the epochs contain NaN/Inf values")

    if args.names_from_metadata:
        md = epochs.metadata
        col = args.names_from_metadata
        if md is None or col not in md.columns:
            fail(4, f"{args.fif}: --names-from-metadata {col}: epochs.metadata has no such column")
        values = [str(v) for v in md[col].tolist()]
        names = sorted(set(values))
        index = {n: i for i, n in enumerate(names)}
        condition = np.array([index[v] for v in values], dtype=np.int64)
    else:
        by_code = sorted(epochs.event_id.items(), key=lambda kv: kv[1])
        names = [k for k, _ in by_code]
        code_index = {code: i for i, (_, code) in enumerate(by_code)}
        codes = epochs.events[:, 2]
        unknown = sorted(set(int(c) for c in codes) - set(code_index))
        if unknown:
            fail(4, f"{args.fif}: event codes {unknown} are not in event_id")
        condition = np.array([code_index[int(c)] for c in codes], dtype=np.int64)
    if len(names) < 2:
        fail(4, f"{args.fif}: fewer than 2 conditions")

    participant = args.participant
    if participant is None:
        base = os.path.basename(args.fif)
        participant = base.split("-epo")[0].split("_epo")[0].split(".")[0]

    partial = args.out + ".partial"
    try:
        with h5py.File(partial, "w") as f:
            g = f.create_group("epochs")
            g.create_dataset("data", data=data)
            g.create_dataset("condition", data=condition)
            g.create_dataset("condition_names", data=names, dtype=h5py.string_dtype("utf-8"))
            g.create_dataset("channel_names", data=list(epochs.ch_names),
                             dtype=h5py.string_dtype("utf-8"))
            g.attrs["sfreq"] = float(epochs.info["sfreq"])
            g.attrs["tmin_ms"] = float(epochs.times[0]) * 1000.0
            g.attrs["participant"] = participant
            g.attrs["source"] = os.path.abspath(args.fif)
        os.replace(partial, args.out)
    except OSError as e:
        if os.path.exists(partial):
            os.remove(partial)
        fail(3, f"{args.out}: cannot write: {e}")
    print(f"{args.out}: {data.shape[0]} trials x {data.shape[1]} channels x {data.shape[2]} "
          f"samples, {len(names)} conditions, {epochs.info['sfreq']} Hz, participant {participant}")


if __name__ == "__main__":
    main()
