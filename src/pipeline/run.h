// `cliphba run`: the whole pipeline as resumable units of work in one run folder.
//
// Run folder = run.out_dir (default results/<run.name>). Units of work, in pipeline order:
//   behavior                 one; the stage-1 behaviour fine-tuning on the whole world
//   group                    one; the group MEG model (target: mean RDM of the participants)
//   individual/<label>       one per selected participant; trained by one participant group
//   alignment                one; model-vs-MEG statistics, sharded over timepoints
//   report                   one; writes the results file (run.results, default
//                            <run folder>/results.h5) and runs the report script
// Each unit keeps its files in <run folder>/<unit> (checkpoints, the trainers' resume state) and a
// record units/<unit>.json: state (pending | running | done | failed), checkpoint folder, the hash
// of the configuration sections that affect that unit, start/end time, wall time, rank layout,
// key metric. Records are written atomically (temporary file + rename). The manifest is the set of
// all unit records; the report unit copies it into the results file under /manifest.
//
// Rerun semantics: a done unit is skipped; a running or failed unit resumes from its checkpoint
// (the trainers' resume state). If the hash of a recorded unit differs from the current config,
// the run refuses (ConfigError, exit 2) naming the units, unless --force: then the changed units
// and every unit downstream of them (behavior -> group, individual -> alignment -> report;
// behavior -> report) are reset (record and folder removed) and redone; nothing else is.
//
// Locks (flock, released by the kernel when a process dies, so kill -9 never leaves a stale lock):
//   run.lock             exclusive for a whole-pipeline run, shared for `--only` runs (Slurm array
//                        tasks share a run folder); a conflicting run fails with IoError (exit 3)
//                        "locked by another run (pid, host)".
//   units/<unit>.lock    held while the unit runs; a participant group claims a participant by
//                        taking its lock without blocking (atomic across groups, array tasks and
//                        reruns), then re-reads its record (done -> release and skip).
//
// MPI: behavior, group, alignment and report run on the whole world. For the individual stage the
// world is split (MPI_Comm_split) into groups of run.group_size consecutive ranks (default
// world / min(world, participants), at least 1); each group leader claims the next unclaimed
// participant, broadcasts it in its group, and the group trains it data-parallel on the
// sub-communicator. Preemption (SIGTERM) stops at the trainers' safe points: the unit stays
// "running" with its resume state and the process exits 75 (ExitCode::kPreempted).
//
// Progress: world rank 0 logs the stage and participant of every unit; the trainers log epoch,
// loss, images/s and ETA; FormatSummary gives the final table (unit, state, wall time, metric).
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "config/options.h"
#include "parallel/comm.h"
#include "pipeline/alignment_results.h"
#include "stats/bootstrap.h"
#include "stats/common.h"

namespace cliphba::meg {
class RdmStack;
}
namespace cliphba::io {
class ResultsStore;
}

