#include "pipeline/permutation.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <limits>
#include <memory>
#include <sstream>

#include "config/config.h"
#include "core/error.h"
#include "core/hash.h"
#include "core/log.h"
#include "core/shard.h"
#include "core/signals.h"
#include "core/version.h"
#include "io/csv.h"
#include "io/npy.h"
#include "io/results_store.h"
#include "meg/rdm_series.h"
#include "parallel/collectives.h"
#include "pipeline/permutation_output.h"
#include "rsa/behavior.h"
#include "rsa/rdm.h"
#include "stats/bootstrap.h"
#include "stats/cluster.h"
#include "stats/fdr.h"
#include "stats/mantel.h"
#include "stats/signflip.h"
#include "stats/tdist.h"

namespace cliphba::pipeline {

using detail::CheckExistingOutput;
using detail::CheckOutputPath;
using detail::CheckpointPath;
using detail::NullMaxPath;
using detail::RemoveCheckpoint;
using detail::WriteResults;

namespace {

using Clock = std::chrono::steady_clock;

std::string Shape(const at::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

// ---------------------------------------------------------------------------------------------
// Inputs

// Condensed (m) float64 model RDM from (n x n) or (m).
rsa::CondensedRdm ReadModel(const std::string& path) {
  at::Tensor d = io::ReadNpy(path);
  rsa::CondensedRdm out;
  if (d.dim() == 2) {
    out = rsa::CondenseSquare(d, path);
  } else if (d.dim() == 1 && meg::ObjectsFromPairs(d.size(0)) > 0) {
    at::Tensor v = d.to(at::kDouble);
    if (!at::isfinite(v).all().item<bool>())
      throw DataError(path + ": the model RDM contains NaN or Inf");
    out = {meg::ObjectsFromPairs(d.size(0)), v.contiguous()};
  } else {
    throw DataError(path + ": expected a model RDM of shape (n x n) or condensed (n(n-1)/2), got " +
                    Shape(d));
  }
  if (out.values.numel() > 0 && (out.values == out.values[0]).all().item<bool>())
    throw DataError(path + ": the model RDM gives every pair the same dissimilarity, so its " +
                    "correlation with the neural RDMs is undefined");
  return out;
}

// Model rows reordered into the neural object order when both name lists are given.
rsa::CondensedRdm AlignModel(const rsa::CondensedRdm& model, const config::MantelOptions& o,
                             int64_t n_neural) {
  if (model.n != n_neural)
    throw DataError(o.model_rdm + " has " + std::to_string(model.n) + " objects but " +
                    o.neural_rdm + " has " + std::to_string(n_neural) +
                    "; both RDMs must describe the same objects");
  if (o.model_names.empty() != o.neural_names.empty())
    throw ConfigError(
        "permute.mantel.model_names and permute.mantel.neural_names must be given "
        "together (objects are matched by name)");
  if (o.model_names.empty()) return model;
  auto model_names = io::ReadNameList(o.model_names);
  auto neural_names = io::ReadNameList(o.neural_names);
  if (int64_t(model_names.size()) != model.n || int64_t(neural_names.size()) != n_neural)
    throw DataError(o.model_names + " / " + o.neural_names + ": expected " +
                    std::to_string(model.n) + " names each, got " +
                    std::to_string(model_names.size()) + " and " +
                    std::to_string(neural_names.size()));
  auto rows = rsa::AlignByName(model_names, neural_names, o.model_names, o.neural_names);
  at::Tensor idx = at::tensor(rows, at::kLong);
  at::Tensor sq = rsa::ExpandSquare(model).index_select(0, idx).index_select(1, idx);
  return rsa::CondenseSquare(sq, o.model_rdm);
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

// The checkpoint (OUT.ckpt, rewritten atomically after every round) holds only O(T) numbers, so
// its cost does not grow with N: the position, the uncorrected and family-wise exceedance counts,
// the observed statistics and the running sum of the null maxima (added in permutation order, so
// the mean is the same bits for any rank count, round size or resume point). Per-permutation null
// maxima are kept only where they must be (NullMaxFile).
struct MantelCheckpoint {
  int64_t next_chunk = 0;  // chunk to continue in
  int64_t next_perm = 0;   // first permutation not yet processed in that chunk
};

struct MantelState {
  at::Tensor exceed;       // (T) int64: #{k : null_k(t) >= obs(t)}
  at::Tensor fwer_exceed;  // (T) int64: #{k : max_t' null_k(t') >= obs(t)}, permutations finished
  double null_max_sum = 0;  // sum of the finished permutations' maxima, in permutation order
};

void WriteCheckpoint(const std::string& path, const std::string& hash, const MantelCheckpoint& pos,
                     const MantelState& state, const at::Tensor& observed, bool null_max_file) {
  io::ResultsStore store = io::ResultsStore::Create(path);
  store.SetAttribute("/", "results_hash", hash);
  store.SetAttribute("/", "cliphba_version", std::string(Version()));
  store.SetAttribute("/", "next_chunk", pos.next_chunk);
  store.SetAttribute("/", "next_perm", pos.next_perm);
  store.SetAttribute("/", "null_max_sum", state.null_max_sum);
  store.SetAttribute("/", "null_max_file", int64_t(null_max_file ? 1 : 0));
  store.WriteTensor("/mantel/exceed", state.exceed);
  store.WriteTensor("/mantel/fwer_exceed", state.fwer_exceed);
  store.WriteTensor("/mantel/observed", observed);
  store.Commit();
}

// Every permutation's null maximum, N float64 in native byte order, kept beside the checkpoint
// when the sweep needs them later: timepoints in more than one chunk (a permutation's maximum is
// final only after the last chunk) or permute.save_null. Each round writes its own slice in place
// (pwrite + fdatasync, before the checkpoint that counts it is committed), so a checkpoint costs
// O(round) whatever N. A round redone after a crash recomputes its slice: the maximum with a
// value already written is the same value, so a slice written before the crash does no harm.
class NullMaxFile {
 public:
  NullMaxFile(std::string path, bool truncate) : path_(std::move(path)) {
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | (truncate ? O_TRUNC : 0), 0644);
    if (fd_ < 0) throw IoError(path_ + ": cannot open for writing: " + std::strerror(errno));
  }
  ~NullMaxFile() {
    if (fd_ >= 0) ::close(fd_);
  }
  NullMaxFile(const NullMaxFile&) = delete;
  NullMaxFile& operator=(const NullMaxFile&) = delete;

  // values (R) float64 contiguous -> elements [first, first + R).
  void Write(int64_t first, const at::Tensor& values) {
    const char* p = reinterpret_cast<const char*>(values.data_ptr<double>());
    size_t left = size_t(values.numel()) * sizeof(double);
    off_t at = off_t(first) * off_t(sizeof(double));
    while (left > 0) {
      ssize_t w = ::pwrite(fd_, p, left, at);
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) throw IoError(path_ + ": write failed: " + std::strerror(errno));
      p += w, at += w, left -= size_t(w);
    }
    if (::fdatasync(fd_) != 0) throw IoError(path_ + ": fdatasync failed: " + std::strerror(errno));
  }

  // Elements [0, count) into out (N) float64; DataError when the file holds fewer.
  void Read(int64_t count, at::Tensor& out) const {
    char* p = reinterpret_cast<char*>(out.data_ptr<double>());
    size_t left = size_t(count) * sizeof(double);
    off_t at = 0;
    while (left > 0) {
      ssize_t r = ::pread(fd_, p, left, at);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0)
        throw DataError(path_ + ": holds fewer than the " + std::to_string(count) +
                        " null maxima its checkpoint counts (truncated?); rerun with --force "
                        "to start over");
      p += r, at += r, left -= size_t(r);
    }
  }

