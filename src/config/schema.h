// Internal to the config module: the description of one YAML key (Field), the constructors the
// schema is written with (Str, Choice, Int, Seed, Num, Bool, List), and one function per section
// that appends that section's keys. Defined in schema_run.cc, schema_data.cc and schema_train.cc;
// config.cc calls them in documentation order. Not part of the public API.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "config/options.h"

namespace cliphba::config::detail {

// kChoice: an enum member, written in YAML (and dumped) as the string Name(value); its type reads
// "string" everywhere a user sees it.
enum class Kind { kString, kChoice, kInteger, kNumber, kBoolean, kStringList };

inline constexpr double kInf = std::numeric_limits<double>::infinity();

// One key: where it lives in Config, its type, range and documentation.
struct Field {
  std::string path;
  Kind kind;
  void* target;
  std::string doc;
  double min = -kInf;
  double max = kInf;
  std::vector<std::string> choices;  // allowed values (strings and list elements); empty = any
  // kChoice only: choice_values[i] is the enum value (as int64) of choices[i]; choice_name reads
  // the enum at target as its string, set_choice stores an enum value (as int64) at target.
  std::vector<int64_t> choice_values = {};
  const char* (*choice_name)(const void* target) = nullptr;
  void (*set_choice)(void* target, int64_t value) = nullptr;
};

inline Field Str(std::string path, std::string* t, std::string doc,
                 std::vector<std::string> choices = {}) {
  return {std::move(path), Kind::kString, t, std::move(doc), -kInf, kInf, std::move(choices)};
}
// An enum member: YAML accepts Name(v) for each v of `values` (in this order in messages).
template <typename E>
Field Choice(std::string path, E* t, std::string doc, std::initializer_list<E> values) {
  Field f = {std::move(path), Kind::kChoice, t, std::move(doc), -kInf, kInf, {}};
  for (E v : values) {
    f.choices.push_back(Name(v));
    f.choice_values.push_back(static_cast<int64_t>(v));
  }
  f.choice_name = [](const void* p) -> const char* { return Name(*static_cast<const E*>(p)); };
  f.set_choice = [](void* p, int64_t v) { *static_cast<E*>(p) = static_cast<E>(v); };
  return f;
}
inline Field Int(std::string path, int64_t* t, std::string doc, double min, double max = kInf) {
  return {std::move(path), Kind::kInteger, t, std::move(doc), min, max, {}};
}
// A random seed: any integer a double holds exactly (0 .. 2^53); doc + " (0 .. 2^53)".
inline Field Seed(std::string path, int64_t* t, const std::string& doc = "random seed") {
  return Int(std::move(path), t, doc + " (0 .. 2^53)", 0, 9007199254740992.0);
}
inline Field Num(std::string path, double* t, std::string doc, double min, double max = kInf) {
  return {std::move(path), Kind::kNumber, t, std::move(doc), min, max, {}};
}
inline Field Bool(std::string path, bool* t, std::string doc) {
  return {std::move(path), Kind::kBoolean, t, std::move(doc), -kInf, kInf, {}};
}
inline Field List(std::string path, std::vector<std::string>* t, std::string doc,
                  std::vector<std::string> choices = {}) {
  return {std::move(path), Kind::kStringList, t, std::move(doc), -kInf, kInf, std::move(choices)};
}

// Each appends the keys of one section to `*fields`, bound to the members of `*o` (which must
// outlive the fields), in documentation order.

// schema_run.cc
void AddLogKeys(LogOptions* o, std::vector<Field>* fields);          // log.*
void AddRuntimeKeys(RuntimeOptions* o, std::vector<Field>* fields);  // runtime.*
void AddPermuteKeys(PermuteOptions* o,
                    std::vector<Field>* fields);             // permute.* (+ mantel, cluster)
void AddRunKeys(RunOptions* o, std::vector<Field>* fields);  // run.*

// schema_data.cc
void AddSynthBehaviorKeys(SynthBehaviorOptions* o, std::vector<Field>* fields);  // synth.behavior.*
void AddSynthImagesKeys(SynthImagesOptions* o, std::vector<Field>* fields);      // synth.images.*
void AddSynthCohortKeys(SynthCohortOptions* o, std::vector<Field>* fields);      // synth.cohort.*
void AddSynthModelKeys(SynthModelOptions* o, std::vector<Field>* fields);        // synth.model.*
void AddRsaBehaviorKeys(RsaBehaviorOptions* o, std::vector<Field>* fields);      // rsa.behavior.*
void AddMegRdmKeys(MegRdmOptions* o, std::vector<Field>* fields);                // meg.rdm.*
void AddMegEpochsKeys(MegEpochsOptions* o, std::vector<Field>* fields);          // meg.epochs.*

// schema_train.cc
void AddTrainBehaviorKeys(TrainBehaviorOptions* o, std::vector<Field>* fields);  // train.behavior.*
void AddTrainMegKeys(TrainMegOptions* o, std::vector<Field>* fields);            // train.meg.*

}  // namespace cliphba::config::detail
