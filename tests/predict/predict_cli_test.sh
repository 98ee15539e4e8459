#!/usr/bin/env bash
# End-to-end tests of `cliphba predict` and `cliphba convert` with real processes:
#   published: convert the reference-layout checkpoint of fixtures/clip/published, predict the
#              fixture images: equal to the reference's hba_scores (atol 1e-5, rtol 1e-4); the
#              file records the source's SHA-256; RDMs equal scipy's pdist (1e-6); --csv round-trips
#   behavior : a stage-1 model trained on `synth images` (tiny fixture CLIP): predict on its
#              held-out images equals `evaluate behavior`'s predictions exactly; plain CLIP equals
#              `encode`'s HBA logits exactly; files of 1, 2 and 3 ranks are h5diff-identical
#   meg      : the quickstart pipeline (mpirun -np 2): `predict meg --all` equals every model's
#              model_rdms_insample.h5 (the unit model's RDMs in the run) to float32 rounding;
#              1/2/3 ranks identical;
#              --noise-seed is reproducible and differs from the noiseless prediction
#   meghead  : the MEG head recomputed in numpy from a model folder's tensors and `encode`'s block
#              and text features: predict meg's embeddings equal it up to the 1e-5 jitter
#   bad      : an image that does not decode (named; --skip-bad-images lists it and continues), a
#              MEG folder given to `predict behavior`, prompts of another K, a .pth with unknown
#              keys (listed), images of another size, an existing --out, --out over an input:
#              exit codes per the README table, no output file; kill -9 leaves no final file
# usage: predict_cli_test.sh CASE CLIPHBA MPIEXEC SHARED_DIR SRC_DIR OUT_DIR
set -euo pipefail
CASE=$1 CLIPHBA=$2 MPIEXEC=$3 SHARED=$4 SRC=$5 OUT=$6
PY=/usr/bin/python3
FIX="$SHARED/fixtures/clip"
VOCAB="$SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz"
rm -rf "$OUT" && mkdir -p "$OUT"
fail() { echo "FAIL: $*" >&2; exit 1; }
mpi() { local np=$1; shift; "$MPIEXEC" -np "$np" --oversubscribe "$@"; }
same_h5() {  # same_h5 A B: every dataset under /predict identical (h5diff, no tolerance)
  h5diff "$1" "$2" /predict > "$OUT/h5diff.txt" 2>&1 || { cat "$OUT/h5diff.txt" >&2; fail "$1 and $2 differ"; }
}
expect_rc() {  # expect_rc CODE PATTERN LOG: the last command's exit code and message
  [ "$rc" -eq "$1" ] || { cat "$3" >&2; fail "exit $rc, expected $1"; }
  grep -q -- "$2" "$3" || { cat "$3" >&2; fail "message lacks '$2'"; }
}

# A stage-1 model on `synth images` with the tiny fixture CLIP (a few epochs are enough).
train_behavior() {
  "$CLIPHBA" synth images --set synth.images.out_dir="$OUT/data" --set synth.images.seed=5 > /dev/null
  cat > "$OUT/b.yaml" <<EOF
train:
  behavior:
    checkpoint: "$FIX/model/tiny_clip_vit.safetensors"
    vocab: "$VOCAB"
    vocab_remap: "tiny"
    prompts: "$OUT/data/prompts.json"
    targets_csv: "$OUT/data/targets.csv"
    image_dir: "$OUT/data/images"
    heldout_names: "$OUT/data/heldout.txt"
    out_dir: "$OUT/stage1"
    batch: 8
    epochs: 3
    patience: 100
    lr: 0.003
    dora:
      rank: 8
    loader_threads: 1
runtime:
  threads: 1
EOF
  "$CLIPHBA" train behavior --config "$OUT/b.yaml" > "$OUT/train.log" 2>&1 \
    || { cat "$OUT/train.log" >&2; fail "train behavior"; }
}

case "$CASE" in
published)
  "$CLIPHBA" convert --from reference-pth "$FIX/published/clip_hba_behavior_reference_layout.pth" \
    --out "$OUT/conv.safetensors" --json > "$OUT/convert.json"
  "$CLIPHBA" predict behavior --model "$OUT/conv.safetensors" --images-npy "$FIX/model/images.npy" \
    --prompts "$FIX/prompts66.json" --vocab "$VOCAB" --vocab-remap tiny \
    --out "$OUT/p.h5" --csv "$OUT/p.csv" > "$OUT/predict.log" 2>&1
  $PY - "$OUT" "$FIX" <<'EOF'
