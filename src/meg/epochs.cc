#include "meg/epochs.h"

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <unordered_set>

#include "core/error.h"
#include "core/log.h"
#include "io/results_reader.h"
#include "io/results_store.h"

namespace cliphba::meg {

namespace {

constexpr const char* kData = "/epochs/data";

std::string Stem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find('.');
  return dot == std::string::npos ? base : base.substr(0, dot);
}

// data[:, :, s0:s0+len] of an epochs file as float32 (N, C, len) (hyperslab: only these samples).
at::Tensor ReadSamples(const io::ResultsReader& file, const EpochsInfo& info, int64_t s0,
                       int64_t len) {
  return file.ReadSlab(kData, {0, 0, s0}, {info.trials, info.channels, len}, at::kFloat);
}

}  // namespace

EpochsInfo ReadEpochsInfo(const std::string& path) {
  EpochsInfo info;
  info.path = path;
  if (!std::ifstream(path).good())
    throw IoError(path + ": cannot open the epochs file (meg.epochs.files)");
  io::ResultsReader reader(path);
  for (const char* ds : {"/epochs/data", "/epochs/condition", "/epochs/condition_names"})
    if (!reader.Exists(ds))
      throw DataError(path + ": no dataset '" + std::string(ds) +
                      "'; expected the epochs layout of results/README.md (scripts/fif_to_h5.py "
                      "writes it)");
  std::vector<int64_t> shape = reader.Shape(kData);
  if (shape.size() != 3)
    throw DataError(path + ": /epochs/data has rank " + std::to_string(shape.size()) +
                    ", expected (trials, channels, times)");
  info.trials = shape[0], info.channels = shape[1], info.samples = shape[2];
  if (info.trials < 1 || info.channels < 1 || info.samples < 1)
    throw DataError(path + ": /epochs/data is empty (shape " + std::to_string(shape[0]) + " x " +
                    std::to_string(shape[1]) + " x " + std::to_string(shape[2]) + ")");
  if (!reader.Describe(kData).floating_point)
    throw DataError(path + ": /epochs/data must be floating point (float32)");
  if (reader.HasAttribute("/epochs", "participant"))
    info.participant = reader.ReadStringAttribute("/epochs", "participant");
  at::Tensor cond = reader.ReadTensor("/epochs/condition");
  if (cond.dim() != 1 || cond.size(0) != info.trials || at::isFloatingType(cond.scalar_type()))
    throw DataError(path +
                    ": /epochs/condition must be an integer vector with one entry per trial (" +
                    std::to_string(info.trials) + ")");
  cond = cond.to(at::kLong).contiguous();
  info.condition.assign(cond.data_ptr<int64_t>(), cond.data_ptr<int64_t>() + info.trials);
  info.condition_names = reader.ReadStrings("/epochs/condition_names");
  const int64_t K = int64_t(info.condition_names.size());
  if (K < 2) throw DataError(path + ": /epochs/condition_names lists fewer than 2 conditions");
  std::unordered_set<std::string> seen;
  for (const auto& name : info.condition_names) {
    if (name.empty()) throw DataError(path + ": /epochs/condition_names has an empty name");
    if (!seen.insert(name).second)
      throw DataError(path + ": /epochs/condition_names lists '" + name + "' more than once");
  }
  std::vector<int64_t> counts(size_t(K), 0);
  for (int64_t r = 0; r < info.trials; ++r) {
    const int64_t c = info.condition[size_t(r)];
    if (c < 0 || c >= K)
      throw DataError(path + ": /epochs/condition[" + std::to_string(r) +
                      "] = " + std::to_string(c) + " is outside 0.." + std::to_string(K - 1) +
                      " (indices into /epochs/condition_names)");
    ++counts[size_t(c)];
  }
  for (int64_t c = 0; c < K; ++c)
    if (counts[size_t(c)] == 0)
      throw DataError(path + ": condition '" + info.condition_names[size_t(c)] + "' (index " +
                      std::to_string(c) + ") has no trials in /epochs/condition");
  if (reader.Exists("/epochs/channel_names")) {
    const auto ch = reader.ReadStrings("/epochs/channel_names");
    if (int64_t(ch.size()) != info.channels)
      throw DataError(path + ": /epochs/channel_names lists " + std::to_string(ch.size()) +
                      " channels, /epochs/data has " + std::to_string(info.channels));
  }
  info.sfreq = reader.ReadDoubleAttribute("/epochs", "sfreq");
  info.tmin_ms = reader.ReadDoubleAttribute("/epochs", "tmin_ms");
  if (!(info.sfreq > 0) || !std::isfinite(info.sfreq) || !std::isfinite(info.tmin_ms))
    throw DataError(path + ": attribute sfreq of /epochs is " + fmt::format("{}", info.sfreq) +
                    " Hz (tmin_ms " + fmt::format("{}", info.tmin_ms) +
                    "), expected finite values with sfreq > 0");
  return info;
}

