// PredictBehavior and PredictMeg; see predict.h for the contract and the files written.
#include "predict/predict.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "data/image.h"
#include "io/output_policy.h"
#include "io/results_store.h"
#include "io/text_file.h"
#include "model/precision.h"
#include "parallel/collectives.h"
#include "predict/convert.h"
#include "predict/model_files.h"
#include "predict/rdm_writer.h"
#include "train/meg_predictor.h"

namespace cliphba::predict {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr int64_t kRdmPiece = int64_t(1) << 24;  // pairs per RDM write (64 MiB of float32)

io::ResultsStore OpenStore(const std::string& out, const parallel::Comm& comm) {
  return comm.is_mpi() ? io::ResultsStore::CreateParallel(out, comm)
                       : io::ResultsStore::Create(out);
}

// One CSV field: quoted when it holds a comma, quote or line break.
std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\r\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char c : s) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

// The reference's static_embedding.csv layout: image_name, then one column per label.
void WriteCsv(const std::string& path, const std::vector<std::string>& names,
              const std::vector<std::string>& labels, const at::Tensor& emb) {
  std::ostringstream out;
  out << "image_name";
  for (const auto& l : labels) out << ',' << CsvField(l);
  out << '\n';
  const at::Tensor e = emb.to(at::kFloat).contiguous();
  const float* v = e.data_ptr<float>();
  char buf[32];
  for (size_t i = 0; i < names.size(); ++i) {
    out << CsvField(names[i]);
    for (size_t k = 0; k < labels.size(); ++k) {
      std::snprintf(buf, sizeof buf, ",%.9g", double(v[i * labels.size() + k]));
      out << buf;
    }
    out << '\n';
  }
  io::WriteTextFileAtomically(path, out.str());
}

train::MegImages MegImagesOf(const ImageSet& set, int threads) {
  train::MegImages m;
  m.paths = set.paths;
  m.pixels = set.pixels;
  m.threads = threads;
  return m;
}

// Every rank's chunks of HBA logits, all-gathered: (N, K) float32 on every rank. Collective; a
// rank whose images fail to decode stops every rank (parallel::RunOnAll).
at::Tensor EmbedShards(BehaviorModel& bm, const train::MegImages& images, int64_t batch,
                       const parallel::Comm& comm,
                       model::Precision precision = model::Precision::kFloat32) {
  const int64_t n = images.size(), k = int64_t(bm.prompts.size());
  const Range mine = train::PredictImageShard(n, batch, comm.size(), comm.rank());
  at::Tensor local = at::zeros({mine.size(), k}, at::kFloat);
  parallel::RunOnAll(comm, [&] {
    at::NoGradGuard no_grad;
    train::ForEachImageChunk(
        images, bm.normalization, bm.clip->config().image_resolution, mine, batch,
        [&](int64_t b, int64_t e, const at::Tensor& px) {
          local.slice(0, b - mine.begin, e - mine.begin)
              .copy_(bm.clip->HbaLogits(bm.clip->EncodeImage(px, true, precision).features,
                                        bm.text_features));
        });
  });
  at::Tensor all = at::zeros({n, k}, at::kFloat);
  all.slice(0, mine.begin, mine.end).copy_(local);
  comm.AllgatherRows(all, train::PredictShardSizes(n, batch, comm.size()));
  return all;
}

std::string JoinLines(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : "\n") + x;
  return s;
}

// The predictions of a behaviour model for `set` under `root` of the store: embedding (N, K),
// rdm/correlation and rdm/cosine (m) (if rdm), labels, model attributes. Collective. Returns the
// (N, K) embedding on every rank.
at::Tensor WriteBehavior(io::ResultsStore& store, const std::string& root,
                         const std::string& model_arg, BehaviorModel& bm,
                         const ImageSet& set, int64_t batch_opt, int threads, bool rdm,
                         const parallel::Comm& comm,
                         model::Precision precision = model::Precision::kFloat32) {
  const int64_t n = set.size(), k = int64_t(bm.prompts.size());
  const int64_t batch = batch_opt > 0 ? batch_opt : bm.batch > 0 ? bm.batch : 32;
  const Range mine = train::PredictImageShard(n, batch, comm.size(), comm.rank());
  const at::Tensor all = EmbedShards(bm, MegImagesOf(set, threads), batch, comm, precision);
  const at::Tensor local = all.slice(0, mine.begin, mine.end);
  store.WriteStrings(root + "/labels", bm.labels);
  store.WriteRows(root + "/embedding", {n, k}, at::kFloat, mine.begin, local);
  const int64_t m = n * (n - 1) / 2;
  if (rdm) {
    for (const auto& [name, metric] : {std::make_pair("correlation", RdmMetric::kCorrelation),
                                       std::make_pair("cosine", RdmMetric::kCosine)}) {
      const std::string ds = root + "/rdm/" + name;
      store.CreateDataset(ds, {m}, at::kFloat);
      WriteCondensed(store, ds, -1, PrepareRows(all, metric), kRdmPiece, comm);
    }
  }
  store.SetAttribute(root, "model", model_arg);
  store.SetAttribute(root, "model_kind", bm.kind);
  store.SetAttribute(root, "model_file", bm.model_file);
  store.SetAttribute(root, "base_checkpoint", bm.base_checkpoint);
  store.SetAttribute(root, "normalization", bm.normalization);
  return all;
}

}  // namespace