import csv, hashlib, json, sys
import h5py, numpy as np
from scipy.spatial.distance import pdist
out, fix = sys.argv[1], sys.argv[2]
ref = np.load(f"{fix}/published/hba_scores.npy")
with h5py.File(f"{out}/p.h5") as f:
    emb = f["/predict/embedding"][:]
    assert emb.shape == ref.shape and emb.dtype == np.float32, (emb.shape, emb.dtype)
    err = np.abs(emb - ref) - (1e-5 + 1e-4 * np.abs(ref))
    assert err.max() <= 0, f"not the reference's hba_scores: max |diff| {np.abs(emb - ref).max()}"
    print(f"published: max |predict - reference| {np.abs(emb - ref).max():.2e}")
    for metric in ("correlation", "cosine"):
        d = f[f"/predict/rdm/{metric}"][:]
        want = pdist(emb.astype(np.float64), metric)
        assert np.abs(d - want).max() < 1e-6, (metric, np.abs(d - want).max())
    assert f["/predict"].attrs["model_kind"] == "converted"
    labels = [x.decode() for x in f["/predict/labels"][:]]
    names = [x.decode() for x in f["/predict/image_names"][:]]
conv = json.load(open(f"{out}/convert.json"))
sha = hashlib.sha256(open(f"{fix}/published/clip_hba_behavior_reference_layout.pth", "rb").read()).hexdigest()
assert conv["source_sha256"] == sha and conv["dora_rank"] == 32 and conv["dora_vision_blocks"] == 2, conv
rows = list(csv.reader(open(f"{out}/p.csv")))
assert rows[0] == ["image_name"] + labels, rows[0][:3]
assert [r[0] for r in rows[1:]] == names
back = np.array([[float(v) for v in r[1:]] for r in rows[1:]], dtype=np.float32)
assert np.array_equal(back, emb), "the CSV does not round-trip"
print("published: ok")
EOF
  ;;

behavior)
  train_behavior
  "$CLIPHBA" evaluate behavior --config "$OUT/b.yaml" > /dev/null 2>&1
  sed "s|^|$OUT/data/images/|; s|$|.png|" "$OUT/data/heldout.txt" > "$OUT/held.txt"
  for np in 1 2 3; do
    mpi $np "$CLIPHBA" predict behavior --model "$OUT/stage1" --image-list "$OUT/held.txt" \
      --out "$OUT/b$np.h5" > "$OUT/b$np.log" 2>&1 || { cat "$OUT/b$np.log" >&2; fail "np $np"; }
  done
  same_h5 "$OUT/b1.h5" "$OUT/b2.h5"
  same_h5 "$OUT/b1.h5" "$OUT/b3.h5"
  # Plain CLIP (the base checkpoint) against `encode`.
  "$CLIPHBA" encode --checkpoint "$FIX/model/tiny_clip_vit.safetensors" --images "$OUT/data/images" \
    --prompts "$OUT/data/prompts.json" --vocab "$VOCAB" --vocab-remap tiny --out "$OUT/enc" > /dev/null 2>&1
  mpi 2 "$CLIPHBA" predict behavior --model "$FIX/model/tiny_clip_vit.safetensors" \
    --images "$OUT/data/images" --prompts "$OUT/data/prompts.json" --vocab "$VOCAB" \
    --vocab-remap tiny --out "$OUT/base.h5" > "$OUT/base.log" 2>&1 || { cat "$OUT/base.log" >&2; fail "base"; }
  $PY - "$OUT" <<'EOF'
