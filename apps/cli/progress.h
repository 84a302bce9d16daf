// A one-line progress bar on stderr for the long-running commands (extract, rank, finetune):
// an optional label, done/total, items per second and ETA, plus a free-form suffix (a loss, an
// accuracy). Redrawn at most 10 times a second, and only when enabled (the commands enable it
// when stderr is a terminal and --quiet is not given), so logs and pipes stay clean. The count
// never goes back within a task (batches finished out of order do not move it backwards).
#pragma once

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>

namespace tlkit::cli {

/// True when a progress bar should be drawn: stderr is a terminal and the user did not ask for
/// quiet.
inline bool progress_wanted(bool quiet) { return !quiet && ::isatty(STDERR_FILENO) == 1; }

class ProgressBar {
 public:
  /// `unit` names the items in the rate ("img/s", "texts/s", "batch/s").
  /// `out` and `min_interval` (between redraws) are for tests.
  explicit ProgressBar(bool enabled, std::string unit = "img", std::FILE* out = stderr,
                       std::chrono::milliseconds min_interval = std::chrono::milliseconds(100))
      : enabled_(enabled),
        unit_(std::move(unit)),
        out_(out),
        min_interval_(min_interval),
        start_(Clock::now()) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  /// Starts a new task on the same line (the rate and ETA restart).
  void restart(std::string label) {
    label_ = std::move(label);
    start_ = Clock::now();
    last_ = {};
    shown_ = 0;
    total_ = -1;
  }

  /// Changes the label only: the count, rate and ETA go on (one bar over several steps).
  void set_label(std::string label) { label_ = std::move(label); }

  void update(std::int64_t done, std::int64_t total, const std::string& suffix = "") {
    if (!enabled_) return;
    if (total != total_) shown_ = 0;  // another task under the same label
    total_ = total;
    done = std::max(done, shown_);  // monotone within a task
    shown_ = done;
    const auto now = Clock::now();
    if (done < total && now - last_ < min_interval_) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
    constexpr int kWidth = 30;
    const int filled = total > 0 ? static_cast<int>(kWidth * done / total) : kWidth;
    std::string eta = "--:--";
    if (rate > 0 && done < total) {
      const auto left = static_cast<long long>((total - done) / rate + 0.5);
      eta = left >= 3600 ? fmt::format("{}:{:02}:{:02}", left / 3600, left / 60 % 60, left % 60)
                         : fmt::format("{:02}:{:02}", left / 60, left % 60);
    }
    fmt::print(out_, "\r{}{}[{}{}] {}/{} {:3}% {:.1f} {}/s ETA {}{}{}\x1b[K", label_,
               label_.empty() ? "" : " ", std::string(static_cast<std::size_t>(filled), '#'),
               std::string(static_cast<std::size_t>(kWidth - filled), '.'), done, total,
               total > 0 ? 100 * done / total : 100, rate, unit_, eta, suffix.empty() ? "" : " ",
               suffix);
    std::fflush(out_);
    drawn_ = true;
  }

  /// Clears the line (before printing anything else to stderr).
  void finish() {
    if (drawn_) fmt::print(out_, "\r\x1b[K");
    drawn_ = false;
  }

 private:
  using Clock = std::chrono::steady_clock;
  bool enabled_;
  std::string unit_;
  std::FILE* out_;
  std::chrono::milliseconds min_interval_;
  std::int64_t shown_ = 0;  // the largest count drawn for this task
  std::int64_t total_ = -1;
  std::string label_;
  bool drawn_ = false;
  Clock::time_point start_;
  Clock::time_point last_{};
};

}  // namespace tlkit::cli
