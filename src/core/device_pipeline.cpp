#include "device_pipeline.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "linalg.h"
#include "tlkit/core/error.h"

namespace tlkit::detail {

namespace {

// Device or pinned memory owned through `ops`, freed on every exit (a failing device call throws).
class Memory {
 public:
  Memory(DeviceOps& ops, std::size_t bytes, bool pinned) : ops_(ops), pinned_(pinned) {
    if (bytes > 0) p_ = pinned ? ops.pinned_alloc(bytes) : ops.device_alloc(bytes);
  }
  ~Memory() {
    if (p_) pinned_ ? ops_.pinned_free(p_) : ops_.device_free(p_);
  }
  Memory(const Memory&) = delete;
  Memory& operator=(const Memory&) = delete;
  double* get() const { return static_cast<double*>(p_); }

 private:
  DeviceOps& ops_;
  bool pinned_;
  void* p_ = nullptr;
};

constexpr std::size_t kDouble = sizeof(double);

}  // namespace

std::int64_t pipeline_chunk_rows(std::int64_t d, const PipelineOptions& options) {
  if (options.chunk_rows > 0) return options.chunk_rows;
  // Device-resident rows need no upload: larger chunks only make fewer, larger SYRK calls.
  if (options.features_on_device) return 65536;
  const std::int64_t rows = (std::int64_t{256} << 20) / (8 * std::max<std::int64_t>(d, 1));
  return std::clamp<std::int64_t>(rows, 64, 65536);
}

void pipeline_accumulate(DeviceOps& ops, const FeatureView& features, const int* y,
                         std::int64_t classes, double* gram, double* class_sums,
                         const PipelineOptions& options) {
  const std::int64_t n = features.rows, d = features.cols;
  if (n == 0 || d == 0) return;
  TLKIT_ASSERT(classes >= 1);
  const std::int64_t chunk = std::min(pipeline_chunk_rows(d, options), n);
  const bool row_major64 = features.dtype == Real::kFloat64 && features.is_row_major();
  TLKIT_ASSERT(!options.features_on_device || row_major64);
  // Rows uploaded from where they are (pinned float64 row-major) or used there (on the device);
  // otherwise packed as float64 into the pinned buffers.
  const bool direct =
      options.features_on_device ||
      (row_major64 && ops.is_pinned(features.data, static_cast<std::size_t>(n * d) * kDouble));
  const std::size_t row_bytes = static_cast<std::size_t>(chunk * d) * kDouble;
  const std::size_t hot_bytes = static_cast<std::size_t>(chunk * classes) * kDouble;

  Memory gram_dev(ops, static_cast<std::size_t>(d * d) * kDouble, false);
  Memory sums_dev(ops, static_cast<std::size_t>(d * classes) * kDouble, false);
  Memory rows_pinned0(ops, direct ? 0 : row_bytes, true),
      rows_pinned1(ops, direct ? 0 : row_bytes, true);
  Memory rows_dev0(ops, options.features_on_device ? 0 : row_bytes, false),
      rows_dev1(ops, options.features_on_device ? 0 : row_bytes, false);
  Memory hot_pinned0(ops, hot_bytes, true), hot_pinned1(ops, hot_bytes, true);
  Memory hot_dev0(ops, hot_bytes, false), hot_dev1(ops, hot_bytes, false);
  double* const rows_pinned[2] = {rows_pinned0.get(), rows_pinned1.get()};
  double* const rows_dev[2] = {rows_dev0.get(), rows_dev1.get()};
  double* const hot_pinned[2] = {hot_pinned0.get(), hot_pinned1.get()};
  double* const hot_dev[2] = {hot_dev0.get(), hot_dev1.get()};
  const int uploaded[2] = {0, 1};  // events: buffer k's upload done (copy stream)
  const int consumed[2] = {2, 3};  // events: buffer k's compute done (compute stream)
  const double* const base = static_cast<const double*>(features.data);

  for (std::int64_t i = 0, b = 0; b < n; ++i, b += chunk) {
    const int k = static_cast<int>(i % 2);
    const std::int64_t cnt = std::min(chunk, n - b);
    // The host refills pinned buffer k only once its previous upload (chunk i - 2) is done.
    if (i >= 2) ops.host_wait(uploaded[k]);
    // The chunk's one-hot classes, cnt x classes row-major (column-major classes x cnt).
    double* hot = hot_pinned[k];
    std::fill(hot, hot + cnt * classes, 0.0);
    for (std::int64_t r = 0; r < cnt; ++r) {
      const int c = y[b + r];
      TLKIT_ASSERT(c >= 0 && c < classes);
      hot[r * classes + c] = 1.0;
    }
    const double* rows_src = nullptr;
    if (direct) {
      rows_src = base + b * d;
    } else {
      for (std::int64_t r = 0; r < cnt; ++r) copy_row(features, b + r, rows_pinned[k] + r * d);
      rows_src = rows_pinned[k];
    }
    // Device buffer k is overwritten only after the compute of chunk i - 2 has read it.
    if (i >= 2) ops.wait(DeviceOps::kCopy, consumed[k]);
    const double* rows = rows_src;
    if (!options.features_on_device) {
      ops.upload(rows_dev[k], rows_src, static_cast<std::size_t>(cnt * d) * kDouble,
                 DeviceOps::kCopy);
      rows = rows_dev[k];
    }
    ops.upload(hot_dev[k], hot, static_cast<std::size_t>(cnt * classes) * kDouble,
               DeviceOps::kCopy);
    ops.record(uploaded[k], DeviceOps::kCopy);
    // Compute waits for the upload; row-major rows are the column-major d x cnt matrix A.
    ops.wait(DeviceOps::kCompute, uploaded[k]);
    ops.syrk(gram_dev.get(), rows, d, cnt, d);                                   // += A A^T
    ops.gemm_nt(sums_dev.get(), rows, hot_dev[k], d, classes, cnt, d, classes);  // += A H^T
    ops.record(consumed[k], DeviceOps::kCompute);
  }
  std::vector<double> part(static_cast<std::size_t>(d * std::max(d, classes)));
  ops.download(part.data(), gram_dev.get(), static_cast<std::size_t>(d * d) * kDouble);
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t r = 0; r <= j; ++r) gram[j * d + r] += part[j * d + r];
  ops.download(part.data(), sums_dev.get(), static_cast<std::size_t>(d * classes) * kDouble);
  for (std::int64_t j = 0; j < d * classes; ++j) class_sums[j] += part[j];
}

void pipeline_eigen_project(DeviceOps& ops, const double* a, std::int64_t d, const double* b,
                            std::int64_t cols, double* values, double* vtb) {
  if (d == 0) return;
  const std::size_t mat = static_cast<std::size_t>(d * d) * kDouble;
  const std::size_t rhs = static_cast<std::size_t>(d * cols) * kDouble;
  Memory a_dev(ops, mat, false), w_dev(ops, static_cast<std::size_t>(d) * kDouble, false);
  Memory b_dev(ops, rhs, false), c_dev(ops, rhs, false);
  ops.upload(a_dev.get(), a, mat, DeviceOps::kCompute);
  if (cols > 0) ops.upload(b_dev.get(), b, rhs, DeviceOps::kCompute);
  ops.syevd(a_dev.get(), w_dev.get(), d);
  if (cols > 0) ops.gemm_tn(c_dev.get(), a_dev.get(), b_dev.get(), d, cols, d);
  ops.download(values, w_dev.get(), static_cast<std::size_t>(d) * kDouble);
  if (cols > 0) ops.download(vtb, c_dev.get(), rhs);
}

}  // namespace tlkit::detail
