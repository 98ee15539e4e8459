#!/usr/bin/python3
"""The CLI contract, one table (issue 13): every malformed or unsafe invocation a user met.

Each row runs the real `cliphba` binary (some under `mpirun -q -np 2`) in one work folder that
holds inputs and earlier outputs, and asserts:
  * the exit code (README's table: usage/config 2, I/O 3, invalid data 4, internal 1);
  * every `needles` string in stderr (the file, the flag or key, the position), none of `absent`;
  * that the whole work folder is byte-identical afterwards (inputs and earlier results untouched,
    nothing half-written, no checkpoint or staging folder left) -- except the files a passing row
    declares in `creates`.
Rows marked `lines` also require stderr to have exactly that many lines besides the log lines (one
under `mpirun -q`, whichever rank found the error).

usage: cli_table_check.py CLIPHBA SHARED_DIR WORK_DIR [MPIEXEC]
"""
import gzip
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np

CLIPHBA, SHARED, WORK = (os.path.abspath(a) for a in sys.argv[1:4])
SHARED = os.environ.get("CLIPHBA_SHARED_DIR", SHARED)  # the fixtures' root, when set
MPIEXEC = sys.argv[4] if len(sys.argv) > 4 else "mpirun"
HERE = os.path.dirname(os.path.abspath(__file__))
MANTEL = os.path.join(HERE, "..", "data_files", "mantel_reference")
FIX = os.path.join(SHARED, "fixtures", "clip", "model")
VOCAB = os.path.join(SHARED, "data", "clip", "bpe_simple_vocab_16e6.txt.gz")
TINY = os.path.join(FIX, "tiny_clip_vit.safetensors")
W = os.path.abspath(WORK)
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")

USAGE, IO, DATA = 2, 3, 4


def run(args, mpi=0, sig=None, wait_for=None):
    """The command's CompletedProcess; with `sig`, the signal is sent once `wait_for` exists."""
    cmd = ([MPIEXEC, "-q", "-np", str(mpi), "--oversubscribe"] if mpi else []) + [CLIPHBA] + args
    if sig is None:
        return subprocess.run(cmd, capture_output=True, env=ENV, timeout=300, cwd=W)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=ENV, cwd=W)
    for _ in range(1200):  # the first checkpoint: the sweep is running, its handler installed
        if os.path.exists(wait_for) or p.poll() is not None:
            break
        time.sleep(0.05)
    p.send_signal(sig)
    out, err = p.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, p.returncode, out, err)


def must(args):
    r = run(args)
    if r.returncode != 0:
        sys.exit(f"set-up failed: cliphba {' '.join(args)}\n{r.stderr.decode()}")


