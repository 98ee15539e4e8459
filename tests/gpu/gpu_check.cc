// cliphba_gpu_check: cliphba's GPU paths against their CPU counterparts (issue 19). Run by
// scripts/gpu_check.sh on a machine with a GPU and a CUDA LibTorch; ctest runs it with
// --device cpu as a self-test of the harness (both sides on the CPU; the NCCL check then compares
// the MPI backend with itself).
//
//   cliphba_gpu_check [--device cuda|cpu] [--models tiny,vitb32] [--throughput vitb32,vitl14|none]
//                     [--peak-tflops 989.4] [--steps 10] [--json FILE]
//
// Checks (one line each on stdout, one record each in --json; exit 0 when every check passes, 1
// when one fails, 2 for bad arguments or no CUDA device):
//   nccl        the NCCL gradient backend (chosen by dist.backend auto for GPU tensors; its
//               communicator set up from MPI, the bucketed all-reduce, averaging over ranks,
//               teardown, a second set-up), the MPI backend on CPU copies and its GPU staging path,
//               each against the average of every rank's gradients recomputed on each rank:
//               within 1e-6 of each tensor's largest entry. Ranks share out the GPUs
//               (device = rank); NCCL refuses two ranks on one GPU, so with one GPU this is one
//               rank and rings of several GPUs stay untested.
//   stage1/..   two Stage-1 training steps (image + text towers with DoRA, HBA logits, MSE,
//               backward, AdamW; eval mode: DoRA's dropout off, as each device draws its own
//               masks) on the device, float32 and bfloat16, against the same steps on the CPU in
//               float32 from the same weights and data: |dloss| / |loss| <= 1e-4 (float32), <= 1e-2
//               (bfloat16), for each step; and in float32 the first step's gradients, each tensor
//               within 1e-3 of its largest CPU entry (bf16 gradients are reported only).
//   meg2/..     two MEG phase-2 steps of cliphba_bench_meg (tests/bench/meg_step.h: DoRA on every
//               vision block, the MEG head and its noise drawn from a CPU generator of (step),
//               Pearson RDMs, PearsonMSELongLoss), likewise.
//   mantel      the Mantel kernel (permuted gather + GEMM, float32) on the device against the CPU:
//               every null statistic within 1e-5; p and p_fwer equal except at timepoints where a
//               null statistic and the observed one fall on different sides of each other on the
//               two devices (ties within float32 rounding, counted).
//   throughput  bfloat16 Stage-1 and MEG phase-2 steps: images/s and model FLOP utilisation (MFU)
//               against the card's dense bf16 peak (--peak-tflops) and the bf16 matmul rate
//               measured in the same run (8192^3). FLOPs counted: the GEMMs the step needs (forward
//               24 L W^2 + 4 L^2 W per block and token sequence plus the patch projection; backward
//               only where a gradient flows: see BlockBackwardFlops), not the "6 N" convention.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/cuda.h>
#include <torch/nn/functional/loss.h>
#include <torch/optim/adamw.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "bench/bench_clip_configs.h"
#include "bench/meg_step.h"
#include "model/clip.h"
#include "model/dora.h"
#include "model/precision.h"
#include "parallel/comm.h"
#include "parallel/grad_sync.h"
#include "stats/mantel.h"

