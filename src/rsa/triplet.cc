#include "rsa/triplet.h"

#include <ATen/Parallel.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <sstream>
#include <vector>

#include "core/error.h"

namespace cliphba::rsa {

namespace {

// Index of the pair (0: {i,j}, 1: {i,k}, 2: {j,k}) holding the unique maximum, or -1 if tied.
inline int UniqueMax(double a, double b, double c) {
  if (a > b && a > c) return 0;
  if (b > a && b > c) return 1;
  if (c > a && c > b) return 2;
  return -1;
}

at::Tensor SquareDouble(const at::Tensor& t, int64_t n, const char* what) {
  if (t.dim() != 2 || t.size(0) != t.size(1) || (n >= 0 && t.size(0) != n)) {
    std::ostringstream msg;
    msg << "triplet accuracy: " << what << " must be a square matrix";
    if (n >= 0) msg << " of " << n << " objects";
    msg << "; got shape " << t.sizes();
    throw DataError(msg.str());
  }
  return t.to(at::kDouble).contiguous();
}

struct Counts {
  int64_t used = 0, correct = 0, tied = 0;
  void Add(int model, int reference) {
    if (model < 0 || reference < 0) {
      ++tied;
    } else {
      ++used;
      correct += model == reference;
    }
  }
};

TripletResult Finish(const Counts& c) {
  TripletResult r;
  r.n_used = c.used, r.n_correct = c.correct, r.n_tied = c.tied;
  r.accuracy =
      c.used > 0 ? double(c.correct) / double(c.used) : std::numeric_limits<double>::quiet_NaN();
  return r;
}

at::Tensor CheckedTriplets(const at::Tensor& triplets, int64_t n) {
  if (triplets.dim() != 2 || triplets.size(1) != 3 || at::isFloatingType(triplets.scalar_type())) {
    std::ostringstream msg;
    msg << "triplets must be an integer (t x 3) array; got shape " << triplets.sizes()
        << " of type " << triplets.scalar_type();
    throw DataError(msg.str());
  }
  at::Tensor t = triplets.to(at::kLong).contiguous();
  const int64_t* p = t.data_ptr<int64_t>();
  for (int64_t r = 0; r < t.size(0); ++r) {
    const int64_t a = p[3 * r], b = p[3 * r + 1], c = p[3 * r + 2];
    if (a < 0 || b < 0 || c < 0 || a >= n || b >= n || c >= n)
      throw DataError("triplet row " + std::to_string(r) + " has an object index outside [0, " +
                      std::to_string(n) + ")");
    if (a == b || a == c || b == c)
      throw DataError("triplet row " + std::to_string(r) + " repeats an object");
  }
  return t;
}

}  // namespace

TripletResult TripletAccuracyAll(const at::Tensor& model_similarity,
                                 const at::Tensor& reference_rdm) {
  at::Tensor s = SquareDouble(model_similarity, -1, "the model similarity");
  const int64_t n = s.size(0);
  at::Tensor d = SquareDouble(reference_rdm, n, "the reference RDM");
  const double* ps = s.data_ptr<double>();
  const double* pd = d.data_ptr<double>();
  std::vector<Counts> per_row(n);
  at::parallel_for(0, n, 1, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      Counts c;
      for (int64_t j = i + 1; j < n; ++j) {
        for (int64_t k = j + 1; k < n; ++k) {
          int model = UniqueMax(ps[i * n + j], ps[i * n + k], ps[j * n + k]);
          int reference = UniqueMax(-pd[i * n + j], -pd[i * n + k], -pd[j * n + k]);
          c.Add(model, reference);
        }
      }
      per_row[i] = c;
    }
  });
  Counts total;
  for (const Counts& c : per_row)
    total.used += c.used, total.correct += c.correct, total.tied += c.tied;
  return Finish(total);
}

TripletResult TripletAccuracyListed(const at::Tensor& model_similarity,
                                    const at::Tensor& reference_rdm, const at::Tensor& triplets) {
  at::Tensor s = SquareDouble(model_similarity, -1, "the model similarity");
  const int64_t n = s.size(0);
  at::Tensor d = SquareDouble(reference_rdm, n, "the reference RDM");
  at::Tensor t = CheckedTriplets(triplets, n);
  const double* ps = s.data_ptr<double>();
  const double* pd = d.data_ptr<double>();
  const int64_t* pt = t.data_ptr<int64_t>();
  Counts c;
  for (int64_t r = 0; r < t.size(0); ++r) {
    const int64_t i = pt[3 * r], j = pt[3 * r + 1], k = pt[3 * r + 2];
    c.Add(UniqueMax(ps[i * n + j], ps[i * n + k], ps[j * n + k]),
          UniqueMax(-pd[i * n + j], -pd[i * n + k], -pd[j * n + k]));
  }
  return Finish(c);
}

TripletResult TripletAccuracyChoices(const at::Tensor& model_similarity,
                                     const at::Tensor& triplets) {
  at::Tensor s = SquareDouble(model_similarity, -1, "the model similarity");
  const int64_t n = s.size(0);
  at::Tensor t = CheckedTriplets(triplets, n);
  const double* ps = s.data_ptr<double>();
  const int64_t* pt = t.data_ptr<int64_t>();
  Counts c;
  for (int64_t r = 0; r < t.size(0); ++r) {
    const int64_t a = pt[3 * r], b = pt[3 * r + 1], odd = pt[3 * r + 2];
    // Pair order as UniqueMax sees it: {a,b} = 0, {a,odd} = 1, {b,odd} = 2; the human chose 0.
    c.Add(UniqueMax(ps[a * n + b], ps[a * n + odd], ps[b * n + odd]), 0);
  }
  return Finish(c);
}

}  // namespace cliphba::rsa
