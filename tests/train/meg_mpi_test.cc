// Data-parallel MEG training: with a fixed global batch the loss curve (phase 1 and phase 2) and
// the trained parameters of a run over all ranks of MPI_COMM_WORLD equal a serial run (rank 0
// alone) within 1e-5. Run under mpirun -np 1, 2 and 3 (tests/train/CMakeLists.txt). Exit 0 = pass.
#include <mpi.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>

#include "parallel/comm.h"
#include "tests/train/meg_common.h"
#include "tests/train/mpi_main.h"
#include "train/meg.h"

namespace {

using cliphba::train::MegTrainResult;

int RunCheck() {
  namespace fs = std::filesystem;
  cliphba::parallel::Comm world(MPI_COMM_WORLD);
  const std::string base =
      std::string(CLIPHBA_TEST_OUT_DIR) + "/train_meg_mpi/np" + std::to_string(world.size());
  cliphba::config::TrainMegOptions o;
  if (world.is_root()) {
    fs::remove_all(base);
    o = cliphba::train::testing::MakeMegSynth(base + "/data", base + "/mpi").options;
  }
  world.Barrier();
  if (!world.is_root())
    o = cliphba::train::testing::MakeMegSynth(base + "/data_r" + std::to_string(world.rank()),
                                              base + "/mpi")
            .options;
  o.epochs = 4;
  o.phase1_epochs = 2;
  o.batch = 7;  // 16 training objects: batches of 7 and 9 (the last 2 merged), uneven shards
  const cliphba::train::RunInfo info{"mpi-test", "", "test"};
  MegTrainResult par = cliphba::train::TrainMeg(o, info, false, world);
  int failed = 0;
  if (world.is_root()) {
    o.out_dir = base + "/serial";
    MegTrainResult ser = cliphba::train::TrainMeg(o, info, false, cliphba::parallel::Comm::Serial());
    double max_loss = 0, max_param = 0;
    for (size_t e = 0; e < ser.val_loss.size() && e < par.val_loss.size(); ++e) {
      for (auto [a, b] : {std::pair{ser.val_loss[e], par.val_loss[e]},
                          std::pair{ser.train_loss[e], par.train_loss[e]},
                          std::pair{ser.val_pearson[e], par.val_pearson[e]}})
        max_loss = std::max(max_loss, std::fabs(a - b));
      std::printf("epoch %zu (phase %lld): serial train %.7f val %.7f | np%d train %.7f val %.7f\n",
                  e + 1, static_cast<long long>(ser.epoch_phase[e]), ser.train_loss[e],
                  ser.val_loss[e], world.size(), par.train_loss[e], par.val_loss[e]);
    }
    for (size_t i = 0; i < ser.trainable.size() && i < par.trainable.size(); ++i)
      max_param = std::max(max_param, double(std::fabs(ser.trainable[i] - par.trainable[i])));
    std::printf("serial vs np%d: max|diff| loss %.3g, parameters %.3g\n", world.size(), max_loss,
                max_param);
    failed = ser.val_loss.size() != 4 || par.val_loss.size() != 4 ||
             ser.epoch_phase != par.epoch_phase || ser.epoch_phase.back() != 2 ||
             ser.trainable.size() != par.trainable.size() || max_loss > 1e-5 || max_param > 1e-4;
  }
  MPI_Bcast(&failed, 1, MPI_INT, 0, MPI_COMM_WORLD);
  return failed;
}

}  // namespace

int main(int argc, char** argv) { return cliphba::testing::MpiCheckMain(&argc, &argv, RunCheck); }