 private:
  std::string path_;
  int fd_ = -1;
};

// ---------------------------------------------------------------------------------------------
// Progress

class Progress {
 public:
  Progress(const parallel::Comm& comm, double interval_s, int64_t total)
      : comm_(comm), interval_(interval_s), total_(total), start_(Clock::now()), last_(start_) {}
  void Update(int64_t done, const std::string& what, bool force = false) {
    if (!comm_.is_root()) return;
    auto now = Clock::now();
    double since = std::chrono::duration<double>(now - last_).count();
    if (!force && since < interval_) return;
    last_ = now;
    double elapsed = std::chrono::duration<double>(now - start_).count();
    double rate = elapsed > 0 ? double(done - first_) / elapsed : 0;
    double eta = rate > 0 ? double(total_ - done) / rate : 0;
    LOG_INFO("{}: {}/{} ({:.1f}%), {:.1f}/s, elapsed {}, ETA {}", what, done, total_,
             100.0 * double(done) / double(std::max<int64_t>(total_, 1)), rate,
             FormatDuration(elapsed), FormatDuration(eta));
  }
  // The final line: "<what>: done in h:mm:ss (N in all)".
  void Done(const std::string& what) const {
    if (!comm_.is_root()) return;
    LOG_INFO("{}: done in {} ({} in all)", what,
             FormatDuration(std::chrono::duration<double>(Clock::now() - start_).count()), total_);
  }
  void Start(int64_t done) { first_ = done; }

