#include "data/synth_cohort.h"

#include <ATen/ATen.h>
#include <stb_image_write.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/hash.h"
#include "core/rng.h"
#include "core/staged_folder.h"
#include "data/synth_behavior.h"
#include "data/synth_cohort_manifest.h"
#include "data/synth_weights.h"
#include "io/csv.h"
#include "io/epochs_h5.h"
#include "io/npy.h"
#include "io/text_file.h"
#include "meg/epochs.h"

namespace cliphba::data {

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::CheckOutDir;
using detail::OptionsJson;
using detail::ReadAll;
using detail::TensorJson;
using detail::WriteText;

// RNG stream families (high byte of the 64-bit stream id); the low bits name the item.
constexpr uint64_t kLatentStream = 0x11ull << 56;       // | object
constexpr uint64_t kExemplarStream = 0x12ull << 56;     // | object << 20 | exemplar
constexpr uint64_t kChoiceStream = 0x13ull << 56;       // | triplet
constexpr uint64_t kParticipantStream = 0x14ull << 56;  // | participant
constexpr uint64_t kPatternStream = 0x15ull << 56;      // | participant
constexpr uint64_t kTrialOrderStream = 0x16ull << 56;   // | participant
constexpr uint64_t kNoiseStream = 0x17ull << 56;        // | participant << 32 | trial
constexpr uint64_t kWorldLatentStream = 0x18ull << 56;    // | item (pre-training world)
constexpr uint64_t kWorldExemplarStream = 0x19ull << 56;  // | item
// 0x1a-0x1c: the participant weights' streams (data/synth_weights.cc).

constexpr int kShapes = 4;  // circle, square, triangle, cross
// Low-level visual features (F): cos/sin hue, texture, x, y, size, brightness, filled area. The
// shape class enters only through the area: the visual code is not categorical.
constexpr int kFeatures = 8;
constexpr double kEmbeddingScale = 2.0;  // embedding values in [0, 2]: SPoSE choices fairly sharp
constexpr double kPi = 3.14159265358979323846;

const char* const kFeatureNames[kFeatures] = {"hue_cos", "hue_sin", "texture",    "x",
                                              "y",       "size",    "brightness", "area"};

struct Latents {
  double hue, texture, x, y, size;  // hue in [0, 1); others in documented ranges
  int shape;
};

struct Exemplar {
  double dx, dy, brightness;  // position jitter (image fraction), brightness factor
  int background;             // grey level
};

Latents DrawLatents(uint64_t seed, int64_t i, uint64_t family = kLatentStream) {
  CounterRng r(seed, family | uint64_t(i));
  Latents l;
  l.hue = r.Uniform();
  l.shape = int(r.Below(kShapes));
  l.texture = r.Uniform();
  l.x = 0.35 + 0.3 * r.Uniform();
  l.y = 0.35 + 0.3 * r.Uniform();
  l.size = 0.35 + 0.25 * r.Uniform();
  return l;
}

Exemplar DrawExemplar(CounterRng r) {
  Exemplar x;
  x.dx = 0.12 * (r.Uniform() - 0.5);
  x.dy = 0.12 * (r.Uniform() - 0.5);
  x.brightness = 0.8 + 0.4 * r.Uniform();
  x.background = 70 + int(r.Below(90));
  return x;
}

// Circular distance on the hue circle [0, 1).
double HueDistance(double a, double b) {
  const double d = std::fabs(a - b);
  return std::min(d, 1.0 - d);
}

// Dimension k (an index into CohortDimensionPrompts()) of the behavioural embedding of an object,
// in [0, 1] (before kEmbeddingScale).
double DimensionValue(int k, const Latents& l) {
  auto colour = [&](double centre) {
    return std::max(0.0, 1.0 - HueDistance(l.hue, centre) / 0.12);
  };
  auto shape = [&](int s) { return l.shape == s ? 1.0 : 0.0; };
  switch (k) {
    case 0:
      return colour(0.0);
    case 1:
      return shape(0);
    case 2:
      return colour(0.33);
    case 3:
      return shape(1);
    case 4:
      return colour(0.62);
    case 5:
      return shape(2);
    case 6:
      return std::max(0.0, (l.texture - 0.5) / 0.5);
    case 7:
      return shape(3);
    case 8:
      return colour(0.16);
    case 9:
      return std::max(0.0, (l.size - 0.475) / 0.125);
    case 10:
      return colour(0.8);
    case 11:
      return colour(0.5);
    case 12:
      return std::max(0.0, (0.5 - l.texture) / 0.5);
    case 13:
      return std::max(0.0, (0.475 - l.size) / 0.125);
    case 14:
      return colour(0.0) * shape(0);
    case 15:
      return colour(0.33) * shape(2);
    default:
      return 0.0;
  }
}

// HSV (s, v fixed) -> RGB in [0, 1].
std::array<double, 3> HueToRgb(double h) {
  const double s = 0.85, v = 0.95;
  const double hh = h * 6.0;
  const int sector = int(hh) % 6;
  const double f = hh - std::floor(hh);
  const double p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  switch (sector) {
    case 0:
      return {v, t, p};
    case 1:
      return {q, v, p};
    case 2:
      return {p, v, t};
    case 3:
      return {p, q, v};
    case 4:
      return {t, p, v};
    default:
      return {v, p, q};
  }
}

// Renders exemplar e of an object as RGB bytes (size x size x 3), pixel noise from `r`.
std::vector<uint8_t> Render(const Latents& l, const Exemplar& ex, int64_t size, CounterRng* r) {
  std::vector<uint8_t> px(size * size * 3);
  const std::array<double, 3> rgb = HueToRgb(l.hue);
  const double half = 0.5 * l.size * double(size);
  const double x0 = (l.x + ex.dx) * double(size), y0 = (l.y + ex.dy) * double(size);
  const double cycles = 1.0 + 5.0 * l.texture;  // stripes across the shape
  for (int64_t y = 0; y < size; ++y) {
    for (int64_t x = 0; x < size; ++x) {
      const double dx = x + 0.5 - x0, dy = y + 0.5 - y0;
      bool inside = false;
      switch (l.shape) {
        case 0:
          inside = dx * dx + dy * dy <= half * half;
          break;
        case 1:
          inside = std::fabs(dx) <= half && std::fabs(dy) <= half;
          break;
        case 2:
          inside = dy <= half && dy >= -half && std::fabs(dx) <= 0.5 * (dy + half);
          break;
        default:
          inside = (std::fabs(dx) <= half && std::fabs(dy) <= half / 3) ||
                   (std::fabs(dy) <= half && std::fabs(dx) <= half / 3);
      }
      const double stripe = 0.7 + 0.3 * std::cos(2 * kPi * cycles * (dx + dy) / (2 * half));
      for (int c = 0; c < 3; ++c) {
        const double noise = 12.0 * r->Normal();
        const double v = inside ? 255.0 * rgb[c] * ex.brightness * stripe + noise
                                : double(ex.background) + noise;
        px[(y * size + x) * 3 + c] = uint8_t(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
  return px;
}

// One exemplar of latents `l` and its pixels, both from `stream`: the exemplar's draws first, then
// the pixel noise from the stream's upper half. A cohort image and a pre-training image alike.
struct DrawnImage {
  Exemplar exemplar;
  std::vector<uint8_t> rgb;  // (size, size, 3) row-major
};
DrawnImage DrawImage(uint64_t seed, uint64_t stream, const Latents& l, int64_t size) {
  DrawnImage d{DrawExemplar(CounterRng(seed, stream)), {}};
  CounterRng pixel_rng(seed, stream, 1ull << 32);
  d.rgb = Render(l, d.exemplar, size, &pixel_rng);
  return d;
}

// Low-level visual features of an exemplar as shown (before standardisation).
std::array<double, kFeatures> VisualFeatures(const Latents& l, const Exemplar& ex) {
  static const double kShapeArea[kShapes] = {kPi / 4, 1.0, 0.5, 5.0 / 9.0};  // of the bounding box
  std::array<double, kFeatures> f{};
  f[0] = std::cos(2 * kPi * l.hue);
  f[1] = std::sin(2 * kPi * l.hue);
  f[2] = l.texture;
  f[3] = l.x + ex.dx;
  f[4] = l.y + ex.dy;
  f[5] = l.size;
  f[6] = ex.brightness;
  f[7] = l.size * l.size * kShapeArea[l.shape];
  return f;
}

// Standardises the columns of a (rows, cols) float64 tensor: zero mean, unit sd (population);
// a constant column becomes zero.
at::Tensor Standardise(const at::Tensor& x) {
  at::Tensor c = x - x.mean(0, /*keepdim=*/true);
  at::Tensor sd = c.pow(2).mean(0, /*keepdim=*/true).sqrt();
  return c / at::where(sd > 1e-12, sd, at::ones_like(sd));
}

std::string ObjectImageName(int64_t i, int64_t e) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "obj%04lld_%02lld.png", static_cast<long long>(i),
                static_cast<long long>(e + 1));
  return buf;
}

// The cohort's dimensions as indices into CohortDimensionPrompts(): synth.cohort.dimensions by
// name when set, else the first n_dims. Throws ConfigError for a bad n_dims or an unknown name.
std::vector<int> DimensionIndices(const config::SynthCohortOptions& o) {
  const std::vector<std::string>& all = config::CohortDimensionNames();
  std::vector<int> dims;
  if (o.dimensions.empty()) {
    if (o.n_dims < 1 || o.n_dims > int64_t(all.size()))
      throw ConfigError("synth.cohort.n_dims: expected 1.." + std::to_string(all.size()) +
                        ", got " + std::to_string(o.n_dims));
    for (int k = 0; k < int(o.n_dims); ++k) dims.push_back(k);
    return dims;
  }
  for (const std::string& name : o.dimensions) {
    const auto it = std::find(all.begin(), all.end(), name);
    if (it == all.end())
      throw ConfigError("synth.cohort.dimensions: unknown dimension \"" + name + "\"");
    dims.push_back(int(it - all.begin()));
  }
  return dims;
}

std::string ParticipantLabel(int64_t p) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "sub-%02lld", static_cast<long long>(p + 1));
  return buf;
}

}  // namespace

