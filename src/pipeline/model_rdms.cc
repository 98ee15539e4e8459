// The model-RDM files of the MEG units (pipeline/run.h): <unit>/model_rdms.h5 (out of sample)
// and model_rdms_insample.h5 (the in-sample diagnostic), written by the model units and read by
// the alignment unit.
#include <ATen/ATen.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "io/results_reader.h"
#include "io/results_store.h"
#include "pipeline/run.h"
#include "rsa/rdm.h"

namespace cliphba::pipeline {

namespace fs = std::filesystem;

std::string ModelRdmPath(const std::string& unit_dir) { return unit_dir + "/model_rdms.h5"; }
std::string ModelRdmInsamplePath(const std::string& unit_dir) {
  return unit_dir + "/model_rdms_insample.h5";
}

namespace {

bool KnownObjects(const std::string& objects) {
  return objects == "heldout" || objects == "cross_validated" || objects == "insample";
}

// Shapes and the NaN pattern of a model-RDM file: finite exactly on the within-fold pairs.
void CheckModelRdms(const std::string& path, const ModelRdms& m) {
  const int64_t n = int64_t(m.names.size());
  if (m.rdm.dim() != 2 || m.rdm.size(1) != rsa::NumPairs(n) || int64_t(m.fold.size()) != n)
    throw DataError(path + ": model RDMs must be (T, " + std::to_string(rsa::NumPairs(n)) +
                    ") for " + std::to_string(n) + " objects, with one fold per object");
  if (!KnownObjects(m.objects))
    throw DataError(path + ": objects '" + m.objects +
                    "' is none of heldout, cross_validated, insample");
  const at::Tensor fold = at::tensor(m.fold, at::kLong);
  const at::Tensor iu = at::triu_indices(n, n, 1);
  const at::Tensor within = fold.index({iu[0]}).eq(fold.index({iu[1]}));  // (m)
  const at::Tensor finite = at::isfinite(m.rdm).all(0);                   // (m)
  if (!finite.eq(within).all().item<bool>())
    throw DataError(path + ": /model/rdm must be finite exactly on the pairs of objects of the "
                    "same fold (NaN across folds)");
}

}  // namespace

void WriteModelRdms(const std::string& path, const ModelRdms& m) {
  CheckModelRdms(path, m);
  io::ResultsStore store = io::ResultsStore::Create(path);
  store.WriteTensor("/model/rdm", m.rdm.to(at::kDouble).contiguous());
  store.WriteStrings("/model/names", m.names);
  store.WriteTensor("/model/fold", at::tensor(m.fold, at::kLong));
  store.SetAttribute("/model", "objects", m.objects);
  const int64_t n_folds =
      m.fold.empty() ? 0 : *std::max_element(m.fold.begin(), m.fold.end()) + 1;
  store.SetAttribute("/model", "n_folds", n_folds);
  if (m.block_weights.defined())
    store.WriteTensor("/model/block_weights", m.block_weights.to(at::kDouble).contiguous());
  store.Commit();
}

ModelRdms ReadModelRdms(const std::string& path) {
  if (!fs::exists(path))
    throw IoError(path + ": no model RDMs (the model unit did not finish writing them)");
  io::ResultsReader in(path);
  ModelRdms m;
  m.rdm = in.ReadTensor("/model/rdm").to(at::kDouble).contiguous();
  m.names = in.ReadStrings("/model/names");
  m.fold.assign(m.names.size(), 0);
  if (in.Exists("/model/fold")) {
    const at::Tensor f = in.ReadTensor("/model/fold").to(at::kLong).contiguous();
    if (f.dim() != 1 || f.numel() != int64_t(m.names.size()))
      throw DataError(path + ": /model/fold must have one entry per name");
    m.fold.assign(f.data_ptr<int64_t>(), f.data_ptr<int64_t>() + f.numel());
  }
  // A file without the attribute (written before the out-of-sample design) is not presented as
  // out-of-sample.
  if (in.HasAttribute("/model", "objects")) m.objects = in.ReadStringAttribute("/model", "objects");
  if (in.Exists("/model/block_weights")) {
    m.block_weights = in.ReadTensor("/model/block_weights").to(at::kDouble).contiguous();
    if (m.block_weights.dim() != 2 || m.block_weights.size(0) != m.rdm.size(0))
      throw DataError(path + ": /model/block_weights must be (T, L) with T = " +
                      std::to_string(m.rdm.size(0)) + " timepoints");
  }
  CheckModelRdms(path, m);
  return m;
}

}  // namespace cliphba::pipeline
