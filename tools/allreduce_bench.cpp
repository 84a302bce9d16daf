// Allreduce of one float32 gradient buffer, MPI_Allreduce against LibTorch's c10d
// ProcessGroupGloo, on the processes of one mpirun job: what `tlkit finetune --data-parallel`
// sends after each backward pass (docs/scaling.md). Not part of the build; compile and run:
//
//   g++ -O2 -std=c++17 -DUSE_C10D_GLOO tools/allreduce_bench.cpp -o /tmp/allreduce_bench \
//       $(mpicxx --showme:compile) -I/usr/include/torch/csrc/api/include \
//       $(mpicxx --showme:link) -ltorch -ltorch_cpu -lc10 -lgloo
//   mpirun --bind-to none -n 2 /tmp/allreduce_bench [COUNT [REPEATS]]
//
// COUNT floats (default 269722: the parameters of the kit's cifar10_resnet20 with a 10-class
// head), REPEATS timed calls of each after 5 untimed ones; rank 0 prints the median and the
// 10th and 90th percentiles in milliseconds, and checks that both give the same sums.
#include <mpi.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <vector>

namespace {

template <typename F>
std::vector<double> time_calls(int repeats, F&& f) {
  for (int i = 0; i < 5; ++i) f();
  std::vector<double> ms;
  for (int i = 0; i < repeats; ++i) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms;
}

void report(const char* name, const std::vector<double>& ms) {
  const auto at = [&](double q) { return ms[static_cast<std::size_t>(q * (ms.size() - 1))]; };
  std::printf("%-18s median %.3f ms  (p10 %.3f, p90 %.3f)\n", name, at(0.5), at(0.1), at(0.9));
}

}  // namespace

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const std::int64_t count = argc > 1 ? std::atoll(argv[1]) : 269722;
  const int repeats = argc > 2 ? std::atoi(argv[2]) : 200;
  at::set_num_threads(1);
  const at::Tensor base = torch::arange(count, torch::kFloat32).mul_(1e-3).add_(rank);

  at::Tensor mpi = base.clone();
  const auto mpi_ms = time_calls(repeats, [&] {
    mpi.copy_(base);
    MPI_Allreduce(MPI_IN_PLACE, mpi.data_ptr<float>(), static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
  });

  // Gloo's rendezvous: a file store in /tmp named by rank 0, on loopback.
  std::string path = "/tmp/allreduce_bench_store_XXXXXX";
  if (rank == 0) close(mkstemp(path.data()));
  MPI_Bcast(path.data(), static_cast<int>(path.size()), MPI_CHAR, 0, MPI_COMM_WORLD);
  auto store = c10::make_intrusive<::c10d::FileStore>(path, size);
  auto options = ::c10d::ProcessGroupGloo::Options::create();
  options->devices.push_back(::c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
  auto gloo = c10::make_intrusive<::c10d::ProcessGroupGloo>(store, rank, size, options);
  std::vector<at::Tensor> tensors{base.clone()};
  const auto gloo_ms = time_calls(repeats, [&] {
    tensors[0].copy_(base);
    gloo->allreduce(tensors)->wait();
  });

  const double diff = (tensors[0] - mpi).abs().max().item<double>();
  if (rank == 0) {
    std::printf("%d processes, %lld floats (%.2f MB), %d calls each\n", size,
                static_cast<long long>(count), 4e-6 * static_cast<double>(count), repeats);
    report("MPI_Allreduce", mpi_ms);
    report("ProcessGroupGloo", gloo_ms);
    std::printf("max |MPI - Gloo| of the sums: %g\n", diff);
    std::remove(path.c_str());
  }
  gloo.reset();
  MPI_Finalize();
  return 0;
}
