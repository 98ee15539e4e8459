#include "config/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <map>
#include <sstream>

#include "config/schema.h"
#include "core/error.h"
#include "core/hash.h"

namespace cliphba::config {

namespace {

using detail::Field;
using detail::Kind;
using detail::kInf;

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kString:
    case Kind::kChoice:
      return "string";
    case Kind::kInteger:
      return "integer";
    case Kind::kNumber:
      return "number";
    case Kind::kBoolean:
      return "boolean";
    case Kind::kStringList:
      return "list of strings";
  }
  return "?";
}

// The schema, bound to the members of `c`. Declaration order = documentation order: the sections
// in this order are the order of `cliphba config`, --json and DumpConfig (and so of ConfigHash).
std::vector<Field> Schema(Config* c) {
  std::vector<Field> fields;
  detail::AddLogKeys(&c->log, &fields);
  detail::AddRuntimeKeys(&c->runtime, &fields);
  detail::AddSynthBehaviorKeys(&c->synth_behavior, &fields);
  detail::AddSynthImagesKeys(&c->synth_images, &fields);
  detail::AddSynthCohortKeys(&c->synth_cohort, &fields);
  detail::AddSynthModelKeys(&c->synth_model, &fields);
  detail::AddRsaBehaviorKeys(&c->rsa_behavior, &fields);
  detail::AddPermuteKeys(&c->permute, &fields);
  detail::AddTrainBehaviorKeys(&c->train_behavior, &fields);
  detail::AddRunKeys(&c->run, &fields);
  detail::AddMegRdmKeys(&c->meg_rdm, &fields);
  detail::AddMegEpochsKeys(&c->meg_epochs, &fields);
  detail::AddTrainMegKeys(&c->train_meg, &fields);
  return fields;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char ch : s) {
    if (ch == '"' || ch == '\\') out += '\\';
    out += ch;
  }
  return out + "\"";
}

std::string FormatNumber(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  std::string s = buf;
  // Shortest text that reads back to the same double, for readability.
  for (int precision = 1; precision < 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) {
      s = buf;
      break;
    }
  }
  if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
  return s;
}

std::string ValueText(const Field& f) {
  switch (f.kind) {
    case Kind::kString:
      return Quote(*static_cast<std::string*>(f.target));
    case Kind::kChoice:
      return Quote(f.choice_name(f.target));
    case Kind::kInteger:
      return std::to_string(*static_cast<int64_t*>(f.target));
    case Kind::kNumber:
      return FormatNumber(*static_cast<double*>(f.target));
    case Kind::kBoolean:
      return *static_cast<bool*>(f.target) ? "true" : "false";
    case Kind::kStringList: {
      std::string out = "[";
      for (const auto& s : *static_cast<std::vector<std::string>*>(f.target))
        out += (out.size() > 1 ? ", " : "") + Quote(s);
      return out + "]";
    }
  }
  return "";
}

size_t EditDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string Suggestion(const std::string& path, const std::vector<Field>& fields) {
  std::string best;
  size_t best_d = std::numeric_limits<size_t>::max();
  auto consider = [&](const std::string& candidate) {
    size_t d = EditDistance(path, candidate);
    if (d < best_d) best_d = d, best = candidate;
  };
  for (const Field& f : fields) {
    consider(f.path);
    // Also every section prefix ("rsa.behavior"), for misspelt sections.
    for (size_t dot = f.path.find('.'); dot != std::string::npos; dot = f.path.find('.', dot + 1))
      consider(f.path.substr(0, dot));
  }
  if (best_d <= std::max<size_t>(3, path.size() / 3)) return "; did you mean '" + best + "'?";
  return "; see configs/reference.yaml for every key";
}

struct Source {
  std::string name;  // file path, "--set" or the key flag (e.g. "--tail")
  std::vector<std::string> lines;  // the file's lines (files only): for the quote check
  std::string Where(const YAML::Mark& mark) const {
    if (name.rfind("--", 0) == 0 || mark.is_null()) return name;
    return name + ":" + std::to_string(mark.line + 1) + ":" + std::to_string(mark.column + 1);
  }
};

[[noreturn]] void Fail(const Source& src, const YAML::Mark& mark, const std::string& path,
                       const std::string& what) {
  throw ConfigError(src.Where(mark) + ": " + path + ": " + what);
}

