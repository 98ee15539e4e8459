// `cliphba version`: what this binary runs on. Users paste this into bug reports, so it says
// which BLAS is really loaded (libblas.so.3 is an alternatives link on Debian).
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <fmt/core.h>
#include <link.h>
#include <torch/cuda.h>
#include <torch/version.h>

#include <climits>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apps/commands.h"
#include "core/version.h"
#include "io/library_info.h"
#include "model/precision.h"
#include "parallel/comm.h"
#include "parallel/grad_sync.h"

namespace cliphba::apps {

namespace {

int CollectBlas(struct dl_phdr_info* info, size_t, void* data) {
  std::string name = info->dlpi_name ? info->dlpi_name : "";
  if (name.find("blas") != std::string::npos || name.find("mkl") != std::string::npos) {
    char resolved[PATH_MAX];
    if (realpath(name.c_str(), resolved)) name = resolved;
    static_cast<std::vector<std::string>*>(data)->push_back(name);
  }
  return 0;
}

}  // namespace

int RunVersion(const CommonArgs& args) {
  ApplyRuntime("warn", /*threads=*/0);  // report the thread count a run would use
  const std::string mpi = parallel::MpiLibraryVersion();
  const io::Hdf5LibraryInfo h5 = io::Hdf5Library();
  std::vector<std::string> blas;
  dl_iterate_phdr(CollectBlas, &blas);
  std::string openblas_config;
  using GetConfig = char* (*)();
  if (auto fn = reinterpret_cast<GetConfig>(dlsym(RTLD_DEFAULT, "openblas_get_config")))
    openblas_config = fn();

  nlohmann::json j;
  j["cliphba"] = Version();
  j["libtorch"] = TORCH_VERSION;
  j["mpi"] = mpi;
  j["hdf5"] = h5.version;
  j["hdf5_parallel"] = h5.parallel;
  j["blas"] = blas;
  j["openblas_config"] = openblas_config;
  const bool bf16 = model::CpuHasFastBf16();
  j["bf16_matmul"] = bf16 ? "accelerated" : "emulated";
  // CUDA as LibTorch sees it (0 GPUs for a CPU-only LibTorch such as Debian's) and NCCL as this
  // build has it (the gradient backend; scripts/gpu_check.sh exercises both).
  const bool torch_cuda = torch::cuda::is_available();
  const int64_t torch_gpus = torch_cuda ? int64_t(torch::cuda::device_count()) : 0;
  const parallel::NcclInfo nccl = parallel::QueryNccl();
  j["cuda"] = {{"libtorch_cuda", at::hasCUDA()},      {"libtorch_gpus", torch_gpus},
               {"nccl_backend", nccl.built},          {"nccl", nccl.nccl},
               {"cuda_runtime", nccl.cuda_runtime},   {"cuda_driver", nccl.cuda_driver},
               {"gpus", nccl.gpus},                   {"error", nccl.error}};
  j["aten_threads"] = at::get_num_threads();
  const char* wait = std::getenv("OMP_WAIT_POLICY");
  j["omp_wait_policy"] = wait ? wait : "";
  if (args.json) {
    fmt::print("{}\n", j.dump());
    return 0;
  }
  fmt::print("cliphba   {}\n", Version());
  fmt::print("LibTorch  {}\n", TORCH_VERSION);
  fmt::print("MPI       {}\n", mpi);
  fmt::print("HDF5      {} ({})\n", h5.version, h5.parallel ? "parallel, MPI-IO" : "serial");
  for (const auto& b : blas) fmt::print("BLAS      {}\n", b);
  if (blas.empty()) fmt::print("BLAS      (none loaded)\n");
  if (!openblas_config.empty()) fmt::print("OpenBLAS  {}\n", openblas_config);
  fmt::print("bfloat16  {}\n", bf16 ? "accelerated (AMX-BF16 / AVX512-BF16): precision bfloat16 "
                                      "is the fast path"
                                    : "emulated (no AMX-BF16 / AVX512-BF16): keep float32");
  fmt::print("CUDA      {}\n", at::hasCUDA() ? fmt::format("LibTorch built with CUDA, {} GPU(s) visible",
                                                          torch_gpus)
                                             : std::string("LibTorch without CUDA (CPU only)"));
  if (nccl.built) {
    fmt::print("NCCL      {} (CUDA runtime {}, driver {})\n", nccl.nccl, nccl.cuda_runtime,
               nccl.cuda_driver.empty() ? "none" : nccl.cuda_driver);
    for (size_t d = 0; d < nccl.gpus.size(); ++d) fmt::print("GPU {}     {}\n", d, nccl.gpus[d]);
    if (!nccl.error.empty()) fmt::print("GPUs      none: {}\n", nccl.error);
  } else {
    fmt::print("NCCL      not built (CMake found no CUDA toolkit + NCCL): dist.backend mpi only\n");
  }
  fmt::print("threads   {} (ATen), OMP_WAIT_POLICY={}\n", at::get_num_threads(),
             wait ? wait : "(unset)");
  return 0;
}

}  // namespace cliphba::apps
