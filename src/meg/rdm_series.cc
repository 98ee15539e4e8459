// One RDM or a time series of RDMs without participants; see rdm_series.h. (Moved from
// pipeline/permutation.cc, where `permute mantel` kept its own reader.)
#include "meg/rdm_series.h"

#include <cmath>
#include <cstdio>
#include <cstring>

#include "core/error.h"
#include "io/results_reader.h"
#include "rsa/rdm.h"

namespace cliphba::meg {

int64_t ObjectsFromPairs(int64_t m) {
  int64_t n = int64_t(std::llround((1 + std::sqrt(1 + 8.0 * double(m))) / 2));
  return n * (n - 1) / 2 == m ? n : -1;
}

RdmSeries RdmSeries::Open(const std::string& path, const std::string& dataset) {
  RdmSeries s;
  s.path = path;
  std::vector<int64_t> shape;
  bool floating = false;
  std::string what;
  if (!dataset.empty()) {
    s.h5 = std::make_shared<io::ResultsReader>(path);
    s.dataset = dataset;
    shape = s.h5->Shape(dataset);
    floating = at::isFloatingType(s.h5->ReadRows(dataset, 0, 0).scalar_type());
    what = "HDF5 dataset " + dataset;
  } else {
    // An HDF5 file without permute.mantel.neural_dataset would fail as "bad magic" in the NPY
    // reader: say what is missing instead.
    char magic[8] = {};
    if (std::FILE* f = std::fopen(path.c_str(), "rb")) {
      const size_t got = std::fread(magic, 1, sizeof magic, f);
      std::fclose(f);
      if (got == sizeof magic && std::memcmp(magic, "\x89HDF\r\n\x1a\n", 8) == 0)
        throw ConfigError(path +
                          " is an HDF5 file: set permute.mantel.neural_dataset to the dataset "
                          "that holds the RDM stack (e.g. /meg/rdm)");
    }
    s.header = io::ReadNpyHeader(path);  // streamed by rows (C or Fortran order)
    shape = s.header.shape;
    floating = s.header.dtype == at::kFloat || s.header.dtype == at::kDouble;
    what = "NPY descr '" + s.header.descr + "'";
  }
  if (!floating) throw DataError(path + ": neural RDMs must be float32 or float64 (" + what + ")");
  if (shape.size() == 3 && shape[1] == shape[2]) {
    s.square = true, s.n = shape[1], s.t = shape[0];
  } else if (shape.size() == 2 && shape[0] == shape[1]) {
    s.square = true, s.single = true, s.n = shape[0], s.t = 1;
  } else if (shape.size() == 2 && ObjectsFromPairs(shape[1]) > 0) {
    s.square = false, s.n = ObjectsFromPairs(shape[1]), s.t = shape[0];
  } else {
    std::string dims;
    for (int64_t d : shape) dims += (dims.empty() ? "" : " x ") + std::to_string(d);
    throw DataError(path +
                    ": expected neural RDMs of shape (n x n), (T x n x n) or condensed "
                    "(T x n(n-1)/2), got (" +
                    dims + ")");
  }
  if (s.t < 1) throw DataError(path + ": the neural RDM stack has no timepoints");
  return s;
}

// Condensed float64 row of timepoint t, validated (square: symmetric, zero diagonal, finite).
at::Tensor RdmSeries::Row(int64_t t) const {
  const RdmSeries& s = *this;
  if (t < 0 || t >= s.t)
    throw ConfigError(s.path + ": timepoint " + std::to_string(t) + " is outside the " +
                      std::to_string(s.t) + " timepoints of the RDM series");
  const std::string where = s.path + " (timepoint " + std::to_string(t) + ")";
  at::Tensor raw;
  if (s.h5) {
    raw = s.single ? s.h5->ReadRows(s.dataset, 0, s.n) : s.h5->ReadRows(s.dataset, t, 1)[0];
  } else {
    raw = s.single ? io::ReadNpyRows(s.path, s.header, 0, s.n)
                   : io::ReadNpyRows(s.path, s.header, t, 1)[0];
  }
  at::Tensor v;
  if (s.square) {
    v = rsa::CondenseSquare(raw, where).values;
  } else {
    v = raw.to(at::kDouble).contiguous();
    if (!at::isfinite(v).all().item<bool>())
      throw DataError(where + ": the RDM contains NaN or Inf");
  }
  // Named here: the standardisation would only say "row 0" (it sees one row at a time).
  if (v.numel() > 0 && (v == v[0]).all().item<bool>())
    throw DataError(where +
                    ": every pair has the same dissimilarity, so its correlation with the " +
                    "model is undefined");
  return v;
}

}  // namespace cliphba::meg
