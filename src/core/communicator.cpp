#include "tlkit/core/communicator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace tlkit {

namespace {

class LocalCounter final : public SharedCounter {
 public:
  std::int64_t fetch_add(std::int64_t increment) override {
    const std::int64_t v = value_;
    value_ += increment;
    return v;
  }

 private:
  std::int64_t value_ = 0;
};

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allreduce_sum(double*, std::size_t) override {}
  void allreduce_sum(std::int64_t*, std::size_t) override {}
  void allreduce_max(std::int64_t*, std::size_t) override {}
  void broadcast(std::string&, int) override {}
  std::vector<std::string> gather(const std::string& bytes) override { return {bytes}; }
  void barrier() override {}
  std::unique_ptr<SharedCounter> make_counter() override {
    return std::make_unique<LocalCounter>();
  }
  [[noreturn]] void abort(int code, const std::string& message) override {
    if (!message.empty()) std::fprintf(stderr, "%s\n", message.c_str());
    std::fflush(stderr);
    std::_Exit(code);
  }
};

}  // namespace

Communicator& single_process() {
  static SingleProcess instance;
  return instance;
}

RowRange row_range(std::int64_t rows, int rank, int size) {
  const std::int64_t p = size, r = rank, base = rows / p, extra = rows % p;
  RowRange range;
  range.begin = r * base + std::min(r, extra);
  range.end = range.begin + base + (r < extra ? 1 : 0);
  return range;
}

}  // namespace tlkit
