// The only translation unit that includes <torch/script.h> (slow to compile): TorchScript archives.
#include <torch/script.h>

#include <fstream>
#include <string>

#include "core/error.h"
#include "model/checkpoint.h"

namespace cliphba::model {

namespace {

// state_dict() order: the module's own parameters, its own buffers, then each child in turn.
void Collect(const torch::jit::Module& m, const std::string& prefix, const std::string& path,
             StateDict* sd) {
  for (const auto& p : m.named_parameters(/*recurse=*/false))
    sd->entries.emplace_back(prefix + p.name,
                             internal::NormalizeLoadedTensor(p.value, path, prefix + p.name));
  for (const auto& b : m.named_buffers(/*recurse=*/false))
    sd->entries.emplace_back(prefix + b.name,
                             internal::NormalizeLoadedTensor(b.value, path, prefix + b.name));
  for (const auto& c : m.named_children()) Collect(c.value, prefix + c.name + ".", path, sd);
}

}  // namespace

StateDict LoadTorchScript(const std::string& path) {
  if (!std::ifstream(path, std::ios::binary))
    throw IoError(path + ": cannot open TorchScript archive");
  torch::jit::Module module;
  try {
    // map_location CPU: OpenAI's archives were saved from CUDA.
    module = torch::jit::load(path, c10::Device(c10::kCPU));
  } catch (const c10::Error& e) {
    std::string msg = e.what_without_backtrace();
    throw DataError(path + ": cannot load TorchScript archive: " + msg.substr(0, msg.find('\n')));
  } catch (const std::exception& e) {
    throw DataError(path + ": cannot load TorchScript archive: " + std::string(e.what()));
  }
  StateDict sd;
  sd.code_bearing = true;
  torch::NoGradGuard no_grad;
  Collect(module, "", path, &sd);
  return sd;
}

}  // namespace cliphba::model