import sys
import h5py, numpy as np
out = sys.argv[1]
with h5py.File(f"{out}/stage1/evaluation.h5") as f, h5py.File(f"{out}/b1.h5") as g:
    want_names = [x.decode() for x in f["/behavior/object_names"][:]]
    got_names = [x.decode() for x in g["/predict/image_names"][:]]
    assert [n.rsplit(".", 1)[0] for n in got_names] == [n.rsplit(".", 1)[0] for n in want_names]
    a, b = f["/behavior/predicted"][:], g["/predict/embedding"][:]
    assert np.array_equal(a, b), f"not evaluate's predictions: max |diff| {np.abs(a - b).max()}"
    assert g["/predict"].attrs["model_kind"] == "behavior"
    prompts = [x.decode() for x in g["/predict/labels"][:]]
    assert len(prompts) == a.shape[1]
with h5py.File(f"{out}/base.h5") as g:
    names = [x.decode() for x in g["/predict/image_names"][:]]
    logits = np.load(f"{out}/enc/hba_logits.npy")
    enc_names = open(f"{out}/enc/image_names.txt").read().split()
    assert names == enc_names
    assert np.array_equal(g["/predict/embedding"][:], logits), "plain CLIP != encode's HBA logits"
    assert g["/predict"].attrs["model_kind"] == "base"
print(f"behavior: {a.shape[0]} held-out images equal evaluate's predictions; plain CLIP equals encode")
EOF
  ;;

meg)
  # The quickstart's paths are relative to a checkout with ../shared beside it.
  mkdir -p "$OUT/proj" && ln -s "$SHARED" "$OUT/shared" && cd "$OUT/proj"
  ln -s "$SRC/configs" configs
  CFG=configs/quickstart.yaml
  "$CLIPHBA" synth model --config $CFG --force > /dev/null 2>&1
  "$CLIPHBA" synth cohort --config $CFG --force > /dev/null 2>&1
  mpi 2 "$CLIPHBA" run --config $CFG --set run.stages='["behavior","group","individual","predict","alignment"]' \
    > run.log 2>&1 || { cat run.log >&2; fail "run"; }
  RUN=results/quickstart/run
  $PY - "$RUN" results/quickstart/cohort/images > names.txt <<'EOF'
import os, sys
import h5py
run, images = sys.argv[1], sys.argv[2]
with h5py.File(f"{run}/group/model_rdms_insample.h5") as f:
    for n in f["model/names"][:]:
        print(os.path.join(images, n.decode()))
EOF
  for np in 1 2 3; do
    mpi $np "$CLIPHBA" predict meg --model $RUN --all --image-list names.txt --t-block 7 \
      --out m$np.h5 > m$np.log 2>&1 || { cat m$np.log >&2; fail "predict meg np $np"; }
  done
  same_h5 m1.h5 m2.h5
  same_h5 m1.h5 m3.h5
  "$CLIPHBA" predict meg --model $RUN/group --image-list names.txt --noise-seed 7 --out n1.h5 > /dev/null 2>&1
  mpi 2 "$CLIPHBA" predict meg --model $RUN/group --image-list names.txt --noise-seed 7 \
    --t-block 5 --out n2.h5 > /dev/null 2>&1
  same_h5 n1.h5 n2.h5
  $PY - "$RUN" <<'EOF'
import sys
import h5py, numpy as np
run = sys.argv[1]
with h5py.File("m1.h5") as g:
    models = ["group"] + [f"individual/{p}" for p in g["/predict/meg/individual"]]
    assert len(models) == 7, models
    worst = 0.0
    for m in models:
        with h5py.File(f"{run}/{m}/model_rdms_insample.h5") as f:
            want, n_objects = f["model/rdm"][:], len(f["model/names"])
        got = g[f"/predict/meg/{m}/rdm"][:]
        assert got.shape == want.shape, (m, got.shape, want.shape)
        # Equal up to float32 rounding: predict's file stores float32, and the GEMMs of the head
        # run on other timepoint-block and image-chunk shapes here than in the run, which can
        # change the last bit (measured: 6e-8 on the quickstart's 48 objects; 0 on 32).
        assert np.allclose(got, want.astype(np.float32), rtol=0, atol=1e-6), \
            (m, np.abs(got - want).max())
        worst = max(worst, float(np.abs(got - want).max()))
        emb = g[f"/predict/meg/{m}/embedding"][:]
        assert emb.shape[:2] == (want.shape[0], n_objects), (emb.shape, n_objects)
    quiet = g["/predict/meg/group/embedding"][:]
with h5py.File("n1.h5") as n:
    noisy = n["/predict/meg/group/embedding"][:]
    assert n["/predict/meg/group"].attrs["noise"] == 1
