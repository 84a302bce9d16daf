// Proxy metrics that fit or compare samples directly: leave-one-out 1-NN accuracy (knn).
// Formulas and the reference implementations: docs/metrics/.
#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <limits>

#include "metric_context.h"

namespace tlkit::metrics {

// Leave-one-out 1-nearest-neighbour accuracy in percent (Euclidean distance; among equally near
// neighbours the lowest row index wins). Distances ||a||^2 + ||b||^2 - 2 a.b come from a blocked
// float64 GEMM, so the cost is O(N^2 D) time and O(block N) extra memory.
void knn(MetricContext& ctx, MetricValue& out) {
  const std::int64_t n = ctx.n(), d = ctx.d();
  std::vector<double> f;
  detail::copy_rows(ctx.inputs().features, f);
  std::vector<double> sq(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    double s = 0.0;
    for (std::int64_t j = 0; j < d; ++j) s += f[i * d + j] * f[i * d + j];
    sq[i] = s;
  }
  const std::int64_t block = std::max<std::int64_t>(1, std::min<std::int64_t>(n, (1 << 22) / n));
  std::vector<double> dots(static_cast<std::size_t>(block * n));
  std::int64_t correct = 0;
  for (std::int64_t b = 0; b < n; b += block) {
    const std::int64_t cnt = std::min(block, n - b);
    // dots (cnt x n, row-major) = F[b:b+cnt] F^T
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(cnt),
                static_cast<int>(n), static_cast<int>(d), 1.0, f.data() + b * d,
                static_cast<int>(d), f.data(), static_cast<int>(d), 0.0, dots.data(),
                static_cast<int>(n));
    for (std::int64_t r = 0; r < cnt; ++r) {
      const std::int64_t i = b + r;
      double best = std::numeric_limits<double>::infinity();
      std::int64_t arg = -1;
      for (std::int64_t j = 0; j < n; ++j) {
        if (j == i) continue;
        const double dist = sq[i] + sq[j] - 2.0 * dots[r * n + j];
        if (dist < best) {
          best = dist;
          arg = j;
        }
      }
      correct += ctx.y()[arg] == ctx.y()[i];
    }
  }
  out.score = 100.0 * static_cast<double>(correct) / static_cast<double>(n);
}

}  // namespace tlkit::metrics
