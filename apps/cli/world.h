// The processes of this tlkit run (one, or an MPI job's): set once by main(), read by commands.
#pragma once

#include "tlkit/core/communicator.h"

namespace tlkit::cli {

/// This run's communicator: single_process() unless main() started MPI.
Communicator& world();
void set_world(Communicator& comm);

}  // namespace tlkit::cli
