#include "data/synth_behavior.h"

#include <ATen/ATen.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/rng.h"
#include "core/staged_folder.h"
#include "io/csv.h"
#include "io/npy.h"
#include "io/text_file.h"

namespace cliphba::data {

namespace {

// RNG stream families (the high byte of the 64-bit stream id).
constexpr uint64_t kObjectStream = 1ull << 56;
constexpr uint64_t kChoiceStream = 2ull << 56;
constexpr uint64_t kListedStream = 3ull << 56;
constexpr uint64_t kNoiseStream = 4ull << 56;
constexpr uint64_t kOrderStream = 5ull << 56;

std::string ObjectName(int64_t i) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "object%04lld_01b.jpg", static_cast<long long>(i));
  return buf;
}

// Index of the chosen pair (0: {i,j}, 1: {i,k}, 2: {j,k}) under the SPoSE rule.
int ChoosePair(double sij, double sik, double sjk, double u) {
  const double mx = std::max(sij, std::max(sik, sjk));
  const double a = std::exp(sij - mx), b = std::exp(sik - mx), c = std::exp(sjk - mx);
  const double t = u * (a + b + c);
  return t < a ? 0 : (t < a + b ? 1 : 2);
}

}  // namespace

at::Tensor SimulateTripletRdm(const at::Tensor& x, int64_t repeats, uint64_t seed,
                              uint64_t stream_family) {
  TORCH_CHECK(x.dim() == 2 && x.scalar_type() == at::kDouble && x.size(0) >= 3,
              "SimulateTripletRdm: x must be (n >= 3, d) float64");
  const int64_t n = x.size(0);
  at::Tensor sim = at::mm(x, x.t());  // (n, n) dot products
  auto s = sim.accessor<double, 2>();
  at::Tensor chosen = at::zeros({n, n}, at::kDouble);
  auto c = chosen.accessor<double, 2>();
  uint64_t t = 0;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      for (int64_t k = j + 1; k < n; ++k, ++t) {
        CounterRng rng(seed, stream_family | t);
        for (int64_t r = 0; r < repeats; ++r) {
          switch (ChoosePair(s[i][j], s[i][k], s[j][k], rng.Uniform())) {
            case 0:
              c[i][j] += 1;
              break;
            case 1:
              c[i][k] += 1;
              break;
            default:
              c[j][k] += 1;
              break;
          }
        }
      }
    }
  }
  const double shown = double(repeats) * double(n - 2);  // times each pair was shown
  at::Tensor upper = at::triu(chosen, /*diagonal=*/1);
  at::Tensor rdm = at::rsub((upper + upper.t()) / shown, 1.0);
  rdm.fill_diagonal_(0.0);
  return rdm;
}

