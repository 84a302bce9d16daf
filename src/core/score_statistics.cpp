#include "tlkit/core/score_statistics.h"

#include <Eigen/Core>
#include <algorithm>
#include <cstring>
#include <map>

#include "linalg.h"
#include "tlkit/core/communicator.h"
#include "tlkit/core/error.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "ScoreStatistics::to_bytes writes the host's little-endian representation"
#endif

namespace tlkit {

namespace {

constexpr char kMagic[8] = {'T', 'L', 'K', 'S', 'T', 'A', 'T', '1'};
// Bounds that keep every size computation below in range (D^2 doubles of a 2^20-wide feature
// would already be 8 TiB).
constexpr std::int64_t kMaxDim = std::int64_t{1} << 20;
constexpr std::int64_t kMaxClasses = std::int64_t{1} << 24;

std::int64_t packed_size(std::int64_t d) { return d * (d + 1) / 2; }

template <typename T>
void put(std::string& out, const T* data, std::size_t count) {
  if (count > 0) out.append(reinterpret_cast<const char*>(data), count * sizeof(T));
}

}  // namespace

ScoreStatistics ScoreStatistics::accumulate(const FeatureView& features, const LabelView& labels,
                                            const std::vector<std::int64_t>& classes) {
  TLKIT_CHECK_ARG(features.rows == labels.size,
                  "statistics: features have {} rows but labels has {} entries", features.rows,
                  labels.size);
  TLKIT_CHECK_ARG(std::is_sorted(classes.begin(), classes.end()) &&
                      std::adjacent_find(classes.begin(), classes.end()) == classes.end(),
                  "statistics: the classes must be distinct and ascending");
  ScoreStatistics s;
  s.n = features.rows;
  s.d = features.cols;
  s.labels = classes;
  const std::int64_t d = s.d, c = static_cast<std::int64_t>(classes.size());
  s.counts.assign(classes.size(), 0);
  std::vector<int> y(static_cast<std::size_t>(s.n));
  for (std::int64_t i = 0; i < s.n; ++i) {
    const auto it = std::lower_bound(classes.begin(), classes.end(), labels.data[i]);
    TLKIT_CHECK_ARG(it != classes.end() && *it == labels.data[i],
                    "statistics: label {} at row {} is not one of the classes", labels.data[i], i);
    y[i] = static_cast<int>(it - classes.begin());
    ++s.counts[y[i]];
  }
  // The same blocks and operations as MetricContext::stats(), so the sums are bit-identical.
  Eigen::MatrixXd gram = Eigen::MatrixXd::Zero(d, d), class_sums = Eigen::MatrixXd::Zero(d, c);
  std::vector<double> buffer;
  detail::for_row_blocks(
      features, buffer, [&](const double* rows, std::int64_t b, std::int64_t cnt) {
        detail::syrk_accumulate_rows(rows, cnt, d, gram.data());
        for (std::int64_t i = 0; i < cnt; ++i)
          class_sums.col(y[b + i]) += Eigen::Map<const Eigen::VectorXd>(rows + i * d, d);
      });
  s.gram.assign(gram.data(), gram.data() + d * d);
  s.class_sums.assign(class_sums.data(), class_sums.data() + d * c);
  return s;
}

void ScoreStatistics::merge(const ScoreStatistics& other) {
  if (other.n == 0 && other.labels.empty()) return;
  if (n == 0 && labels.empty()) {
    *this = other;
    return;
  }
  TLKIT_CHECK_ARG(d == other.d, "statistics merge: D = {} vs D = {}", d, other.d);
  const std::size_t dd = static_cast<std::size_t>(d);
  for (std::size_t i = 0; i < gram.size(); ++i) gram[i] += other.gram[i];
  if (labels == other.labels) {
    for (std::size_t i = 0; i < class_sums.size(); ++i) class_sums[i] += other.class_sums[i];
    for (std::size_t c = 0; c < counts.size(); ++c) counts[c] += other.counts[c];
  } else {
    std::vector<std::int64_t> all;
    std::set_union(labels.begin(), labels.end(), other.labels.begin(), other.labels.end(),
                   std::back_inserter(all));
    std::vector<double> sums(all.size() * dd, 0.0);
    std::vector<std::int64_t> cnt(all.size(), 0);
    auto add = [&](const ScoreStatistics& s) {
      for (std::size_t c = 0; c < s.labels.size(); ++c) {
        const std::size_t to = static_cast<std::size_t>(
            std::lower_bound(all.begin(), all.end(), s.labels[c]) - all.begin());
        cnt[to] += s.counts[c];
        for (std::size_t j = 0; j < dd; ++j) sums[to * dd + j] += s.class_sums[c * dd + j];
      }
    };
    add(*this);
    add(other);
    labels = std::move(all);
    counts = std::move(cnt);
    class_sums = std::move(sums);
  }
  n += other.n;
}

void ScoreStatistics::allreduce(Communicator& comm) {
  if (comm.size() == 1) return;
  const std::int64_t c = static_cast<std::int64_t>(labels.size());
  std::vector<double> packed(static_cast<std::size_t>(packed_size(d) + d * c));
  std::size_t k = 0;
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t i = 0; i <= j; ++i) packed[k++] = gram[j * d + i];
  std::copy(class_sums.begin(), class_sums.end(), packed.begin() + static_cast<std::ptrdiff_t>(k));
  comm.allreduce_sum(packed.data(), packed.size());
  k = 0;
  for (std::int64_t j = 0; j < d; ++j)
    for (std::int64_t i = 0; i <= j; ++i) gram[j * d + i] = packed[k++];
  std::copy(packed.begin() + static_cast<std::ptrdiff_t>(k), packed.end(), class_sums.begin());
  std::vector<std::int64_t> ints(counts);
  ints.push_back(n);
  comm.allreduce_sum(ints.data(), ints.size());
  n = ints.back();
  ints.pop_back();
  counts = std::move(ints);
}

