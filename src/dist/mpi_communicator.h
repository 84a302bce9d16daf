// The MPI implementation of tlkit::Communicator (tlkit_dist; only the tlkit executable links it).
// This header does not include <mpi.h>: callers see only the Communicator interface.
#pragma once

#include <memory>

#include "tlkit/core/communicator.h"

namespace tlkit::dist {

/// True when this process was started by an MPI launcher as part of a parallel job: mpirun or
/// mpiexec (Open MPI sets OMPI_COMM_WORLD_SIZE), or a PMIx/PMI launcher such as Slurm's
/// `srun --mpi=pmix` (PMIX_RANK, PMI_RANK, PMI_SIZE). A plain run sets none of them and never
/// initialises MPI.
bool launched_by_mpi_launcher();

/// Initialises MPI (MPI_THREAD_FUNNELED: only the main thread calls MPI) and returns
/// MPI_COMM_WORLD as a Communicator; MPI_Finalize runs when it is destroyed. Throws
/// std::runtime_error if MPI cannot start.
std::unique_ptr<Communicator> start_mpi(int* argc, char*** argv);

}  // namespace tlkit::dist
