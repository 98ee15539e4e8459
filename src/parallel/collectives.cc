#include "parallel/collectives.h"

#include <cstdint>

namespace cliphba::parallel {

std::optional<Failure> AgreeOnFailure(const Comm& comm, const std::optional<Failure>& local) {
  if (!comm.is_mpi()) {
    if (!local) return std::nullopt;
    Failure f = *local;
    f.rank = 0;
    return f;
  }
  // The lowest failing rank (size() when none failed), then its code and message from it.
  at::Tensor first = at::full({1}, int64_t(local ? comm.rank() : comm.size()), at::kLong);
  first.neg_();
  comm.AllreduceMax(first);  // max of -rank == -(min rank)
  const int root = int(-first.item<int64_t>());
  if (root == comm.size()) return std::nullopt;
  std::string text = local ? std::to_string(int(local->code)) + "|" + local->message : "";
  text = comm.Broadcast(text, root);
  const size_t bar = text.find('|');
  Failure f;
  f.rank = root;
  f.code = ExitCode(std::stoi(text.substr(0, bar)));
  f.message = text.substr(bar + 1);
  return f;
}

void RunOnRoot(const Comm& comm, const std::function<void()>& fn) {
  std::optional<Failure> local;
  if (comm.is_root()) {
    try {
      fn();
    } catch (const Error& e) {
      local = Failure{0, e.code(), e.what()};
    } catch (const std::exception& e) {
      local = Failure{0, ExitCode::kInternal, e.what()};
    }
  }
  const std::optional<Failure> f = AgreeOnFailure(comm, local);
  if (f) ThrowError(f->code, f->message);
}

void RunOnAll(const Comm& comm, const std::function<void()>& fn) {
  std::optional<Failure> local;
  try {
    fn();
  } catch (const Error& e) {
    local = Failure{comm.rank(), e.code(), e.what()};
  } catch (const std::exception& e) {
    local = Failure{comm.rank(), ExitCode::kInternal, e.what()};
  }
  const std::optional<Failure> f = AgreeOnFailure(comm, local);
  if (f) ThrowError(f->code, f->message);
}

namespace {
uint64_t Fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}
}  // namespace

void AgreeOnArguments(const Comm& comm, const std::string& what, const std::string& signature,
                      const std::string& local_error) {
  std::optional<Failure> local;
  if (!local_error.empty()) local = Failure{comm.rank(), ExitCode::kData, local_error};
  if (comm.is_mpi()) {
    // Equal on every rank iff max(h) == h and max(~h) == ~h (as int64: max(~h) == ~min(h)).
    const uint64_t h = Fnv1a(signature);
    at::Tensor mine = at::empty({2}, at::kLong);
    mine[0] = static_cast<int64_t>(h);
    mine[1] = static_cast<int64_t>(~h);
    at::Tensor both = mine.clone();
    comm.AllreduceMax(both);
    if (!at::equal(both, mine) && !local) {
      local = Failure{comm.rank(), ExitCode::kData,
                      what + ": the ranks passed different arguments to a collective call"};
    }
  }
  const std::optional<Failure> f = AgreeOnFailure(comm, local);
  if (!f) return;
  if (local) throw DataError(local->message);  // a failing rank reports its own error
  throw DataError(what + ": invalid arguments on rank " + std::to_string(f->rank) + ": " +
                  f->message);
}

}  // namespace cliphba::parallel
