// Data-parallel stage 1: with a fixed global batch, the loss curve and the trained parameters of a
// run over all ranks of MPI_COMM_WORLD equal a serial run (rank 0 alone) within float tolerance.
// Run under mpirun -np 2 (tests/train/CMakeLists.txt). Exit code 0 = pass.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "parallel/comm.h"
#include "tests/train/common.h"
#include "tests/train/mpi_main.h"
#include "train/behavior.h"

namespace {

using cliphba::train::BehaviorTrainResult;

int Run() {
  namespace fs = std::filesystem;
  cliphba::parallel::Comm world(MPI_COMM_WORLD);
  const std::string base = std::string(CLIPHBA_TEST_OUT_DIR) + "/train_behavior_mpi";
  const std::string mpi_out = base + "/np" + std::to_string(world.size());
  cliphba::config::TrainBehaviorOptions o;
  if (world.is_root()) {
    fs::remove_all(mpi_out);
    fs::remove_all(base + "/serial");
    o = cliphba::train::testing::SynthOptions(base + "/data", mpi_out);
  }
  world.Barrier();
  if (!world.is_root())
    o = cliphba::train::testing::SynthOptions(base + "/data_r" + std::to_string(world.rank()),
                                              mpi_out);
  o.epochs = 3;
  o.batch = 7;  // 24 training objects: batches of 7, 7, 7, 3 (uneven shards)
  const cliphba::train::RunInfo info{"mpi-test", "", "test"};
  BehaviorTrainResult par = cliphba::train::TrainBehavior(o, info, false, world);
  int failed = 0;
  if (world.is_root()) {
    o.out_dir = base + "/serial";
    BehaviorTrainResult ser =
        cliphba::train::TrainBehavior(o, info, false, cliphba::parallel::Comm::Serial());
    double max_loss = 0, max_rel = 0, max_param = 0;
    for (size_t e = 0; e < ser.val_loss.size() && e < par.val_loss.size(); ++e) {
      for (auto [a, b] : {std::pair{ser.val_loss[e], par.val_loss[e]},
                          std::pair{ser.train_loss[e], par.train_loss[e]}}) {
        max_loss = std::max(max_loss, std::fabs(a - b));
        max_rel = std::max(max_rel, std::fabs(a - b) / std::fabs(a));
      }
      std::printf("epoch %zu: np1 train %.7f val %.7f | np%d train %.7f val %.7f\n", e + 1,
                  ser.train_loss[e], ser.val_loss[e], world.size(), par.train_loss[e],
                  par.val_loss[e]);
    }
    for (size_t i = 0; i < ser.trainable.size() && i < par.trainable.size(); ++i)
      max_param = std::max(max_param, double(std::fabs(ser.trainable[i] - par.trainable[i])));
    std::printf("np1 vs np%d: max|diff| loss %.3g (relative %.3g), parameters %.3g\n", world.size(),
                max_loss, max_rel, max_param);
    failed = ser.val_loss.size() != 3 || par.val_loss.size() != 3 ||
             ser.trainable.size() != par.trainable.size() || max_rel > 1e-4 || max_param > 1e-4;
  }
  MPI_Bcast(&failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return failed;
}

}  // namespace

int main(int argc, char** argv) { return cliphba::testing::MpiCheckMain(&argc, &argv, Run); }
