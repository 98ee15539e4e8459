// `cliphba predict behavior`, `cliphba predict meg`, `cliphba convert`: thin wrappers around
// predict/predict.h and predict/convert.h.
#include <fmt/core.h>

#include <nlohmann/json.hpp>
#include <string>

#include "apps/predict_commands.h"
#include "core/error.h"

namespace cliphba::apps {

int RunPredictBehavior(const CommonArgs& args, const PredictArgs& p, const parallel::Comm& comm) {
  ApplyRuntime("info", p.threads);
  const predict::PredictBehaviorResult r = predict::PredictBehavior(p.behavior, comm);
  if (!comm.is_root()) return 0;
  if (args.json) {
    fmt::print("{}\n", nlohmann::json{{"model_kind", r.kind},
                                      {"n_images", r.n_images},
                                      {"n_dims", r.n_dims},
                                      {"skipped", r.skipped},
                                      {"out", r.out},
                                      {"csv", r.csv}}
                           .dump());
  } else {
    fmt::print("predicted {} images x {} dimensions with the {} model into {}{}{}\n", r.n_images,
               r.n_dims, r.kind, r.out, r.csv.empty() ? "" : " and " + r.csv,
               r.skipped.empty() ? "" : fmt::format(" ({} images skipped)", r.skipped.size()));
  }
  return 0;
}

int RunPredictMeg(const CommonArgs& args, const PredictArgs& p, const parallel::Comm& comm) {
  ApplyRuntime("info", p.threads);
  predict::PredictMegOptions o = p.meg;
  if (!p.noise_seed.empty()) {
    try {
      size_t used = 0;
      o.noise_seed = std::stoull(p.noise_seed, &used);
      if (used != p.noise_seed.size()) throw std::invalid_argument("trailing characters");
    } catch (const std::exception&) {
      throw ConfigError("--noise-seed " + p.noise_seed + ": expected a non-negative integer");
    }
    o.noise = true;
  }
  const predict::PredictMegResult r = predict::PredictMeg(o, comm);
  if (!comm.is_root()) return 0;
  if (args.json) {
    fmt::print("{}\n", nlohmann::json{{"models", r.models},
                                      {"n_images", r.n_images},
                                      {"n_dims", r.n_dims},
                                      {"timepoints", r.timepoints},
                                      {"skipped", r.skipped},
                                      {"out", r.out}}
                           .dump());
  } else {
    fmt::print("predicted {} images x {} timepoints x {} dimensions for {} model(s) into {}\n",
               r.n_images, r.timepoints, r.n_dims, r.models.size(), r.out);
  }
  return 0;
}

int RunConvert(const CommonArgs& args, const PredictArgs& p) {
  ApplyRuntime("info", p.threads);
  if (p.convert_from != "reference-pth")
    throw ConfigError("--from " + p.convert_from + ": the only source format is reference-pth");
  const predict::ConvertResult r = predict::ConvertReferencePth(p.convert);
  if (args.json) {
    fmt::print("{}\n", nlohmann::json{{"out", p.convert.out},
                                      {"tensors", r.n_tensors},
                                      {"dora_vision_blocks", r.vision_blocks},
                                      {"dora_text_blocks", r.text_blocks},
                                      {"dora_rank", r.rank},
                                      {"source_sha256", r.source_sha256}}
                           .dump());
  } else {
    fmt::print("converted {} ({} tensors; DoRA r {} on {} vision and {} text blocks) into {}\n",
               p.convert.in, r.n_tensors, r.rank, r.vision_blocks, r.text_blocks, p.convert.out);
  }
  return 0;
}

}  // namespace cliphba::apps
