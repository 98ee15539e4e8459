# Sourced by the benchmark scripts: the synthetic models they time.

# synth_vitb32 CLIPHBA OUT: a random-init CLIP with OpenAI ViT-B/32's shapes (224 px, patch 32,
# 12 x 768 vision, 12 x 512 text, E 512, vocab 49408) written to OUT.
synth_vitb32() {
  "$1" synth model --set synth.model.out="$2" \
    --set synth.model.vision_layers=12 --set synth.model.vision_width=768 \
    --set synth.model.vision_patch_size=32 --set synth.model.image_resolution=224 \
    --set synth.model.embed_dim=512 --set synth.model.text_layers=12 \
    --set synth.model.text_width=512 --set synth.model.vocab_size=49408 > /dev/null
}
