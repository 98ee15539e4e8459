#!/bin/bash
# scripts/fif_to_h5.py + `cliphba meg rdm` end to end:
#   (--names-from-metadata needs pandas, which is not installed: not tested here.)
#   1. MNE creates two small EpochsArray files (-epo.fif) in a scratch folder;
#   2. fif_to_h5.py converts them; h5py checks data, conditions, names, sfreq, tmin against MNE;
#   3. `cliphba meg rdm` turns them into MEG RDMs; NumPy recomputes them (boxcar, condition means,
#      1 - np.corrcoef, every 2nd sample) and compares (float32 file: 1e-5);
#   4. bad input: a window longer than the epochs exits 2 and writes nothing.
# Usage: fif_to_h5_test.sh CLIPHBA_BINARY FIF_TO_H5_SCRIPT SCRATCH_DIR
set -euo pipefail
CLIPHBA=$1
SCRIPT=$2
DIR=$3
PY=/usr/bin/python3
rm -rf "$DIR" && mkdir -p "$DIR"
cd "$DIR"

"$PY" - <<'PY'
import mne, numpy as np
mne.set_log_level("ERROR")
rng = np.random.default_rng(7)
ch_names = [f"MEG{i:03d}" for i in range(6)] + ["EEG001", "EEG002", "STI101"]
ch_types = ["mag"] * 3 + ["grad"] * 3 + ["eeg"] * 2 + ["stim"]
info = mne.create_info(ch_names, sfreq=250.0, ch_types=ch_types)
event_id = {"dog.jpg": 10, "cat.jpg": 3, "car.jpg": 7, "tree.jpg": 20}
codes = np.array(list(event_id.values()))
for p in (1, 2):
    cond = rng.permutation(np.repeat(codes, 3))
    n = len(cond)
    data = rng.normal(size=(n, len(ch_names), 40)) * 1e-12
    data[:, :, 10:] += np.outer(cond, np.ones(len(ch_names)))[:, :, None] * 1e-13 * np.sin(np.arange(30))[None, None, :]
    events = np.column_stack([np.arange(n) * 100, np.zeros(n, int), cond])
    ep = mne.EpochsArray(data, info, events=events, tmin=-0.02, event_id=event_id)
    ep.save(f"sub-0{p}-epo.fif", overwrite=True)
PY

"$PY" "$SCRIPT" sub-01-epo.fif sub-01.h5
"$PY" "$SCRIPT" sub-02-epo.fif sub-02.h5
"$PY" "$SCRIPT" sub-01-epo.fif sub-01-mag.h5 --picks mag --participant P1

"$PY" - <<'PY'
import h5py, mne, numpy as np
mne.set_log_level("ERROR")
for p in ("01", "02"):
    ep = mne.read_epochs(f"sub-{p}-epo.fif")
    picked = ep.copy().pick(["meg", "eeg"])
    with h5py.File(f"sub-{p}.h5") as f:
        g = f["epochs"]
        assert g["data"].dtype == np.float32
        np.testing.assert_array_equal(g["data"][()], picked.get_data().astype(np.float32))
        names = [s.decode() for s in g["condition_names"][()]]
        assert names == ["cat.jpg", "car.jpg", "dog.jpg", "tree.jpg"], names  # by event code
        code_of = ep.event_id
        got = [code_of[names[i]] for i in g["condition"][()]]
        np.testing.assert_array_equal(got, ep.events[:, 2])
        assert [s.decode() for s in g["channel_names"][()]] == picked.ch_names
        assert "STI101" not in picked.ch_names
        assert g.attrs["sfreq"] == 250.0 and abs(g.attrs["tmin_ms"] - (-20.0)) < 1e-9
        assert g.attrs["participant"] == f"sub-{p}"
with h5py.File("sub-01-mag.h5") as f:
    g = f["epochs"]
    assert g["data"].shape[1] == 3  # --picks mag
    assert g.attrs["participant"] == "P1"
print("fif_to_h5: files match the MNE epochs")
PY

cat > meg.yaml <<'YAML'
meg:
  epochs:
    files: ["sub-01.h5", "sub-02.h5"]
    method: "correlation"
    window_ms: 12.0   # 3 samples at 250 Hz
    step_ms: 8.0      # every 2nd sample
    tmin_ms: -10.0
    out: "meg_rdm.h5"
YAML
"$CLIPHBA" meg rdm --config meg.yaml --json > summary.json
cat summary.json

"$PY" - <<'PY'
import h5py, json, numpy as np
s = json.load(open("summary.json"))
assert s["participants"] == ["sub-01", "sub-02"], s
assert s["n_objects"] == 4 and s["method"] == "correlation"
with h5py.File("meg_rdm.h5") as f:
    rdm = f["meg/rdm"][()]
    assert rdm.dtype == np.float32
    assert [x.decode() for x in f["meg/names"][()]] == ["cat.jpg", "car.jpg", "dog.jpg", "tree.jpg"]
    start, step = f["meg"].attrs["time_start_ms"], f["meg"].attrs["time_step_ms"]
worst = 0.0
for p, name in enumerate(("sub-01", "sub-02")):
    with h5py.File(f"{name}.h5") as f:
        x = f["epochs/data"][()].astype(np.float64)
        cond = f["epochs/condition"][()]
        sfreq, tmin = f["epochs"].attrs["sfreq"], f["epochs"].attrs["tmin_ms"]
    S = x.shape[-1]
    sm = np.stack([x[..., max(0, s - 1):min(S, s + 2)].mean(-1) for s in range(S)], -1)
    times = tmin + np.arange(S) * 1000 / sfreq
    keep = np.arange(S)[times >= -10.0 - 1e-9][::2]
    assert abs(start - times[keep[0]]) < 1e-9 and abs(step - 8.0) < 1e-9, (start, step)
    assert rdm.shape[1] == len(keep), (rdm.shape, len(keep))
    iu = np.triu_indices(4, k=1)
    for t, s in enumerate(keep):
        means = np.stack([sm[cond == c, :, s].mean(0) for c in range(4)])
        ref = (1 - np.corrcoef(means))[iu]
        worst = max(worst, np.abs(rdm[p, t] - ref).max())
print(f"meg rdm vs numpy: max|diff| {worst:.3g}")
assert worst < 1e-5, worst
PY

# Bad input: a window longer than the epochs -> exit 2, nothing written.
set +e
"$CLIPHBA" meg rdm --config meg.yaml --set meg.epochs.window_ms=1000 --set meg.epochs.out=bad.h5 2> bad.err
code=$?
set -e
cat bad.err
[ "$code" -eq 2 ] || { echo "expected exit 2, got $code"; exit 1; }
grep -q "meg.epochs.window_ms" bad.err
[ ! -e bad.h5 ] && [ ! -e bad.h5.partial ]
# A missing input file: exit 3.
set +e
"$CLIPHBA" meg rdm --config meg.yaml --set 'meg.epochs.files=["missing.h5"]' --set meg.epochs.out=bad.h5 2> missing.err
code=$?
set -e
cat missing.err
[ "$code" -eq 3 ] || { echo "expected exit 3, got $code"; exit 1; }
grep -q "missing.h5: cannot open the epochs file (meg.epochs.files)" missing.err
# The same RDMs from flags alone (no config file): byte-identical data.
"$CLIPHBA" meg rdm --files '["sub-01.h5", "sub-02.h5"]' --method correlation --window-ms 12 \
  --step-ms 8 --tmin-ms -10 --out flags.h5 > /dev/null
h5diff meg_rdm.h5 flags.h5 /meg/rdm || { echo "flags differ from the config file"; exit 1; }
echo "fif_to_h5_test: OK"
