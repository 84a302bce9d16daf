#include "mpi_communicator.h"

#define OMPI_SKIP_MPICXX 1
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <stdexcept>
#include <string>
#include <thread>

namespace tlkit::dist {

namespace {

// MPI counts are ints: large buffers go in pieces of at most this many elements.
constexpr std::size_t kPiece = std::size_t{1} << 28;

void check(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  throw std::runtime_error(std::string("MPI: ") + what + " failed: " + std::string(text, len));
}

// MPI one-sided fetch-and-add on an int64 held by rank 0 (passive target: rank 0 need not call
// MPI for the others to advance it; with every process on one node Open MPI's osc/sm component
// does it in shared memory).
class MpiCounter final : public SharedCounter {
 public:
  MpiCounter() {
    int rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    check(MPI_Win_allocate(rank == 0 ? sizeof(std::int64_t) : 0, sizeof(std::int64_t),
                           MPI_INFO_NULL, MPI_COMM_WORLD, &base_, &win_),
          "MPI_Win_allocate");
    if (rank == 0) *base_ = 0;
    check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
    check(MPI_Win_lock_all(0, win_), "MPI_Win_lock_all");
  }
  ~MpiCounter() override {
    // Freeing the window is collective: while an exception unwinds (the process is about to end
    // the job with MPI_Abort) the others would never join, so it is left to the abort.
    if (std::uncaught_exceptions() > 0) return;
    MPI_Win_unlock_all(win_);
    MPI_Win_free(&win_);
  }
  std::int64_t fetch_add(std::int64_t increment) override {
    std::int64_t before = 0;
    check(MPI_Fetch_and_op(&increment, &before, MPI_INT64_T, 0, 0, MPI_SUM, win_),
          "MPI_Fetch_and_op");
    check(MPI_Win_flush(0, win_), "MPI_Win_flush");
    return before;
  }

 private:
  std::int64_t* base_ = nullptr;
  MPI_Win win_ = MPI_WIN_NULL;
};

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    check(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Finalize();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }

  void allreduce_sum(double* data, std::size_t count) override {
    for (std::size_t k = 0; k < count; k += kPiece)
      check(MPI_Allreduce(MPI_IN_PLACE, data + k, static_cast<int>(std::min(kPiece, count - k)),
                          MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
            "MPI_Allreduce");
  }
  void allreduce_sum(std::int64_t* data, std::size_t count) override {
    reduce_int64(data, count, MPI_SUM);
  }
  void allreduce_max(std::int64_t* data, std::size_t count) override {
    reduce_int64(data, count, MPI_MAX);
  }

  void broadcast(std::string& bytes, int root) override {
    unsigned long long size = bytes.size();
    check(MPI_Bcast(&size, 1, MPI_UNSIGNED_LONG_LONG, root, MPI_COMM_WORLD), "MPI_Bcast");
    bytes.resize(static_cast<std::size_t>(size));
    for (std::size_t k = 0; k < bytes.size(); k += kPiece)
      check(MPI_Bcast(bytes.data() + k, static_cast<int>(std::min(kPiece, bytes.size() - k)),
                      MPI_BYTE, root, MPI_COMM_WORLD),
            "MPI_Bcast");
  }

  std::vector<std::string> gather(const std::string& bytes) override {
    if (bytes.size() > static_cast<std::size_t>(INT_MAX))
      throw std::runtime_error("MPI: gather of more than 2 GiB from one process");
    const int mine = static_cast<int>(bytes.size());
    std::vector<int> sizes(rank_ == 0 ? static_cast<std::size_t>(size_) : 0);
    check(MPI_Gather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
    std::vector<int> offsets(sizes.size());
    long long total = 0;
    for (std::size_t r = 0; r < sizes.size(); ++r) {
      if (total > INT_MAX - sizes[r])
        throw std::runtime_error("MPI: gather of more than 2 GiB in all");
      offsets[r] = static_cast<int>(total);
      total += sizes[r];
    }
    std::string all(static_cast<std::size_t>(total), '\0');
    check(MPI_Gatherv(bytes.data(), mine, MPI_BYTE, all.data(), sizes.data(), offsets.data(),
                      MPI_BYTE, 0, MPI_COMM_WORLD),
          "MPI_Gatherv");
    std::vector<std::string> out;
    for (std::size_t r = 0; r < sizes.size(); ++r)
      out.push_back(
          all.substr(static_cast<std::size_t>(offsets[r]), static_cast<std::size_t>(sizes[r])));
    return out;
  }

  void barrier() override {
    MPI_Request request;
    check(MPI_Ibarrier(MPI_COMM_WORLD, &request), "MPI_Ibarrier");
    for (;;) {
      int done = 0;
      check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
      if (done) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }

  std::unique_ptr<SharedCounter> make_counter() override { return std::make_unique<MpiCounter>(); }

  [[noreturn]] void abort(int code, const std::string& message) override {
    if (!message.empty()) std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    std::fflush(stdout);
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);  // MPI_Abort does not return; in case it does
  }

  void allreduce_sum(float* data, std::size_t count) override {
    for (std::size_t k = 0; k < count; k += kPiece)
      check(MPI_Allreduce(MPI_IN_PLACE, data + k, static_cast<int>(std::min(kPiece, count - k)),
                          MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
            "MPI_Allreduce");
  }
  // The processes sharing this machine's memory (MPI_COMM_TYPE_SHARED). Collective the first
  // time: main() asks on every process right after start_mpi (cli::set_world).
  int local_size() override {
    if (local_size_ > 0) return local_size_;
    MPI_Comm node = MPI_COMM_NULL;
    check(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node),
          "MPI_Comm_split_type");
    check(MPI_Comm_size(node, &local_size_), "MPI_Comm_size");
    MPI_Comm_free(&node);
    return local_size_;
  }

 private:
  void reduce_int64(std::int64_t* data, std::size_t count, MPI_Op op) {
    for (std::size_t k = 0; k < count; k += kPiece)
      check(MPI_Allreduce(MPI_IN_PLACE, data + k, static_cast<int>(std::min(kPiece, count - k)),
                          MPI_INT64_T, op, MPI_COMM_WORLD),
            "MPI_Allreduce");
  }

  int rank_ = 0;
  int size_ = 1;
  int local_size_ = 0;  // 0: not asked yet
};

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

}  // namespace

bool launched_by_mpi_launcher() {
  return env_set("OMPI_COMM_WORLD_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK") ||
         env_set("PMI_SIZE");
}

std::unique_ptr<Communicator> start_mpi(int* argc, char*** argv) {
  int provided = 0;
  check(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  // Errors come back as codes (check() turns them into exceptions) instead of aborting inside MPI.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  return std::make_unique<MpiCommunicator>();
}

}  // namespace tlkit::dist
