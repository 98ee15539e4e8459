// `cliphba run` orchestration under MPI with fake stages: the world is split into participant
// groups (default and configured sizes), every participant is claimed and trained exactly once by
// one group on its sub-communicator, world stages see the whole world, and a rerun does nothing.
// Run under mpirun -np 1, 2, 3 (tests/pipeline/CMakeLists.txt). Exit code 0 = pass.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <set>
#include <thread>

#include "parallel/comm.h"
#include "io/npy.h"
#include "io/results_store.h"
#include "pipeline/run.h"

namespace {

namespace fs = std::filesystem;
using namespace cliphba;

int failures = 0;
void Expect(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "FAIL: %s\n", what.c_str());
    ++failures;
  }
}

pipeline::StageSet Fakes(const parallel::Comm& world, int* calls) {
  pipeline::StageSet s;
  auto world_fn = [&world, calls](const pipeline::StageContext& c) {
    Expect(c.comm->size() == world.size(), c.unit + " runs on the whole world");
    ++*calls;
    return pipeline::UnitOutcome{};
  };
  s.behavior = s.group = s.alignment = s.report = world_fn;
  s.individual = [calls](const pipeline::StageContext& c) {
    // A collective on the group's sub-communicator: every member takes part.
    at::Tensor one = at::ones({1}, at::kLong);
    c.comm->AllreduceSum(one);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ++*calls;
    pipeline::UnitOutcome out;
    out.metric_name = "group_members";
    out.metric = double(one.item<int64_t>());
    return out;
  };
  return s;
}

void Check(const parallel::Comm& world, int64_t group_size, const std::string& dir) {
  config::Config cfg;
  cfg.run.out_dir = dir;
  cfg.run.participants = {"a", "b", "c", "d", "e"};
  cfg.run.stages = {"group", "individual", "alignment", "report"};
  cfg.run.group_size = group_size;
  if (world.is_root()) fs::remove_all(dir);
  world.Barrier();
  int calls = 0;
  pipeline::RunPipeline(cfg, {}, world, Fakes(world, &calls));
  world.Barrier();
  const int g = pipeline::GroupSize(group_size, world.size(), 5);
  if (world.is_root()) {
    const auto m = pipeline::ReadManifest(dir);
    Expect(m.size() == 8, "8 unit records");
    for (const auto& l : cfg.run.participants) {
      const auto& r = m.at("individual/" + l);
      Expect(r.state == pipeline::UnitState::kDone && r.attempts == 1, l + " trained exactly once");
      Expect(r.group_size == r.metric, l + ": the sub-communicator has the recorded ranks");
      Expect(r.group_size == g || r.group == (world.size() - 1) / g,
             l + ": group size " + std::to_string(r.group_size));
      Expect(r.ranks.size() == size_t(r.group_size) && r.ranks[0] == r.group * g,
             l + ": consecutive ranks from group * size");
    }
  }
  // Rerun: every unit is done, nothing is called.
  int again = 0;
  pipeline::RunPipeline(cfg, {}, world, Fakes(world, &again));
  Expect(again == 0, "a rerun calls no stage");
}

