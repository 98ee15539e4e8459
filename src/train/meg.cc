// CLIP-HBA-MEG training (stages 2 and 3); see meg.h for the contract and the files written.
// This file holds TrainMeg and its phase logic (batch loss, validation, rank agreement, phase 2
// set-up); the data and model are built in meg_data.cc, checkpoints and resume state are in
// meg_checkpoint.cc, prediction and evaluation in meg_eval.cc (shared declarations:
// meg_internal.h).
#include "train/meg.h"

#include <fmt/format.h>
#include <torch/utils.h>  // torch::manual_seed

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/signals.h"
#include "data/behavior_dataset.h"
#include "data/image.h"
#include "model/checkpoint.h"
#include "model/dora.h"
#include "model/meg_head.h"
#include "parallel/grad_sync.h"
#include "train/common.h"
#include "train/meg_internal.h"
#include "train/meg_loss.h"

namespace cliphba::train {

namespace meg_detail {

Named Trainable(Stage& s) {
  Named out;  // the head's trainable parameters (Wfr), then the DoRA tensors
  for (const auto& p : s.head->named_parameters())
    if (p.value().requires_grad()) out.emplace_back(p.key(), p.value());
  out.insert(out.end(), s.dora.begin(), s.dora.end());
  return out;
}

namespace {

std::vector<double> LearningRates(const Stage& s, const TrainMegOptions& o, int64_t phase) {
  std::vector<double> lrs{phase == 1 ? o.lr_wfr_1 : o.lr_wfr_2};
  lrs.resize(1 + s.dora.size(), o.lr_dora);
  return lrs;
}

// Target (T, B, B) of objects `items` (indices into names).
at::Tensor TargetOf(const Stage& s, const std::vector<int64_t>& items) {
  std::vector<int64_t> cols;
  for (int64_t i : items) cols.push_back(s.d.pos[i]);
  at::Tensor idx = at::tensor(cols, at::kLong);
  return s.d.target.index_select(1, idx).index_select(2, idx);
}

MegLossTerms BatchLoss(Stage& s, const at::Tensor& block_cls, const std::vector<int64_t>& items,
                       bool noise, at::Generator gen) {
  at::Tensor emb = s.head->Embeddings(block_cls, s.m.text_norm, s.m.scale_exp, noise, gen);
  return s.loss(PearsonRdm(emb), TargetOf(s, items));
}

// Validation terms (mean over the validation batches; noise only with train.meg.noise_eval, from
// the seeded evaluation streams, so every epoch sees the same draws). Collective in phase 2 (the
// validation images are re-encoded, sharded over ranks).
Terms Validate(Stage& s, const TrainMegOptions& o, int64_t phase, const parallel::Comm& comm) {
  at::NoGradGuard no_grad;
  const auto& val = s.d.split.val;
  at::Tensor feats;  // (L, n_val, E)
  if (phase == 1) {
    std::vector<int64_t> cols;
    for (int64_t i : val) cols.push_back(s.d.pos[i]);
    feats = s.cache.index_select(1, at::tensor(cols, at::kLong));
  } else {
    std::vector<std::string> paths;
    for (int64_t i : val) paths.push_back(s.d.paths[i]);
    feats = EncodeAll(s.m.clip, paths, s.m.image_options, o.batch, int(o.loader_threads), comm);
  }
  Terms t;
  const auto batches = MakeBatches(int64_t(val.size()), o.batch, "validation");
  for (size_t k = 0; k < batches.size(); ++k) {
    const auto [b0, bn] = batches[k];
    std::vector<int64_t> items(val.begin() + b0, val.begin() + b0 + bn);
    MegLossTerms l = BatchLoss(s, feats.narrow(1, b0, bn), items, o.noise && o.noise_eval,
                               MakeGenerator(uint64_t(o.seed), kEvalStream + k));
    t.total += l.total.item<double>();
    t.mse += l.mse.item<double>();
    t.p += l.pearson.item<double>();
    t.g += l.generalization.item<double>();
  }
  const double n = double(batches.size());
  t.total /= n;
  t.mse /= n;
  t.p /= n;
  t.g /= n;
  return t;
}

// Collective: rank 0's values of `t` (contiguous CPU float32/float64) on every rank, in place.
// Collective: rank 0's values of t on every rank (t: a contiguous CPU tensor, e.g. Wfr).
void BroadcastFromRoot(at::Tensor& t, const parallel::Comm& comm) {
  if (comm.size() == 1) return;
  at::NoGradGuard no_grad;
  at::Tensor buf = t.detach().contiguous().clone();
  comm.Broadcast(buf);
  t.copy_(buf);
}

// Collective: rank 0's validation terms on every rank, so that every rank takes the same
// checkpoint, patience and phase decisions (a rank deciding otherwise would leave the others
// waiting in a collective for ever).
void AgreeOnTerms(Terms* t, const parallel::Comm& comm) {
  at::Tensor v = at::tensor({t->total, t->mse, t->p, t->g}, at::kDouble);
  BroadcastFromRoot(v, comm);
  auto a = v.accessor<double, 1>();
  *t = Terms{a[0], a[1], a[2], a[3]};
}

// Collective: throws (an internal error, exit 1) if the ranks' trainable tensors differ. In phase 2
// the ranks hold replicas (equal all-reduced gradients, elementwise AdamW steps), so a difference
// is a bug that would otherwise give a rank-dependent model; a cheap fingerprint (sum and sum of
// squares of every tensor, float64) is compared once per epoch.
void CheckReplicasAgree(const Named& params, const parallel::Comm& comm, int64_t epoch) {
  if (comm.size() == 1) return;
  std::vector<double> f;
  for (const auto& p : params) {
    at::Tensor d = p.second.detach().to(at::kDouble);
    f.push_back(d.sum().item<double>());
    f.push_back(d.pow(2).sum().item<double>());
  }
  at::Tensor hi = at::tensor(f, at::kDouble), lo = -hi.clone();
  comm.AllreduceMax(hi);
  comm.AllreduceMax(lo);
  // max - min over ranks; non-finite fingerprints (a diverged loss) are not this check's business.
  const at::Tensor spread = (hi + lo).abs().masked_select(at::isfinite(hi) & at::isfinite(lo));
  if (spread.numel() > 0 && spread.max().item<double>() > 0)
    throw Error(ExitCode::kInternal,
                fmt::format("MEG training: the ranks' model replicas differ after epoch {} "
                            "(largest fingerprint spread {:.3g}); this is a bug, please report it",
                            epoch, spread.max().item<double>()));
}

}  // namespace

// Collective. Phase 2 set-up: Wfr of the best phase-1 epoch (or its initial value), then rank 0's
// Wfr on every rank; DoRA on the vision blocks (unless dora_from_start applied it already). The
// best Wfr comes from memory; only a resumed run reads it from best.safetensors (written by rank 0
// in an earlier process: reading it during a run would race with rank 0's write of the last
// phase-1 checkpoint).
void EnterPhase2(Stage& s, const TrainMegOptions& o, const Progress& pr,
                 const parallel::Comm& comm) {
  at::NoGradGuard no_grad;
  const std::string best = o.out_dir + "/best.safetensors";
  if (pr.best_epoch > 0 && s.best_wfr.defined()) {
    s.head->wfr.copy_(s.best_wfr);
  } else if (pr.best_epoch > 0) {
    model::StateDict sd = model::LoadSafetensors(best);
    const at::Tensor* w = sd.Find("wfr");
    if (w == nullptr || w->sizes() != s.head->wfr.sizes())
      throw DataError(best + ": no Wfr of shape (" + std::to_string(s.head->wfr.size(0)) + ", " +
                      std::to_string(s.head->wfr.size(1)) + ")");
    s.head->wfr.copy_(*w);
  } else {
    s.head->ResetWfr();  // phase 1 saved nothing: phase 2 starts from Wfr's configured start
  }
  BroadcastFromRoot(s.head->wfr, comm);
  s.best_wfr = at::Tensor();
  // dora_from_start: the adapters BuildStage applied (fixed in phase 1) start training here.
  if (!o.dora_from_start) ApplyVisionDora(s, o);
  s.dora.clear();
  for (const auto& item : s.m.clip->named_parameters())
    if (item.value().requires_grad()) s.dora.emplace_back(item.key(), item.value());
  s.cache = at::Tensor();  // phase 2 re-encodes the images
}

}  // namespace meg_detail

namespace fs = std::filesystem;
using config::TrainMegOptions;

namespace {

using detail::AdamW;
using detail::AdamWStep;
using meg_detail::AgreeOnTerms;
using meg_detail::BatchLoss;
using meg_detail::BlockFeatures;
using meg_detail::BroadcastFromRoot;
using meg_detail::BuildStage;
using meg_detail::CheckReplicasAgree;
using meg_detail::EncodeAll;
using meg_detail::EnterPhase2;
using meg_detail::LearningRates;
using meg_detail::LoadState;
using meg_detail::MakeBatches;
using meg_detail::MakeGenerator;
using meg_detail::Named;
using meg_detail::Progress;
using meg_detail::SaveBest;
using meg_detail::SaveState;
using meg_detail::Stage;
using meg_detail::Terms;
using meg_detail::Trainable;
using meg_detail::Validate;

// One epoch of the current phase, top to bottom: {features, loss, backward, all-reduce, step,
// log, checkpoint}. Phase 1 takes the cached block features and trains Wfr (redundantly on every
// rank, rank 0's copy kept); phase 2 encodes each rank's shard of the batch with autograd and
// all-reduces the gradients. Sets res.stopped on a termination request or RunControl's limit.
struct Trainer {
  Stage& s;
  const TrainMegOptions& o;
  const RunInfo& info;
  const parallel::Comm& comm;
  const RunControl& control;
  parallel::AllreduceBackend& backend;
  int64_t bucket_bytes;
  const std::vector<std::pair<int64_t, int64_t>>& batches;
  AdamW& adam;
  Progress& pr;
  MegTrainResult& res;
  int64_t epochs_this_run = 0;

