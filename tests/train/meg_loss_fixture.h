// The reference PearsonMSELongLoss of a fixture case: the weights and initial-loss normalisers
// under the reference's names (fixtures/clip/meg_loss summary entries, meg_head summary "loss").
#pragma once

#include <nlohmann/json.hpp>

#include "train/meg_loss.h"

namespace cliphba::train::testing {

inline PearsonMSELongLoss LossFromFixture(const nlohmann::json& j) {
  PearsonMSELongLoss loss;
  loss.p_weight = j.at("p_weight").get<double>();
  loss.m_weight = j.at("m_weight").get<double>();
  loss.g_weight = j.at("g_weight").get<double>();
  loss.p0 = j.at("initial_pearson_loss").get<double>();
  loss.m0 = j.at("initial_mse_loss").get<double>();
  loss.g0 = j.at("initial_generalization_loss").get<double>();
  return loss;
}

}  // namespace cliphba::train::testing