def write(rel, data):
    path = os.path.join(W, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def half(src):
    with open(src, "rb") as f:
        data = f.read()
    return data[: len(data) // 2]


# --- the work folder: inputs and earlier outputs -------------------------------------------------
shutil.rmtree(W, ignore_errors=True)
os.makedirs(W)
model = np.load(os.path.join(MANTEL, "model.npy"))
neural = np.load(os.path.join(MANTEL, "neural.npy"))  # (9, 14, 14)
np.save(f"{W}/model.npy", model)
np.save(f"{W}/neural.npy", neural)
const = neural.copy()
const[7] = 1.0 - np.eye(14)  # timepoint 7: every pair the same dissimilarity
np.save(f"{W}/const.npy", const)
with h5py.File(f"{W}/nodset.h5", "w") as f:
    f["something_else"] = neural
write("trunc.npy", half(f"{W}/model.npy"))
write("trunc.safetensors", half(TINY))
write("trunc.pt", half(os.path.join(FIX, "tiny_clip_vit_state_dict.pt")))
write("trunc.txt.gz", half(VOCAB))
images = np.load(os.path.join(FIX, "images.npy"))
np.save(f"{W}/images.npy", images)
nan_images = images.copy()
nan_images[2, 1, 5, 7] = np.nan
np.save(f"{W}/nan_images.npy", nan_images)
write("prompts.json", json.dumps(["a red thing", "a round thing"]))
write("empty_prompts.json", json.dumps(["a red thing", ""]))
write("dup.yaml", "permute:\n  batch: 16\n  mantel:\n    n: 10\n  batch: 32\n")
write("quote.yaml", "permute:\n  out: \"never closed\n  batch: 16\n")
write("typo.yaml", "permute:\n  mantle:\n    n: 10\n")
os.makedirs(f"{W}/adir")
write("adir/keep.txt", "a folder the user owns\n")
must(["synth", "behavior", "--out-dir", f"{W}/beh", "--n-objects", "12"])
must(["permute", "mantel", "--model-rdm", f"{W}/model.npy", "--neural-rdm", f"{W}/neural.npy",
      "--n", "50", "--seed", "1", "--out", f"{W}/done.h5"])
must(["rsa", "behavior", "--embedding", f"{W}/beh/model_embedding.csv", "--rdm", f"{W}/beh/rdm.npy",
      "--rdm-names", f"{W}/beh/rdm_names.txt", "--out", f"{W}/rsa.h5"])
must(["encode", "--checkpoint", TINY, "--images-npy", f"{W}/images.npy", "--out", f"{W}/enc"])
write("left.h5.ckpt", "an unfinished sweep's checkpoint\n")
write("trained/best.safetensors", "an earlier model\n")
write("synth_model.safetensors", "an earlier base model\n")
emb = open(f"{W}/beh/model_embedding.csv").read().splitlines()
cells = emb[3].split(",")
cells[4] = "nan"
emb[3] = ",".join(cells)
write("nan_embedding.csv", "\n".join(emb) + "\n")

mantel = ["permute", "mantel", "--model-rdm", f"{W}/model.npy", "--neural-rdm", f"{W}/neural.npy"]
encode = ["encode", "--checkpoint", TINY, "--images-npy", f"{W}/images.npy"]
rsa = ["rsa", "behavior", "--embedding", f"{W}/beh/model_embedding.csv", "--rdm",
       f"{W}/beh/rdm.npy", "--rdm-names", f"{W}/beh/rdm_names.txt"]

# --- the table -----------------------------------------------------------------------------------
# (name, args, exit code, needles, extra) with extra: absent, creates, mpi, lines.
CASES = [
    # 1. outputs: never over an input, never replace a result or drop a checkpoint unasked
    ("permute --out is an input", mantel + ["--out", f"{W}/model.npy"], USAGE,
     ["permute.out", "model.npy"], {}),
    ("permute onto an existing result", mantel + ["--n", "60", "--out", f"{W}/done.h5"], USAGE,
     ["done.h5", "--force"], {}),
    ("permute --resume under other settings", mantel + ["--n", "60", "--resume", "--out",
                                                         f"{W}/done.h5"], USAGE,
     ["done.h5", "different settings"], {}),
    ("permute beside a leftover checkpoint", mantel + ["--out", f"{W}/left.h5"], USAGE,
     ["left.h5.ckpt", "--resume", "--force"], {}),
    ("permute --out is a folder", mantel + ["--out", f"{W}/adir"], USAGE, ["adir"], {}),
    ("rsa onto an existing result", rsa + ["--out", f"{W}/rsa.h5"], USAGE,
     ["rsa.h5", "--force"], {}),
    ("train into a folder with a model", ["train", "behavior", "--out-dir", f"{W}/trained"], USAGE,
     ["trained/best.safetensors", "--resume", "--force"], {}),
    ("encode into an earlier encode", encode + ["--out", f"{W}/enc"], USAGE,
     ["enc", "--force"], {}),
    ("encode --out is a file", encode + ["--out", f"{W}/model.npy"], USAGE,
     ["model.npy", "is a file"], {}),
    ("synth behavior into a non-empty folder", ["synth", "behavior", "--out-dir", f"{W}/adir"],
     USAGE, ["adir", "synth.behavior.out_dir", "--force"], {}),
    ("synth images into a non-empty folder", ["synth", "images", "--out-dir", f"{W}/adir"],
     USAGE, ["adir", "synth.images.out_dir", "--force"], {}),
    ("synth cohort into a non-empty folder", ["synth", "cohort", "--out-dir", f"{W}/adir"],
     USAGE, ["adir", "synth.cohort.out_dir", "--force"], {}),
    ("synth model onto an existing file", ["synth", "model", "--out",
                                           f"{W}/synth_model.safetensors"], USAGE,
     ["synth_model.safetensors", "--force"], {}),
    ("predict onto an existing result", ["predict", "behavior", "--model", TINY, "--images-npy",
                                         f"{W}/images.npy", "--out", f"{W}/done.h5"], USAGE,
     ["done.h5", "--force"], {}),
    # 2. inputs: garbage refused, naming the file and the position
    ("NaN in the images", ["encode", "--checkpoint", TINY, "--images-npy",
                           f"{W}/nan_images.npy", "--out", f"{W}/enc_nan"], DATA,
     ["nan_images.npy", "NaN"], {}),
    ("duplicate YAML key", ["config", "--config", f"{W}/dup.yaml"], USAGE,
     ["dup.yaml", "duplicate key", ":2", ":5"], {}),
    ("unterminated YAML quote", ["config", "--config", f"{W}/quote.yaml"], USAGE,
     ["quote.yaml:2"], {}),
    ("unknown YAML key", ["config", "--config", f"{W}/typo.yaml"], USAGE,
     ["typo.yaml", "permute.mantle", "permute.mantel"], {}),
    ("empty prompt", encode + ["--prompts", f"{W}/empty_prompts.json", "--vocab", VOCAB, "--out",
                               f"{W}/enc_p"], DATA, ["empty_prompts.json", "entry 1"], {}),
    ("constant RDM at a timepoint", mantel[:4] + ["--neural-rdm", f"{W}/const.npy", "--out",
                                                  f"{W}/c.h5"], DATA,
     ["const.npy", "timepoint 7"], {"absent": ["row 0"]}),
    ("constant RDM found mid-sweep", mantel[:4] + [
        "--neural-rdm", f"{W}/const.npy", "--n", "400", "--out", f"{W}/mid.h5", "--set",
        "permute.chunk_timepoints=2", "--set", "permute.checkpoint_every=20", "--set",
        "permute.batch=10"], DATA, ["const.npy", "timepoint 7"], {}),
    ("HDF5 neural RDM, no dataset named", mantel[:4] + ["--neural-rdm", f"{W}/nodset.h5",
                                                        "--out", f"{W}/h.h5"], USAGE,
     ["nodset.h5", "permute.mantel.neural_dataset"], {"absent": ["magic"]}),
    ("HDF5 neural RDM without the named dataset", mantel[:4] + [
        "--neural-rdm", f"{W}/nodset.h5", "--set", "permute.mantel.neural_dataset=/meg/rdm",
        "--out", f"{W}/h.h5"], DATA, ["nodset.h5", "/meg/rdm"], {"absent": ["magic"]}),
    ("NaN in an embedding", ["rsa", "behavior", "--embedding", f"{W}/nan_embedding.csv", "--rdm",
                             f"{W}/beh/rdm.npy", "--rdm-names", f"{W}/beh/rdm_names.txt",
                             "--out", f"{W}/rsa_nan.h5"], DATA,
     ["nan_embedding.csv:4", "column 5", "nan"], {}),
    ("truncated NPY", ["permute", "mantel", "--model-rdm", f"{W}/trunc.npy", "--neural-rdm",
                       f"{W}/neural.npy", "--out", f"{W}/t.h5"], DATA, ["trunc.npy"], {}),
    ("truncated safetensors", ["encode", "--checkpoint", f"{W}/trunc.safetensors",
                               "--images-npy", f"{W}/images.npy", "--out", f"{W}/enc_t"], DATA,
     ["trunc.safetensors"], {}),
    ("truncated torch zip", ["encode", "--checkpoint", f"{W}/trunc.pt", "--images-npy",
                             f"{W}/images.npy", "--out", f"{W}/enc_z"], DATA, ["trunc.pt"], {}),
    ("truncated gzip vocabulary", encode + ["--prompts", f"{W}/prompts.json", "--vocab",
                                            f"{W}/trunc.txt.gz", "--out", f"{W}/enc_g"], DATA,
     ["trunc.txt.gz"], {}),
    # 3. messages and codes
    ("missing --config file", ["config", "--config", f"{W}/none.yaml"], IO, ["none.yaml"], {}),
    ("missing input file", mantel[:4] + ["--neural-rdm", f"{W}/none.npy", "--out", f"{W}/n.h5"],
     IO, ["none.npy"], {}),
    ("--set of a section", mantel + ["--set", "permute=5", "--out", f"{W}/s.h5"], USAGE,
     ["permute"], {"absent": ["did you mean 'permute'"]}),
    ("--set of an unknown key", mantel + ["--set", "permute.mantle.n=5", "--out", f"{W}/s.h5"],
     USAGE, ["permute.mantle.n", "permute.mantel.n"], {}),
    ("bad --tail", mantel + ["--tail", "2", "--out", f"{W}/s.h5"], USAGE, ["--tail"],
     {"absent": ["--set"]}),
    ("bad --n", mantel + ["--n", "-5", "--out", f"{W}/s.h5"], USAGE, ["--n"],
     {"absent": ["--set"]}),
    ("bad --precision", encode + ["--precision", "fp16", "--out", f"{W}/enc_x"], USAGE,
     ["--precision", "fp16", "bfloat16"], {}),
    ("bad train.behavior.precision", ["train", "behavior", "--out-dir", f"{W}/newtrain", "--set",
                                      "train.behavior.precision=half"], USAGE,
     ["train.behavior.precision", "half"], {}),
    ("a data error under mpirun: one line", mantel[:4] + ["--neural-rdm", f"{W}/const.npy",
                                                          "--out", f"{W}/m.h5"], DATA,
     ["const.npy", "timepoint 7"], {"mpi": 2, "lines": 1, "absent": ["MPI_ABORT"]}),
    ("an I/O error under mpirun: one line", mantel[:4] + ["--neural-rdm", f"{W}/none.npy",
                                                          "--out", f"{W}/m.h5"], IO,
     ["none.npy"], {"mpi": 3, "lines": 1, "absent": ["MPI_ABORT"]}),
    ("train fails on missing inputs, leaves no folder",
     ["train", "behavior", "--out-dir", f"{W}/newtrain"], USAGE, ["train.behavior.checkpoint"],
     {}),
    ("meg rdm of a missing epochs file", ["meg", "rdm", "--files", f"[{W}/none.h5]",
                                          "--participants", "[a]", "--out", f"{W}/meg.h5"], IO,
     ["none.h5", "meg.epochs.files"], {}),
    ("Ctrl-C: checkpoint, exit 75", mantel + ["--n", "100000000", "--out", f"{W}/sig.h5"], 75,
     ["sig.h5.ckpt", "--resume"], {"signal": signal.SIGINT, "wait_for": f"{W}/sig.h5.ckpt",
                                   "creates": ["sig.h5.ckpt"]}),
    # passing rows: only the declared outputs appear
    ("Fortran-order NPY is read", ["permute", "mantel", "--model-rdm", f"{W}/model_f.npy",
                                   "--neural-rdm", f"{W}/neural.npy", "--n", "50", "--seed", "1",
                                   "--out", f"{W}/fortran.h5"], 0, [],
     {"creates": ["fortran.h5"]}),
    ("version prints clean text", ["version"], 0, [], {}),
    ("version --json parses", ["version", "--json"], 0, [], {}),
]
np.save(f"{W}/model_f.npy", np.asfortranarray(model))


def snapshot():
    out = {}
    for root, dirs, files in os.walk(W):
        for d in dirs:
            out[os.path.relpath(os.path.join(root, d), W) + "/"] = "dir"
        for f in files:
            p = os.path.join(root, f)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, W)] = hashlib.sha256(fh.read()).hexdigest()
    return out