namespace cliphba::pipeline {

enum class Stage { kBehavior, kGroup, kIndividual, kPredict, kAlignment, kReport };

// "behavior", "group", "individual", "predict", "alignment", "report" (pipeline order).
const std::vector<std::string>& StageNames();
std::string StageName(Stage stage);
// Throws ConfigError naming `what` (e.g. "--only") for an unknown name.
Stage ParseStage(const std::string& name, const std::string& what);

// "behavior", "group", "alignment", "report", or "individual/<participant>".
std::string UnitName(Stage stage, const std::string& participant = "");
// Labels become file names: [A-Za-z0-9._-]+, not "." or "..". Throws ConfigError otherwise.
void CheckParticipantLabel(const std::string& label);

// The run folder: run.out_dir, or results/<run.name> when it is empty.
std::string RunDir(const config::Config& config);
// The results file: run.results, or <run folder>/results.h5.
std::string ResultsPath(const config::Config& config);

// The state of a unit's record; the JSON holds its name: "pending", "running", "done", "failed".
enum class UnitState { kPending, kRunning, kDone, kFailed };
std::string UnitStateName(UnitState state);
// Throws DataError "<where>: state '<name>': expected pending, running, done or failed".
UnitState ParseUnitState(const std::string& name, const std::string& where);

// One unit's record (units/<unit>.json).
struct UnitRecord {
  std::string unit;                       // UnitName
  std::string stage;                      // StageName
  std::string participant;                // "" unless individual
  UnitState state = UnitState::kPending;  // pending | running | done | failed
  std::string checkpoint_dir;             // the unit's folder (checkpoints, resume state, outputs)
  std::string config_hash;                // UnitConfigHash when the unit was (last) started
  std::string start_utc, end_utc;         // ISO 8601; end_utc empty while running
  double wall_seconds = 0;                // of the last attempt
  int64_t attempts = 0;                   // starts, resumes included
  int64_t world_size = 1;                 // rank layout of the last attempt
  int64_t group = 0;                      // participant group (0 for world units)
  int64_t group_size = 1;                 // ranks that ran the unit
  std::vector<int64_t> ranks;             // their world ranks
  std::string host;                       // host of the (group) leader
  int64_t pid = 0;                        // pid of the (group) leader
  std::string metric_name;                // key metric, e.g. "heldout_spearman"
  double metric = std::nan("");
  std::map<std::string, double> metrics;  // further numbers of the unit
  std::string error;                      // message of the last failure
};

std::string RecordToJson(const UnitRecord& record);
// Throws DataError naming `where` for malformed JSON or missing fields.
UnitRecord RecordFromJson(const std::string& text, const std::string& where);
std::string RecordPath(const std::string& run_dir, const std::string& unit);  // units/<unit>.json
std::string LockPath(const std::string& run_dir, const std::string& unit);    // units/<unit>.lock
// Atomic: writes RecordPath + ".tmp.<pid>" then renames. Throws IoError.
void WriteRecord(const std::string& run_dir, const UnitRecord& record);
// Every record under run_dir/units, keyed by unit name (empty if there is none).
std::map<std::string, UnitRecord> ReadManifest(const std::string& run_dir);

// Hash (16 hex digits) of exactly the configuration sections that determine the unit's result:
//   behavior   train.behavior (without out_dir, loader threads, progress interval, transport)
//   group      the participant list, meg.rdm and train.meg (without out_dir, threads, transport)
//   individual the participant label, meg.rdm and train.meg (likewise)
//   alignment  run.seed, run.own_vs_other_n, the participant list and meg.rdm
//   report     run.results, run.report_script
std::string UnitConfigHash(const config::Config& config, Stage stage,
                           const std::string& participant = "");

// Stages whose outputs `stage` reads directly.
std::vector<Stage> Upstream(Stage stage);
// The stage of a unit name ("individual/3" -> kIndividual). Throws DataError for an unknown name.
Stage StageOfUnit(const std::string& unit);
// --force: the units of `all_units` to redo = `changed` plus every unit downstream of one of
// them (transitively), in the order of all_units.
std::vector<std::string> AffectedUnits(const std::vector<std::string>& changed,
                                       const std::vector<std::string>& all_units);

// Ranks per participant group: configured (> 0, capped at world) or
// world / min(world, n_participants), at least 1.
int GroupSize(int64_t configured, int world_size, int64_t n_participants);

// An advisory flock on a file (created if missing), released on destruction or process death.
class FileLock {
 public:
  FileLock() = default;
  // Non-blocking. True if acquired. Throws IoError if the file cannot be opened.
  bool TryAcquire(const std::string& path, bool exclusive);
  void Release();
  bool held() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  FileLock(FileLock&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock() { Release(); }

 private:
  int fd_ = -1;
};

// The claim step of the work queue, on a group leader: the first participant of `order` whose
// unit lock can be taken without blocking and whose record is not done. Returns "" when none is
// left. On success *lock holds the unit's lock.
std::string ClaimNext(const std::string& run_dir, const std::vector<std::string>& order,
                      FileLock* lock);

// `cliphba run` flags.
struct RunArgs {
  std::vector<std::string> only;          // --only STAGE (repeatable); empty = run.stages
  std::vector<std::string> participants;  // --participants a,b,c: labels or indices
  bool force = false;                     // --force: redo units whose config changed
};

// What a stage implementation gets for one unit.
struct StageContext {
  const config::Config* config = nullptr;
  std::string run_dir;
  std::string unit;
  std::string participant;  // individual only
  std::string out_dir;      // the unit's folder (created)
  std::string config_hash;  // UnitConfigHash: the trainers' resume hash
  bool resume = false;      // the unit was started before: continue from its resume state
  const parallel::Comm* comm = nullptr;   // world, or the participant group's sub-communicator
  std::vector<std::string> participants;  // every selected participant (group, alignment)
};

struct UnitOutcome {
  bool stopped = false;  // preempted: resume state saved, the unit stays "running"
  std::string metric_name;
  double metric = std::nan("");
  std::map<std::string, double> metrics;
};

using StageFn = std::function<UnitOutcome(const StageContext&)>;

// The stage implementations (injectable for tests). An empty function = the stage is not
// available in this build (ConfigError when it is requested).
struct StageSet {
  StageFn behavior, group, individual, predict, alignment, report;
  // Every participant label of the cohort (default: run.participants).
  std::function<std::vector<std::string>(const config::Config&)> participants;
  std::string missing_note;       // appended to the "stage not available" error
  bool check_meg_inputs = false;  // check meg.rdm / train.meg inputs before any work
};

// The real stages: train::TrainBehavior (<run>/behavior); train::TrainMeg + PredictMegRdms for
// group and individual/<label> (text tower from <run>/behavior/best.safetensors when the behaviour
// stage is configured; model_rdms.h5 over the held-out objects, or all objects of meg.rdm);
// predict::PredictRun (every model of the run on run.predict.images into <run>/predictions.h5);
// the alignment statistics; the report (results file + manifest + report script).
StageSet DefaultStages();

// ---- MEG model units -> alignment unit ----
// Every MEG model unit (group, individual/<label>) leaves two model-RDM files in its folder:
//   model_rdms.h5           the out-of-sample RDMs the alignment compares
//   model_rdms_insample.h5  the unit's model on the objects it trained on (a labelled diagnostic)
// Layout of each:
//   /model/rdm    float64 (T, m)  condensed model RDMs (no noise) at every timepoint of the MEG
//                                 axis; NaN for a pair that no single model predicted (the
//                                 objects of two different cross-validation folds)
//   /model/names  string (n)      objects in RDM order (the MEG RDM stack's order)
//   /model/fold   int64 (n)       the fold whose model predicted each object (all 0 unless
//                                 cross-validated); attrs of /model: objects, n_folds
std::string ModelRdmPath(const std::string& unit_dir);
std::string ModelRdmInsamplePath(const std::string& unit_dir);
struct ModelRdms {
  at::Tensor rdm;  // (T, m) float64
  std::vector<std::string> names;
  std::vector<int64_t> fold;    // (n) in [0, n_folds); all 0 for one set of objects
  std::string objects = "insample";  // "heldout" | "cross_validated" | "insample"
  at::Tensor block_weights;  // (T, L) the unit's own model's block weights over time (the in-sample
                             // file, written by the unit that trained it); undefined if absent
};
// Atomic (ResultsStore). Throws DataError for shapes (rdm (T, m) with m = n (n - 1) / 2, fold
// (n)), an unknown `objects`, a within-fold pair that is not finite or a cross-fold one that is.
void WriteModelRdms(const std::string& path, const ModelRdms& rdms);
// Throws IoError (missing file), DataError (shapes; a file without /model/fold is one fold).
ModelRdms ReadModelRdms(const std::string& path);

// The out-of-sample design of a run's MEG units, checked before any training: the objects of
// train.meg.heldout_names in the stack's order (empty when the key is empty; ConfigError naming
// the key when it leaves fewer than 3 objects of the stack), else the run.cv_folds folds of the
// stack's objects (ObjectFolds (core/folds.h) of train.meg.seed, >= 3 objects per fold; ConfigError
// naming run.cv_folds).
std::vector<std::string> MegHeldoutObjects(const config::Config& config,
                                           const meg::RdmStack& stack);
std::vector<int64_t> MegFolds(const config::Config& config, const meg::RdmStack& stack);

// Stages 2 and 3 (group, individual/<label>): the unit's model, model_rdms_insample.h5 and the
// out-of-sample model_rdms.h5 (held-out objects, or run.cv_folds fold models in cv/fold-<k>).
// Collective over the unit's communicator; see run_meg.cc.
UnitOutcome MegStage(const StageContext& context);

// True when run.stages names `stage` (configured for the run, whether or not this call runs it).
bool StageConfigured(const config::Config& config, const std::string& stage);

// The cohort: meg.rdm's participant labels (run.participants, when set, selects among them by
// label or index), or run.participants when meg.rdm.path is empty.
std::vector<std::string> CohortParticipants(const config::Config& config);

// The alignment unit (collective over the world): reads meg.rdm and every model unit's
// model_rdms.h5, computes Spearman/Pearson alignment and the noise ceilings with the timepoints
// sharded over ranks (contiguous ranges; per-timepoint statistics gathered in timepoint order and
// computed single-threaded, so the result is bit-identical for any number of ranks), then the
// own-vs-other test; rank 0 writes <run>/alignment/alignment.h5 (the results schema's /meg block
// plus /run/models). Throws ConfigError (meg.rdm.path unset), IoError, DataError.
UnitOutcome AlignmentStage(const StageContext& context);

// Copies the /meg and /compare blocks of an alignment.h5 into `store`.
void CopyMegAlignment(io::ResultsStore* store, const std::string& alignment_h5);

// Sign-flip cluster test over participants of values[:, first:] (P, T) (stats/cluster.h: MNE's
// permutation_cluster_1samp_test given the same flips), cluster-forming t at the quantile of
// cluster_p for `tail` (MNE's default threshold); flips stats::SignFlipsFor(n, P, tail, seed):
// every pattern when n reaches MNE's exact test, else n - 1 random flips. Writes
// <group>/significant (T) int8 (1 inside a cluster with p < 0.05, 0 before `first`; attrs
// threshold, cluster_p_threshold, n_permutations (observed included), exact, tail,
// first_timepoint) and <group>/clusters (K, 4) rows (start, stop, mass, p; indices of the full
// axis) when there is a cluster. Nothing but a warning when a tested timepoint has zero variance
// over participants.
void WriteClusterTest(io::ResultsStore* store, const std::string& group, const at::Tensor& values,
                      int64_t n, double cluster_p, uint64_t seed, stats::Tail tail,
                      int64_t first);

// ---- Comparisons (the alignment unit; run_compare.cc; results/README.md "Model comparisons") --
// The static baselines of the MEG comparisons, on every object of meg.rdm (images resolved in
// train.meg.image_dir): "clip" = plain CLIP (train.meg.checkpoint with train.meg's prompts and
// vocabulary, no adapters: the reference's load_hba False), and "behavior" = CLIP-HBA-Behavior
// (<run>/behavior) when the behaviour stage is configured and its model exists. Each RDM is the
// correlation distance of the HBA logits (K) of the objects' images, float64 (m) over the stack's
// objects; the same RDM at every timepoint. Collective (images sharded over ranks).
struct Baseline {
  std::string name;    // clip | behavior
  std::string source;  // the model it was computed from
  at::Tensor rdm;      // (m) float64, condensed over the stack's objects
};
std::vector<Baseline> BaselineRdms(const config::Config& config, const std::string& run_dir,
                                   const meg::RdmStack& stack, const parallel::Comm& comm);

// Root only (serial): /compare/behavior -- plain CLIP (train.behavior.checkpoint with the
// stage's prompts, no adapters) vs CLIP-HBA-Behavior (evaluation.h5's /behavior/predicted) on the
// behaviour stage's held-out objects: each model's RDM Spearman with the reference RDM, delta =
// behavior - clip with a 95 % bootstrap CI over objects and a two-sided object-swap permutation
// p (run.compare_bootstrap_n each, run.seed). Nothing without <run>/behavior/evaluation.h5 or
// with run.compare_bootstrap_n 0. Throws as predict does (model, images).
void WriteBehaviorComparison(io::ResultsStore* store, const config::Config& config,
                             const std::string& run_dir);

// Root only: /compare/meg/<a>_vs_<b> for each pair of models with curves (model name -> (P, T)
// Spearman, out of sample): group_vs_clip, group_vs_behavior, behavior_vs_clip, and
// individual_vs_group (participant p's row: individual/<p> minus group). Each: difference
// (P, T), mean (T) with its bootstrap CI over participants (ci_lower, ci_upper; run.seed,
// run.compare_bootstrap_n samples, 95 %), delta_auc and delta_peak_ms with CIs (the same
// resamples for both models), a two-sided sign-flip cluster test of the difference
// (WriteClusterTest, run.cluster_n, run.cluster_p), and the objects attributes.
void WriteMegComparisons(io::ResultsStore* store, const std::map<std::string, at::Tensor>& curves,
                         const std::vector<std::string>& participants, const at::Tensor& times_ms,
                         const config::RunOptions& run, const AlignmentObjects& objects);

// The out-of-sample design's folds: per fold, its pairs as indices into the models' condensed RDM
// and into the stack's, and its object count.
struct FoldPairs {
  std::vector<at::Tensor> model_pairs, stack_pairs;  // int64 (m_k) each
  std::vector<int64_t> sizes;                        // n_k
};
// ---- Dynamic behavioural validation (the alignment unit; run_dynamic_behavior.cc) ------------
// The human behaviour RDM over `names` (condensed (m) float64, names' order): the RDM of
// train.behavior.reference_rdm (rows named by reference_rdm_names) when set, else the
// correlation-distance RDM of train.behavior.targets_csv's embedding (as the behaviour
// evaluation's "targets" reference). Undefined rdm with an empty problem when neither is
// configured; undefined rdm with `problem` set (the analysis is skipped, with a warning) when the
// file lacks some of the names or the CSV does not exist. Throws IoError / DataError naming the
// file and key for an unreadable file or a reference RDM that is not a square, symmetric RDM with
// a zero diagonal and finite values.
struct HumanRdm {
  at::Tensor rdm;       // (m) float64, or undefined
  std::string source;   // the file it came from
  std::string problem;  // why there is none, when one was configured
};
HumanRdm HumanRdmOn(const config::Config& config, const std::vector<std::string>& names);

// Root only: /compare/dynamic_behavior -- per model (model_rdms[i]: (T, m) over the design's n
// objects, finite at least on the within-fold pairs; the static ones the same row at every t),
// the Spearman with the human RDM at every timepoint, mean over the folds of `folds` (each fold's
// model_pairs into the condensed (m) RDM, its object count in sizes; NaN where a fold's human
// sub-RDM is constant); peak_ms from 0 ms; each model collapsed over t >= 0 ms and its
// difference from the model named "clip" with a bootstrap CI over the objects of each fold
// (run.compare_bootstrap_n, run.seed). meg_init (what the MEG models started from) and
// behavior_heldout (how many of the design's objects the behaviour stage held out; -1 unknown)
// are recorded to say what is out of sample. Nothing without a human RDM. Throws DataError as
// rsa::TimeGeneralization for a constant model row (the alignment refuses those first).
void WriteDynamicBehavior(io::ResultsStore* store, const std::vector<std::string>& model_names,
                          const std::vector<at::Tensor>& model_rdms, const FoldPairs& folds,
                          const HumanRdm& human, const std::string& meg_init,
                          int64_t behavior_heldout, const at::Tensor& times_ms,
                          const config::RunOptions& run, const AlignmentObjects& objects);

// ---- Per-participant CIs (the alignment unit; participant_ci.cc) ------------------------------
// One participant's curve with one model: the model's RDMs (T, m_model) over the design's
// objects, the participant's index into meg's first axis, and the curve on all objects (T).
struct ParticipantCurve {
  std::string model;
  int64_t participant = 0;
  at::Tensor model_rdm, estimate;
};
// Collective. Bootstrap over objects within folds (n_boot samples, the same resamples of fold k
// for every curve, streams (seed, 0xC7 << 56 | k << 40 | b)): each rank computes the samples'
// curves at its timepoints [begin, begin + count) with stats::BootstrapObjectsTimeResolvedBlock on
// each fold's pairs, mean over folds; the rows are gathered (counts: every rank's count), so the
// numbers do not depend on the rank count. meg: (P, count, m_all) this rank's MEG rows. Returns on
// the root, per curve, the CIs of its peak latency and AUC from 0 ms (stats::SummarizeBootstrap,
// 95 %; NaN when no sample or the estimate is not finite at every t >= 0 ms); empty elsewhere,
// and empty everywhere when no timepoint is at or after 0 ms or (a logged warning) when the work
// B x T x pairs x curves would exceed 4e9. A rank's error is raised on every rank.
std::vector<stats::CurveCi> ParticipantCis(const std::vector<ParticipantCurve>& curves,
                                           const at::Tensor& meg, const FoldPairs& folds,
                                           int64_t begin, const std::vector<int64_t>& counts,
                                           const at::Tensor& times_ms, int64_t n_boot,
                                           uint64_t seed, const parallel::Comm& comm);
// /meg/<model>/alignment/participant_ci (K, 6): peak_ms, peak_lower, peak_upper, auc, auc_lower,
// auc_upper per participant (attrs columns, participants, level, n_boot, definition) and
// participant_ci_n_valid (K). Nothing for empty cis.
void WriteParticipantCis(io::ResultsStore* store, const std::string& model,
                         const std::vector<std::string>& participants,
                         const std::vector<stats::CurveCi>& cis);

struct SummaryRow {
  std::string unit, state;  // state after this run; "skipped (done)" if nothing was done
  double wall_seconds = 0;
  std::string metric_name;
  double metric = std::nan("");
};
struct RunSummary {
  std::string run_dir, results;
  std::vector<SummaryRow> rows;  // world rank 0: every planned unit
  bool preempted = false;
};

// Collective over world: runs the planned units (see the top of this file). Throws ConfigError
// (unknown stage, changed config without --force, missing stage input), IoError (locked run
// folder or unit, unwritable files), DataError, and Error(kPreempted) after SIGTERM.
RunSummary RunPipeline(const config::Config& config, const RunArgs& args,
                       const parallel::Comm& world, const StageSet& stages);

// The final table: unit, state, wall time, key metric.
std::string FormatSummary(const RunSummary& summary);

}  // namespace cliphba::pipeline
