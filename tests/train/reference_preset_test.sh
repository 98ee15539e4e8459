#!/bin/bash
# configs/meg_{group,individual}_reference.yaml end to end on the tiny fixture CLIP and a small
# synthetic stack (configs/meg_synth.yaml's world: 40 images, 3 participants, -20..90 ms at 10 ms):
#   1. the group preset and the individual preset each complete a full run (phase 1 then phase 2,
#      DoRA from the start: the phase-1 checkpoint already carries the adapters) with only the
#      data paths and the time axis overridden; `evaluate meg` reads the group model back;
#   2. bad input: the preset's own axis (-100..1300 ms) on this stack exits 4 naming the keys, and
#      a smoothing window that is not a multiple of the step exits 2; neither writes out_dir.
# Usage: reference_preset_test.sh CLIPHBA SOURCE_DIR SHARED_DIR SCRATCH_DIR
set -euo pipefail
CLIPHBA=$1
SRC=$2
SHARED="${CLIPHBA_SHARED_DIR:-$3}"  # the environment wins, as for the fixture tests
DIR=$4
PY=/usr/bin/python3
rm -rf "$DIR" && mkdir -p "$DIR"
cd "$SRC"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CLIPHBA" synth images --config configs/meg_synth.yaml --set synth.images.out_dir="$DIR/data" \
  > "$DIR/synth.log" 2>&1 || { cat "$DIR/synth.log"; fail "synth images"; }
"$PY" scripts/meg_synth_rdm.py "$DIR/data/targets.csv" "$DIR/data" >> "$DIR/synth.log" 2>&1 \
  || { cat "$DIR/synth.log"; fail "meg_synth_rdm.py"; }

data=(--set meg.rdm.path="$DIR/data/meg_rdm.npy" --set meg.rdm.names="$DIR/data/meg_names.txt"
  --set meg.rdm.time_start_ms=-20 --set meg.rdm.time_step_ms=10
  --set train.meg.checkpoint="$SHARED/fixtures/clip/model/tiny_clip_vit.safetensors"
  --set train.meg.vocab="$SHARED/data/clip/bpe_simple_vocab_16e6.txt.gz"
  --set train.meg.vocab_remap=tiny --set train.meg.prompts="$DIR/data/prompts.json"
  --set train.meg.image_dir="$DIR/data/images" --set train.meg.heldout_names="$DIR/data/heldout.txt"
  --set train.meg.behavior_checkpoint= --set train.meg.batch=8 --set train.meg.dora.rank=4
  --set train.meg.dora.alpha=0.5 --set train.meg.loader_threads=1 --set runtime.threads=1)
axis=(--set train.meg.train_start_ms=-20 --set train.meg.train_end_ms=90
  --set train.meg.train_step_ms=10)

# 1. Full runs.
"$CLIPHBA" train meg --config configs/meg_group_reference.yaml "${data[@]}" "${axis[@]}" \
  --set train.meg.participants=[] --set train.meg.epochs=12 --set train.meg.out_dir="$DIR/group" \
  --json > "$DIR/group.json" 2> "$DIR/group.log" || { cat "$DIR/group.log"; fail "group preset"; }
"$CLIPHBA" evaluate meg --config configs/meg_group_reference.yaml "${data[@]}" "${axis[@]}" \
  --set train.meg.participants=[] --set train.meg.out_dir="$DIR/group" \
  > "$DIR/eval.log" 2>&1 || { cat "$DIR/eval.log"; fail "evaluate group"; }
"$CLIPHBA" train meg --config configs/meg_individual_reference.yaml "${data[@]}" "${axis[@]}" \
  --set train.meg.participants=[1] --set train.meg.epochs=13 --set train.meg.out_dir="$DIR/ind" \
  --json > "$DIR/ind.json" 2> "$DIR/ind.log" || { cat "$DIR/ind.log"; fail "individual preset"; }
"$PY" - "$DIR" <<'PY'
import json, sys
d = sys.argv[1]
g, i = (json.load(open(f"{d}/{n}.json")) for n in ("group", "ind"))
for name, r, n_epochs in (("group", g, 12), ("individual", i, 13)):
    phases = r["epoch_phase"]
    assert r["epochs_done"] == n_epochs or r.get("early_stopped"), (name, r["epochs_done"])
    assert 1 in phases and 2 in phases, (name, phases)  # both phases ran
assert i["epoch_phase"][:10] == [1] * 10 and i["epoch_phase"][10] == 2, i["epoch_phase"]
meta = json.load(open(f"{d}/ind/best.json"))
assert meta["dora"]["applied"] is True, meta["dora"]  # DoRA from the start, in every checkpoint
print("reference presets: group", g["epochs_done"], "epochs, individual", i["epochs_done"],
      "epochs (10 in phase 1)")
PY
grep -q "phase 1 over after" "$DIR/group.log" || fail "group: no phase switch"
[ -f "$DIR/group/evaluation.h5" ] || fail "evaluate meg wrote no evaluation.h5"

# 2. Bad input.
set +e
"$CLIPHBA" train meg --config configs/meg_group_reference.yaml "${data[@]}" \
  --set train.meg.out_dir="$DIR/bad_axis" > /dev/null 2> "$DIR/bad_axis.log"
code=$?
"$CLIPHBA" train meg --config configs/meg_group_reference.yaml "${data[@]}" "${axis[@]}" \
  --set meg.rdm.smooth_ms=25 --set train.meg.out_dir="$DIR/bad_smooth" > /dev/null \
  2> "$DIR/bad_smooth.log"
code2=$?
set -e
[ "$code" = 4 ] || fail "preset axis on another stack: exit $code: $(cat "$DIR/bad_axis.log")"
grep -q "train_start_ms -100 ms.*outside the MEG time axis -20 ms .. 90 ms" "$DIR/bad_axis.log" \
  || fail "axis message: $(cat "$DIR/bad_axis.log")"
[ "$code2" = 2 ] || fail "smooth_ms 25 on a 10 ms axis: exit $code2: $(cat "$DIR/bad_smooth.log")"
grep -q "meg.rdm.smooth_ms = 25 ms is not a whole multiple of the time step 10 ms" \
  "$DIR/bad_smooth.log" || fail "smoothing message: $(cat "$DIR/bad_smooth.log")"
[ ! -e "$DIR/bad_axis" ] && [ ! -e "$DIR/bad_smooth" ] || fail "a refused run wrote out_dir"
echo "reference presets: bad input refused"