failures = []
for name, args, code, needles, extra in CASES:
    before = snapshot()
    r = run(args, mpi=extra.get("mpi", 0), sig=extra.get("signal"), wait_for=extra.get("wait_for"))
    err = r.stderr.decode(errors="replace")
    out = r.stdout
    after = snapshot()
    problems = []
    if r.returncode != code:
        problems.append(f"exit {r.returncode}, expected {code}")
    for n in needles:
        if n not in err:
            problems.append(f"stderr lacks {n!r}")
    for n in extra.get("absent", []):
        if n in err:
            problems.append(f"stderr has {n!r}")
    if "lines" in extra:  # the lines that are not log lines ("[2026-...] [info] ...")
        lines = [x for x in err.splitlines() if x.strip() and not x.startswith("[")]
        if len(lines) != extra["lines"]:
            problems.append(f"{len(lines)} stderr lines, expected {extra['lines']}")
    creates = set(extra.get("creates", []))
    changed = sorted(k for k in set(before) | set(after)
                     if before.get(k) != after.get(k) and k not in creates)
    if changed:
        problems.append(f"files changed, added or removed: {changed[:6]}")
    for c in creates:
        if c not in after:
            problems.append(f"{c} was not written")
        else:
            os.remove(os.path.join(W, c))
    if name.startswith("version"):
        if b"\0" in out:
            problems.append("NUL byte on stdout")
        if "--json" in args:
            try:
                json.loads(out)
            except ValueError as e:
                problems.append(f"stdout is not JSON: {e}")
    status = "ok  " if not problems else "FAIL"
    print(f"{status} {name}: exit {r.returncode}" + ("" if not problems else
                                                     "\n       " + "; ".join(problems) +
                                                     "\n       stderr: " + err.strip()[:400]))
    if problems:
        failures.append(name)

print(f"{len(CASES) - len(failures)}/{len(CASES)} rows hold")
sys.exit(1 if failures else 0)
