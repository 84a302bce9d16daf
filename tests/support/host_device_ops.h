// A host implementation of DeviceOps (src/core/device_pipeline.h) for the tests: "device" and
// "pinned" memory are host allocations it keeps track of, and each stream is a queue of work
// that runs late, in a random interleaving of the two streams that respects the events. Work
// runs only when the host must wait (host_wait, download) or, with `eager_steps` > 0, a random
// number (up to that many) of ready items after each call. So a wait that the pipeline forgets
// shows as a wrong sum: an upload that runs after the host has refilled its pinned buffer, a
// SYRK that reads a device buffer before its upload or after the next chunk's upload.
#pragma once

#include <gtest/gtest.h>

#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <random>
#include <stdexcept>

#include "device_pipeline.h"

namespace tlkit::test {

class HostDeviceOps : public detail::DeviceOps {
 public:
  explicit HostDeviceOps(unsigned seed = 1, int eager_steps = 0)
      : rng_(seed), eager_steps_(eager_steps) {}
  ~HostDeviceOps() override {
    EXPECT_TRUE(device_.empty()) << device_.size() << " device allocations not freed";
    EXPECT_TRUE(pinned_.empty()) << pinned_.size() << " pinned allocations not freed";
  }

  /// Marks caller memory as pinned (cudaHostRegister's counterpart), so the pipeline uploads
  /// from it directly.
  void pin(const void* p, std::size_t bytes) { registered_[p] = bytes; }
  /// Device memory holding a copy of `bytes` of `src` (features already on the device).
  void* to_device(const void* src, std::size_t bytes) {
    void* p = device_alloc(bytes);
    std::memcpy(p, src, bytes);
    return p;
  }
  int uploads() const { return uploads_; }
  std::size_t uploaded_bytes() const { return uploaded_bytes_; }

  void* device_alloc(std::size_t bytes) override {
    void* p = std::calloc(bytes, 1);
    if (!p) throw std::bad_alloc();
    device_[p] = bytes;
    return p;
  }
  void device_free(void* p) override {
    EXPECT_EQ(device_.erase(p), 1u) << "device_free of memory not from device_alloc";
    std::free(p);
  }
  void* pinned_alloc(std::size_t bytes) override {
    auto* p = static_cast<double*>(std::malloc(bytes));
    if (!p) throw std::bad_alloc();
    // Garbage that poisons any sum: reading a pinned buffer before it is filled shows.
    for (std::size_t i = 0; i < bytes / sizeof(double); ++i)
      p[i] = std::numeric_limits<double>::quiet_NaN();
    pinned_[p] = bytes;
    return p;
  }
  void pinned_free(void* p) override {
    EXPECT_EQ(pinned_.erase(p), 1u) << "pinned_free of memory not from pinned_alloc";
    std::free(p);
  }
  bool is_pinned(const void* p, std::size_t bytes) override {
    return within(pinned_, p, bytes) || within(registered_, p, bytes);
  }

  void upload(void* dst, const void* src, std::size_t bytes, Stream s) override {
    EXPECT_TRUE(within(device_, dst, bytes)) << "upload to memory that is not device memory";
    ++uploads_;
    uploaded_bytes_ += bytes;
    enqueue(s, [=] { std::memcpy(dst, src, bytes); });
  }
  void download(void* dst, const void* src, std::size_t bytes) override {
    EXPECT_TRUE(within(device_, src, bytes)) << "download from memory that is not device memory";
    run_all();
    std::memcpy(dst, src, bytes);
  }
  void record(int event, Stream s) override {
    const long seq = ++issued_[event];
    queue_[s].push_back({Item::kRecord, {}, event, seq});
    eager();
  }
  void wait(Stream s, int event) override {
    queue_[s].push_back({Item::kWait, {}, event, issued_[event]});
    eager();
  }
  void host_wait(int event) override {
    while (done_[event] < issued_[event]) step();
  }