EpochsPlan PlanEpochs(const EpochsInfo& info, const config::MegEpochsOptions& o) {
  EpochsPlan plan;
  const double per_ms = info.sfreq / 1000.0;  // samples per ms
  // Window.
  plan.window = 1;
  if (o.window_ms > 0) {
    int64_t w = std::max<int64_t>(1, std::llround(o.window_ms * per_ms));
    if (w % 2 == 0) ++w;
    if (w > info.samples)
      throw ConfigError("meg.epochs.window_ms " + fmt::format("{}", o.window_ms) + " ms (" +
                        std::to_string(w) + " samples at " + fmt::format("{}", info.sfreq) +
                        " Hz) is larger than the time axis of " + info.path + " (" +
                        std::to_string(info.samples) + " samples)");
    plan.window = w;
  }
  // Stride.
  plan.stride = 1;
  if (o.step_ms > 0) {
    const double r = o.step_ms * per_ms;
    const int64_t k = std::llround(r);
    if (k < 1 || std::abs(r - double(k)) > 1e-6 * std::max(1.0, r))
      throw ConfigError("meg.epochs.step_ms " + fmt::format("{}", o.step_ms) + " ms is " +
                        fmt::format("{}", r) + " sample periods at " +
                        fmt::format("{}", info.sfreq) + " Hz (" + info.path +
                        "); expected a whole number >= 1");
    plan.stride = k;
  }
  // Crop.
  const double first_f = (o.tmin_ms - info.tmin_ms) * per_ms;
  const double last_f = (o.tmax_ms - info.tmin_ms) * per_ms;
  int64_t first = std::max<int64_t>(0, int64_t(std::ceil(first_f - 1e-6)));
  int64_t last = std::min<int64_t>(info.samples - 1, int64_t(std::floor(last_f + 1e-6)));
  if (first > last)
    throw ConfigError("meg.epochs.tmin_ms/tmax_ms [" + fmt::format("{}", o.tmin_ms) + ", " +
                      fmt::format("{}", o.tmax_ms) + "] ms keep no sample of " + info.path + " (" +
                      fmt::format("{}", info.tmin_ms) + " ms + " + std::to_string(info.samples) +
                      " samples at " + fmt::format("{}", info.sfreq) + " Hz)");
  plan.first = first;
  plan.axis.start_ms = info.tmin_ms + double(first) / per_ms;
  plan.axis.step_ms = double(plan.stride) / per_ms;
  plan.axis.size = (last - first) / plan.stride + 1;
  return plan;
}