void CheckOutputPath(const std::string& setting, const std::string& out, bool force,
                 const std::vector<std::string>& inputs) {
  if (out.empty()) return;
  io::RefuseOutputOverInputs(setting, out, {out + ".partial"}, inputs);
  std::error_code ec;
  if (fs::exists(out, ec) && !force)
    throw ConfigError(setting + " " + out +
                      " exists: use --force to replace it, or choose another file");
  const fs::path parent = fs::path(out).parent_path();
  if (!parent.empty() && !fs::is_directory(parent, ec))
    throw IoError(setting + " " + out + ": the folder " + parent.string() + " does not exist");
}

PredictBehaviorResult PredictBehavior(const PredictBehaviorOptions& o,
                                      const parallel::Comm& comm) {
  if (o.out.empty()) throw ConfigError("--out OUT.h5 is required");
  if (o.batch < 0) throw ConfigError("--batch must be >= 1");
  const std::vector<std::string> inputs = {o.model,         o.images.npy,  o.images.list,
                                           o.text.prompts,  o.text.vocab,  o.text.labels};
  CheckOutputPath("--out", o.out, o.force, inputs);
  CheckOutputPath("--csv", o.csv, o.force, inputs);
  if (!o.csv.empty() && fs::weakly_canonical(o.csv) == fs::weakly_canonical(o.out))
    throw ConfigError("--csv and --out name the same file " + o.out);

  const ImageSet set = ResolveImageSet(o.images, 0);  // before the model: cheap checks first
  const model::Precision precision = model::ParsePrecision(o.precision, "--precision");
  BehaviorModel bm = LoadBehaviorModel(o.model, o.text, o.strict);
  CheckImageResolution(set, o.images, bm.clip->config().image_resolution);
  for (const auto& s : set.skipped) LOG_WARN("skipped (does not decode): {}", s);
  const int64_t n = set.size(), k = int64_t(bm.prompts.size());
  LOG_INFO("predict behavior: {} images, {} model {} ({} dimensions), {} rank(s)", n, bm.kind,
           bm.model_file, k, comm.size());

  io::ResultsStore store = OpenStore(o.out, comm);
  io::WriteProvenance(&store, "predict behavior", "", "");
  store.WriteStrings("/predict/image_names", set.names);
  const at::Tensor all =
      WriteBehavior(store, "/predict", o.model, bm, set, o.batch, o.loader_threads, true, comm,
                    precision);
  store.SetAttribute("/predict", "n_images", n);
  store.SetAttribute("/predict", "precision", std::string(model::PrecisionName(precision)));
  store.SetAttribute("/predict", "skipped_images", JoinLines(set.skipped));
  store.Commit();  // then the CSV: a failure before this point leaves neither file
  if (!o.csv.empty())  // on rank 0; a failure there fails every rank
    parallel::RunOnRoot(comm, [&] { WriteCsv(o.csv, set.names, bm.labels, all); });

  PredictBehaviorResult r;
  r.kind = bm.kind;
  r.n_images = n;
  r.n_dims = k;
  r.skipped = set.skipped;
  r.out = o.out;
  r.csv = o.csv;
  return r;
}

