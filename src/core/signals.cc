#include "core/signals.h"

#include <csignal>

namespace cliphba {

namespace {
volatile std::sig_atomic_t g_terminate = 0;  // the signal number received, 0 if none
extern "C" void OnTerminate(int signal) { g_terminate = signal; }
}  // namespace

void InstallTerminationHandler() {
  struct sigaction action {};
  action.sa_handler = OnTerminate;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
}

bool TerminationRequested() { return g_terminate != 0; }

const char* TerminationSignalName() {
  switch (g_terminate) {
    case SIGTERM:
      return "SIGTERM";
    case SIGINT:
      return "SIGINT";
    default:
      return "";
  }
}

}  // namespace cliphba