std::string Describe(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsSequence()) return "a list";
  if (node.IsMap()) return "a mapping";
  return "nothing (null)";
}

void CheckChoice(const Field& f, const std::string& value, const Source& src,
                 const YAML::Mark& mark) {
  if (f.choices.empty() || std::find(f.choices.begin(), f.choices.end(), value) != f.choices.end())
    return;
  std::string list;
  for (const auto& c : f.choices) list += (list.empty() ? "" : ", ") + c;
  Fail(src, mark, f.path, "expected one of " + list + ", got '" + value + "'");
}

std::string RangeText(const Field& f) {
  std::string lo = f.kind == Kind::kInteger ? std::to_string(int64_t(f.min)) : FormatNumber(f.min);
  std::string hi = f.kind == Kind::kInteger ? std::to_string(int64_t(f.max)) : FormatNumber(f.max);
  if (f.max == kInf) return ">= " + lo;
  return "in [" + lo + ", " + hi + "]";
}

// Assigns `node` (a YAML value) to field `f`. raw_string: take a --set string value verbatim.
void Assign(const Field& f, const YAML::Node& node, const Source& src, const char* raw_string) {
  const YAML::Mark mark = node.Mark();
  const std::string expected =
      std::string("expected ") + (f.kind == Kind::kInteger ? "an " : "a ") + KindName(f.kind);
  if (f.kind == Kind::kStringList) {
    if (!node.IsSequence()) Fail(src, mark, f.path, expected + ", got " + Describe(node));
    std::vector<std::string> values;
    for (const auto& item : node) {
      if (!item.IsScalar()) Fail(src, item.Mark(), f.path, "expected a list of strings");
      CheckChoice(f, item.Scalar(), src, item.Mark());
      values.push_back(item.Scalar());
    }
    *static_cast<std::vector<std::string>*>(f.target) = values;
    return;
  }
  if (raw_string == nullptr && !node.IsScalar())
    Fail(src, mark, f.path, expected + ", got " + Describe(node));
  const std::string text = raw_string ? raw_string : node.Scalar();
  switch (f.kind) {
    case Kind::kString:
      CheckChoice(f, text, src, mark);
      *static_cast<std::string*>(f.target) = text;
      return;
    case Kind::kChoice:
      CheckChoice(f, text, src, mark);
      for (size_t i = 0; i < f.choices.size(); ++i)
        if (f.choices[i] == text) f.set_choice(f.target, f.choice_values[i]);
      return;
    case Kind::kBoolean: {
      static const std::vector<std::string> t = {"true", "True", "TRUE", "yes", "on"};
      static const std::vector<std::string> fl = {"false", "False", "FALSE", "no", "off"};
      if (std::find(t.begin(), t.end(), text) != t.end()) {
        *static_cast<bool*>(f.target) = true;
      } else if (std::find(fl.begin(), fl.end(), text) != fl.end()) {
        *static_cast<bool*>(f.target) = false;
      } else {
        Fail(src, mark, f.path, "expected a boolean (true or false), got '" + text + "'");
      }
      return;
    }
    case Kind::kInteger:
    case Kind::kNumber: {
      char* end = nullptr;
      errno = 0;
      double v = 0;
      if (f.kind == Kind::kInteger) {
        long long iv = std::strtoll(text.c_str(), &end, 10);
        if (text.empty() || *end != '\0' || errno == ERANGE)
          Fail(src, mark, f.path, "expected an integer " + RangeText(f) + ", got '" + text + "'");
        v = double(iv);
        if (v < f.min || v > f.max)
          Fail(src, mark, f.path, "expected an integer " + RangeText(f) + ", got " + text);
        *static_cast<int64_t*>(f.target) = iv;
      } else {
        v = std::strtod(text.c_str(), &end);
        if (text.empty() || *end != '\0' || !std::isfinite(v))
          Fail(src, mark, f.path,
               "expected a finite number " + RangeText(f) + ", got '" + text + "'");
        if (v < f.min || v > f.max)
          Fail(src, mark, f.path, "expected a number " + RangeText(f) + ", got " + text);
        *static_cast<double*>(f.target) = v;
      }
      return;
    }
    case Kind::kStringList:
      break;
  }
}