assert not np.allclose(noisy, quiet), "the noise seed changed nothing"
# The run's predict unit: every model on every image of the cohort (behaviour-only objects'
# included); the alignment's objects' sub-RDMs equal model_rdms_insample.h5 too (an image's
# prediction does not depend on the other images).
from scipy.spatial.distance import squareform
import json
cfg = json.load(open("results/quickstart/cohort/cohort.json"))["config"]
n_images = (cfg["n_objects"] + cfg["behavior_only_objects"]) * cfg["n_exemplars"]
with h5py.File(f"{run}/predictions.h5") as p:
    names = [x.decode() for x in p["/predict/image_names"][:]]
    assert len(names) == n_images and "behavior" in p["/predict"], (len(names), n_images,
                                                                    list(p["/predict"]))
    for m in models:
        with h5py.File(f"{run}/{m}/model_rdms_insample.h5") as f:
            want, sub = f["model/rdm"][:], [names.index(n.decode()) for n in f["model/names"][:]]
        full = p[f"/predict/meg/{m}/rdm"][:]
        got = np.stack([squareform(squareform(r, checks=False)[np.ix_(sub, sub)], checks=False)
                        for r in full])
        assert np.allclose(got, want.astype(np.float32), rtol=0, atol=1e-6), \
            (m, np.abs(got - want).max())
print(f"meg: 7 models equal their alignment RDMs (max |diff| {worst:.1e} <= 1e-6), in "
      "predict meg and in the run's predictions.h5; noise reproducible")
EOF
  ;;

