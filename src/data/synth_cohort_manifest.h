// The synthetic cohort's folder files (synth_cohort.cc): the options as the manifest records
// them, JSON of small tensors, and the check of the output folder. Internal to cliphba_data.
#pragma once

#include <ATen/ATen.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/options.h"

namespace cliphba::data::detail {

// The whole file at `path` as bytes ("" when it cannot be read).
std::string ReadAll(const std::filesystem::path& path);

// Writes text atomically (io/text_file.h: path.partial, fsync, rename).
void WriteText(const std::filesystem::path& path, const std::string& text);

// The cohort's options as cohort.json and ground_truth.json record them (and compare them).
nlohmann::json OptionsJson(const config::SynthCohortOptions& o);

// A (rows, cols) tensor as nested lists of float64.
nlohmann::json TensorJson(const at::Tensor& t);

// Refuses a folder holding anything but a cohort of the same options (unless force). Nothing is
// removed here: the cohort is written into a staging folder and replaces the earlier one's files
// only when complete (StagedFolder). Returns the files the earlier cohort's manifest lists
// (relative paths), which the commit removes where this cohort does not write them again.
// Throws ConfigError naming synth.cohort.out_dir.
std::vector<std::string> CheckOutDir(const config::SynthCohortOptions& o, bool force);

}  // namespace cliphba::data::detail