// The real alignment and report stages on a small MEG RDM stack (P 3, T 9, n 6), with fake model
// units whose RDMs are their participant's MEG RDMs plus a shared distortion: every statistic of
// the results file is bit-identical to a serial run, and own > other.
void CheckAlignment(const parallel::Comm& world, const std::string& base) {
  const std::string data = base + "/align_data";
  const int64_t P = 3, T = 9, n = 6;
  if (world.is_root()) {
    fs::remove_all(data);
    fs::create_directories(data);
    at::manual_seed(7);
    at::Tensor x = at::rand({P, T, n, n}, at::kDouble);
    x = x + x.transpose(2, 3);
    x = x - at::diag_embed(at::diagonal(x, 0, 2, 3));
    io::WriteNpy(data + "/meg.npy", x.to(at::kFloat));
    std::ofstream names(data + "/names.txt");
    for (int64_t i = 0; i < n; ++i) names << "obj" << i << "\n";
    // A behaviour embedding of the objects (the dynamic behavioural validation's human RDM).
    std::ofstream csv(data + "/embedding.csv");
    csv << ",image_name,0,1,2\n";
    for (int64_t i = 0; i < n; ++i)
      csv << i << ",obj" << i << "," << (i % 3) << "," << (i * i % 5) << "," << (7 - i) << "\n";
  }
  world.Barrier();
  config::Config cfg;
  cfg.meg_rdm.path = data + "/meg.npy";
  cfg.meg_rdm.names = data + "/names.txt";
  cfg.meg_rdm.time_start_ms = -20;
  cfg.meg_rdm.time_step_ms = 10;
  cfg.run.stages = {"group", "individual", "alignment", "report"};
  cfg.train_behavior.targets_csv = data + "/embedding.csv";
  cfg.run.report_script = "";
  pipeline::StageSet stages = pipeline::DefaultStages();
  // Model units: participant p's RDMs (the group: participant 0's) plus a distortion.
  auto fake_model = [](const pipeline::StageContext& c) {
    if (c.comm->is_root()) {
      at::Tensor x = io::ReadNpy(c.config->meg_rdm.path).to(at::kDouble);
      const int64_t p = c.participant.empty() ? 0 : std::stol(c.participant);
      const at::Tensor iu = at::triu_indices(n, n, 1);
      at::Tensor rdm = x[p].index({at::indexing::Slice(), iu[0], iu[1]});
      rdm = rdm + 0.3 * at::sin(at::arange(rdm.numel(), at::kDouble)).view(rdm.sizes());
      std::vector<std::string> names;
      for (int64_t i = 0; i < n; ++i) names.push_back("obj" + std::to_string(i));
      pipeline::WriteModelRdms(pipeline::ModelRdmPath(c.out_dir),
                               {rdm, names, std::vector<int64_t>(size_t(n), 0), "heldout", {}});
    }
    c.comm->Barrier();
    return pipeline::UnitOutcome{};
  };
  stages.group = stages.individual = fake_model;
  stages.check_meg_inputs = false;  // the fake model units need no train.meg inputs
  cfg.run.out_dir = base + "/align";
  if (world.is_root()) fs::remove_all(cfg.run.out_dir);
  world.Barrier();
  pipeline::RunPipeline(cfg, {}, world, stages);
  if (world.is_root()) {
    config::Config serial = cfg;
    serial.run.out_dir = base + "/align_serial";
    fs::remove_all(serial.run.out_dir);
    pipeline::RunPipeline(serial, {}, parallel::Comm::Serial(), stages);
    io::ResultsReader a(cfg.run.out_dir + "/results.h5"), b(serial.run.out_dir + "/results.h5");
    for (const char* d : {"/meg/times_ms", "/meg/group/alignment/spearman",
                          "/meg/group/alignment/pearson", "/meg/individual/1/alignment/spearman",
                          "/meg/ceiling/lower", "/meg/ceiling/upper", "/meg/own_vs_other/matrix",
                          "/meg/group/time_generalization", "/meg/time_generalization",
                          "/meg/group/alignment/participant_ci",
                          "/meg/individual/1/alignment/participant_ci",
                          "/compare/dynamic_behavior/spearman",
                          "/compare/dynamic_behavior/collapsed"}) {
      Expect(a.Exists(d), std::string("results has ") + d);
      if (a.Exists(d) && b.Exists(d))
        Expect(at::equal(a.ReadTensor(d), b.ReadTensor(d)), std::string(d) + " bit-identical");
    }
    const at::Tensor s = a.ReadTensor("/meg/group/alignment/spearman");
    Expect(s.size(0) == P && s.size(1) == T, "spearman is (P, T)");
    Expect(a.ReadDoubleAttribute("/meg/own_vs_other/matrix", "statistic") > 0.3, "own > other");
    Expect(a.ReadIntAttribute("/meg/own_vs_other/matrix", "exact") == 1, "exact test for P = 3");
    Expect(a.Exists("/manifest/unit"), "manifest copied");
  }
  world.Barrier();
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    parallel::Comm world(MPI_COMM_WORLD);
    const std::string base =
        std::string(CLIPHBA_TEST_OUT_DIR) + "/pipeline_run_mpi/np" + std::to_string(world.size());
    try {
      Check(world, 0, base + "/default");
      Check(world, 2, base + "/pairs");
      CheckAlignment(world, base);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FAIL: %s\n", e.what());
      ++failures;
    }
    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    failures = total;
    if (world.is_root() && total == 0)
      std::printf("run orchestration: pass on %d rank(s)\n", world.size());
  }
  MPI_Finalize();
  return failures == 0 ? 0 : 1;
}
