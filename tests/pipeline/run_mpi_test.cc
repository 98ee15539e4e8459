// `cliphba run` orchestration under MPI with fake stages: the world is split into participant
// groups (default and configured sizes), every participant is claimed and trained exactly once by
// one group on its sub-communicator, world stages see the whole world, and a rerun does nothing.
// Run under mpirun -np 1, 2, 3 (tests/pipeline/CMakeLists.txt). Exit code 0 = pass.
#include <mpi.h>

#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <set>
#include <thread>

#include "dist/comm.h"
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

pipeline::StageSet Fakes(const dist::Comm& world, int* calls) {
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

void Check(const dist::Comm& world, int64_t group_size, const std::string& dir) {
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
      Expect(r.state == "done" && r.attempts == 1, l + " trained exactly once");
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

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  {
    dist::Comm world(MPI_COMM_WORLD);
    const std::string base = std::string(CLIPHBA_TEST_OUT_DIR) + "/pipeline_run_mpi/np" +
                             std::to_string(world.size());
    try {
      Check(world, 0, base + "/default");
      Check(world, 2, base + "/pairs");
    } catch (const std::exception& e) {
      std::fprintf(stderr, "FAIL: %s\n", e.what());
      ++failures;
    }
    int total = 0;
    MPI_Allreduce(&failures, &total, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    failures = total;
    if (world.is_root() && total == 0) std::printf("run orchestration: pass on %d rank(s)\n", world.size());
  }
  MPI_Finalize();
  return failures == 0 ? 0 : 1;
}