SynthBehaviorSummary GenerateSynthBehavior(const config::SynthBehaviorOptions& o) {
  const int64_t n = o.n_objects, d = o.n_dims;
  const uint64_t seed = uint64_t(o.seed);
  StagedFolder staged(o.out_dir, "synth");  // in place, complete, only at the end

  // Embedding: n_active random dimensions per object.
  at::Tensor x = at::zeros({n, d}, at::kDouble);  // (n, d)
  auto xa = x.accessor<double, 2>();
  std::vector<std::vector<int64_t>> active(n);
  std::vector<int64_t> dims(d);
  for (int64_t i = 0; i < n; ++i) {
    RandomPermutation(seed, kObjectStream | uint64_t(i), d, dims.data());
    CounterRng rng(seed, kObjectStream | (1ull << 40) | uint64_t(i));
    for (int64_t a = 0; a < o.n_active; ++a) {
      xa[i][dims[a]] = o.scale * (0.5 + rng.Uniform());
      active[i].push_back(dims[a]);
    }
  }
  at::Tensor sim = at::mm(x, x.t());  // (n, n) dot products
  auto s = sim.accessor<double, 2>();
  at::Tensor rdm = SimulateTripletRdm(x, o.repeats, seed, kChoiceStream);
  const int64_t t = n * (n - 1) * (n - 2) / 6;  // distinct triplets

  // RDM rows in a shuffled order, as real RDM files rarely share the embedding's order.
  std::vector<int64_t> order(n);
  RandomPermutation(seed, kOrderStream, n, order.data());
  at::Tensor order_t = at::tensor(order, at::kLong);
  std::vector<int64_t> position(n);  // object -> RDM row
  for (int64_t r = 0; r < n; ++r) position[order[r]] = r;
  at::Tensor rdm_shuffled = rdm.index_select(0, order_t).index_select(1, order_t).contiguous();

  // Listed behavioural triplets (a, b, odd) in RDM row indices.
  at::Tensor listed = at::empty({o.n_listed, 3}, at::kLong);
  auto la = listed.accessor<int64_t, 2>();
  for (int64_t r = 0; r < o.n_listed; ++r) {
    CounterRng rng(seed, kListedStream | uint64_t(r));
    int64_t i = int64_t(rng.Below(n)), j, k;
    do j = int64_t(rng.Below(n));
    while (j == i);
    do k = int64_t(rng.Below(n));
    while (k == i || k == j);
    int pair = ChoosePair(s[i][j], s[i][k], s[j][k], rng.Uniform());
    int64_t a = pair == 2 ? j : i, b = pair == 0 ? j : k, odd = pair == 0 ? k : (pair == 1 ? j : i);
    la[r][0] = position[a], la[r][1] = position[b], la[r][2] = position[odd];
  }

  // Model embedding: the truth plus noise, clipped at zero (embeddings are non-negative).
  at::Tensor model = x.clone();
  auto ma = model.accessor<double, 2>();
  for (int64_t i = 0; i < n; ++i) {
    CounterRng rng(seed, kNoiseStream | uint64_t(i));
    for (int64_t j = 0; j < d; ++j)
      ma[i][j] = std::max(0.0, ma[i][j] + o.model_noise * o.scale * rng.Normal());
  }

  std::vector<std::string> names(n), rdm_names(n);
  for (int64_t i = 0; i < n; ++i) names[i] = ObjectName(i);
  for (int64_t r = 0; r < n; ++r) rdm_names[r] = names[order[r]];

  SynthBehaviorSummary out;
  out.out_dir = o.out_dir;
  out.n_objects = n;
  out.n_dims = d;
  out.n_choices = t * o.repeats;
  out.n_listed = o.n_listed;
  out.mean_dissimilarity = rdm.sum().item<double>() / double(n * (n - 1));
  auto path = [&](const char* f) {
    out.files.push_back((std::filesystem::path(o.out_dir) / f).string());
    return staged.path() + "/" + f;
  };
  io::WriteEmbeddingCsv(path("embedding.csv"), {names, x});
  io::WriteEmbeddingCsv(path("model_embedding.csv"), {names, model});
  io::WriteNpy(path("rdm.npy"), rdm_shuffled);
  io::WriteNameList(path("rdm_names.txt"), rdm_names);
  io::WriteNpy(path("triplets.npy"), listed);

  nlohmann::json truth;
  truth["generator"] = "cliphba synth behavior";
  truth["n_objects"] = n;
  truth["n_dims"] = d;
  truth["n_active"] = o.n_active;
  truth["scale"] = o.scale;
  truth["repeats"] = o.repeats;
  truth["model_noise"] = o.model_noise;
  truth["seed"] = o.seed;
  truth["choice_rule"] = "P({i,j}) = exp(x_i.x_j) / (exp(x_i.x_j) + exp(x_i.x_k) + exp(x_j.x_k))";
  truth["active_dims"] = active;
  const std::string truth_path = path("ground_truth.json");
  io::WriteTextFileAtomically(truth_path, truth.dump(2) + "\n");
  staged.Commit();
  return out;
}

}  // namespace cliphba::data