std::string ScoreStatistics::to_bytes() const {
  const std::int64_t c = static_cast<std::int64_t>(labels.size());
  std::string out(kMagic, sizeof kMagic);
  const std::int64_t sizes[3] = {n, d, c};
  put(out, sizes, 3);
  put(out, labels.data(), labels.size());
  put(out, counts.data(), counts.size());
  for (std::int64_t j = 0; j < d; ++j)
    put(out, gram.data() + j * d, static_cast<std::size_t>(j + 1));
  put(out, class_sums.data(), class_sums.size());
  return out;
}

ScoreStatistics ScoreStatistics::from_bytes(const std::string& bytes, const std::string& origin) {
  const std::size_t head = sizeof kMagic + 3 * sizeof(std::int64_t);
  TLKIT_CHECK_ARG(bytes.size() >= head && std::memcmp(bytes.data(), kMagic, sizeof kMagic) == 0,
                  "{}: not a tlkit statistics image ({} bytes, expected the magic TLKSTAT1 and "
                  "three sizes)",
                  origin, bytes.size());
  std::int64_t sizes[3];
  std::memcpy(sizes, bytes.data() + sizeof kMagic, sizeof sizes);
  const std::int64_t n = sizes[0], d = sizes[1], c = sizes[2];
  TLKIT_CHECK_ARG(n >= 0 && d >= 0 && d <= kMaxDim && c >= 0 && c <= kMaxClasses,
                  "{}: sizes out of range: n = {}, d = {}, classes = {}", origin, n, d, c);
  const std::uint64_t expected =
      head + static_cast<std::uint64_t>(2 * c) * sizeof(std::int64_t) +
      static_cast<std::uint64_t>(packed_size(d) + d * c) * sizeof(double);
  TLKIT_CHECK_ARG(bytes.size() == expected,
                  "{}: {} bytes, expected {} for n = {}, d = {}, classes = {} (truncated or "
                  "corrupt)",
                  origin, bytes.size(), expected, n, d, c);
  ScoreStatistics s;
  s.n = n;
  s.d = d;
  const char* p = bytes.data() + head;
  auto take = [&](auto* dst, std::size_t count) {
    if (count > 0) std::memcpy(dst, p, count * sizeof(*dst));  // empty vectors have no pointer
    p += count * sizeof(*dst);
  };
  s.labels.resize(static_cast<std::size_t>(c));
  s.counts.resize(static_cast<std::size_t>(c));
  take(s.labels.data(), s.labels.size());
  take(s.counts.data(), s.counts.size());
  s.gram.assign(static_cast<std::size_t>(d * d), 0.0);
  for (std::int64_t j = 0; j < d; ++j) take(s.gram.data() + j * d, static_cast<std::size_t>(j + 1));
  s.class_sums.resize(static_cast<std::size_t>(d * c));
  take(s.class_sums.data(), s.class_sums.size());
  TLKIT_CHECK_ARG(std::is_sorted(s.labels.begin(), s.labels.end()) &&
                      std::adjacent_find(s.labels.begin(), s.labels.end()) == s.labels.end(),
                  "{}: the labels are not distinct and ascending", origin);
  std::int64_t total = 0;
  for (std::int64_t k : s.counts) {
    TLKIT_CHECK_ARG(k >= 0 && k <= n, "{}: class count {} out of range [0, {}]", origin, k, n);
    total += k;
  }
  TLKIT_CHECK_ARG(total == n, "{}: the class counts sum to {}, not n = {}", origin, total, n);
  return s;
}

}  // namespace tlkit