namespace cliphba {
namespace {

using model::Clip;
using model::ClipConfig;
using model::Precision;

struct Args {
  std::string device = "cuda";
  std::vector<std::string> models{"tiny", "vitb32"};
  std::vector<std::string> throughput{"vitb32", "vitl14"};
  double peak_tflops = 989.4;  // H100/H200 SXM dense bf16
  int steps = 10;
  std::string json;
};

std::vector<std::string> SplitList(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  std::string item;
  while (std::getline(in, item, ','))
    if (!item.empty() && item != "none") out.push_back(item);
  return out;
}

ClipConfig ConfigNamed(const std::string& name) {
  if (name == "tiny") return model::bench::TinyConfig();
  if (name == "vitb32") return model::bench::VitB32Config();
  if (name == "vitl14") return model::bench::VitL14Config();
  throw std::invalid_argument("unknown model '" + name + "' (tiny, vitb32, vitl14)");
}

// ---------------------------------------------------------------------------------------------
// Results: one JSON record per check; `pass` decides the exit code.

struct Report {
  nlohmann::json records = nlohmann::json::array();
  bool all_pass = true;
  bool print = true;  // rank 0 prints
  void Add(const std::string& name, bool pass, nlohmann::json numbers, const std::string& line) {
    numbers["check"] = name;
    numbers["pass"] = pass;
    records.push_back(numbers);
    all_pass = all_pass && pass;
    if (print) std::printf("%-28s %s  %s\n", name.c_str(), pass ? "PASS" : "FAIL", line.c_str());
    std::fflush(stdout);
  }
  void Info(const std::string& name, nlohmann::json numbers, const std::string& line) {
    numbers["check"] = name;
    records.push_back(numbers);
    if (print) std::printf("%-28s info  %s\n", name.c_str(), line.c_str());
    std::fflush(stdout);
  }
};

template <typename... V>
std::string Fmt(const char* f, V... values) {  // printf into a string; values are doubles
  char buf[320];
  std::snprintf(buf, sizeof buf, f, double(values)...);
  return buf;
}

// Random token ids of K prompts: 12 tokens then the EOT (the largest id), zeros after.
at::Tensor PromptIds(const ClipConfig& cfg, int64_t k) {
  at::Tensor ids = at::zeros({k, cfg.context_length}, at::kLong);
  ids.slice(1, 0, 12).copy_(at::randint(1, cfg.vocab_size - 1, {k, 12}));
  ids.select(1, 12).fill_(cfg.vocab_size - 1);
  return ids;
}

// The same weights on every device: seeded construction, then moved.
Clip SeededClip(const ClipConfig& cfg, int64_t vision_dora, int64_t text_dora, double alpha,
                bool magnitude, const at::Device& device) {
  at::manual_seed(1);
  Clip clip(cfg);
  model::ApplyDora(clip, vision_dora, text_dora, 32, alpha, magnitude);
  clip->to(device);
  return clip;
}

// ---------------------------------------------------------------------------------------------
// Stage 1 (CLIP-HBA-Behavior) and MEG phase 2 steps, device-agnostic.

struct Stage1 {
  Stage1(const ClipConfig& cfg, int64_t batch, const at::Device& d, Precision p)
      : clip(SeededClip(cfg, 2, 1, 32.0, true, d)), precision(p) {
    // Eval mode: DoRA's dropout off (each device would draw its own dropout mask).
    clip->eval();
    for (const auto& t : clip->parameters())
      if (t.requires_grad()) trainable.push_back(t);
    opt = std::make_unique<torch::optim::AdamW>(trainable, torch::optim::AdamWOptions(3e-4));
    at::manual_seed(2);
    images = at::randn({batch, 3, cfg.image_resolution, cfg.image_resolution}).to(d);
    ids = PromptIds(cfg, 66).to(d);
    targets = (at::rand({batch, 66}) * 2.0).to(d);
  }
  double Step() {
    at::Tensor img = clip->EncodeImage(images, true, precision).features;
    at::Tensor txt = clip->EncodeText(ids, precision);
    at::Tensor loss = torch::nn::functional::mse_loss(clip->HbaLogits(img, txt), targets);
    opt->zero_grad();
    loss.backward();
    opt->step();
    return loss.item<double>();
  }
  Clip clip;
  Precision precision;
  std::vector<at::Tensor> trainable;  // the optimiser's parameters, in a fixed order
  std::unique_ptr<torch::optim::AdamW> opt;
  at::Tensor images, ids, targets;
};

// The MEG phase-2 step of cliphba_bench_meg (bench/meg_step.h), T 29, in this file's interface.
struct MegPhase2 {
  MegPhase2(const ClipConfig& cfg, int64_t batch, const at::Device& d, Precision p)
      : s(cfg, batch, 29, 2, d), precision(p), trainable(s.trainable) {}
  double Step() { return s.Step(step++, precision); }
  model::bench::MegStep s;
  Precision precision;
  const std::vector<at::Tensor>& trainable;  // Wfr, then the DoRA parameters
  int64_t step = 0;
};

// ---------------------------------------------------------------------------------------------
// (a) NCCL against MPI on the same gradients.

// The gradients of one tiny Stage-1 step on rank `r`'s data (seeded by r), in parameter order.
std::vector<at::Tensor> TinyGradients(int r) {
  const ClipConfig cfg = ConfigNamed("tiny");
  Clip clip = SeededClip(cfg, 2, 1, 32.0, true, at::kCPU);
  clip->eval();
  at::manual_seed(100 + r);
  at::Tensor img = clip->EncodeImage(at::randn({4, 3, 32, 32})).features;
  at::Tensor loss = torch::nn::functional::mse_loss(
      clip->HbaLogits(img, clip->EncodeText(PromptIds(cfg, 66))), at::rand({4, 66}));
  loss.backward();
  std::vector<at::Tensor> out;
  for (const auto& p : clip->parameters())
    if (p.requires_grad() && p.grad().defined()) out.push_back(p.grad().detach().clone());
  return out;
}

void CheckNccl(const parallel::Comm& comm, const at::Device& device, Report* report) {
  // --device cpu: the same code, `auto` choosing the MPI backend on both sides (the harness's
  // self-test; no NCCL).
  if (device.is_cuda() && !parallel::HaveNccl()) {
    report->Add("nccl", false, {{"error", "built without NCCL"}},
                "this build has no NCCL backend (CMake found no CUDA toolkit + NCCL)");
    return;
  }
  // This rank's gradients, and the expected average: every rank's gradients recomputed here
  // (float64 sum), independent of both backends and of the bucketing.
  const std::vector<at::Tensor> mine = TinyGradients(comm.rank());
  std::vector<at::Tensor> expected;
  for (const at::Tensor& g : mine) expected.push_back(at::zeros_like(g, at::kDouble));
  for (int r = 0; r < comm.size(); ++r) {
    const std::vector<at::Tensor> other = r == comm.rank() ? mine : TinyGradients(r);
    for (size_t i = 0; i < other.size(); ++i) expected[i] += other[i].to(at::kDouble);
  }
  // Three copies: CPU tensors for the MPI backend; GPU tensors for NCCL; GPU tensors for the MPI
  // backend's staging path (device -> host -> device). Copies also for --device cpu.
  std::vector<at::Tensor> host, dev, staged;
  int64_t bytes = 0;
  for (const at::Tensor& g : mine) {
    auto param = [&](const at::Device& d) {
      at::Tensor t = at::zeros_like(g).to(d).requires_grad_(true);
      t.mutable_grad() = g.to(d).clone();
      return t;
    };
    host.push_back(param(at::kCPU));
    dev.push_back(param(device));
    staged.push_back(param(device));
    bytes += g.numel() * 4;
  }
  const int64_t bucket = 8 << 10;  // 8 KiB: several buckets
  auto mpi = parallel::MakeBackend("mpi", comm, at::kCPU);
  parallel::AllreduceGradients(host, *mpi, bucket);
  parallel::AllreduceGradients(staged, *mpi, bucket);
  // Each tensor's largest deviation from the expected average, relative to its largest entry.
  auto deviation = [&](const std::vector<at::Tensor>& got) {
    double worst = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const at::Tensor want = expected[i] / double(comm.size());
      const at::Tensor avg = got[i].grad().to(at::kCPU, at::kDouble) / double(comm.size());
      const double scale = std::max(want.abs().max().item<double>(), 1e-30);
      worst = std::max(worst, (avg - want).abs().max().item<double>() / scale);
    }
    return worst;
  };
  double dev_nccl = 0, dev_mpi = 0, dev_staged = 0, check_sum = 0;
  std::string chosen;
  {
    auto nccl = parallel::MakeBackend("auto", comm, device);  // auto: NCCL for CUDA tensors
    chosen = nccl->name();
    parallel::AllreduceGradients(dev, *nccl, bucket);
    dev_nccl = deviation(dev);
    dev_mpi = deviation(host);
    dev_staged = deviation(staged);
  }  // teardown: the communicator is destroyed here
  {
    auto again = parallel::MakeBackend("auto", comm, device);  // a second set-up works
    at::Tensor ones = at::ones({1000}, at::TensorOptions(device).dtype(at::kFloat));
    again->SumInPlace(ones);
    check_sum = ones.mean().item<double>();
  }
  const std::string want_backend = device.is_cuda() ? "nccl" : "mpi";
  const double tol = 1e-6;  // float32 sums of <= a few ranks, relative to each tensor's largest entry
  const bool pass = chosen == want_backend && dev_nccl <= tol && dev_mpi <= tol &&
                    dev_staged <= tol && check_sum == double(comm.size());
  report->Add(device.is_cuda() ? "nccl" : "nccl (cpu: mpi vs mpi)", pass,
              {{"ranks", comm.size()}, {"tensors", host.size()}, {"bytes", bytes},
               {"buckets", (bytes + bucket - 1) / bucket}, {"auto_backend", chosen},
               {"rel_dev_nccl", dev_nccl}, {"rel_dev_mpi", dev_mpi},
               {"rel_dev_mpi_staged", dev_staged}, {"tolerance", tol},
               {"second_setup_sum", check_sum}},
              "auto -> " + chosen +
                  Fmt(", %.0f rank(s), %.0f buckets; averaged gradients vs every rank's "
                      "recomputed: ",
                      comm.size(), double((bytes + bucket - 1) / bucket)) +
                  chosen +
                  Fmt(" %.1e, mpi %.1e, mpi staged from the device %.1e (<= 1e-6); second set-up "
                      "sum %.0f",
                      dev_nccl, dev_mpi, dev_staged, check_sum));
}

// ---------------------------------------------------------------------------------------------
// (b) steps on the device against the CPU.

template <typename StepT>
void CheckSteps(const std::string& kind, const std::string& name, int64_t batch,
                const at::Device& device, Report* report) {
  const ClipConfig cfg = ConfigNamed(name);
  // The first step's gradients (CPU copies, the optimiser's parameter order), then two losses.
  auto run = [&](StepT& s, std::vector<at::Tensor>* grads) {
    std::vector<double> losses{s.Step()};
    for (const at::Tensor& t : s.trainable)
      grads->push_back(t.grad().defined() ? t.grad().detach().to(at::kCPU, at::kDouble)
                                          : at::Tensor());
    losses.push_back(s.Step());
    return losses;
  };
  std::vector<double> ref;
  std::vector<at::Tensor> ref_grads;
  {
    StepT cpu(cfg, batch, at::kCPU, Precision::kFloat32);
    ref = run(cpu, &ref_grads);
  }
  for (Precision p : {Precision::kFloat32, Precision::kBFloat16}) {
    StepT dev(cfg, batch, device, p);
    std::vector<at::Tensor> grads;
    const std::vector<double> got = run(dev, &grads);
    double worst = 0, worst_grad = 0;
    for (size_t i = 0; i < got.size(); ++i)
      worst = std::max(worst, std::abs(got[i] - ref[i]) / std::max(std::abs(ref[i]), 1e-12));
    // Each gradient tensor relative to its largest CPU entry (tensors without a gradient skipped).
    for (size_t i = 0; i < ref_grads.size(); ++i) {
      if (!ref_grads[i].defined() || !grads[i].defined()) continue;
      const double scale = ref_grads[i].abs().max().item<double>();
      if (scale > 0)
        worst_grad = std::max(worst_grad, (grads[i] - ref_grads[i]).abs().max().item<double>() / scale);
    }
    // Gradients are held to float32's tolerance only: bf16 rounding moves them by several per
    // cent against float32 (measured on the CPU: DoRA factors 5-13 %), and the head's min/max
    // over blocks can route Wfr's gradient to another block. For bf16 they are reported.
    const bool f32 = p == Precision::kFloat32;
    const double tol = f32 ? 1e-4 : 1e-2, tol_grad = 1e-3;
    const bool grads_ok = !f32 || worst_grad <= tol_grad;
    const std::string check = kind + "/" + name + "/" + model::PrecisionName(p);
    report->Add(check, worst <= tol && grads_ok,
                {{"batch", batch}, {"cpu_losses", ref}, {"device_losses", got},
                 {"max_rel_diff", worst}, {"tolerance", tol}, {"max_rel_grad_diff", worst_grad},
                 {"grad_tolerance", f32 ? tol_grad : -1.0}, {"grad_tensors", ref_grads.size()}},
                Fmt("b%.0f losses %.6g %.6g vs CPU float32 %.6g %.6g", double(batch), got[0],
                    got[1], ref[0], ref[1]) +
                    Fmt(": max rel diff %.2e (<= %.0e); step-1 gradients %.2e", worst, tol,
                        worst_grad) +
                    (f32 ? Fmt(" (<= %.0e)", tol_grad) : std::string(" (reported, not held)")));
  }
}

// ---------------------------------------------------------------------------------------------
// (c) the Mantel kernel on the device against the CPU.

struct MantelRun {
  at::Tensor observed, nulls;  // (T) float64, (N, T) float64
  at::Tensor null_max;         // (N) float64: each permutation's maximum over the timepoints
  stats::MantelPValues p;
};

MantelRun RunMantel(const at::Tensor& model_z, const at::Tensor& neural_z, int64_t n,
                    int64_t n_perm, int64_t batch, const at::Device& d) {
  const int64_t T = neural_z.size(0), m = neural_z.size(1);
  at::Tensor square = stats::SquareFromCondensed(model_z.to(at::kFloat), n).to(d);
  at::Tensor nz = neural_z.to(d, at::kFloat);
  at::Tensor gather = at::empty({batch, m}, square.options());
  at::Tensor buf = at::empty({batch, T}, square.options());
  MantelRun r;
  r.observed = stats::MantelObserved(square, nz, gather, buf);
  stats::MantelCounts counts = stats::MakeMantelCounts(T, n_perm);
  std::vector<at::Tensor> nulls;
  for (int64_t first = 0; first < n_perm; first += batch) {
    const int64_t count = std::min(batch, n_perm - first);
    at::Tensor perms = stats::DrawPermutations(7, first, count, n);
    stats::MantelAccumulate(square, nz, r.observed, perms, first, 0, stats::Tail::kUpper, gather,
                            buf, &counts);
    nulls.push_back(buf.view({-1}).narrow(0, 0, count * T).view({count, T}).to(at::kCPU,
                                                                                at::kDouble));
  }
  r.nulls = at::cat(nulls, 0);
  r.null_max = counts.null_max.clone();
  r.p = stats::MantelFinish(r.observed, counts, stats::Tail::kUpper);
  return r;
}

void CheckMantel(const at::Device& device, Report* report) {
  const int64_t n = 80, m = n * (n - 1) / 2, T = 40, n_perm = 2000, batch = 250;
  at::manual_seed(4);
  at::Tensor model = at::rand({m}, at::kDouble);
  at::Tensor neural = at::rand({T, m}, at::kDouble);
  // A signal that rises and falls over time, so the p-values span the whole range.
  at::Tensor w = at::linspace(0, 3.14159, T, at::kDouble).sin().mul(0.08).unsqueeze(1);
  neural = neural + w * model.unsqueeze(0);
  const auto kind = stats::CorrelationKind::kPearson;
  at::Tensor mz = stats::StandardizeRows(model.unsqueeze(0), kind, at::kDouble)[0];
  at::Tensor nz = stats::StandardizeRows(neural, kind, at::kDouble);
  MantelRun cpu = RunMantel(mz, nz, n, n_perm, batch, at::kCPU);
  MantelRun dev = RunMantel(mz, nz, n, n_perm, batch, device);
  const double max_null = (cpu.nulls - dev.nulls).abs().max().item<double>();
  const double max_obs = (cpu.observed - dev.observed).abs().max().item<double>();
  // Ties: (permutation, timepoint) where null >= observed holds on one device and not the other.
  at::Tensor flip = (cpu.nulls >= cpu.observed.unsqueeze(0)) != (dev.nulls >= dev.observed.unsqueeze(0));
  at::Tensor flip_t = flip.any(0);
  const int64_t ties = flip.sum().item<int64_t>();
  at::Tensor p_diff = cpu.p.p != dev.p.p;
  at::Tensor fwer_diff = cpu.p.p_fwer != dev.p.p_fwer;
  const int64_t p_unexplained = (p_diff & ~flip_t).sum().item<int64_t>();
  // A family-wise difference at t needs a permutation whose maximum reaches obs[t] on one device
  // and not on the other.
  const at::Tensor max_flip =
      ((cpu.null_max.unsqueeze(1) >= cpu.observed.unsqueeze(0)) !=
       (dev.null_max.unsqueeze(1) >= dev.observed.unsqueeze(0))).any(0);  // (T)
  const int64_t fwer_diffs = fwer_diff.sum().item<int64_t>();
  const bool fwer_ok = (fwer_diff & ~max_flip).sum().item<int64_t>() == 0;
  const bool pass = max_null <= 1e-5 && max_obs <= 1e-5 && p_unexplained == 0 && fwer_ok;
  report->Add("mantel", pass,
              {{"objects", n}, {"timepoints", T}, {"permutations", n_perm},
               {"max_abs_null_diff", max_null}, {"max_abs_observed_diff", max_obs},
               {"ties", ties}, {"timepoints_p_differ", p_diff.sum().item<int64_t>()},
               {"timepoints_p_fwer_differ", fwer_diffs},
               {"p_differences_without_tie", p_unexplained}},
              Fmt("max |null diff| %.2e, |obs diff| %.2e; %.0f ties; p differ at %.0f",
                  max_null, max_obs, double(ties), p_diff.sum().item<double>()) +
                  Fmt(" timepoints (%.0f without a tie), p_fwer at %.0f", double(p_unexplained),
                      double(fwer_diffs)));
}

// ---------------------------------------------------------------------------------------------
// (d) throughput and model FLOP utilisation.

double BlockFlops(int64_t tokens, int64_t width) {  // one sequence through one block, forward
  const double l = double(tokens), w = double(width);
  return 24 * l * w * w + 4 * l * l * w;
}
double VisionForwardFlops(const ClipConfig& c) {  // one image, every block
  const int64_t grid = c.image_resolution / c.vision_patch_size, tokens = grid * grid + 1;
  const double patch = 2.0 * double(grid * grid) * 3 * c.vision_patch_size * c.vision_patch_size *
                       double(c.vision_width);
  return patch + double(c.vision_layers) * BlockFlops(tokens, c.vision_width);
}
int64_t VisionTokens(const ClipConfig& c) {
  const int64_t grid = c.image_resolution / c.vision_patch_size;
  return grid * grid + 1;
}
// Backward FLOPs of one sequence through one block where only attn.out_proj carries DoRA (the
// other weights frozen): `through` = the gradient continues to the block's input (input gradients
// of every linear 2 * 12 L W^2, the out_proj weight gradient 2 L W^2, the attention's 8 L^2 W);
// else (the first adapted block: nothing below it learns) only the MLP's input gradients and the
// out_proj weight gradient, 18 L W^2.
double BlockBackwardFlops(int64_t tokens, int64_t width, bool through) {
  const double l = double(tokens), w = double(width);
  return through ? 26 * l * w * w + 8 * l * l * w : 18 * l * w * w;
}

// The bf16 matmul rate: n^3, n = 8192 on a GPU (1024 on the CPU, the harness's self-test).
int64_t MatmulSize(const at::Device& d) { return d.is_cuda() ? 8192 : 1024; }
double MeasureMatmulTflops(const at::Device& d) {
  const int64_t n = MatmulSize(d);
  at::Tensor a = at::randn({n, n}, at::TensorOptions(d).dtype(at::kBFloat16));
  at::Tensor b = at::randn({n, n}, at::TensorOptions(d).dtype(at::kBFloat16));
  at::Tensor c = at::mm(a, b);
  c.sum().item<double>();
  const auto t0 = std::chrono::steady_clock::now();
  const int reps = 10;
  for (int i = 0; i < reps; ++i) at::mm_out(c, a, b);
  c.sum().item<double>();
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return 2.0 * double(n) * double(n) * double(n) * reps / s / 1e12;
}

template <typename StepT>
double SecondsPerStep(StepT& s, int steps) {
  for (int i = 0; i < 3; ++i) s.Step();  // warm-up (allocator, cuBLAS heuristics)
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) s.Step();  // each step ends in loss.item(): synchronised
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / steps;
}