  void syrk(double* c, const double* a, std::int64_t n, std::int64_t k, std::int64_t lda) override {
    check_device(c, n * n);
    check_device(a, lda * k);
    enqueue(kCompute, [=] {
      const Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>> am(
          a, n, k, Eigen::OuterStride<>(lda));
      Eigen::Map<Eigen::MatrixXd> cm(c, n, n);
      const Eigen::MatrixXd prod = am * am.transpose();
      cm.triangularView<Eigen::Upper>() += prod;
    });
  }
  void gemm_nt(double* c, const double* a, const double* b, std::int64_t m, std::int64_t n,
               std::int64_t k, std::int64_t lda, std::int64_t ldb) override {
    check_device(c, m * n);
    check_device(a, lda * k);
    check_device(b, ldb * k);
    enqueue(kCompute, [=] {
      const Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>> am(
          a, m, k, Eigen::OuterStride<>(lda));
      const Eigen::Map<const Eigen::MatrixXd, 0, Eigen::OuterStride<>> bm(
          b, n, k, Eigen::OuterStride<>(ldb));
      Eigen::Map<Eigen::MatrixXd>(c, m, n) += am * bm.transpose();
    });
  }
  void gemm_tn(double* c, const double* a, const double* b, std::int64_t m, std::int64_t n,
               std::int64_t k) override {
    check_device(c, m * n);
    check_device(a, k * m);
    check_device(b, k * n);
    enqueue(kCompute, [=] {
      Eigen::Map<Eigen::MatrixXd>(c, m, n) =
          Eigen::Map<const Eigen::MatrixXd>(a, k, m).transpose() *
          Eigen::Map<const Eigen::MatrixXd>(b, k, n);
    });
  }
  void syevd(double* a, double* w, std::int64_t n) override {
    check_device(a, n * n);
    check_device(w, n);
    enqueue(kCompute, [=] {
      Eigen::Map<Eigen::MatrixXd> am(a, n, n);
      const Eigen::MatrixXd sym = am.selfadjointView<Eigen::Upper>();
      const Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(sym);
      Eigen::Map<Eigen::VectorXd>(w, n) = eig.eigenvalues();
      am = eig.eigenvectors();
    });
  }

 private:
  struct Item {
    enum Kind { kWork, kRecord, kWait } kind;
    std::function<void()> fn;
    int event = 0;
    long seq = 0;  // kRecord: this record's number; kWait: the record it waits for
  };

  static bool within(const std::map<const void*, std::size_t>& m, const void* p,
                     std::size_t bytes) {
    auto it = m.upper_bound(p);
    if (it == m.begin()) return false;
    --it;
    const char* lo = static_cast<const char*>(it->first);
    const char* q = static_cast<const char*>(p);
    return q >= lo && q + bytes <= lo + it->second;
  }
  void check_device(const void* p, std::int64_t count) {
    EXPECT_TRUE(within(device_, p, static_cast<std::size_t>(count) * sizeof(double)))
        << "a device operation on memory that is not device memory";
  }
  void enqueue(Stream s, std::function<void()> fn) {
    queue_[s].push_back({Item::kWork, std::move(fn), 0, 0});
    eager();
  }
  bool ready(int s) const {
    if (queue_[s].empty()) return false;
    const Item& it = queue_[s].front();
    return it.kind != Item::kWait || done_[it.event] >= it.seq;
  }
  // Runs the head of a randomly chosen ready stream.
  void step() {
    const bool r0 = ready(0), r1 = ready(1);
    if (!r0 && !r1) throw std::logic_error("HostDeviceOps: deadlock (a wait that never ends)");
    const int s = r0 && r1 ? static_cast<int>(rng_() % 2) : (r0 ? 0 : 1);
    Item it = std::move(queue_[s].front());
    queue_[s].pop_front();
    if (it.kind == Item::kWork) it.fn();
    if (it.kind == Item::kRecord) done_[it.event] = std::max(done_[it.event], it.seq);
  }
  void run_all() {
    while (!queue_[0].empty() || !queue_[1].empty()) step();
  }
  void eager() {
    if (eager_steps_ == 0) return;
    for (int i = static_cast<int>(rng_() % static_cast<unsigned>(eager_steps_ + 1)); i > 0; --i)
      if (ready(0) || ready(1)) step();
  }

  std::mt19937 rng_;
  int eager_steps_;
  std::deque<Item> queue_[2];
  long issued_[kEvents] = {};
  long done_[kEvents] = {};
  std::map<const void*, std::size_t> device_, pinned_, registered_;
  int uploads_ = 0;
  std::size_t uploaded_bytes_ = 0;
};

}  // namespace tlkit::test
