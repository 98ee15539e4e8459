// Participant lookup and the rescale rule of MEG RDM stacks; see target.h.
#include "meg/target.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "core/error.h"

namespace cliphba::meg {

std::vector<int64_t> ParticipantIndices(const RdmStack& stack,
                                        const std::vector<std::string>& wanted,
                                        const std::string& key) {
  const auto& labels = stack.participant_labels();
  std::vector<int64_t> ps;
  for (const auto& want : wanted) {
    int64_t found = -1;
    for (size_t i = 0; i < labels.size(); ++i)
      if (labels[i] == want) found = int64_t(i);
    if (found < 0) {
      char* end = nullptr;
      const long long v = std::strtoll(want.c_str(), &end, 10);
      if (!want.empty() && end != nullptr && *end == '\0' && v >= 0 &&
          v < static_cast<long long>(labels.size()))
        found = v;
    }
    if (found < 0) {
      std::string avail;
      for (size_t i = 0; i < labels.size(); ++i) avail += (i ? ", " : "") + labels[i];
      throw DataError(key + ": '" + want + "' is not a participant of " + stack.source() +
                      " (labels: " + avail + "; or a 0-based index < " +
                      std::to_string(labels.size()) + ")");
    }
    if (std::find(ps.begin(), ps.end(), found) != ps.end())
      throw ConfigError(key + ": '" + want + "' is listed twice");
    ps.push_back(found);
  }
  if (ps.empty())
    for (int64_t p = 0; p < stack.participants(); ++p) ps.push_back(p);
  return ps;
}

RdmScale RdmScale::ForFile(const RdmStack& stack, config::RdmRescale rule) {
  if (rule != config::RdmRescale::kMinMax) return FromRange(rule, {}, stack.source());
  return FromRange(rule, stack.ValueRange(), stack.source());
}

RdmScale RdmScale::FromRange(config::RdmRescale rule, const RdmStack::Range& range,
                             const std::string& source) {
  RdmScale s;
  if (rule != config::RdmRescale::kMinMax) return s;
  if (!(range.max > range.min))
    throw DataError(fmt::format(
        "{}: every MEG RDM value equals {:g}, so meg.rdm.rescale minmax cannot map the stack to "
        "[0, 1]",
        source, range.min));
  s.active_ = true;
  s.range_ = range;
  return s;
}

at::Tensor RdmScale::Apply(const at::Tensor& stack) const {
  if (!active_) return stack.scalar_type() == at::kDouble ? stack : stack.to(at::kFloat);
  return RescaleMinMax(stack, range_.min, range_.max);
}

}  // namespace cliphba::meg
