// The processes of one tlkit job and the collective operations between them, without MPI.
//
// A Communicator is what a distributed command needs from its launcher: its rank and the number
// of processes, sums over all processes, and moving bytes to and from rank 0. The single-process
// implementation (single_process()) is always available and makes every operation a no-op or a
// copy, so code written against this interface runs unchanged in one process. The MPI
// implementation lives in src/dist/ (tlkit_dist), which only the tlkit executable links; no
// public or core header includes <mpi.h>.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace tlkit {

/// A counter that any process advances without the others taking part (a work queue: each
/// process takes the next index when it is free).
class SharedCounter {
 public:
  virtual ~SharedCounter() = default;
  /// The counter's value before adding `increment`, atomically over all processes.
  virtual std::int64_t fetch_add(std::int64_t increment) = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  /// This process's index in [0, size()).
  virtual int rank() const = 0;
  /// The number of processes (1: a plain, single-process run).
  virtual int size() const = 0;

  /// data[i] = sum over all processes of data[i], on every process (MPI_Allreduce).
  virtual void allreduce_sum(double* data, std::size_t count) = 0;
  virtual void allreduce_sum(std::int64_t* data, std::size_t count) = 0;
  /// data[i] = max over all processes of data[i], on every process.
  virtual void allreduce_max(std::int64_t* data, std::size_t count) = 0;
  /// Replaces `bytes` on every process with rank `root`'s.
  virtual void broadcast(std::string& bytes, int root) = 0;
  /// Rank 0 receives every process's `bytes` in rank order; the others receive an empty list.
  virtual std::vector<std::string> gather(const std::string& bytes) = 0;
  /// Waits until every process has arrived. The MPI implementation sleeps between polls, so a
  /// process that finished its share does not keep a core busy while the others work.
  virtual void barrier() = 0;
  /// A counter starting at 0, shared by every process. Collective: every process creates it,
  /// and destroys it, at the same point.
  virtual std::unique_ptr<SharedCounter> make_counter() = 0;
  /// Ends every process of the job with exit status `code`, after printing `message` (one line,
  /// may be empty) on standard error. Never returns.
  [[noreturn]] virtual void abort(int code, const std::string& message) = 0;
  /// data[i] = sum over all processes of data[i], on every process, in float32 (the gradients of
  /// data-parallel fine-tuning). The default serves one process (a no-op).
  virtual void allreduce_sum(float* data, std::size_t count) {
    if (size() > 1) throw std::logic_error("Communicator: no float32 allreduce");
  }
  /// The number of processes of this job on this machine, this one included (1: one process).
  virtual int local_size() { return 1; }

  bool is_root() const { return rank() == 0; }
};

/// The communicator of a process that runs alone (rank 0 of 1).
Communicator& single_process();

/// Rows [begin, end) of `rows` that rank `rank` of `size` processes takes: consecutive, balanced
/// blocks in rank order (the first rows % size ranks take one row more).
struct RowRange {
  std::int64_t begin = 0;
  std::int64_t end = 0;
  std::int64_t count() const { return end - begin; }
};
RowRange row_range(std::int64_t rows, int rank, int size);

}  // namespace tlkit
