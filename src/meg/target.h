// What the MEG stages take from an RDM stack besides its values: which participants a list names,
// and how values are rescaled. One rule for training, evaluation and the alignment stage, so a
// stack is read file -> meg/ -> caller without a second reader or a second rescale.
//
// Rescale (meg.rdm.rescale): "minmax" maps the stack by the WHOLE file's minimum and maximum over
// every participant, timepoint and entry (the reference's load_rdm on the full (P, T, n, n)
// array); "none" leaves it as read. Spearman and Pearson alignment are unchanged by it per
// participant; the MSE loss term and noise ceilings (means over participants) are not.
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "config/options.h"
#include "meg/rdm_stack.h"

namespace cliphba::meg {

// Indices of `wanted` in stack.participant_labels(): each entry is a label or, if no label equals
// it, a 0-based index. Empty `wanted` = every participant. `key` names the config key in messages.
// Throws DataError (unknown entry; the message lists the labels) or ConfigError (listed twice).
std::vector<int64_t> ParticipantIndices(const RdmStack& stack,
                                        const std::vector<std::string>& wanted,
                                        const std::string& key);

// The rescale of a stack's values (see above). Apply: (T, k, k) -> RescaleMinMax with the range
// (float64 for a float64 stack, else float32), or the stack as is under "none".
class RdmScale {
 public:
  // The whole file's range when `rule` is minmax (streams every participant and timepoint once).
  // Throws DataError if a minmax stack is constant.
  static RdmScale ForFile(const RdmStack& stack, config::RdmRescale rule);
  // The same rule with a range the caller computed (e.g. ValueRange of timepoint shards combined
  // over MPI ranks). Throws DataError if a minmax range is empty (max <= min).
  static RdmScale FromRange(config::RdmRescale rule, const RdmStack::Range& range,
                            const std::string& source);
  at::Tensor Apply(const at::Tensor& stack) const;

 private:
  bool active_ = false;
  RdmStack::Range range_;
};

}  // namespace cliphba::meg