namespace {

// A MEG model folder to predict with, its name in the output (group, individual/<p>) and its
// best.json (read once).
struct MegModelRef {
  std::string name, dir;
  json meta;
};

MegModelRef MegModel(const std::string& name, const std::string& dir) {
  return {name, dir,
          detail::ReadJsonFile(dir + "/best.json",
                               "no best.json: not a finished `cliphba train meg` folder")};
}

std::vector<MegModelRef> ResolveMegModels(const PredictMegOptions& o) {
  if (o.model.empty()) throw ConfigError("--model is required");
  std::error_code ec;
  if (!fs::is_directory(o.model, ec))
    throw IoError(o.model + " (--model): not a folder (a `train meg` folder or a `run` folder)");
  const bool run_folder = fs::is_directory(fs::path(o.model) / "units", ec);
  std::vector<MegModelRef> refs;
  if (!run_folder) {
    if (o.all || !o.unit.empty())
      throw ConfigError("--unit and --all need a `cliphba run` folder; " + o.model + " is not one");
    MegModelRef ref = MegModel("", o.model);
    const json& meta = ref.meta;
    const std::string format = meta.value("format", std::string());
    if (format != detail::kMegFormat)
      throw ConfigError(o.model + " (--model) is not a MEG model (format '" + format +
                        "')" + (format.find("behavior") != std::string::npos
                                    ? ": use `cliphba predict behavior`"
                                    : ""));
    ref.name = meta.value("mode", std::string("group"));
    if (ref.name == "individual") {
      const auto ps = meta.value("participants", std::vector<std::string>());
      ref.name += "/" + (ps.empty() ? std::string("unknown") : ps[0]);
    }
    refs.push_back(std::move(ref));
    return refs;
  }
  if (o.all == !o.unit.empty())
    throw ConfigError(o.model + " is a `cliphba run` folder: give --unit group|individual/<p> or --all");
  if (!o.unit.empty()) {
    if (o.unit != "group" && o.unit.rfind("individual/", 0) != 0)
      throw ConfigError("--unit " + o.unit + ": expected group or individual/<participant>");
    const std::string dir = (fs::path(o.model) / o.unit).string();
    if (!fs::exists(dir + "/best.json", ec))
      throw IoError(dir + ": no trained model for unit " + o.unit + " in this run folder");
    refs.push_back(MegModel(o.unit, dir));
    return refs;
  }
  if (fs::exists(fs::path(o.model) / "group" / "best.json", ec))
    refs.push_back(MegModel("group", (fs::path(o.model) / "group").string()));
  const fs::path ind = fs::path(o.model) / "individual";
  std::vector<std::string> ps;
  if (fs::is_directory(ind, ec))
    for (const auto& e : fs::directory_iterator(ind))
      if (fs::exists(e.path() / "best.json", ec)) ps.push_back(e.path().filename().string());
  std::sort(ps.begin(), ps.end());
  for (const auto& p : ps) refs.push_back(MegModel("individual/" + p, (ind / p).string()));
  if (refs.empty()) throw IoError(o.model + ": no trained MEG model in this run folder");
  return refs;
}

// The options a MEG model was trained with, as far as prediction needs them (best.json).
config::TrainMegOptions MegOptionsOf(const MegModelRef& ref, const PredictMegOptions& o) {
  const json& meta = ref.meta;
  const std::string where = ref.dir + "/best.json";
  config::TrainMegOptions t;
  t.out_dir = ref.dir;
  try {
    t.checkpoint = meta.at("base_checkpoint").get<std::string>();
    if (!meta.contains("prompts") || !meta.contains("vocab"))
      throw DataError(where + ": written by an older cliphba without the model record (prompts, "
                              "vocab): retrain it, or predict from a run of this version");
    t.prompts = meta.at("prompts").get<std::string>();
    t.vocab = meta.at("vocab").get<std::string>();
    t.vocab_remap = meta.value("vocab_remap", std::string()) == "tiny" ? config::VocabRemap::kTiny
                                                                        : config::VocabRemap::kNone;
    t.normalization = meta.value("normalization", std::string("things"));
    t.behavior_checkpoint = meta.value("behavior_checkpoint", std::string());
    t.behavior_vision = meta.value("behavior_vision", true);
    t.window_ms = meta.value("window_ms", t.window_ms);
    t.seed = meta.value("seed", t.seed);
  } catch (const json::exception& e) {
    throw DataError(where + ": corrupt model metadata: " + e.what());
  }
  // Chunks of the training batch by default: then the model RDMs equal the alignment's.
  t.batch = o.batch > 0 ? o.batch : meta.value("batch", int64_t(32));
  if (t.batch < 1) throw DataError(where + ": batch " + std::to_string(t.batch) + ", expected >= 1");
  std::error_code ec;
  if (!fs::exists(ref.dir + "/best.safetensors", ec))
    throw IoError(ref.dir + "/best.safetensors: missing beside best.json (an unfinished model?)");
  t.loader_threads = o.loader_threads;
  return t;
}

// The models of one file must share the time axis and the number of dimensions: checked from
// their best.json before any work. DataError naming the first model that differs.
void CheckMegModelsAgree(const std::vector<MegModelRef>& refs) {
  auto signature = [](const MegModelRef& r) {
    return r.meta.value("axis", json()).dump() + "|" +
           std::to_string(r.meta.value("prompt_texts", std::vector<std::string>()).size());
  };
  const std::string first = signature(refs[0]);
  for (size_t i = 1; i < refs.size(); ++i)
    if (signature(refs[i]) != first)
      throw DataError(refs[i].dir + "/best.json: another time axis or number of dimensions than " +
                      refs[0].dir + "; predict such models into separate files");
}

// The MEG models `refs` (options `opts`; `first` already built for refs[0]) on `set`, under
// /predict/meg. Collective. Fills res->models / timepoints / n_dims.
void WriteMegModels(io::ResultsStore& store, const std::vector<MegModelRef>& refs,
                    const std::vector<config::TrainMegOptions>& opts,
                    std::unique_ptr<train::MegPredictor> first, const ImageSet& set,
                    const PredictMegOptions& o, const parallel::Comm& comm,
                    PredictMegResult* res) {
  const int64_t n = set.size(), t_full = first->timepoints(), k = first->prompts();
  const std::vector<double> times = first->times_ms();
  store.WriteTensor("/predict/meg/times_ms", at::tensor(times, at::kDouble));
  for (size_t i = 0; i < refs.size(); ++i) {
    std::unique_ptr<train::MegPredictor> p =
        i == 0 ? std::move(first) : std::make_unique<train::MegPredictor>(opts[i]);
    if (p->times_ms() != times || p->prompts() != k)
      throw DataError(refs[i].dir + ": another time axis or number of dimensions than " +
                      refs[0].dir + "; predict such models into separate files");
    const std::string g = "/predict/meg/" + refs[i].name;
    const Range mine = train::PredictImageShard(n, opts[i].batch, comm.size(), comm.rank());
    LOG_INFO("predict meg: {} ({}): {} images x {} timepoints", refs[i].name, refs[i].dir, n,
             t_full);
    store.CreateDataset(g + "/embedding", {t_full, n, k}, at::kFloat);
    if (!o.no_rdm) store.CreateDataset(g + "/rdm", {t_full, n * (n - 1) / 2}, at::kFloat);
    const uint64_t seed = o.noise ? o.noise_seed : uint64_t(opts[i].seed);
    train::StreamMegPredictions(
        *p, MegImagesOf(set, o.loader_threads), opts[i].batch, o.t_block, o.noise, seed, comm,
        [&](int64_t t0, const at::Tensor& emb) {  // (count, N, K) on every rank
          store.WriteBlock(g + "/embedding", {t0, mine.begin, 0},
                           emb.slice(1, mine.begin, mine.end).contiguous());
          if (o.no_rdm) return;
          for (int64_t t = 0; t < emb.size(0); ++t)
            WriteCondensed(store, g + "/rdm", t0 + t, PrepareRows(emb[t], RdmMetric::kCorrelation),
                           kRdmPiece, comm);
        });
    store.WriteTensor(g + "/wfr", p->Wfr());
    store.WriteStrings(g + "/labels", refs[i].meta.value("labels", std::vector<std::string>()));
    store.SetAttribute(g, "model_dir", refs[i].dir);
    store.SetAttribute(g, "noise", int64_t(o.noise ? 1 : 0));
    store.SetAttribute(g, "seed", int64_t(seed));
    res->models.push_back(refs[i].name);
  }
  res->n_dims = k;
  res->timepoints = t_full;
}

}  // namespace