const Field* Find(const std::vector<Field>& fields, const std::string& path) {
  for (const Field& f : fields)
    if (f.path == path) return &f;
  return nullptr;
}

bool IsSection(const std::vector<Field>& fields, const std::string& path) {
  for (const Field& f : fields)
    if (f.path.compare(0, path.size() + 1, path + ".") == 0) return true;
  return false;
}

// A quoted value must close on its own line. YAML lets a double- or single-quoted scalar run on
// over line breaks, so a forgotten closing quote silently swallows the next lines (and their keys)
// into the value; no cliphba value needs a line break, so such a value is refused, naming where
// the quote opened. Plain scalars and values of --set are not concerned.
void CheckQuoteCloses(const YAML::Node& node, const Source& src, const std::string& path) {
  if (node.IsSequence()) {
    for (const auto& item : node) CheckQuoteCloses(item, src, path);
    return;
  }
  if (!node.IsScalar() || src.lines.empty()) return;
  const YAML::Mark m = node.Mark();
  if (m.is_null() || m.line < 0 || size_t(m.line) >= src.lines.size()) return;
  const std::string& line = src.lines[size_t(m.line)];
  const size_t at = size_t(m.column);
  if (at >= line.size() || (line[at] != '"' && line[at] != '\'')) return;  // not quoted
  const char q = line[at];
  for (size_t i = at + 1; i < line.size(); ++i) {
    if (q == '"' && line[i] == '\\') {
      ++i;  // an escape
    } else if (line[i] == q) {
      if (q == '\'' && i + 1 < line.size() && line[i + 1] == '\'') {
        ++i;  // '' inside single quotes
      } else {
        return;  // closed on its line
      }
    }
  }
  Fail(src, m, path,
       std::string("the ") + (q == '"' ? "double" : "single") +
           " quote opened here does not close on this line (an unterminated quote would take the "
           "following lines into the value)");
}

// Keys of one source set so far (full path -> where): a key given twice is refused, naming both
// places (yaml-cpp would silently keep one of them). A section given twice (e.g. `train:` twice) is
// merged, as DumpConfig writes the sections; only its keys must be unique.
using Assigned = std::map<std::string, YAML::Mark>;

void Walk(const YAML::Node& map, const std::string& prefix, const std::vector<Field>& fields,
          const Source& src, Assigned* assigned) {
  for (const auto& kv : map) {
    const std::string key = kv.first.Scalar();
    const std::string path = prefix.empty() ? key : prefix + "." + key;
    if (const Field* f = Find(fields, path)) {
      auto [it, fresh] = assigned->emplace(path, kv.first.Mark());
      if (!fresh)
        Fail(src, kv.first.Mark(), path,
             "duplicate key (first at " + src.Where(it->second) + "): remove one of them");
      CheckQuoteCloses(kv.second, src, path);
      Assign(*f, kv.second, src, nullptr);
    } else if (IsSection(fields, path)) {
      if (kv.second.IsNull()) continue;  // an empty section
      if (!kv.second.IsMap())
        Fail(src, kv.second.Mark(), path, "expected a mapping of keys, got " + Describe(kv.second));
      Walk(kv.second, path, fields, src, assigned);
    } else {
      Fail(src, kv.first.Mark(), path, "unknown key" + Suggestion(path, fields));
    }
  }
}

