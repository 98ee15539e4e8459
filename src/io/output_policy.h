// The unconditional part of cliphba's output policy (README.md), checked before any work: an output
// file is never one of the command's inputs and never a folder, whatever --force says.
#pragma once

#include <string>
#include <vector>

namespace cliphba::io {

// Throws ConfigError "<setting> <out> is a folder; ..." or "<setting> <out> is the input <in>: ..."
// when `out` is a folder, or when `out` or one of `companions` (files written beside it, e.g.
// OUT.ckpt) is one of `inputs` (compared as canonical paths; empty inputs are skipped). No-op for
// an empty `out`. `setting` names the option in messages (e.g. "permute.out").
void RefuseOutputOverInputs(const std::string& setting, const std::string& out,
                            const std::vector<std::string>& companions,
                            const std::vector<std::string>& inputs);

}  // namespace cliphba::io