at::Tensor EpochsRdms(const EpochsInfo& info, const EpochsPlan& plan, const std::string& method,
                      int64_t block) {
  const bool crossnobis = method == "crossnobis";
  if (!crossnobis && method != "correlation")
    throw ConfigError("meg.epochs.method: expected correlation or crossnobis, got '" + method +
                      "'");
  const int64_t K = int64_t(info.condition_names.size());
  const int64_t N = info.trials, C = info.channels, S = info.samples, T = plan.axis.size;
  const int64_t half = plan.window / 2;
  // Trial -> row of the aggregate: correlation: condition c; crossnobis: c (half A) or K + c (B).
  std::vector<int64_t> row(static_cast<size_t>(N));
  std::vector<double> weight(static_cast<size_t>(N));
  {
    std::vector<int64_t> seen(size_t(K), 0), total(size_t(K), 0);
    for (int64_t c : info.condition) ++total[size_t(c)];
    if (crossnobis)
      for (int64_t c = 0; c < K; ++c)
        if (total[size_t(c)] < 2)
          throw DataError(info.path + ": condition '" + info.condition_names[size_t(c)] + "' has " +
                          std::to_string(total[size_t(c)]) +
                          " trial(s); crossnobis (meg.epochs.method) needs at least 2 per "
                          "condition for its split halves");
    for (int64_t r = 0; r < N; ++r) {
      const int64_t c = info.condition[size_t(r)];
      const int64_t pos = seen[size_t(c)]++;
      if (crossnobis) {
        const bool b = pos % 2 == 1;
        const int64_t nb = total[size_t(c)] / 2, na = total[size_t(c)] - nb;
        row[size_t(r)] = b ? K + c : c;
        weight[size_t(r)] = 1.0 / double(b ? nb : na);
      } else {
        row[size_t(r)] = c;
        weight[size_t(r)] = 1.0 / double(total[size_t(c)]);
      }
    }
  }
  const int64_t rows = crossnobis ? 2 * K : K;
  at::Tensor row_t = at::tensor(row, at::kLong);
  at::Tensor weight_t = at::tensor(weight, at::kDouble).view({N, 1, 1});
  at::Tensor iu = at::triu_indices(K, K, 1, at::kLong);
  const int64_t m = iu.size(1);
  at::Tensor out = at::empty({T, m}, at::kDouble);
  const io::ResultsReader file(info.path);  // kept open for every block
  if (block <= 0) {  // as many output timepoints as fit a 64 MiB float32 read buffer
    const int64_t samples = std::max<int64_t>(1, (int64_t(64) << 20) / (N * C * 4));
    block = std::max<int64_t>(1, (samples - plan.window + 1) / plan.stride);
  }
  constexpr int64_t kTrialChunk = 32;  // trials converted to float64 at a time
  for (int64_t t0 = 0; t0 < T; t0 += block) {
    const int64_t tc = std::min(block, T - t0);
    const int64_t s_first = plan.first + t0 * plan.stride;
    const int64_t s_last = plan.first + (t0 + tc - 1) * plan.stride;
    const int64_t lo = std::max<int64_t>(0, s_first - half);
    const int64_t hi = std::min<int64_t>(S, s_last + half + 1);
    at::Tensor x = ReadSamples(file, info, lo, hi - lo);  // (N, C, L)
    if (!x.isfinite().all().item<bool>())
      throw DataError(info.path + ": /epochs/data has NaN/Inf values in samples [" +
                      std::to_string(lo) + ", " + std::to_string(hi) + ")");
    // Condition (half-)means in float64: (rows, C, L), a few trials at a time.
    at::Tensor agg = at::zeros({rows, C, hi - lo}, at::kDouble);
    for (int64_t i = 0; i < N; i += kTrialChunk) {
      const int64_t len = std::min(kTrialChunk, N - i);
      agg.index_add_(0, row_t.narrow(0, i, len),
                     x.narrow(0, i, len).to(at::kDouble).mul_(weight_t.narrow(0, i, len)));
    }
    // Boxcar over the window (cumulative sums along time), at every output sample of the block.
    at::Tensor cs = at::cat({at::zeros({rows, C, 1}, at::kDouble), agg.cumsum(2)}, 2);
    std::vector<int64_t> a_idx(static_cast<size_t>(tc)), b_idx(static_cast<size_t>(tc));
    std::vector<double> inv(static_cast<size_t>(tc));
    for (int64_t t = 0; t < tc; ++t) {
      const int64_t s = plan.first + (t0 + t) * plan.stride;
      const int64_t a = std::max<int64_t>(0, s - half), b = std::min<int64_t>(S, s + half + 1);
      a_idx[size_t(t)] = a - lo, b_idx[size_t(t)] = b - lo, inv[size_t(t)] = 1.0 / double(b - a);
    }
    at::Tensor win = (cs.index_select(2, at::tensor(b_idx, at::kLong)) -
                      cs.index_select(2, at::tensor(a_idx, at::kLong))) *
                     at::tensor(inv, at::kDouble);        // (rows, C, tc)
    at::Tensor xt = win.permute({2, 0, 1}).contiguous();  // (tc, rows, C)
    at::Tensor d;                                         // (tc, K, K)
    if (crossnobis) {
      at::Tensor A = xt.narrow(1, 0, K), B = xt.narrow(1, K, K);
      at::Tensor G = at::bmm(A, B.transpose(1, 2));  // (tc, K, K): A_i . B_j
      at::Tensor g = G.diagonal(0, 1, 2);            // (tc, K)
      d = (g.unsqueeze(2) + g.unsqueeze(1) - G - G.transpose(1, 2)) / double(C);
    } else {
      at::Tensor c = xt - xt.mean(2, true);
      at::Tensor norm = c.pow(2).sum(2).sqrt();  // (tc, K)
      at::Tensor zero = (norm == 0).nonzero();
      if (zero.size(0) > 0) {
        const int64_t t = zero[0][0].item<int64_t>(), k = zero[0][1].item<int64_t>();
        throw DataError(info.path + ": the mean of condition '" + info.condition_names[size_t(k)] +
                        "' is constant across channels at " +
                        fmt::format("{}", plan.axis.TimeAt(t0 + t)) +
                        " ms; its correlation distance is undefined");
      }
      at::Tensor z = c / norm.unsqueeze(2);
      d = 1.0 - at::bmm(z, z.transpose(1, 2));
    }
    out.narrow(0, t0, tc).copy_(d.index({at::indexing::Slice(), iu[0], iu[1]}));
  }
  return out;
}