void ValidateCrossField(const Config& c) {
  if (c.synth_behavior.n_active > c.synth_behavior.n_dims) {
    throw ConfigError("synth.behavior.n_active (" + std::to_string(c.synth_behavior.n_active) +
                      ") must not exceed synth.behavior.n_dims (" +
                      std::to_string(c.synth_behavior.n_dims) + ")");
  }
  {
    const auto& m = c.synth_model;
    if (m.vision_width % 64 != 0 || m.text_width % 64 != 0)
      throw ConfigError("synth.model.vision_width (" + std::to_string(m.vision_width) +
                        ") and synth.model.text_width (" + std::to_string(m.text_width) +
                        ") must be multiples of 64 (CLIP's heads are width / 64)");
    if (m.image_resolution % m.vision_patch_size != 0)
      throw ConfigError("synth.model.image_resolution (" + std::to_string(m.image_resolution) +
                        ") must be a multiple of synth.model.vision_patch_size (" +
                        std::to_string(m.vision_patch_size) + ")");
    if (m.pretrain_steps > 0 && m.vocab.empty())
      throw ConfigError("synth.model.vocab is empty: pre-training (synth.model.pretrain_steps " +
                        std::to_string(m.pretrain_steps) +
                        ") tokenises captions with the CLIP BPE merges file; name it");
    if (m.pretrain_steps > 0 && m.vocab_size != 49408)
      throw ConfigError("synth.model.vocab_size (" + std::to_string(m.vocab_size) +
                        ") must be 49408 with synth.model.pretrain_steps > 0: the captions are "
                        "tokenised with the real CLIP BPE ids");
  }
  if (c.synth_images.n_heldout >= c.synth_images.n_images)
    throw ConfigError("synth.images.n_heldout (" + std::to_string(c.synth_images.n_heldout) +
                      ") must be smaller than synth.images.n_images (" +
                      std::to_string(c.synth_images.n_images) + ")");
  if (c.train_behavior.reference_rdm.empty() != c.train_behavior.reference_rdm_names.empty())
    throw ConfigError(
        "train.behavior.reference_rdm and train.behavior.reference_rdm_names go together: set "
        "both or neither");
  {
    const SynthCohortOptions& sc = c.synth_cohort;
    const int64_t all = sc.n_objects + sc.behavior_only_objects;
    if (sc.n_heldout >= all)
      throw ConfigError("synth.cohort.n_heldout (" + std::to_string(sc.n_heldout) +
                        ") must be smaller than synth.cohort.n_objects + "
                        "synth.cohort.behavior_only_objects (" + std::to_string(all) + ")");
    for (size_t i = 0; i < sc.dimensions.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (sc.dimensions[i] == sc.dimensions[j])
          throw ConfigError("synth.cohort.dimensions: \"" + sc.dimensions[i] +
                            "\" is listed twice; each dimension may appear once");
    if (all > 400)
      throw ConfigError("synth.cohort.n_objects + synth.cohort.behavior_only_objects (" +
                        std::to_string(all) + ") must be at most 400 (every triplet is simulated)");
  }
  if (c.rsa_behavior.metrics.empty())
    throw ConfigError("rsa.behavior.metrics: expected at least one RDM type");
  if (c.meg_epochs.tmin_ms > c.meg_epochs.tmax_ms)
    throw ConfigError("meg.epochs.tmin_ms must not exceed meg.epochs.tmax_ms");
  if (!c.meg_epochs.participants.empty() &&
      c.meg_epochs.participants.size() != c.meg_epochs.files.size())
    throw ConfigError("meg.epochs.participants: expected one label per file in meg.epochs.files (" +
                      std::to_string(c.meg_epochs.files.size()) + "), got " +
                      std::to_string(c.meg_epochs.participants.size()));
}

}  // namespace

Config LoadConfig(const std::string& file, const std::vector<std::string>& overrides) {
  Config config;
  std::vector<Field> fields = Schema(&config);
  if (!file.empty()) {
    std::ifstream probe(file);
    if (!probe) throw IoError(file + ": cannot open the configuration file");
    YAML::Node root;
    try {
      root = YAML::LoadFile(file);
    } catch (const YAML::ParserException& e) {
      throw ConfigError(file + ":" + std::to_string(e.mark.line + 1) + ":" +
                        std::to_string(e.mark.column + 1) + ": malformed YAML: " + e.msg);
    } catch (const YAML::Exception& e) {
      throw ConfigError(file + ": cannot parse YAML: " + e.what());
    }
    Source src{file, {}};
    {
      std::ifstream in(file);
      for (std::string line; std::getline(in, line);) src.lines.push_back(line);
    }
    if (root.IsMap()) {
      Assigned assigned;
      Walk(root, "", fields, src, &assigned);
    } else if (!root.IsNull()) {
      Fail(src, root.Mark(), "(top level)", "expected a mapping of keys, got " + Describe(root));
    }
  }
  for (const std::string& given : overrides) {
    // "--flag:key=value" is a key flag's override (apps/): its errors name the flag, not --set.
    Source set{"--set", {}};
    std::string o = given;
    if (o.rfind("--", 0) == 0 && o.find(':') != std::string::npos && o.find(':') < o.find('=')) {
      set.name = o.substr(0, o.find(':'));
      o = o.substr(o.find(':') + 1);
    }
    size_t eq = o.find('=');
    if (eq == std::string::npos || eq == 0)
      throw ConfigError("--set '" + o + "': expected key.path=value");
    const std::string path = o.substr(0, eq), value = o.substr(eq + 1);
    const Field* f = Find(fields, path);
    if (f == nullptr && IsSection(fields, path)) {
      std::string example;
      for (const Field& g : fields)
        if (g.path.compare(0, path.size() + 1, path + ".") == 0) {
          example = g.path;
          break;
        }
      Fail(set, YAML::Mark::null_mark(), path,
           "is a section, not a key: set one of its keys (e.g. " + example +
               "=...); `cliphba config` lists them");
    }
    if (f == nullptr)
      Fail(set, YAML::Mark::null_mark(), path, "unknown key" + Suggestion(path, fields));
    if (f->kind == Kind::kString || f->kind == Kind::kChoice) {
      Assign(*f, YAML::Node(), set, value.c_str());
      continue;
    }
    YAML::Node node;
    try {
      node = YAML::Load(value);
    } catch (const YAML::Exception& e) {
      Fail(set, YAML::Mark::null_mark(), path, "cannot parse value '" + value + "' as YAML");
    }
    if (f->kind != Kind::kStringList && node.IsScalar()) {
      Assign(*f, node, set, value.c_str());
    } else {
      Assign(*f, node, set, nullptr);
    }
  }
  ValidateCrossField(config);
  return config;
}