void Throughput(const Args& a, const at::Device& d, Report* report) {
  if (a.throughput.empty()) return;
  const double measured = MeasureMatmulTflops(d);
  report->Info("matmul_bf16", {{"tflops", measured}, {"n", MatmulSize(d)}},
               Fmt("%.0f^3 bf16 matmul %.3g TFLOP/s (spec %.0f)", double(MatmulSize(d)), measured,
                   a.peak_tflops));
  for (const auto& name : a.throughput) {
    const ClipConfig c = ConfigNamed(name);
    const int64_t batch = name == "vitl14" ? 64 : name == "tiny" ? 16 : 128;
    const double fwd = VisionForwardFlops(c);
    const int64_t tok = VisionTokens(c), w = c.vision_width;
    // Stage 1: forward everywhere; backward through the last 2 vision blocks (DoRA) and the last
    // text block; 66 prompts of 13 tokens through the text tower every step.
    const double text_fwd = 66.0 * double(c.transformer_layers) * BlockFlops(13, c.transformer_width);
    const double text_bwd = 66.0 * BlockBackwardFlops(13, c.transformer_width, false);
    for (int kind = 0; kind < 2; ++kind) {
      double seconds, flops;
      if (kind == 0) {
        Stage1 s(c, batch, d, Precision::kBFloat16);
        seconds = SecondsPerStep(s, a.steps);
        flops = double(batch) * (fwd + BlockBackwardFlops(tok, w, false) +
                                 BlockBackwardFlops(tok, w, true)) +
                text_fwd + text_bwd;
      } else {
        MegPhase2 s(c, batch, d, Precision::kBFloat16);
        seconds = SecondsPerStep(s, a.steps);
        // Phase 2: DoRA on every vision block; the first learns but passes nothing further down.
        flops = double(batch) * (fwd + BlockBackwardFlops(tok, w, false) +
                                 double(c.vision_layers - 1) * BlockBackwardFlops(tok, w, true));
      }
      const double tflops = flops / seconds / 1e12;
      const std::string check = std::string(kind == 0 ? "stage1" : "meg2") + "_bf16/" + name;
      report->Info(check,
                   {{"batch", batch}, {"seconds_per_step", seconds},
                    {"images_per_s", double(batch) / seconds}, {"model_tflops", tflops},
                    {"mfu_spec", tflops / a.peak_tflops}, {"mfu_measured_peak", tflops / measured}},
                   Fmt("b%.0f %.1f ms/step, %.0f images/s, %.3g TFLOP/s", double(batch),
                       seconds * 1e3, double(batch) / seconds, tflops) +
                       Fmt(" = %.1f%% MFU of spec, %.1f%% of measured matmul", 100 * tflops / a.peak_tflops,
                           100 * tflops / measured));
    }
  }
}