bad)
  train_behavior
  IMG="$OUT/data/images"
  mkdir -p "$OUT/imgs"
  cp "$IMG"/*.png "$OUT/imgs/"
  printf 'not an image' > "$OUT/imgs/broken.png"
  rc=0; "$CLIPHBA" predict behavior --model "$OUT/stage1" --images "$OUT/imgs" --out "$OUT/x.h5" > /dev/null 2> "$OUT/e1.log" || rc=$?
  expect_rc 4 "broken.png: not a decodable image" "$OUT/e1.log"
  [ ! -e "$OUT/x.h5" ] || fail "output written after a bad image"
  "$CLIPHBA" predict behavior --model "$OUT/stage1" --images "$OUT/imgs" --skip-bad-images --json \
    --out "$OUT/x.h5" > "$OUT/skip.json" 2> "$OUT/skip.log"
  grep -q '"skipped":\[".*broken.png' "$OUT/skip.json" || { cat "$OUT/skip.json"; fail "skipped not listed"; }
  $PY -c "import h5py,sys; a=h5py.File(sys.argv[1])['/predict'].attrs['skipped_images']; assert 'broken.png' in a, a" "$OUT/x.h5"
  rc=0; "$CLIPHBA" predict behavior --model "$OUT/stage1" --images "$IMG" --out "$OUT/x.h5" > /dev/null 2> "$OUT/e2.log" || rc=$?
  expect_rc 2 "exists: use --force" "$OUT/e2.log"
  rc=0; "$CLIPHBA" predict behavior --model "$OUT/stage1" --images-npy "$FIX/model/images.npy" --out "$FIX/model/images.npy" > /dev/null 2> "$OUT/e3.log" || rc=$?
  expect_rc 2 "is the input" "$OUT/e3.log"
  $PY -c "import numpy as np; np.save('$OUT/big.npy', np.zeros((2, 3, 64, 64), np.float32))"
  rc=0; "$CLIPHBA" predict behavior --model "$OUT/stage1" --images-npy "$OUT/big.npy" --out "$OUT/y.h5" > /dev/null 2> "$OUT/e4.log" || rc=$?
  expect_rc 4 "expected a normalised float32 (N, 3, 32, 32)" "$OUT/e4.log"
  $PY -c "import json; json.dump(['a', 'b', 'c'], open('$OUT/p3.json', 'w'))"
  rc=0; "$CLIPHBA" predict behavior --model "$OUT/stage1" --images "$IMG" --prompts "$OUT/p3.json" --out "$OUT/y.h5" > /dev/null 2> "$OUT/e5.log" || rc=$?
  expect_rc 4 "3 prompts, but .* was trained with 66" "$OUT/e5.log"
  mkdir -p "$OUT/megdir" && echo '{"format": "cliphba MEG checkpoint"}' > "$OUT/megdir/best.json"
  rc=0; "$CLIPHBA" predict behavior --model "$OUT/megdir" --images "$IMG" --out "$OUT/y.h5" > /dev/null 2> "$OUT/e6.log" || rc=$?
  expect_rc 2 "is a MEG model .*use \`cliphba predict meg" "$OUT/e6.log"
  rc=0; "$CLIPHBA" predict meg --model "$OUT/stage1" --images "$IMG" --out "$OUT/y.h5" > /dev/null 2> "$OUT/e7.log" || rc=$?
  expect_rc 2 "is not a MEG model" "$OUT/e7.log"
  # A PNG whose header decodes but whose data are cut off, owned by rank 1 of 2: every rank
  # stops with the error (exit 4), nobody waits in a collective, no output file.
  mkdir -p "$OUT/cut"
  cp "$IMG"/*.png "$OUT/cut/"
  last=$(ls "$OUT/cut" | sort | tail -1)
  head -c 120 "$IMG/$last" > "$OUT/cut/$last"
  rc=0; timeout 120 "$MPIEXEC" -np 2 --oversubscribe "$CLIPHBA" predict behavior --model "$OUT/stage1" \
    --images "$OUT/cut" --batch 4 --out "$OUT/cut.h5" > /dev/null 2> "$OUT/e9.log" || rc=$?
  [ "$rc" -ne 124 ] || fail "a decoding error on one rank hung the others"
  grep -q "$last" "$OUT/e9.log" || { cat "$OUT/e9.log" >&2; fail "the cut image is not named"; }
  [ "$rc" -ne 0 ] && [ ! -e "$OUT/cut.h5" ] || fail "exit $rc, or an output file after a decoding error"
  # A reference .pth with two keys renamed in its pickle (same length: the zip stays valid).
  $PY - "$FIX/published/clip_hba_behavior_reference_layout.pth" "$OUT/odd.pth" <<'EOF'
import sys, zipfile
src, dst = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_STORED) as w:
    for info in z.infolist():
        data = z.read(info.filename)
        if info.filename.endswith("data.pkl"):
            data = data.replace(b"module.clip_model.logit_scale", b"module.head_xxxxx.logit_scale")
            data = data.replace(b"module.clip_model.text_projection", b"module.head_xxxxx.text_projection")
        w.writestr(info, data)
EOF
  rc=0; "$CLIPHBA" convert --from reference-pth "$OUT/odd.pth" --out "$OUT/odd.safetensors" > /dev/null 2> "$OUT/e8.log" || rc=$?
  expect_rc 4 "head_xxxxx.logit_scale" "$OUT/e8.log"
  grep -q "head_xxxxx.text_projection" "$OUT/e8.log" || fail "second unknown key not listed"
  [ ! -e "$OUT/odd.safetensors" ] || fail "convert wrote a file for a bad input"
  # kill -9 during a prediction: no file under the final name, ever.
  $PY -c "import numpy as np; np.save('$OUT/many.npy', np.random.default_rng(0).standard_normal((6000, 3, 32, 32)).astype(np.float32))"
  "$CLIPHBA" predict behavior --model "$OUT/stage1" --images-npy "$OUT/many.npy" --out "$OUT/k.h5" > /dev/null 2>&1 &
  pid=$!
  for _ in $(seq 1 3000); do [ -e "$OUT/k.h5.partial" ] && break; kill -0 $pid 2> /dev/null || break; sleep 0.01; done
  [ -e "$OUT/k.h5.partial" ] || fail "no partial file seen before the process ended (too fast to test)"
  kill -9 $pid; wait $pid 2> /dev/null || true
  [ ! -e "$OUT/k.h5" ] || fail "a killed predict left $OUT/k.h5"
  echo "bad: all refused with the documented codes; kill -9 left only k.h5.partial"
  ;;
meghead)
  # The MEG head recomputed in numpy from a model folder's tensors and `encode`'s block features
  # and text features of the same base CLIP: window means of Wfr, visual_scaler and beta, the
  # per-row min-max and normalisation, the logits and beta; predict meg's embeddings must equal it
  # up to the 1e-5 jitter, and its RDMs must be scipy's pdist of its embeddings.
  "$CLIPHBA" synth images --set synth.images.out_dir="$OUT/data" --set synth.images.n_images=12 \
    --set synth.images.n_heldout=0 --set synth.images.seed=9 > /dev/null
  $PY "$SRC/scripts/write_meg_folder.py" "$OUT/meg" --base "$FIX/model/tiny_clip_vit.safetensors" \
    --prompts "$OUT/data/prompts.json" --vocab "$VOCAB" --vocab-remap tiny --timepoints 12 \
    --blocks 2 --start-ms -20 --step-ms 10 --seed 3 --batch 5
  "$CLIPHBA" encode --checkpoint "$FIX/model/tiny_clip_vit.safetensors" --images "$OUT/data/images" \
    --prompts "$OUT/data/prompts.json" --vocab "$VOCAB" --vocab-remap tiny --out "$OUT/enc" > /dev/null 2>&1
  mpi 2 "$CLIPHBA" predict meg --model "$OUT/meg" --images "$OUT/data/images" --out "$OUT/m.h5" \
    > "$OUT/m.log" 2>&1 || { cat "$OUT/m.log" >&2; fail "predict meg"; }
  $PY - "$OUT" "$FIX" <<'EOF2'
import json, struct, sys
import h5py, numpy as np
from scipy.spatial.distance import pdist
out, fix = sys.argv[1:3]
def safetensors(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    head = json.loads(raw[8:8 + n])
    get = lambda k: np.frombuffer(raw[8 + n + head[k]["data_offsets"][0]:8 + n + head[k]["data_offsets"][1]],
                                  "<f4").reshape(head[k]["shape"]).astype(np.float64)
    return get
m, base = safetensors(f"{out}/meg/best.safetensors"), safetensors(f"{fix}/model/tiny_clip_vit.safetensors")
wfr, beta, vs = m("wfr"), m("beta"), m("visual_scaler")
scale = np.exp(base("logit_scale"))
blocks = np.load(f"{out}/enc/block_cls_proj.npy").astype(np.float64)    # (L, N, E)
text = np.load(f"{out}/enc/text_features.npy").astype(np.float64)       # (K, E)
text /= np.linalg.norm(text, axis=1, keepdims=True)
names = open(f"{out}/enc/image_names.txt").read().split()
T, w = wfr.shape[0], 1                                                   # window 10 ms / 10 ms
want = []
for i in range(T):
    rows = slice(max(0, i - w), min(i + w + 1, T))
    mix = wfr[rows].mean(0)
    mm = (mix - mix.min()) / (mix.max() - mix.min() + 1e-10)
    wts = np.maximum(mm / (mm.sum() + 1e-10), 0) * vs[rows].mean()
    h = np.tensordot(wts, blocks, axes=(0, 0))                           # (N, E)
    raw = np.maximum(scale * h @ text.T, 0)
    want.append(np.maximum(beta[rows].mean() * raw, 0) + 1e-6)           # jitter left out
want = np.stack(want)
with h5py.File(f"{out}/m.h5") as f:
    assert [x.decode() for x in f["/predict/image_names"][:]] == names
    emb = f["/predict/meg/group/embedding"][:].astype(np.float64)
    rdm = f["/predict/meg/group/rdm"][:]
    assert np.allclose(f["/predict/meg/times_ms"][:], -20 + 10 * np.arange(T))
jit = emb - want
assert jit.shape == want.shape, (jit.shape, want.shape)
err = np.abs(jit - np.clip(jit, 0, 1e-5)).max() / np.abs(want).max()
assert err < 2e-6, f"predict meg's head differs from numpy's: {err:.2e} of the scale"
assert jit.min() > -1e-6 * np.abs(want).max() and jit.max() < 1e-5 + 1e-6 * np.abs(want).max()
for t in range(T):
    assert np.abs(rdm[t] - pdist(emb[t], "correlation")).max() < 1e-6, t
print(f"meghead: embeddings equal the numpy head up to the jitter ({err:.1e} of scale); RDMs = pdist")
EOF2
  ;;
*)
  fail "unknown case $CASE"
  ;;
esac
