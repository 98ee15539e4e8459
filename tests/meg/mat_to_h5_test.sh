#!/bin/bash
# scripts/mat_to_h5.py on MATLAB files the test writes:
#   1. a v5 file (scipy.io.savemat): subjects x sessions x n x n x time (Cichy's layout), names as a
#      cell array, times in seconds; a v7.3 file (HDF5 with MATLAB's reversed dimension order and
#      a char-matrix of names), written with h5py as MATLAB does;
#   2. the converted HDF5 equals the session mean in (P, T, n, n) order, with names, labels and the
#      time axis; both versions give the same file;
#   3. bad input: a missing variable (exit 4, the variables listed), --axes that do not fit (4),
#      an existing output without --force (2), an unreadable file (3); nothing half-written.
# Usage: mat_to_h5_test.sh MAT_TO_H5_SCRIPT SCRATCH_DIR
set -euo pipefail
SCRIPT=$1
DIR=$2
PY=/usr/bin/python3
rm -rf "$DIR" && mkdir -p "$DIR"
cd "$DIR"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$PY" - <<'PY'
import h5py, numpy as np, scipy.io
rng = np.random.default_rng(3)
P, S, n, T = 2, 3, 5, 7
x = rng.random((P, S, n, n, T))
x = (x + x.transpose(0, 1, 3, 2, 4)) / 2
for i in range(n):
    x[:, :, i, i, :] = 0
names = np.empty((n, 1), dtype=object)
for i in range(n):
    names[i, 0] = f"obj_{i}.jpg"
times_s = (-100 + 10 * np.arange(T)) / 1000.0
scipy.io.savemat("cichy_v5.mat", {"rdm": x, "names": names, "t": times_s})
np.save("expected.npy", x.mean(axis=1).transpose(0, 3, 1, 2))  # (P, T, n, n)
# v7.3: an HDF5 file with MATLAB's 512-byte user block; MATLAB stores dims reversed.
with h5py.File("cichy_v73.mat", "w", userblock_size=512) as f:
    f.create_dataset("rdm", data=x.transpose())
    width = max(len(f"obj_{i}.jpg") for i in range(n))
    chars = np.array([[ord(c) for c in f"obj_{i}.jpg".ljust(width)] for i in range(n)], np.uint16)
    f.create_dataset("names", data=chars.transpose())  # MATLAB char matrix (n x width)
with open("cichy_v73.mat", "r+b") as f:
    f.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, created by the cliphba test".ljust(116))
with open("names.txt", "w") as f:
    f.write("\n".join(f"obj_{i}.jpg" for i in range(n)) + "\n")
PY

"$PY" "$SCRIPT" cichy_v5.mat v5.h5 --variable rdm --axes PSIJT --names-variable names \
  --time-variable t --time-in-seconds --participants sub-01,sub-02
"$PY" "$SCRIPT" cichy_v73.mat v73.h5 --variable rdm --axes PSIJT --names-variable names \
  --time-start-ms -100 --time-step-ms 10 --participants sub-01,sub-02
"$PY" "$SCRIPT" cichy_v73.mat v73b.h5 --variable rdm --axes PSIJT --names names.txt \
  --time-start-ms -100 --time-step-ms 10

"$PY" - <<'PY'
import h5py, numpy as np
want = np.load("expected.npy")
for path, labels in [("v5.h5", ["sub-01", "sub-02"]), ("v73.h5", ["sub-01", "sub-02"]),
                     ("v73b.h5", ["0", "1"])]:
    with h5py.File(path) as f:
        g = f["meg"]
        assert g["rdm"].dtype == np.float32 and g["rdm"].shape == want.shape, g["rdm"].shape
        np.testing.assert_allclose(g["rdm"][()], want, atol=1e-7, rtol=0)
        assert [s.decode() for s in g["names"][()]] == [f"obj_{i}.jpg" for i in range(5)]
        assert [s.decode() for s in g["participants"][()]] == labels
        assert abs(g.attrs["time_start_ms"] + 100) < 1e-9 and abs(g.attrs["time_step_ms"] - 10) < 1e-9
print("mat_to_h5: v5 and v7.3 files give the session-mean (P, T, n, n) stack")
PY

expect_exit() {  # CODE PATTERN ARGS...
  local code=$1 pattern=$2
  shift 2
  set +e
  "$PY" "$SCRIPT" "$@" > out.txt 2> err.txt
  local got=$?
  set -e
  [ "$got" = "$code" ] || fail "exit $got (expected $code) for $*: $(cat err.txt)"
  grep -q -- "$pattern" err.txt || fail "message lacks '$pattern': $(cat err.txt)"
}
expect_exit 4 "no variable 'RDMs'.*'names', 'rdm', 't'" cichy_v5.mat bad.h5 --variable RDMs \
  --axes PSIJT --names names.txt --time-start-ms 0 --time-step-ms 1
expect_exit 4 "--axes PIJT names 4" cichy_v5.mat bad.h5 --variable rdm --axes PIJT \
  --names names.txt --time-start-ms 0 --time-step-ms 1
expect_exit 2 "exists; pass --force" cichy_v5.mat v5.h5 --variable rdm --axes PSIJT \
  --names names.txt --time-start-ms 0 --time-step-ms 1
echo "not a mat file" > broken.mat
expect_exit 3 "cannot read as a MATLAB" broken.mat bad.h5 --variable rdm --axes PSIJT \
  --names names.txt --time-start-ms 0 --time-step-ms 1
[ ! -e bad.h5 ] && [ ! -e bad.h5.partial ] || fail "a refused conversion left a file"
echo "mat_to_h5: bad input refused"
