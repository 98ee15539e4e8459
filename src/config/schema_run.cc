// The keys of the run-level sections: log.*, runtime.*, permute.* (with permute.mantel.* and
// permute.cluster.*) and run.*. Declared in config/schema.h.
#include <iterator>

#include "config/schema.h"

namespace cliphba::config::detail {

void AddLogKeys(LogOptions* o, std::vector<Field>* fields) {
  const Field keys[] = {
      Str("log.level", &o->level, "log verbosity",
          {"trace", "debug", "info", "warn", "error", "off"}),
      Bool("log.all_ranks", &o->all_ranks, "print info lines on every MPI rank"),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddRuntimeKeys(RuntimeOptions* o, std::vector<Field>* fields) {
  const Field keys[] = {
      Int("runtime.threads", &o->threads,
          "intra-op threads per process (ATen + OpenBLAS); 0 = cores / ranks on the node", 0, 4096),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddPermuteKeys(PermuteOptions* o, std::vector<Field>* fields) {
  auto& mt = o->mantel;
  auto& cl = o->cluster;
  const Field keys[] = {
      Str("permute.out", &o->out, "HDF5 results file (checkpoint: OUT.ckpt)"),
      Num("permute.time_start_ms", &o->time_start_ms, "time of timepoint 0 in ms", -1e9, 1e9),
      Num("permute.time_step_ms", &o->time_step_ms, "timepoint spacing in ms", 1e-9, 1e9),
      Int("permute.batch", &o->batch, "permutations per GEMM batch", 1, 65536),
      Int("permute.chunk_timepoints", &o->chunk_timepoints, "timepoints streamed at once", 1, 1e9),
      Int("permute.checkpoint_every", &o->checkpoint_every, "permutations between checkpoints", 1,
          1e12),
      Str("permute.precision", &o->precision, "Mantel kernel precision", {"float32", "float64"}),
      Str("permute.device", &o->device, "device of the Mantel kernel", {"cpu", "cuda"}),
      Bool("permute.save_null", &o->save_null, "also write the null maxima"),
      Num("permute.fdr_alpha", &o->fdr_alpha, "Benjamini-Hochberg FDR level", 1e-12, 1),
      Num("permute.progress_seconds", &o->progress_seconds, "progress line interval (s)", 0, 1e6),
      Int("permute.bootstrap_n", &o->bootstrap_n,
          "bootstrap samples for CIs of curves, peak latency and AUC (0 = off)", 0, 1e9),
      Num("permute.bootstrap_level", &o->bootstrap_level, "bootstrap CI level", 1e-6, 0.999999),
      Str("permute.mantel.model_rdm", &mt.model_rdm, "model RDM NPY ((n x n) or condensed)"),
      Str("permute.mantel.neural_rdm", &mt.neural_rdm,
          "neural RDM NPY: (n x n), (T x n x n) or condensed (T x m)"),
      Str("permute.mantel.neural_dataset", &mt.neural_dataset,
          "dataset inside an HDF5 neural_rdm file (e.g. /meg/rdm)"),
      Str("permute.mantel.model_names", &mt.model_names, "optional object names of the model RDM"),
      Str("permute.mantel.neural_names", &mt.neural_names,
          "optional object names of the neural RDM"),
      Choice("permute.mantel.statistic", &mt.statistic, "RDM correlation",
             {MantelStatistic::kSpearman, MantelStatistic::kPearson}),
      Int("permute.mantel.tail", &mt.tail, "1 = upper, 0 = two-sided", 0, 1),
      Int("permute.mantel.n", &mt.n, "random permutations", 1, 1e12),
      Seed("permute.mantel.seed", &mt.seed),
      Str("permute.mantel.permutations", &mt.permutations,
          "optional NPY (N x n) int64 explicit permutations"),
      Str("permute.cluster.data", &cl.data, "NPY (participants x T) alignment values"),
      Num("permute.cluster.threshold", &cl.threshold,
          "cluster-forming t, negative for tail -1 (0 = from threshold_p)", -1e6, 1e6),
      Num("permute.cluster.threshold_p", &cl.threshold_p, "p for the t-quantile threshold", 1e-12,
          0.5),
      Int("permute.cluster.tail", &cl.tail, "-1, 0 or 1 (MNE's tail)", -1, 1),
      Int("permute.cluster.n", &cl.n, "sign-flip patterns incl. the observed", 2, 1e12),
      Seed("permute.cluster.seed", &cl.seed),
      Str("permute.cluster.flips", &cl.flips,
          "optional NPY ((n - 1) x participants) int8 +-1 explicit flips"),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

void AddRunKeys(RunOptions* o, std::vector<Field>* fields) {
  const std::vector<std::string> stages = {"behavior", "group", "individual", "predict",
                                           "alignment", "report"};
  const Field keys[] = {
      Str("run.name", &o->name,
          "run name (the run folder is results/<name> unless out_dir is set)"),
      Str("run.out_dir", &o->out_dir, "run folder: unit records, locks, checkpoints"),
      List("run.stages", &o->stages, "stages this run performs, in pipeline order", stages),
      List("run.participants", &o->participants,
           "participant labels (or indices) to model; empty = every participant of meg.rdm"),
      Int("run.group_size", &o->group_size,
          "MPI ranks per participant group; 0 = world / min(world, participants)", 0, 1e6),
      Seed("run.seed", &o->seed, "seed of the run-level statistics"),
      Str("run.results", &o->results, "results HDF5 file; \"\" = <out_dir>/results.h5"),
      Str("run.report_script", &o->report_script,
          "report script run by /usr/bin/python3 after the results file (skipped if missing)"),
      Int("run.own_vs_other_n", &o->own_vs_other_n,
          "own-vs-other label permutations (exact enumeration when P! <= n)", 1, 1e12),
      Int("run.cluster_n", &o->cluster_n,
          "sign-flip patterns of the alignment cluster test, observed included (0 = none)", 0, 1e9),
      Num("run.cluster_p", &o->cluster_p, "cluster-forming threshold p (one-sided t quantile)",
          1e-12, 0.5),
      Int("run.cv_folds", &o->cv_folds,
          "folds of the cross-validated MEG alignment over objects (when train.meg.heldout_names "
          "is empty); each fold needs >= 3 objects",
          2, 1000),
      Int("run.compare_bootstrap_n", &o->compare_bootstrap_n,
          "bootstrap samples of the CIs of the model comparisons (0 = no comparisons)", 0, 1e7),
      Int("run.participant_ci_n", &o->participant_ci_n,
          "bootstrap samples over objects of each participant's peak and AUC CIs (0 = none)", 0,
          1e6),
      Str("run.predict.images", &o->predict_images,
          "predict stage: image folder or list file; \"\" = train.meg.image_dir (or "
          "train.behavior.image_dir)"),
      Bool("run.predict.rdm", &o->predict_rdm, "predict stage: also write the model RDMs"),
  };
  fields->insert(fields->end(), std::begin(keys), std::end(keys));
}

}  // namespace cliphba::config::detail