const std::vector<std::string>& CohortDimensionPrompts() {
  static const std::vector<std::string> prompts = {"red; warm",
                                                   "round; soft",
                                                   "green; natural",
                                                   "angular; boxy",
                                                   "blue; cold",
                                                   "pointy; sharp",
                                                   "striped; busy",
                                                   "crossed; complex",
                                                   "yellow; bright",
                                                   "large; heavy",
                                                   "purple; rich",
                                                   "cyan; watery",
                                                   "plain; smooth",
                                                   "small; light",
                                                   "red and round; fruit-like",
                                                   "green and pointy; leafy"};
  return prompts;
}

const WorldVocabulary& ShapesWorldVocabulary() {
  static const WorldVocabulary v = {
      {"red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink"},
      {"circle", "square", "triangle", "cross"},
      {"wide", "medium", "fine"},
      {"small", "medium-sized", "large"}};
  return v;
}

std::string ShapesWorldCaption(const WorldAttributes& a) {
  const WorldVocabulary& v = ShapesWorldVocabulary();
  return "a " + v.sizes.at(a.size) + " " + v.colours.at(a.colour) + " " + v.shapes.at(a.shape) +
         " with " + v.textures.at(a.texture) + " stripes";
}

WorldSample ShapesWorldSample(uint64_t seed, uint64_t item, int64_t image_size) {
  if (item >= (1ull << 48)) throw ConfigError("ShapesWorldSample: item >= 2^48");
  const Latents l = DrawLatents(seed, int64_t(item), kWorldLatentStream);
  const std::vector<uint8_t> px = DrawImage(seed, kWorldExemplarStream | item, l, image_size).rgb;
  WorldSample s;
  s.rgb = at::from_blob(const_cast<uint8_t*>(px.data()), {image_size, image_size, 3}, at::kByte)
              .clone();
  // The nearest named hue (circular), as the hue centres of the colour dimensions.
  static const double kHueCentres[8] = {0.0, 0.08, 0.16, 0.33, 0.5, 0.62, 0.8, 0.92};
  int best = 0;
  for (int c = 1; c < 8; ++c)
    if (HueDistance(l.hue, kHueCentres[c]) < HueDistance(l.hue, kHueCentres[best])) best = c;
  s.attributes.colour = best;
  s.attributes.shape = l.shape;
  s.attributes.texture = l.texture < 1.0 / 3 ? 0 : l.texture < 2.0 / 3 ? 1 : 2;
  s.attributes.size = l.size < 0.4333 ? 0 : l.size < 0.5167 ? 1 : 2;  // thirds of [0.35, 0.6)
  s.caption = ShapesWorldCaption(s.attributes);
  return s;
}