std::vector<KeyInfo> ConfigKeys() {
  Config defaults;
  std::vector<KeyInfo> keys;
  for (const Field& f : Schema(&defaults))
    keys.push_back({f.path, KindName(f.kind), ValueText(f), f.doc});
  return keys;
}

std::string DumpConfig(const Config& config) {
  Config copy = config;
  std::ostringstream out;
  std::vector<std::string> open;  // the section path currently open
  for (const Field& f : Schema(&copy)) {
    std::vector<std::string> parts;
    std::stringstream ss(f.path);
    for (std::string p; std::getline(ss, p, '.');) parts.push_back(p);
    size_t common = 0;
    while (common < open.size() && common + 1 < parts.size() && open[common] == parts[common])
      ++common;
    open.resize(common);
    for (size_t i = common; i + 1 < parts.size(); ++i) {
      out << std::string(2 * i, ' ') << parts[i] << ":\n";
      open.push_back(parts[i]);
    }
    out << std::string(2 * (parts.size() - 1), ' ') << parts.back() << ": " << ValueText(f) << "\n";
  }
  return out.str();
}

std::string ConfigHash(const Config& config) { return HashHex(DumpConfig(config)); }

namespace {
template <typename Options>
void ResetNonResultKeysOf(Options* o) {
  const Options d;
  o->loader_threads = d.loader_threads;
  o->progress_seconds = d.progress_seconds;
  o->dist_backend = d.dist_backend;
  o->dist_bucket_mb = d.dist_bucket_mb;
  o->labels = d.labels;  // names the output columns of `predict`; changes no number
}
}  // namespace

void ResetNonResultKeys(TrainBehaviorOptions* o) { ResetNonResultKeysOf(o); }
void ResetNonResultKeys(TrainMegOptions* o) { ResetNonResultKeysOf(o); }

std::string GetConfigValue(const Config& config, const std::string& key) {
  YAML::Node node = YAML::Load(DumpConfig(config));
  std::string walked;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) {
    walked += (walked.empty() ? "" : ".") + part;
    if (part.empty() || !node.IsMap() || !node[part])
      throw ConfigError("cliphba config --get: unknown key '" + key + "' (no '" + walked +
                        "'; `cliphba config` lists every key)");
    node.reset(node[part]);  // reset, not operator=: assignment would write into the tree
  }
  if (key.empty()) throw ConfigError("cliphba config --get: empty key");
  std::string out;
  if (node.IsScalar()) return node.Scalar() + "\n";
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) {
      YAML::Emitter e;
      e << item;
      out += (item.IsScalar() ? item.Scalar() : std::string(e.c_str())) + "\n";
    }
    return out;
  }
  if (node.IsNull()) return "\n";
  YAML::Emitter e;
  e << node;
  return std::string(e.c_str()) + "\n";
}

}  // namespace cliphba::config
