// `cliphba predict behavior|meg` and `cliphba convert` (predict/predict.h, predict/convert.h).
// Return the exit code; throw cliphba::Error (caught once in main).
#pragma once

#include <string>

#include "apps/commands.h"
#include "parallel/comm.h"
#include "predict/convert.h"
#include "predict/predict.h"

namespace cliphba::apps {

struct PredictArgs {
  predict::PredictBehaviorOptions behavior;  // model, images, text, out, csv, force, strict
  predict::PredictMegOptions meg;            // model, unit, all, images, out, force, no_rdm
  std::string noise_seed;                    // `predict meg --noise-seed S` ("" = no noise)
  int64_t threads = 0;                       // --threads (0 = cores / ranks on the node)
  std::string convert_from = "reference-pth";
  predict::ConvertOptions convert;
};

// Collective (images sharded over ranks). Prints a summary on rank 0 (--json: one object).
int RunPredictBehavior(const CommonArgs& args, const PredictArgs& p, const parallel::Comm& comm);
int RunPredictMeg(const CommonArgs& args, const PredictArgs& p, const parallel::Comm& comm);
int RunConvert(const CommonArgs& args, const PredictArgs& p);

}  // namespace cliphba::apps