  bool Running() const { return !res.stopped && pr.epoch < o.epochs; }
  void Epoch();
};

void Trainer::Epoch() {
  const auto& train = s.d.split.train;
  const Named params = Trainable(s);
  std::vector<at::Tensor> tensors;
  for (const auto& p : params) tensors.push_back(p.second);
  const std::vector<double> lrs = LearningRates(s, o, pr.phase);
  // The objects' order and the batch sequence of this epoch. fixed_batches (the reference):
  // epoch 0's order fixes the batch compositions, each epoch permutes only their sequence.
  const std::vector<int64_t> order =
      data::EpochOrder(int64_t(train.size()), uint64_t(o.seed), o.fixed_batches ? 0 : pr.epoch);
  std::vector<size_t> seq(batches.size());
  for (size_t b = 0; b < seq.size(); ++b) seq[b] = b;
  if (o.fixed_batches) {
    const std::vector<int64_t> perm = data::EpochOrder(
        int64_t(batches.size()), uint64_t(o.seed) ^ 0x6261746368ULL /* "batch" */, pr.epoch);
    for (size_t b = 0; b < seq.size(); ++b) seq[b] = size_t(perm[b]);
  }
  // Phase 2: this rank's images of every batch, in order.
  std::vector<Range> mine(batches.size());
  std::unique_ptr<data::ImageLoader> loader;
  if (pr.phase == 2) {
    std::vector<std::string> paths;
    for (size_t b = 0; b < batches.size(); ++b) {
      mine[b] = ShardRange(batches[seq[b]].second, comm.size(), comm.rank());
      for (int64_t j = mine[b].begin; j < mine[b].end; ++j)
        paths.push_back(s.d.paths[train[order[batches[seq[b]].first + j]]]);
    }
    loader = std::make_unique<data::ImageLoader>(paths, s.m.image_options, int(o.loader_threads));
  }
  int64_t consumed = 0;
  double loss_sum = 0;
  auto t_progress = std::chrono::steady_clock::now();
  for (size_t b = 0; b < batches.size(); ++b) {
    const auto [b0, bn] = batches[seq[b]];
    std::vector<int64_t> items;
    for (int64_t j = b0; j < b0 + bn; ++j) items.push_back(train[order[j]]);
    at::Generator gen = MakeGenerator(uint64_t(o.seed), uint64_t(pr.steps));
    at::Tensor feats;  // (L, B, E)
    if (pr.phase == 1) {
      std::vector<int64_t> cols;
      for (int64_t i : items) cols.push_back(s.d.pos[i]);
      feats = s.cache.index_select(1, at::tensor(cols, at::kLong));
    } else {
      const Range r = mine[b];
      at::Tensor own;  // (L, b, E) with autograd
      at::Tensor all = at::zeros({bn, s.m.cfg.vision_layers, s.m.cfg.embed_dim}, at::kFloat);
      if (r.size() > 0) {
        std::vector<int64_t> idx;
        for (int64_t j = 0; j < r.size(); ++j) idx.push_back(consumed++);
        own = BlockFeatures(s.m.clip, loader->Batch(idx), s.m.precision);
        all.slice(0, r.begin, r.end).copy_(own.detach().permute({1, 0, 2}));
      }
      std::vector<int64_t> counts;
      for (int k = 0; k < comm.size(); ++k)
        counts.push_back(ShardRange(bn, comm.size(), k).size());
      comm.AllgatherRows(all, counts);
      at::Tensor full = all.permute({1, 0, 2});  // constants, (L, B, E)
      feats = r.size() == 0
                  ? full
                  : at::cat({full.slice(1, 0, r.begin), own, full.slice(1, r.end, bn)}, 1);
    }
    MegLossTerms l = BatchLoss(s, feats, items, o.noise, gen);
    l.total.backward();
    loss_sum += l.total.item<double>();
    if (pr.phase == 2) {
      // Wfr's gradient is already the full-batch one on every rank: count it once.
      if (!comm.is_root() && s.head->wfr.grad().defined()) s.head->wfr.mutable_grad().zero_();
      parallel::AllreduceGradients(tensors, backend, bucket_bytes);
    }
    AdamWStep(params, lrs, &adam, o.weight_decay);
    ++pr.steps;
    for (auto& p : tensors) p.mutable_grad() = at::Tensor();
    if (comm.AnyTrue(TerminationRequested())) {
      LOG_WARN("termination requested: stopping; resume from the state after epoch {}", pr.epoch);
      res.stopped = true;
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (comm.is_root() &&
        std::chrono::duration<double>(now - t_progress).count() >= o.progress_seconds) {
      t_progress = now;  // train.meg.progress_seconds
      LOG_INFO("epoch {} (phase {}) batch {}/{}: loss {:.6f}", pr.epoch + 1, pr.phase, b + 1,
               batches.size(), loss_sum / double(b + 1));
    }
  }
  if (res.stopped) return;
  // Phase 1 trains Wfr redundantly on every rank (ranks on nodes with other thread counts may
  // round differently): rank 0's Wfr is the model. Phase 2's replicas must agree exactly.
  if (pr.phase == 1)
    BroadcastFromRoot(s.head->wfr, comm);
  else
    CheckReplicasAgree(params, comm, pr.epoch + 1);
  Terms val = Validate(s, o, pr.phase, comm);
  AgreeOnTerms(&val, comm);
  const double train_loss = loss_sum / double(batches.size());
  const bool improved = val.total < pr.best_total && val.p < pr.best_p;
  if (improved) {
    if (pr.phase == 1) s.best_wfr = s.head->wfr.detach().clone();
    if (comm.is_root()) SaveBest(s, o, info, pr, val, pr.epoch + 1);
    pr.best_total = val.total;
    pr.best_p = val.p;
    pr.best_epoch = pr.epoch + 1;
    pr.bad_epochs = 0;
  } else {
    ++pr.bad_epochs;
  }
  ++pr.epoch;
  if (pr.phase == 1) ++pr.phase1_epochs;
  ++epochs_this_run;
  pr.train_loss.push_back(train_loss);
  pr.val_loss.push_back(val.total);
  pr.val_p.push_back(val.p);
  pr.epoch_phase.push_back(pr.phase);
  if (comm.is_root()) SaveState(s, adam, pr, o, info);
  LOG_INFO(
      "epoch {}/{} (phase {}): train loss {:.6f}, validation loss {:.6f} (Pearson {:.6f}, MSE "
      "{:.6f}, generalisation {:.6f}){}",
      pr.epoch, o.epochs, pr.phase, train_loss, val.total, val.p, val.mse, val.g,
      improved ? " (best, saved)" : "");
  if (control.stop_after_epochs > 0 && epochs_this_run >= control.stop_after_epochs &&
      pr.epoch < o.epochs)
    res.stopped = true;
}

}  // namespace

MegTrainResult TrainMeg(const TrainMegOptions& o, const RunInfo& info, bool resume,
                        const parallel::Comm& comm, const RunControl& control) {
  // Everything is validated and loaded before out_dir is touched.
  Stage s = BuildStage(o);
  std::error_code ec;
  fs::create_directories(o.out_dir, ec);
  if (ec) throw IoError(o.out_dir + ": cannot create train.meg.out_dir: " + ec.message());
  const auto& train = s.d.split.train;
  const int64_t n_train = int64_t(train.size());
  MegTrainResult res;
  res.timepoints = s.head->timepoints();
  res.n_train = n_train;
  res.n_val = int64_t(s.d.split.val.size());
  res.n_heldout = int64_t(s.d.split.heldout.size());
  res.n_trainable_phase1 = s.head->wfr.numel();
  res.n_trainable_phase2 =
      s.head->wfr.numel() + DoraTrainableCount(s.m.cfg.vision_width, s.m.cfg.transformer_width,
                                               s.dora_blocks, 0, o.dora_rank,
                                               o.dora_train_magnitude);
  LOG_INFO(
      "MEG {} model: {} objects ({} train, {} validation, {} held out), {} training timepoints "
      "({}..{} ms), {} participant(s), {} rank(s), global batch {}",
      config::Name(o.mode), s.d.names.size(), n_train, res.n_val, res.n_heldout, res.timepoints,
      o.train_start_ms, o.train_end_ms, s.d.ps.size(), comm.size(), o.batch);
  std::unique_ptr<parallel::AllreduceBackend> backend =
      parallel::MakeBackend(detail::BackendKindOf(o.dist_backend), comm, at::Device(at::kCPU));
  const int64_t bucket_bytes = int64_t(o.dist_bucket_mb * double(1 << 20));

  AdamW adam;
  Progress pr;
  const bool resumed = resume && LoadState(s, &adam, &pr, o, info, comm);
  if (pr.phase == 1) {
    std::vector<std::string> paths;
    for (int64_t i : s.d.used) paths.push_back(s.d.paths[i]);
    s.cache = EncodeAll(s.m.clip, paths, s.m.image_options, o.batch, int(o.loader_threads), comm);
  }
  if (resumed) {
    LOG_INFO("resumed after epoch {} (phase {}) from {}/last_state.json", pr.epoch, pr.phase,
             o.out_dir);
  } else {
    // Initial-loss normalisation: the initial model on the validation set, noise off.
    const Terms t0 = Validate(s, o, 1, comm);
    if (!(t0.p > 0) || !(t0.mse > 0) || !(t0.g > 0))
      throw DataError(fmt::format(
          "train.meg: the initial validation losses (Pearson {}, MSE {}, generalisation {}) "
          "cannot normalise the loss (each must be > 0)",
          t0.p, t0.mse, t0.g));
    pr.p0 = t0.p;
    pr.m0 = t0.mse;
    pr.g0 = t0.g;
    pr.best_total = o.p_weight + o.m_weight + o.g_weight;
    pr.best_p = t0.p;
    // The initial model is the checkpoint until an epoch improves both losses (the reference
    // leaves none, and its phase 2 then fails to load one): a participant whose training never
    // improves still gets a model (best_epoch 0, reported) instead of failing a cohort run.
    if (comm.is_root()) SaveBest(s, o, info, pr, t0, 0);
  }
  s.loss.p0 = pr.p0;
  s.loss.m0 = pr.m0;
  s.loss.g0 = pr.g0;
  LOG_INFO("initial validation losses: Pearson {:.6f}, MSE {:.6f}, generalisation {:.6f}", pr.p0,
           pr.m0, pr.g0);

  const auto batches = MakeBatches(n_train, o.batch, "training");
  Trainer t{s, o, info, comm, control, *backend, bucket_bytes, batches, adam, pr, res};
  // Phase 1: Wfr only, on the cached block features, until its patience or epoch count runs out.
  if (pr.phase == 1) {
    auto phase1_over = [&] {
      return pr.bad_epochs >= o.patience_phase1 ||
             (o.phase1_epochs > 0 && pr.phase1_epochs >= o.phase1_epochs);
    };
    while (t.Running() && !phase1_over()) t.Epoch();
    if (t.Running()) {
      LOG_INFO("phase 1 over after {} epochs (best epoch {}): DoRA on the last {} vision blocks",
               pr.phase1_epochs, pr.best_epoch, s.dora_blocks);
      pr.phase = 2;
      pr.bad_epochs = 0;
      EnterPhase2(s, o, pr, comm);
      adam = AdamW();
      adam.step = 0;
    }
  }
  // Phase 2: Wfr and the vision DoRA on re-encoded images, until its patience runs out.
  while (t.Running() && pr.bad_epochs < o.patience_phase2) t.Epoch();
  if (!res.stopped && pr.phase == 2 && pr.bad_epochs >= o.patience_phase2) res.early_stopped = true;
  comm.Barrier();
  res.train_loss = pr.train_loss;
  res.val_loss = pr.val_loss;
  res.val_pearson = pr.val_p;
  res.epoch_phase = pr.epoch_phase;
  res.p0 = pr.p0;
  res.m0 = pr.m0;
  res.g0 = pr.g0;
  res.epochs_done = pr.epoch;
  res.phase1_epochs = pr.phase1_epochs;
  res.best_epoch = pr.best_epoch;
  res.best_val_loss = pr.best_total;
  res.best_val_pearson = pr.best_p;
  for (const auto& p : Trainable(s)) {
    at::Tensor f = p.second.detach().to(at::kFloat).contiguous().view(-1);
    res.trainable.insert(res.trainable.end(), f.data_ptr<float>(), f.data_ptr<float>() + f.numel());
  }
  return res;
}

}  // namespace cliphba::train