PredictMegResult PredictMeg(const PredictMegOptions& o, const parallel::Comm& comm) {
  if (o.out.empty()) throw ConfigError("--out OUT.h5 is required");
  if (o.batch < 0 || o.t_block < 1) throw ConfigError("--batch and --t-block must be >= 1");
  const std::vector<MegModelRef> refs = ResolveMegModels(o);
  std::vector<config::TrainMegOptions> opts;
  std::vector<std::string> inputs = {o.images.npy, o.images.list};
  for (const auto& r : refs) {
    opts.push_back(MegOptionsOf(r, o));
    for (const std::string& f : {r.dir + "/best.safetensors", r.dir + "/best.json",
                                 opts.back().checkpoint, opts.back().prompts, opts.back().vocab,
                                 opts.back().behavior_checkpoint})
      inputs.push_back(f);
  }
  CheckOutputPath("--out", o.out, o.force, inputs);
  CheckMegModelsAgree(refs);
  const ImageSet set = ResolveImageSet(o.images, 0);  // before the models: cheap checks first
  if (o.noise && set.size() < 2)
    throw ConfigError("--noise-seed needs at least 2 images (the noise scale is their standard "
                      "deviation at each timepoint)");
  auto first = std::make_unique<train::MegPredictor>(opts[0]);
  CheckImageResolution(set, o.images, first->image_resolution());
  for (const auto& s : set.skipped) LOG_WARN("skipped (does not decode): {}", s);
  io::ResultsStore store = OpenStore(o.out, comm);
  io::WriteProvenance(&store, "predict meg", "", "");
  store.WriteStrings("/predict/image_names", set.names);
  PredictMegResult res;
  WriteMegModels(store, refs, opts, std::move(first), set, o, comm, &res);
  store.SetAttribute("/predict", "n_images", set.size());
  store.SetAttribute("/predict", "skipped_images", JoinLines(set.skipped));
  store.Commit();
  res.n_images = set.size();
  res.skipped = set.skipped;
  res.out = o.out;
  return res;
}

