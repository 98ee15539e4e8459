// One CLIP-HBA-MEG training step as cliphba runs it, on random weights and data, on any device:
// shared by cliphba_bench_meg (CPU timings) and tests/gpu/cliphba_gpu_check (the same step on a
// GPU against the CPU). Every random draw comes from the CPU generator (seed 1) before anything
// moves to `device`, so the weights and data are the same on every device.
//
// Model: model::Clip from a ClipConfig; MEG axis -100 .. 1300 ms at 5 ms (281 timepoints,
// THINGS-MEG); training times 0 .. 700 ms at `timepoints` steps; window +-10 ms; random curves and
// target RDMs; 66 text features computed ONCE here (the text tower is frozen: train/meg.h).
//   phase 1: only Wfr learns, on cached per-block CLS projections (L, B, E).
//   phase 2: DoRA (rank 32, alpha 16, direction only) on every vision block's out_proj: image
//            forward with autograd, head, loss, backward, AdamW on Wfr + DoRA.
#pragma once

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/optim/adamw.h>

#include <memory>
#include <vector>

#include "model/clip.h"
#include "model/dora.h"
#include "model/meg_head.h"
#include "model/precision.h"
#include "train/meg_loss.h"

namespace cliphba::model::bench {

struct MegStep {
  MegStep(const ClipConfig& cfg, int64_t batch, int64_t timepoints, int phase,
          const at::Device& device = at::kCPU)
      : clip((at::manual_seed(1), Clip(cfg))) {
    const int64_t t_full = 281, k = 66;
    ApplyDora(clip, phase == 2 ? cfg.vision_layers : 0, 0, 32, 16.0, false);
    clip->eval();
    clip->to(device);
    MegHeadOptions o;
    o.axis_start_ms = -100;
    o.axis_step_ms = 5;
    o.axis_size = t_full;
    o.train_start_ms = 0;
    o.train_end_ms = 700;
    o.train_step_ms = 700.0 / double(timepoints - 1);
    o.window_ms = 10;
    head = MegHead(o, cfg.vision_layers, at::rand({t_full}), at::rand({t_full}),
                   at::rand({t_full}));
    head->to(device);
    {
      at::NoGradGuard no_grad;
      at::Tensor ids = at::zeros({k, cfg.context_length}, at::kLong);
      ids.slice(1, 0, 12).copy_(at::randint(1, cfg.vocab_size - 1, {k, 12}));
      ids.select(1, 12).fill_(cfg.vocab_size - 1);
      at::Tensor text = clip->EncodeText(ids.to(device));  // once: the text tower is frozen
      text_norm = text / text.norm(2, {1}, true);
      scale = clip->logit_scale.exp().item<double>();
    }
    images = at::randn({batch, 3, cfg.image_resolution, cfg.image_resolution}).to(device);
    if (phase == 1) {
      at::NoGradGuard no_grad;
      cache = at::stack(clip->EncodeImage(images).block_cls_proj, 0);  // once
    }
    at::Tensor u = at::rand({head->timepoints(), batch, batch});
    target = ((u + u.transpose(1, 2)) / 2 * (1 - at::eye(batch))).to(device);
    trainable = {head->wfr};
    for (const auto& p : clip->parameters())
      if (p.requires_grad()) trainable.push_back(p);
    std::vector<torch::optim::OptimizerParamGroup> groups;
    groups.emplace_back(std::vector<at::Tensor>{head->wfr},
                        std::make_unique<torch::optim::AdamWOptions>(3e-3));
    if (trainable.size() > 1)
      groups.emplace_back(std::vector<at::Tensor>(trainable.begin() + 1, trainable.end()),
                          std::make_unique<torch::optim::AdamWOptions>(3e-5));
    opt = std::make_unique<torch::optim::AdamW>(groups, torch::optim::AdamWOptions(3e-3));
    loss.p_weight = 1;
    loss.m_weight = 0.1;
    loss.g_weight = 0.15;
  }

  // Step `step` (its noise from a CPU generator of `step`, as the trainer draws it); returns the
  // loss. bfloat16: the image tower under autocast; the head, Pearson RDMs and loss in float32.
  double Step(int64_t step, Precision precision = Precision::kFloat32) {
    at::Tensor feats = cache.defined()
                           ? cache
                           : at::stack(clip->EncodeImage(images, true, precision).block_cls_proj, 0);
    at::Tensor emb = head->Embeddings(feats, text_norm, scale, true,
                                      at::detail::createCPUGenerator(uint64_t(step)));
    train::MegLossTerms l = loss(train::PearsonRdm(emb), target);
    opt->zero_grad();
    l.total.backward();
    opt->step();
    return l.total.item<double>();
  }

  Clip clip;
  MegHead head{nullptr};
  at::Tensor text_norm, images, cache, target;
  double scale = 1;
  std::vector<at::Tensor> trainable;  // Wfr, then the DoRA parameters (the optimiser's order)
  std::unique_ptr<torch::optim::AdamW> opt;
  train::PearsonMSELongLoss loss;
};

}  // namespace cliphba::model::bench