 private:
  const parallel::Comm& comm_;
  double interval_;
  int64_t total_, first_ = 0;
  Clock::time_point start_, last_;
};

// ---------------------------------------------------------------------------------------------
// Mantel

MantelOutcome RunMantel(const config::Config& cfg, const parallel::Comm& comm,
                        const RunFlags& flags, const std::string& hash) {
  const auto& po = cfg.permute;
  const auto& o = po.mantel;
  if (o.neural_rdm.empty())
    throw ConfigError("permute.mantel.neural_rdm is required when permute.mantel.model_rdm is set");
  const auto kind = o.statistic == config::MantelStatistic::kPearson
                        ? stats::CorrelationKind::kPearson
                        : stats::CorrelationKind::kSpearman;
  const auto tail = o.tail == 0 ? stats::Tail::kTwo : stats::Tail::kUpper;
  const at::ScalarType dtype = po.precision == "float64" ? at::kDouble : at::kFloat;

  const meg::RdmSeries neural = meg::RdmSeries::Open(o.neural_rdm, o.neural_dataset);
  rsa::CondensedRdm model = AlignModel(ReadModel(o.model_rdm), o, neural.objects());
  const int64_t n = model.n, m = rsa::NumPairs(n), T = neural.timepoints();

  at::Tensor explicit_perms;
  int64_t n_perm = o.n;
  if (!o.permutations.empty()) {
    explicit_perms = io::ReadNpy(o.permutations);
    if (explicit_perms.dim() != 2 || explicit_perms.size(1) != n ||
        at::isFloatingType(explicit_perms.scalar_type()))
      throw DataError(o.permutations + ": expected an integer (N x " + std::to_string(n) +
                      ") permutation matrix, got " + Shape(explicit_perms));
    explicit_perms = explicit_perms.to(at::kLong).contiguous();
    at::Tensor sorted = std::get<0>(explicit_perms.sort(/*dim=*/1));
    if (!at::equal(sorted, at::arange(n, at::kLong).expand({explicit_perms.size(0), n})))
      throw DataError(o.permutations + ": every row must be a permutation of 0.." +
                      std::to_string(n - 1));
    n_perm = explicit_perms.size(0);
  }

  // Standardised model: z (m) float64 for exact observed values; square form for the kernel.
  at::Tensor model_z64 = stats::StandardizeRows(model.values.unsqueeze(0), kind, at::kDouble)[0];
  const at::Device device(po.device == "cuda" ? at::kCUDA : at::kCPU);
  if (device.is_cuda() && !at::hasCUDA())
    throw ConfigError(
        "permute.device is cuda, but this LibTorch has no CUDA support (Debian's "
        "libtorch is CPU-only): build cliphba against a CUDA LibTorch or use cpu");
  at::Tensor square = stats::SquareFromCondensed(model_z64.to(dtype), n).to(device);

  const int64_t batch = po.batch, tc_max = std::min(po.chunk_timepoints, T);
  const int64_t n_chunks = (T + tc_max - 1) / tc_max;
  const int64_t round = ((po.checkpoint_every + batch - 1) / batch) * batch;  // perms per round

  // Every permutation's maximum is kept (memory and NullMaxFile) only where it must be: with more
  // than one chunk it is final only after the last chunk; save_null writes them all.
  const bool keep_null_max = n_chunks > 1 || po.save_null;
  MantelState state{at::zeros({T}, at::kLong), at::zeros({T}, at::kLong), 0.0};
  at::Tensor null_max = keep_null_max
                            ? at::full({n_perm}, -std::numeric_limits<double>::infinity(), at::kDouble)
                            : at::Tensor();
  at::Tensor observed = at::zeros({T}, at::kDouble);  // float64 observed, filled chunk by chunk
  MantelCheckpoint pos;
  const std::string ckpt = po.out.empty() ? "" : CheckpointPath(po.out);
  bool resumed = false;
  if (flags.resume && !ckpt.empty() && std::filesystem::exists(ckpt)) {
    io::ResultsReader r(ckpt);
    std::string ckpt_hash = r.ReadStringAttribute("/", "results_hash");
    if (ckpt_hash != hash && !flags.force)
      throw ConfigError(ckpt + " was written under different settings (results hash " + ckpt_hash +
                        ", now " + hash + "); refusing to resume. Use --force to start over.");
    if (ckpt_hash == hash) {
      if (keep_null_max && r.HasAttribute("/", "null_max_file") &&
          r.ReadIntAttribute("/", "null_max_file") == 0)
        throw ConfigError(ckpt +
                          " was written without every permutation's null maximum "
                          "(permute.save_null was false), which permute.save_null: true needs; "
                          "resume with save_null false, or use --force to start over");
      try {
        pos.next_chunk = r.ReadIntAttribute("/", "next_chunk");
        pos.next_perm = r.ReadIntAttribute("/", "next_perm");
        state.exceed = r.ReadTensor("/mantel/exceed");
        state.fwer_exceed = r.ReadTensor("/mantel/fwer_exceed");
        state.null_max_sum = r.ReadDoubleAttribute("/", "null_max_sum");
        observed = r.ReadTensor("/mantel/observed");
      } catch (const DataError& e) {
        throw ConfigError(ckpt + " cannot be resumed (" + e.what() +
                          "): a checkpoint of an earlier cliphba version? Use --force to start "
                          "over");
      }
      resumed = true;
      LOG_INFO("resuming from {}: chunk {}/{}, permutation {}/{}", ckpt, pos.next_chunk, n_chunks,
               pos.next_perm, n_perm);
    }
  }
  std::unique_ptr<NullMaxFile> null_file;
  if (keep_null_max && !ckpt.empty()) {
    // Opened and read on the root; a failure there stops every rank with its message.
    parallel::RunOnRoot(comm, [&] {
      null_file = std::make_unique<NullMaxFile>(NullMaxPath(po.out), /*truncate=*/!resumed);
      // Chunk 0 has written [0, next_perm); any later chunk needs all N.
      if (resumed) null_file->Read(pos.next_chunk > 0 ? n_perm : pos.next_perm, null_max);
    });
    if (resumed) comm.Broadcast(null_max);
  }

  // Reusable buffers (first touch of fresh memory is slow: allocate once). `local` holds one
  // round's counts on this rank (its null maxima indexed from the round's first permutation).
  at::Tensor gather = at::empty({batch, m}, square.options());
  at::Tensor stats_buf = at::empty({batch, tc_max}, square.options());
  at::Tensor chunk_z = at::empty({tc_max, m}, square.options().device(at::kCPU));  // host rows
  stats::MantelCounts local = stats::MakeMantelCounts(T, std::min(round, n_perm));

  const int64_t total_work = n_chunks * n_perm;
  Progress progress(comm, po.progress_seconds, total_work);
  progress.Start(pos.next_chunk * n_perm + pos.next_perm);
  LOG_INFO("mantel: {} objects, {} timepoints in {} chunk(s), {} permutations, {} ranks, {} kernel",
           n, T, n_chunks, n_perm, comm.size(), po.precision);

  for (int64_t c = pos.next_chunk; c < n_chunks; ++c) {
    const int64_t t0 = c * tc_max, tc = std::min(tc_max, T - t0);
    const bool last_chunk = c == n_chunks - 1;
    // Stream and standardise this chunk: each rank ranks its share of the timepoints (the slow
    // part: ~0.1 s per 1854-object RDM), then the standardised rows are shared by all ranks.
    const Range own = ShardRange(tc, comm.size(), comm.rank());
    at::Tensor obs_chunk = at::zeros({tc}, at::kDouble);
    try {
      // A bad row (NaN, constant) on one rank stops every rank with its message (RunOnAll).
      parallel::RunOnAll(comm, [&] {
        for (int64_t t = own.begin; t < own.end; ++t) {
          at::Tensor z =
              stats::StandardizeRows(neural.Row(t0 + t).unsqueeze(0), kind, at::kDouble)[0];
          // Sequential dot product: BLAS ddot splits long vectors over threads, and the thread
          // count (hence the summation order) differs between rank counts.
          const double* zp = z.data_ptr<double>();
          const double* mp = model_z64.data_ptr<double>();
          double r = 0;
          for (int64_t k = 0; k < m; ++k) r += zp[k] * mp[k];
          obs_chunk[t] = r;
          chunk_z[t].copy_(z);
        }
      });
    } catch (const DataError&) {
      // Invalid data found mid-sweep: this sweep can never finish. The checkpoint a fresh run
      // wrote is removed (nothing half-done is left); one the run resumed from stays.
      if (!resumed && !ckpt.empty() && comm.is_root()) RemoveCheckpoint(po.out);
      throw;
    }
    std::vector<int64_t> owned(comm.size());
    for (int r = 0; r < comm.size(); ++r) owned[r] = ShardRange(tc, comm.size(), r).size();
    at::Tensor rows = chunk_z.narrow(0, 0, tc);
    comm.AllgatherRows(rows, owned);
    comm.AllreduceSum(obs_chunk);  // one non-zero term per timepoint: exact
    observed.narrow(0, t0, tc).copy_(obs_chunk);
    at::Tensor nz = device.is_cpu() ? rows : rows.to(device);  // (tc, m) on the kernel's device
    at::Tensor obs_kernel = stats::MantelObserved(square, nz, gather, stats_buf);
    for (int64_t r0 = (c == pos.next_chunk ? pos.next_perm : 0); r0 < n_perm; r0 += round) {
      const int64_t r1 = std::min(n_perm, r0 + round);
      const int64_t n_blocks = (r1 - r0 + batch - 1) / batch;
      // The round's blocks in steps of one block per rank (block b on rank b % ranks): after
      // each step the ranks agree on a termination request, so SIGTERM is honoured within one
      // batch whatever checkpoint_every is; the blocks done are always a prefix [0, done) of the
      // round, which is what the checkpoint records. Local deltas, reduced exactly below (sums
      // and maxima: the result does not depend on which rank did which block).
      local.exceed.zero_();
      local.null_max.fill_(-std::numeric_limits<double>::infinity());
      int64_t done = 0;  // blocks of this round done by all ranks together
      bool stop = false;
      for (int64_t step = 0; step * comm.size() < n_blocks && !stop; ++step) {
        const int64_t b = step * comm.size() + comm.rank();
        if (b < n_blocks) {
          const int64_t first = r0 + b * batch, count = std::min(batch, r1 - first);
          at::Tensor perms = explicit_perms.defined()
                                 ? explicit_perms.narrow(0, first, count)
                                 : stats::DrawPermutations(uint64_t(o.seed), first, count, n);
          stats::MantelAccumulate(square, nz, obs_kernel, perms, first - r0, t0, tail, gather,
                                  stats_buf, &local);
        }
        done = std::min(n_blocks, (step + 1) * comm.size());
        stop = comm.AnyTrue(TerminationRequested());
      }
      const int64_t reached = std::min(r1, r0 + done * batch);  // permutations done: [0, reached)
      comm.AllreduceSum(local.exceed);
      comm.AllreduceMax(local.null_max);
      state.exceed += local.exceed;
      // The round's maxima so far: this chunk's, with the earlier chunks' where they exist.
      at::Tensor round_max = local.null_max.narrow(0, 0, reached - r0);
      if (keep_null_max) {
        at::Tensor slot = null_max.narrow(0, r0, reached - r0);
        if (c > 0) at::maximum_out(slot, slot, round_max);
        else slot.copy_(round_max);
        round_max = slot;
        if (null_file) null_file->Write(r0, slot);
      }
      if (last_chunk) {  // these permutations are finished: count them family-wise
        stats::MantelCountFwer(observed, round_max, tail, &state.fwer_exceed);
        const double* v = round_max.data_ptr<double>();
        for (int64_t k = 0; k < reached - r0; ++k) state.null_max_sum += v[k];
      }
      MantelCheckpoint next{reached < n_perm ? c : c + 1, reached < n_perm ? reached : 0};
      const bool last = next.next_chunk == n_chunks;
      if (!ckpt.empty() && comm.is_root() && (stop || !last))
        WriteCheckpoint(ckpt, hash, next, state, observed, keep_null_max);
      progress.Update(c * n_perm + reached, "mantel permutations x chunks", stop);
      if (stop) {
        comm.Barrier();
        throw Error(ExitCode::kPreempted,
                    "terminated by a signal; checkpoint written to " +
                        (ckpt.empty() ? std::string("(no permute.out: nothing saved)") : ckpt) +
                        "; rerun with --resume to continue");
      }
    }
  }

  progress.Done("mantel permutations x chunks");
  MantelOutcome out;
  out.ran = true;
  out.n = n_perm;
  out.n_objects = n;
  out.observed = observed;
  stats::MantelPValues pv = stats::MantelPValuesFromCounts(state.exceed, state.fwer_exceed, n_perm);
  out.p = pv.p;
  out.p_fwer = pv.p_fwer;
  out.p_fdr = stats::FdrBh(pv.p);
  if (po.save_null) out.null_max = null_max;
  out.null_max_mean = state.null_max_sum / double(n_perm);
  if (po.bootstrap_n > 0) {
    // Resampling objects needs every timepoint at once: (T x m) float64 in memory.
    std::vector<at::Tensor> rows;
    for (int64_t t = 0; t < T; ++t) rows.push_back(neural.Row(t));
    at::Tensor times = po.time_start_ms + po.time_step_ms * at::arange(T, at::kDouble);
    out.ci = stats::BootstrapObjects(
        model.values, at::stack(rows), times, po.bootstrap_n, uint64_t(o.seed), po.bootstrap_level,
        kind == stats::CorrelationKind::kSpearman ? rsa::Comparison::kSpearman
                                                  : rsa::Comparison::kPearson);
    out.has_ci = true;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sign-flip cluster and t-max tests (small: participants x timepoints; every rank computes the
// same numbers, rank 0's are written).

ClusterOutcome RunCluster(const config::Config& cfg) {
  const auto& o = cfg.permute.cluster;
  at::Tensor data = io::ReadNpy(o.data);
  if (data.dim() != 2 || data.size(0) < 2 || !at::isFloatingType(data.scalar_type()))
    throw DataError(o.data + ": expected a float (participants >= 2 x timepoints) array, got " +
                    Shape(data));
  data = data.to(at::kDouble).contiguous();
  if (!at::isfinite(data).all().item<bool>())
    throw DataError(o.data + ": the data contain NaN or Inf");
  const int64_t n_part = data.size(0);
  const auto tail = static_cast<stats::Tail>(o.tail);
  at::Tensor flips;
  if (!o.flips.empty()) {
    flips = io::ReadNpy(o.flips);
    if (flips.dim() != 2 || flips.size(1) != n_part || at::isFloatingType(flips.scalar_type()))
      throw DataError(o.flips + ": expected an int8 (flips x " + std::to_string(n_part) +
                      ") matrix of +-1, got " + Shape(flips));
    if (!(flips.abs() == 1).all().item<bool>())
      throw DataError(o.flips + ": every entry must be +1 or -1");
  }
  ClusterOutcome out;
  out.exact = o.flips.empty() && stats::UseExactSignFlips(o.n, n_part, tail);
  if (o.flips.empty()) flips = stats::SignFlipsFor(o.n, n_part, tail, uint64_t(o.seed));
  if (out.exact)
    LOG_INFO(
        "cluster/t-max test: exact (all {} sign patterns of {} participants, as MNE when "
        "n >= 2^{}; the seed is not used)",
        flips.size(0) + 1, n_part, n_part - (tail == stats::Tail::kTwo ? 1 : 0));
  // MNE's convention: the threshold is negative for tail -1; 0 means "derive from threshold_p".
  const double threshold =
      o.threshold != 0 ? o.threshold : stats::ClusterFormingThreshold(o.threshold_p, n_part, tail);
  out.ran = true;
  out.threshold = threshold;
  out.n = flips.size(0) + 1;
  stats::ClusterTestResult ct = stats::ClusterTest(data, threshold, tail, flips);
  stats::TMaxResult tm = stats::TMaxTest(data, flips, tail);
  out.t_obs = ct.t_obs;
  out.h0 = ct.h0;
  out.p_tmax = tm.p;
  for (const auto& c : ct.clusters) out.clusters.push_back({c.start, c.stop, c.mass, c.p});
  if (cfg.permute.bootstrap_n > 0) {
    const auto& po = cfg.permute;
    at::Tensor times = po.time_start_ms + po.time_step_ms * at::arange(data.size(1), at::kDouble);
    out.ci = stats::BootstrapParticipants(data, times, po.bootstrap_n, uint64_t(o.seed),
                                          po.bootstrap_level);
    out.has_ci = true;
  }
  return out;
}

}  // namespace

std::string ResultsHash(const config::Config& config) {
  config::Config c;  // defaults everywhere but the settings that determine the numbers
  c.permute.mantel = config.permute.mantel;
  c.permute.cluster = config.permute.cluster;
  c.permute.batch = config.permute.batch;
  c.permute.chunk_timepoints = config.permute.chunk_timepoints;
  c.permute.precision = config.permute.precision;
  c.permute.time_start_ms = config.permute.time_start_ms;
  c.permute.time_step_ms = config.permute.time_step_ms;
  return HashHex(config::DumpConfig(c));
}

PermuteOutcome RunPermute(const config::Config& cfg, const parallel::Comm& comm,
                          const RunFlags& flags) {
  const auto& po = cfg.permute;
  if (po.mantel.model_rdm.empty() && po.cluster.data.empty())
    throw ConfigError(
        "nothing to do: set permute.mantel.model_rdm (Mantel test) and/or "
        "permute.cluster.data (sign-flip cluster test)");
  const std::string hash = ResultsHash(cfg);
  CheckOutputPath(po, flags);
  if (flags.resume) CheckExistingOutput(po.out, hash, flags);
  if (!po.mantel.model_rdm.empty() && !po.cluster.data.empty()) {
    // Both tests of one run share the time axis: check before hours of work, not after.
    const int64_t t_neural = meg::RdmSeries::Open(po.mantel.neural_rdm, po.mantel.neural_dataset).timepoints();
    const auto shape = io::ReadNpyHeader(po.cluster.data).shape;
    if (shape.size() != 2 || shape[1] != t_neural)
      throw DataError(po.cluster.data + " must be (participants x " + std::to_string(t_neural) +
                      "): the time axis of " + po.mantel.neural_rdm + " has " +
                      std::to_string(t_neural) + " timepoints");
  }
  if (!po.out.empty() && comm.is_root()) {
    // A sweep's output folder (results/<run>/) is created; failure surfaces at the first write.
    std::error_code ec;
    const auto parent = std::filesystem::path(po.out).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  }
  comm.Barrier();
  PermuteOutcome res;
  res.out = po.out;
  int64_t n_timepoints = -1;
  if (!po.mantel.model_rdm.empty()) {
    res.mantel = RunMantel(cfg, comm, flags, hash);
    n_timepoints = res.mantel.observed.size(0);
  }
  if (!po.cluster.data.empty()) {
    res.cluster = RunCluster(cfg);
    n_timepoints = res.cluster.t_obs.size(0);
  }
  if (!po.out.empty()) {
    WriteResults(cfg, comm, hash, res, n_timepoints);
    if (comm.is_root()) RemoveCheckpoint(po.out);  // superseded by the committed file
  }
  return res;
}

}  // namespace cliphba::pipeline