PredictRunResult PredictRun(const PredictRunOptions& o, const parallel::Comm& comm) {
  std::error_code ec;
  const bool behavior = fs::exists(fs::path(o.run_dir) / "behavior" / "best.json", ec);
  PredictMegOptions mo;
  mo.model = o.run_dir;
  mo.all = true;
  mo.images = o.images;
  mo.no_rdm = !o.rdm;
  mo.loader_threads = o.loader_threads;
  std::vector<MegModelRef> refs;
  bool meg = fs::exists(fs::path(o.run_dir) / "group" / "best.json", ec);
  if (fs::is_directory(fs::path(o.run_dir) / "individual", ec))
    for (const auto& e : fs::directory_iterator(fs::path(o.run_dir) / "individual"))
      meg = meg || fs::exists(e.path() / "best.json", ec);
  if (meg) refs = ResolveMegModels(mo);
  if (!behavior && refs.empty())
    throw ConfigError(o.run_dir + ": no trained model to predict with (behavior, group, individual)");
  std::vector<config::TrainMegOptions> opts;
  for (const auto& r : refs) opts.push_back(MegOptionsOf(r, mo));
  if (!refs.empty()) CheckMegModelsAgree(refs);
  const ImageSet set = ResolveImageSet(o.images, 0);

  std::unique_ptr<BehaviorModel> bm;
  std::unique_ptr<train::MegPredictor> first;
  int64_t resolution = 0;
  if (behavior) {
    bm = std::make_unique<BehaviorModel>(LoadBehaviorModel(o.run_dir + "/behavior", {}, false));
    resolution = bm->clip->config().image_resolution;
  }
  if (!refs.empty()) {
    first = std::make_unique<train::MegPredictor>(opts[0]);
    if (resolution != 0 && resolution != first->image_resolution())
      throw DataError(o.run_dir + ": the behaviour and MEG models take different image sizes");
    resolution = first->image_resolution();
  }
  CheckImageResolution(set, o.images, resolution);
  for (const auto& s : set.skipped) LOG_WARN("skipped (does not decode): {}", s);
  io::ResultsStore store = OpenStore(o.out, comm);
  io::WriteProvenance(&store, "run predict", o.config_hash, o.config_yaml);
  store.WriteStrings("/predict/image_names", set.names);
  PredictRunResult res;
  if (bm) {
    WriteBehavior(store, "/predict/behavior", o.run_dir + "/behavior", *bm, set, 0,
                  o.loader_threads, o.rdm, comm);
    res.models.push_back("behavior");
  }
  if (first) {
    PredictMegResult mr;
    WriteMegModels(store, refs, opts, std::move(first), set, mo, comm, &mr);
    res.models.insert(res.models.end(), mr.models.begin(), mr.models.end());
  }
  store.SetAttribute("/predict", "n_images", set.size());
  store.SetAttribute("/predict", "skipped_images", JoinLines(set.skipped));
  store.Commit();
  res.n_images = set.size();
  return res;
}

at::Tensor BehaviorEmbeddings(BehaviorModel& bm, const std::vector<std::string>& paths,
                              int threads, const parallel::Comm& comm) {
  train::MegImages images;
  images.paths = paths;
  images.threads = threads;
  return EmbedShards(bm, images, bm.batch > 0 ? bm.batch : 32, comm);
}

}  // namespace cliphba::predict