MegRdmSummary WriteMegRdms(const config::MegEpochsOptions& o, const std::string& config_hash,
                           const std::string& config_yaml, const std::vector<std::string>* sources) {
  if (o.files.empty())
    throw ConfigError("meg.epochs.files is required: one epochs HDF5 per participant");
  if (o.out.empty())
    throw ConfigError("meg.epochs.out is required: the MEG RDM HDF5 file to write");
  if (!o.participants.empty() && o.participants.size() != o.files.size())
    throw ConfigError("meg.epochs.participants: expected one label per file (" +
                      std::to_string(o.files.size()) + "), got " +
                      std::to_string(o.participants.size()));
  if (o.method != "correlation" && o.method != "crossnobis")
    throw ConfigError("meg.epochs.method: expected correlation or crossnobis, got '" + o.method +
                      "'");
  // Headers first: every mismatch is reported before any computation.
  std::vector<EpochsInfo> infos;
  for (const auto& f : o.files) infos.push_back(ReadEpochsInfo(f));
  if (o.method == "crossnobis") {
    for (const EpochsInfo& e : infos) {
      std::vector<int64_t> count(e.condition_names.size(), 0);
      for (int64_t c : e.condition) ++count[size_t(c)];
      for (size_t c = 0; c < count.size(); ++c)
        if (count[c] < 2)
          throw DataError(e.path + ": condition '" + e.condition_names[c] + "' has " +
                          std::to_string(count[c]) +
                          " trial(s); crossnobis (meg.epochs.method) needs at least 2 per "
                          "condition for its split halves");
    }
  }
  const EpochsInfo& ref = infos[0];
  for (size_t i = 1; i < infos.size(); ++i) {
    const EpochsInfo& e = infos[i];
    if (e.condition_names != ref.condition_names)
      throw DataError(e.path + ": /epochs/condition_names differ from those of " + ref.path +
                      "; every participant needs the same conditions in the same order");
    if (e.sfreq != ref.sfreq || e.tmin_ms != ref.tmin_ms || e.samples != ref.samples)
      throw DataError(e.path + ": time axis (sfreq " + fmt::format("{}", e.sfreq) +
                      " Hz, tmin_ms " + fmt::format("{}", e.tmin_ms) + ", " +
                      std::to_string(e.samples) + " samples) differs from that of " + ref.path +
                      " (" + fmt::format("{}", ref.sfreq) + " Hz, " +
                      fmt::format("{}", ref.tmin_ms) + " ms, " + std::to_string(ref.samples) +
                      " samples)");
  }
  const EpochsPlan plan = PlanEpochs(ref, o);
  MegRdmSummary summary;
  summary.out = o.out;
  summary.names = ref.condition_names;
  summary.axis = plan.axis;
  summary.method = o.method;
  std::unordered_set<std::string> labels_seen;
  for (size_t i = 0; i < infos.size(); ++i) {
    std::string label = !o.participants.empty()         ? o.participants[i]
                        : !infos[i].participant.empty() ? infos[i].participant
                                                        : Stem(infos[i].path);
    if (!labels_seen.insert(label).second)
      throw ConfigError("participant label '" + label + "' of " + infos[i].path +
                        " is used twice; set meg.epochs.participants");
    summary.participants.push_back(label);
  }
  const int64_t P = int64_t(infos.size()), T = plan.axis.size;
  const int64_t K = int64_t(ref.condition_names.size()), m = K * (K - 1) / 2;
  at::Tensor all = at::empty({P, T, m}, at::kFloat);
  for (int64_t p = 0; p < P; ++p) {
    LOG_INFO("meg rdm: participant {} ({}): {} trials x {} channels, {} timepoints, {}",
             summary.participants[size_t(p)], infos[size_t(p)].path, infos[size_t(p)].trials,
             infos[size_t(p)].channels, T, o.method);
    all[p].copy_(EpochsRdms(infos[size_t(p)], plan, o.method));
  }
  io::ResultsStore store = io::ResultsStore::Create(o.out);
  io::WriteProvenance(&store, "meg rdm", config_hash, config_yaml);
  store.WriteTensor("/meg/rdm", all);
  store.SetAttribute("/meg/rdm", "layout",
                     std::string("condensed upper triangle (i < j, row-major; scipy squareform "
                                 "order), (participants, timepoints, pairs)"));
  store.WriteStrings("/meg/names", summary.names);
  store.WriteStrings("/meg/participants", summary.participants);
  store.SetAttribute("/meg", "time_start_ms", plan.axis.start_ms);
  store.SetAttribute("/meg", "time_step_ms", plan.axis.step_ms);
  store.SetAttribute("/meg", "method", o.method);
  store.SetAttribute("/meg", "window_ms", o.window_ms);
  store.SetAttribute("/meg", "window_samples", plan.window);
  store.SetAttribute("/meg", "sfreq", ref.sfreq);
  store.SetAttribute("/meg", "sources", sources != nullptr ? *sources : o.files);
  store.Commit();
  return summary;
}

}  // namespace cliphba::meg
