// The processes of this tlkit run (one, or an MPI job's): set once by main(), read by commands.
#pragma once

#include "tlkit/core/communicator.h"

namespace tlkit::cli {

/// This run's communicator: single_process() unless main() started MPI.
Communicator& world();
/// Sets world(); under MPI every process calls it at the same point (it asks the job how many
/// processes share this machine, a collective operation).
void set_world(Communicator& comm);

/// The --threads a command uses: `threads` when given (> 0); with one process 0 (the library's
/// default, the idle cores); under an MPI job whose processes share this machine, the cores this
/// process may run on divided by the job's processes on the machine (at least 1), so that ranks
/// on one machine do not each take every core.
int threads_per_process(int threads);

}  // namespace tlkit::cli