// Runs one check; an exception (a CUDA path that throws) is that check's FAIL, and the others
// still run and are reported.
void Guarded(Report* report, const std::string& name, const std::function<void()>& check) {
  try {
    check();
  } catch (const std::exception& e) {
    std::string what = e.what();
    report->Add(name, false, {{"error", what}},
                "threw: " + what.substr(0, what.find('\n')));
  }
}

int Run(const Args& a, const parallel::Comm& comm) {
  if (a.device != "cuda" && a.device != "cpu") {
    std::fprintf(stderr, "cliphba_gpu_check: --device must be cuda or cpu, got '%s'\n",
                 a.device.c_str());
    return 2;
  }
  at::Device device(at::kCPU);
  if (a.device == "cuda") {
    if (!torch::cuda::is_available()) {
      std::fprintf(stderr,
                   "cliphba_gpu_check: LibTorch sees no CUDA device (LibTorch built with CUDA: "
                   "%s); build against a CUDA LibTorch on a GPU machine (scripts/gpu_check.sh)\n",
                   at::hasCUDA() ? "yes" : "no");
      return 2;
    }
    const int64_t gpus = int64_t(torch::cuda::device_count());
    if (comm.size() > gpus) {
      std::fprintf(stderr, "cliphba_gpu_check: %d ranks but %lld GPU(s): NCCL needs one GPU per rank\n",
                   comm.size(), static_cast<long long>(gpus));
      return 2;
    }
    device = at::Device(at::kCUDA, c10::DeviceIndex(comm.rank()));
    // The float32 comparisons are with IEEE float32 GEMMs and convolutions, not TF32.
    at::globalContext().setAllowTF32CuBLAS(false);
    at::globalContext().setAllowTF32CuDNN(false);
  }
  Report report;
  report.print = comm.is_root();
  const parallel::NcclInfo info = parallel::QueryNccl();
  report.Info("environment",
              {{"device", a.device}, {"ranks", comm.size()}, {"nccl", info.nccl},
               {"cuda_runtime", info.cuda_runtime}, {"cuda_driver", info.cuda_driver},
               {"gpus", info.gpus}, {"aten_threads", at::get_num_threads()}},
              a.device + ", " + std::to_string(comm.size()) + " rank(s), NCCL " +
                  (info.built ? info.nccl : std::string("not built")) +
                  (info.gpus.empty() ? std::string() : ", " + info.gpus[0]));
  Guarded(&report, "nccl", [&] { CheckNccl(comm, device, &report); });
  at::Tensor failed = at::full({1}, report.all_pass ? 0.0 : 1.0, at::kDouble);
  comm.AllreduceSum(failed);  // a failure on any rank fails the run
  report.all_pass = failed.item<double>() == 0;
  if (comm.is_root()) {  // the rest is per device: rank 0's
    for (const auto& name : a.models) {
      const int64_t batch = name == "tiny" ? 8 : 4;
      Guarded(&report, "stage1/" + name,
              [&] { CheckSteps<Stage1>("stage1", name, batch, device, &report); });
      Guarded(&report, "meg2/" + name,
              [&] { CheckSteps<MegPhase2>("meg2", name, batch, device, &report); });
    }
    Guarded(&report, "mantel", [&] { CheckMantel(device, &report); });
    Guarded(&report, "throughput", [&] { Throughput(a, device, &report); });
    std::printf("%s\n", report.all_pass ? "gpu_check: every check passed"
                                        : "gpu_check: a check FAILED");
    if (!a.json.empty()) {
      std::ofstream out(a.json);
      out << report.records.dump(1) << "\n";
    }
  }
  return report.all_pass ? 0 : 1;
}

}  // namespace
}  // namespace cliphba

int main(int argc, char** argv) {
  using namespace cliphba;
  parallel::MpiEnvironment mpi(&argc, &argv);
  Args a;
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string k = argv[i];
      if (i + 1 >= argc) throw std::invalid_argument(k + " needs a value");
      const std::string v = argv[++i];
      if (k == "--device") a.device = v;
      else if (k == "--models") a.models = SplitList(v);
      else if (k == "--throughput") a.throughput = SplitList(v);
      else if (k == "--peak-tflops") a.peak_tflops = std::stod(v);
      else if (k == "--steps") a.steps = std::stoi(v);
      else if (k == "--json") a.json = v;
      else throw std::invalid_argument("unknown option " + k);
    }
    for (const auto& m : a.models) ConfigNamed(m);
    for (const auto& m : a.throughput) ConfigNamed(m);
    const int threads = int(std::max(1u, std::thread::hardware_concurrency()));
    if (!std::getenv("OMP_NUM_THREADS")) at::set_num_threads(threads);
    return Run(a, parallel::Comm::World());
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "cliphba_gpu_check: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cliphba_gpu_check: %s\n", e.what());
    return 1;
  }
}
