#include "io/output_policy.h"

#include <filesystem>
#include <system_error>

#include "core/error.h"

namespace cliphba::io {

void RefuseOutputOverInputs(const std::string& setting, const std::string& out,
                            const std::vector<std::string>& companions,
                            const std::vector<std::string>& inputs) {
  if (out.empty()) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(out, ec))
    throw ConfigError(setting + " " + out + " is a folder; give the path of an HDF5 file");
  std::vector<fs::path> written = {fs::weakly_canonical(out, ec)};
  for (const std::string& c : companions) written.push_back(fs::weakly_canonical(c, ec));
  for (const std::string& in : inputs) {
    if (in.empty()) continue;
    const fs::path in_path = fs::weakly_canonical(in, ec);
    for (const fs::path& w : written)
      if (in_path == w)
        throw ConfigError(setting + " " + out + " is the input " + in +
                          ": refusing to write over an input; choose another --out");
  }
}

}  // namespace cliphba::io