SynthCohortSummary GenerateSynthCohort(const config::SynthCohortOptions& o, bool force) {
  const int64_t n = o.n_objects, n_ex = o.n_exemplars, size = o.image_size;
  const int64_t n_part = o.n_participants, n_sens = o.n_sensors, n_times = o.n_times;
  const uint64_t seed = uint64_t(o.seed);
  const std::vector<int> dims = DimensionIndices(o);  // indices into CohortDimensionPrompts()
  const int64_t d = int64_t(dims.size());
  const std::vector<std::string> earlier = CheckOutDir(o, force);
  StagedFolder staged(o.out_dir, "synth");
  const fs::path dir(staged.path());
  for (const char* sub : {"images", "behavior", "meg"}) {
    std::error_code ec;
    fs::create_directories(dir / sub, ec);
    if (ec) throw IoError((dir / sub).string() + ": cannot create the folder: " + ec.message());
  }
  SynthCohortSummary out;
  out.out_dir = o.out_dir;
  out.n_objects = n;
  out.n_images = (n + o.behavior_only_objects) * n_ex;
  out.n_dims = d;
  out.n_participants = n_part;
  json files = json::array();
  // Lists a written file in the manifest; `hashed` false for files whose bytes carry a time.
  auto record = [&](const std::string& rel, const std::string& what, bool hashed = true) {
    const std::string bytes = ReadAll(dir / rel);
    files.push_back({{"path", rel},
                     {"bytes", int64_t(bytes.size())},
                     {"fnv1a64", hashed ? json(HashHex(bytes)) : json(nullptr)},
                     {"content", what}});
    out.files.push_back(rel);
  };

  // Objects, exemplars, images, low-level features. Objects 0..n_extra-1 are behaviour-only;
  // the MEG conditions are the last n objects (local MEG index i = object n_extra + i).
  const int64_t n_extra = o.behavior_only_objects;
  const int64_t n_all = n + n_extra;
  std::vector<Latents> latents(n_all);
  std::vector<std::string> names(n_all);
  at::Tensor raw_features = at::zeros({n * n_ex, kFeatures}, at::kDouble);  // (n * E, F), MEG objects
  json objects = json::array();
  for (int64_t i = 0; i < n_all; ++i) {
    latents[i] = DrawLatents(seed, i);
    names[i] = ObjectImageName(i, 0);
    const Latents& l = latents[i];
    const bool meg = i >= n_extra;
    json exemplars = json::array();
    for (int64_t e = 0; e < n_ex; ++e) {
      const DrawnImage drawn =
          DrawImage(seed, kExemplarStream | (uint64_t(i) << 20) | uint64_t(e), l, size);
      const Exemplar& ex = drawn.exemplar;
      const std::vector<uint8_t>& px = drawn.rgb;
      const std::string rel = "images/" + ObjectImageName(i, e);
      if (stbi_write_png((dir / rel).c_str(), int(size), int(size), 3, px.data(), int(size * 3)) ==
          0)
        throw IoError((dir / rel).string() + ": cannot write the PNG");
      record(rel, "image: object " + std::to_string(i) + ", exemplar " + std::to_string(e + 1));
      if (meg) {
        const auto f = VisualFeatures(l, ex);
        for (int k = 0; k < kFeatures; ++k) raw_features[(i - n_extra) * n_ex + e][k] = f[k];
      }
      exemplars.push_back({{"dx", ex.dx},
                           {"dy", ex.dy},
                           {"brightness", ex.brightness},
                           {"background", ex.background}});
    }
    static const char* kShapeNames[kShapes] = {"circle", "square", "triangle", "cross"};
    objects.push_back({{"name", names[i]},
                       {"meg", meg},
                       {"hue", l.hue},
                       {"shape", kShapeNames[l.shape]},
                       {"texture", l.texture},
                       {"x", l.x},
                       {"y", l.y},
                       {"size", l.size},
                       {"exemplars", exemplars}});
  }
  const at::Tensor z_visual = Standardise(raw_features);  // (n * E, F)
  const std::vector<std::string> meg_names(names.begin() + n_extra, names.end());

  // Behaviour: embedding, prompts, triplet RDM, names, held-out names (over every object).
  at::Tensor embedding = at::zeros({n_all, d}, at::kDouble);  // (n_all, d), >= 0
  for (int64_t i = 0; i < n_all; ++i)
    for (int64_t k = 0; k < d; ++k)
      embedding[i][k] = kEmbeddingScale * DimensionValue(dims[k], latents[i]);
  std::vector<std::string> prompts;
  for (int64_t k = 0; k < d; ++k) prompts.push_back(CohortDimensionPrompts()[dims[k]]);
  io::WriteEmbeddingCsv((dir / "behavior/embedding.csv").string(), {names, embedding});
  record("behavior/embedding.csv", "behavioural embedding (n x d), ,image_name,0..d-1");
  WriteText(dir / "behavior/prompts.json", json(prompts).dump(1) + "\n");
  record("behavior/prompts.json", "the d dimension prompts (JSON list)");
  const at::Tensor behavior_rdm = SimulateTripletRdm(embedding, o.choice_repeats, seed,
                                                     kChoiceStream);  // (n_all, n_all)
  io::WriteNpy((dir / "behavior/rdm.npy").string(), behavior_rdm);
  record("behavior/rdm.npy", "triplet-derived behavioural RDM (n x n) float64, rdm_names order");
  io::WriteNameList((dir / "behavior/rdm_names.txt").string(), names);
  record("behavior/rdm_names.txt", "object (exemplar-1 image) names in RDM and CSV order");
  io::WriteNameList((dir / "behavior/heldout.txt").string(),
                    std::vector<std::string>(names.end() - o.n_heldout, names.end()));
  record("behavior/heldout.txt", "held-out object names (the last n_heldout)");

  // Semantic code input: centred embedding scaled to unit mean variance per dimension.
  const at::Tensor meg_embedding = embedding.slice(0, n_extra);  // (n, d)
  at::Tensor z_sem = meg_embedding - meg_embedding.mean(0, /*keepdim=*/true);  // (n, d)
  {
    const double ms = z_sem.pow(2).mean().item<double>();
    if (ms > 1e-12) z_sem = z_sem / std::sqrt(ms);
  }

  // MEG epochs per participant.
  const double step_ms = 1000.0 / o.sfreq;
  std::vector<std::string> channel_names(n_sens);
  for (int64_t s = 0; s < n_sens; ++s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "MEG%03lld", static_cast<long long>(s + 1));
    channel_names[s] = buf;
  }
  const int64_t n_trials = n * o.n_trials;
  out.n_trials_total = n_trials * n_part;
  json participants = json::array();
  for (int64_t p = 0; p < n_part; ++p) {
    CounterRng pr(seed, kParticipantStream | uint64_t(p));
    const double lat_v = o.visual_latency_ms + o.latency_jitter_ms * (2 * pr.Uniform() - 1);
    const double lat_s = o.semantic_latency_ms + o.latency_jitter_ms * (2 * pr.Uniform() - 1);
    const double amp_v = o.visual_amplitude * std::exp(o.amplitude_spread * pr.Normal());
    const double amp_s = o.semantic_amplitude * std::exp(o.amplitude_spread * pr.Normal());
    const at::Tensor w = ParticipantWeights(o, seed, p, d, &pr);  // (d), mean 1
    CounterRng patr(seed, kPatternStream | uint64_t(o.shared_sensor_patterns ? 0 : p));
    at::Tensor a = at::empty({n_sens, kFeatures}, at::kDouble);  // (S, F)
    at::Tensor b = at::empty({n_sens, d}, at::kDouble);          // (S, d)
    for (int64_t s = 0; s < n_sens; ++s)
      for (int64_t k = 0; k < kFeatures; ++k)
        a[s][k] = patr.Normal() / std::sqrt(double(kFeatures));
    for (int64_t s = 0; s < n_sens; ++s)
      for (int64_t k = 0; k < d; ++k) b[s][k] = patr.Normal() / std::sqrt(double(d));
    // Sensor patterns: visual per (object, exemplar), semantic per object.
    const at::Tensor vis = at::mm(z_visual, a.t()).contiguous();   // (n * E, S)
    const at::Tensor sem = at::mm(z_sem * w, b.t()).contiguous();  // (n, S)
    std::vector<double> gv(n_times), gs(n_times);
    for (int64_t t = 0; t < n_times; ++t) {
      const double ms = o.tmin_ms + double(t) * step_ms;
      gv[t] = amp_v * std::exp(-0.5 * std::pow((ms - lat_v) / o.visual_width_ms, 2));
      gs[t] = amp_s * std::exp(-0.5 * std::pow((ms - lat_s) / o.semantic_width_ms, 2));
    }
    // Trials: every object n_trials times (exemplars in turn), in a random order.
    std::vector<int64_t> order(n_trials);
    RandomPermutation(seed, kTrialOrderStream | uint64_t(p), n_trials, order.data());
    io::Epochs ep;
    ep.data = at::empty({n_trials, n_sens, n_times}, at::kFloat);
    ep.condition = at::empty({n_trials}, at::kLong);
    auto da = ep.data.accessor<float, 3>();
    auto ca = ep.condition.accessor<int64_t, 1>();
    auto va = vis.accessor<double, 2>();
    auto sa = sem.accessor<double, 2>();
    for (int64_t r = 0; r < n_trials; ++r) {
      const int64_t slot = order[r];  // slot = repeat * n + object
      const int64_t i = slot % n, e = (slot / n) % n_ex;
      ca[r] = i;
      CounterRng noise(seed, kNoiseStream | (uint64_t(p) << 32) | uint64_t(r));
      for (int64_t s = 0; s < n_sens; ++s)
        for (int64_t t = 0; t < n_times; ++t)
          da[r][s][t] =
              float(gv[t] * va[i * n_ex + e][s] + gs[t] * sa[i][s] + o.noise * noise.Normal());
    }
    ep.condition_names = meg_names;
    ep.channel_names = channel_names;
    ep.sfreq = o.sfreq;
    ep.tmin_ms = o.tmin_ms;
    ep.participant = ParticipantLabel(p);
    const std::string rel = "meg/" + ep.participant + "_epochs.h5";
    io::WriteEpochsH5((dir / rel).string(), ep);
    record(rel, "MEG epochs of " + ep.participant + " (trials x sensors x times)");
    std::vector<double> wv(w.data_ptr<double>(), w.data_ptr<double>() + d);
    participants.push_back({{"label", ep.participant},
                            {"visual_latency_ms", lat_v},
                            {"semantic_latency_ms", lat_s},
                            {"visual_amplitude", amp_v},
                            {"semantic_amplitude", amp_s},
                            {"semantic_weights", wv},
                            {"visual_pattern", TensorJson(a)},
                            {"semantic_pattern", TensorJson(b)}});
  }

  // The MEG RDM stack of every participant (correlation distance of condition means, every
  // sample), as `cliphba meg rdm` writes it.
  config::MegEpochsOptions rdm_options;
  for (int64_t p = 0; p < n_part; ++p) {
    rdm_options.files.push_back((dir / ("meg/" + ParticipantLabel(p) + "_epochs.h5")).string());
    rdm_options.participants.push_back(ParticipantLabel(p));
  }
  rdm_options.method = "correlation";
  rdm_options.out = (dir / "meg/rdm.h5").string();
  const std::string options_text = OptionsJson(o).dump();
  std::vector<std::string> sources;  // the epochs files under their final names
  for (const auto& f : rdm_options.files) sources.push_back(staged.Final(f));
  meg::WriteMegRdms(rdm_options, HashHex(options_text), options_text, &sources);
  record("meg/rdm.h5",
         "MEG RDM stack (P x T x m condensed, correlation method); its provenance attributes carry "
         "the creation time, so its bytes (not its data) differ between runs: not hashed",
         /*hashed=*/false);

  json truth;
  truth["generator"] = "cliphba synth cohort";
  truth["config"] = OptionsJson(o);
  truth["seed"] = o.seed;
  truth["time_axis"] = {{"start_ms", o.tmin_ms}, {"step_ms", step_ms}, {"size", n_times}};
  truth["model"] =
      "x[r,:,t] = av_p g(t; Lv_p, visual_width) A_p zv(i,e) + as_p g(t; Ls_p, semantic_width) "
      "B_p (w_p * zs(i)) + noise N(0,1); g(t; L, s) = exp(-(t - L)^2 / (2 s^2)); zv: standardised "
      "visual features of the shown exemplar (r-th repeat of object i shows exemplar r mod E); "
      "zs: embedding centred over the MEG objects, divided by its root mean square; i indexes "
      "the MEG objects (the last n_objects of objects[])";
  truth["embedding_scale"] = kEmbeddingScale;
  truth["dimension_prompts"] = prompts;
  if (o.cohort_weight_spread > 0) {  // already in every participant's semantic_weights
    const at::Tensor c = CohortWeightProfile(o, seed, d);
    truth["cohort_semantic_weights"] =
        std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + d);
  }
  truth["visual_feature_names"] =
      std::vector<std::string>(std::begin(kFeatureNames), std::end(kFeatureNames));
  truth["visual_features"] = TensorJson(z_visual);  // (n * E, F), row i * E + e, MEG object i
  truth["objects"] = objects;
  truth["participants"] = participants;
  WriteText(dir / "ground_truth.json", truth.dump(1) + "\n");
  record("ground_truth.json", "planted latencies, amplitudes, weights, patterns and latents");

  json manifest;
  manifest["generator"] = "cliphba synth cohort";
  manifest["config"] = OptionsJson(o);
  manifest["n_objects"] = n;
  manifest["n_exemplars"] = n_ex;
  manifest["n_participants"] = n_part;
  manifest["participants"] = json::array();
  for (int64_t p = 0; p < n_part; ++p) manifest["participants"].push_back(ParticipantLabel(p));
  manifest["time_axis"] = truth["time_axis"];
  manifest["layout"] = {
      {"images", "images/objNNNN_EE.png: object NNNN, exemplar EE (01 is the named image)"},
      {"behavior", "embedding.csv, prompts.json, rdm.npy + rdm_names.txt, heldout.txt"},
      {"meg", "sub-PP_epochs.h5 (CONTRACTS epochs format), rdm.h5 (CONTRACTS MEG RDM format)"},
      {"ground_truth", "ground_truth.json"}};
  manifest["files"] = files;
  WriteText(dir / "cohort.json", manifest.dump(1) + "\n");
  out.files.push_back("cohort.json");
  staged.Commit(earlier);
  return out;
}

}  // namespace cliphba::data
