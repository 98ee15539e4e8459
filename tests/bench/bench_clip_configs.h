// The CLIP architectures the training benchmarks run: the shared tiny fixture model and ViT-B/32.
#pragma once

#include "model/clip.h"

namespace cliphba::model::bench {

// shared/fixtures/clip/model: 32 px, patch 8, width 64, 2 + 2 blocks, E 32, 4096 token rows.
inline ClipConfig TinyConfig() { return MakeClipConfig(32, 8, 64, 2, 32, 64, 2, 4096); }

// OpenAI ViT-B/32: 224 px, patch 32, width 768 x 12 blocks, E 512, text 512 x 12.
inline ClipConfig VitB32Config() { return MakeClipConfig(224, 32, 768, 12, 512, 512, 12, 49408); }

}  // namespace cliphba::model::bench
