// The CLIP architectures the training benchmarks and the GPU check run: the shared tiny fixture
// model, ViT-B/32 and ViT-L/14.
#pragma once

#include "model/clip.h"

namespace cliphba::model::bench {

// shared/fixtures/clip/model: 32 px, patch 8, width 64, 2 + 2 blocks, E 32, 4096 token rows.
inline ClipConfig TinyConfig() { return MakeClipConfig(32, 8, 64, 2, 32, 64, 2, 4096); }

// OpenAI ViT-B/32: 224 px, patch 32, width 768 x 12 blocks, E 512, text 512 x 12.
inline ClipConfig VitB32Config() { return MakeClipConfig(224, 32, 768, 12, 512, 512, 12, 49408); }

// OpenAI ViT-L/14: 224 px, patch 14, width 1024 x 24 blocks, E 768, text 768 x 12.
inline ClipConfig VitL14Config() { return MakeClipConfig(224, 14, 1024, 24, 768, 768, 12, 49408); }

}  // namespace cliphba::model::bench
