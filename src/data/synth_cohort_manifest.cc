#include "data/synth_cohort_manifest.h"

#include <fstream>
#include <iterator>
#include <system_error>

#include "core/error.h"
#include "io/text_file.h"

namespace cliphba::data::detail {

namespace fs = std::filesystem;
using nlohmann::json;

std::string ReadAll(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteText(const fs::path& path, const std::string& text) {
  io::WriteTextFileAtomically(path.string(), text);
}

json OptionsJson(const config::SynthCohortOptions& o) {
  json j{{"n_objects", o.n_objects},
         {"behavior_only_objects", o.behavior_only_objects},
         {"dimensions", o.dimensions},
         {"n_exemplars", o.n_exemplars},
         {"image_size", o.image_size},
         {"n_dims", o.n_dims},
         {"n_heldout", o.n_heldout},
         {"choice_repeats", o.choice_repeats},
         {"n_participants", o.n_participants},
         {"n_sensors", o.n_sensors},
         {"n_times", o.n_times},
         {"sfreq", o.sfreq},
         {"tmin_ms", o.tmin_ms},
         {"n_trials", o.n_trials},
         {"visual_latency_ms", o.visual_latency_ms},
         {"semantic_latency_ms", o.semantic_latency_ms},
         {"latency_jitter_ms", o.latency_jitter_ms},
         {"visual_width_ms", o.visual_width_ms},
         {"semantic_width_ms", o.semantic_width_ms},
         {"visual_amplitude", o.visual_amplitude},
         {"semantic_amplitude", o.semantic_amplitude},
         {"weight_spread", o.weight_spread},
         {"amplitude_spread", o.amplitude_spread},
         {"noise", o.noise},
         {"seed", o.seed}};
  // Recorded only when not the default, so a cohort made before the key existed still matches.
  if (o.weight_design != config::WeightDesign::kLognormal)
    j["weight_design"] = config::Name(o.weight_design);
  if (o.cohort_weight_spread != 0) j["cohort_weight_spread"] = o.cohort_weight_spread;
  if (o.shared_sensor_patterns) j["shared_sensor_patterns"] = true;
  return j;
}

json TensorJson(const at::Tensor& t) {
  json rows = json::array();
  at::Tensor c = t.to(at::kDouble).contiguous();
  auto a = c.accessor<double, 2>();
  for (int64_t i = 0; i < c.size(0); ++i) {
    json row = json::array();
    for (int64_t j = 0; j < c.size(1); ++j) row.push_back(a[i][j]);
    rows.push_back(row);
  }
  return rows;
}

std::vector<std::string> CheckOutDir(const config::SynthCohortOptions& o, bool force) {
  const fs::path dir(o.out_dir);
  std::error_code ec;
  if (fs::exists(dir, ec) && !fs::is_directory(dir, ec))
    throw ConfigError(o.out_dir + ": synth.cohort.out_dir exists and is not a folder");
  const fs::path manifest = dir / "cohort.json";
  json previous;
  if (fs::exists(manifest, ec)) {
    try {
      previous = json::parse(ReadAll(manifest));
    } catch (const json::exception&) {
      previous = json();
    }
  }
  const bool non_empty = fs::exists(dir, ec) && !fs::is_empty(dir, ec);
  const bool same =
      previous.is_object() && previous.contains("config") && previous["config"] == OptionsJson(o);
  if (non_empty && !same && !force) {
    throw ConfigError(o.out_dir + ": synth.cohort.out_dir is not empty and " +
                      (previous.is_object()
                           ? std::string("holds a cohort made with other settings")
                           : std::string("holds no finished cohort (no cohort.json)")) +
                      "; pass --force to write over it, or choose another synth.cohort.out_dir");
  }
  std::vector<std::string> earlier;
  if (previous.is_object() && previous.contains("files")) {
    for (const auto& f : previous["files"]) {
      if (!f.is_object() || !f.contains("path") || !f["path"].is_string()) continue;
      const fs::path rel(f["path"].get<std::string>());
      if (rel.is_absolute() || rel.string().find("..") != std::string::npos) continue;
      earlier.push_back(rel.string());
    }
  }
  return earlier;
}

}  // namespace cliphba::data::detail
