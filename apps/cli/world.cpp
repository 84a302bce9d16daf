#include "world.h"

#include <sched.h>

#include <algorithm>
#include <thread>

namespace tlkit::cli {

namespace {
Communicator* g_world = nullptr;
int g_local_size = 1;
}  // namespace

Communicator& world() { return g_world ? *g_world : single_process(); }
void set_world(Communicator& comm) {
  g_world = &comm;
  g_local_size = std::max(1, comm.local_size());
}

int threads_per_process(int threads) {
  if (threads > 0 || world().size() == 1) return threads;
  int cores = static_cast<int>(std::thread::hardware_concurrency());
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) cores = CPU_COUNT(&set);
  // Bound to fewer cores than the machine's share (mpirun's default --bind-to core): those.
  return std::max(1, std::min(cores, static_cast<int>(std::thread::hardware_concurrency()) /
                                         std::max(1, g_local_size)));
}

}  // namespace tlkit::cli
