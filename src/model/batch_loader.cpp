#include "batch_loader.h"

#include <algorithm>
#include <chrono>

#include "tlkit/core/error.h"

namespace tlkit::model {

BatchLoader::BatchLoader(std::int64_t count, std::int64_t batch, std::int64_t item_floats,
                         int threads, int prefetch, DecodeFn decode, const Device& device)
    : count_(count),
      batch_(batch),
      item_floats_(item_floats),
      num_batches_(batch > 0 ? (count + batch - 1) / batch : 0),
      prefetch_(std::max(prefetch, 1)),
      decode_(std::move(decode)) {
  TLKIT_CHECK_ARG(batch > 0, "batch size must be positive, got {}", batch);
  TLKIT_CHECK_ARG(threads > 0, "decode threads must be positive, got {}", threads);
  TLKIT_ASSERT(count >= 0 && item_floats > 0);
  slots_.resize(static_cast<std::size_t>(prefetch_));
  if (device.is_cuda())
    for (Slot& s : slots_)
      s.batch.pinned = HostBuffer(static_cast<std::size_t>(batch_ * item_floats_), device);
  {
    std::lock_guard<std::mutex> lk(mu_);
    for (std::int64_t b = 0; b < std::min<std::int64_t>(prefetch_, num_batches_); ++b) assign(b);
  }
  const int n = static_cast<int>(std::min<std::int64_t>(threads, std::max<std::int64_t>(count, 1)));
  threads_.reserve(static_cast<std::size_t>(n));
  try {
    for (int t = 0; t < n; ++t) threads_.emplace_back([this] { work(); });
  } catch (...) {  // std::system_error from std::thread: stop the ones started
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
    throw;
  }
}

BatchLoader::~BatchLoader() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void BatchLoader::assign(std::int64_t b) {
  Slot& s = slots_[static_cast<std::size_t>(b % prefetch_)];
  s.batch.begin = b * batch_;
  s.batch.size = std::min(batch_, count_ - s.batch.begin);
  if (!s.batch.pinned.size())
    s.batch.data.resize(static_cast<std::size_t>(s.batch.size * item_floats_));
  s.batch.errors.assign(static_cast<std::size_t>(s.batch.size), std::string());
  s.remaining = s.batch.size;
}

void BatchLoader::work() {
  std::unique_lock<std::mutex> lk(mu_);
  for (;;) {
    work_cv_.wait(lk, [this] {
      return stop_ || next_item_ >= count_ || next_item_ / batch_ < released_ + prefetch_;
    });
    if (stop_ || next_item_ >= count_) return;
    const std::int64_t i = next_item_++;
    const std::int64_t b = i / batch_;
    Slot& s = slots_[static_cast<std::size_t>(b % prefetch_)];
    float* out = s.batch.floats() + (i - s.batch.begin) * item_floats_;
    lk.unlock();
    std::string error;
    const auto t0 = std::chrono::steady_clock::now();
    try {
      decode_(i, out);
    } catch (const InputError& e) {
      error = e.what();
      if (error.empty()) error = "cannot decode";
    } catch (...) {
      lk.lock();
      if (!fatal_) fatal_ = std::current_exception();
      stop_ = true;
      done_cv_.notify_all();
      work_cv_.notify_all();
      return;
    }
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    lk.lock();
    decode_s_ += dt;
    s.batch.errors[static_cast<std::size_t>(i - s.batch.begin)] = std::move(error);
    if (--s.remaining == 0) done_cv_.notify_all();
  }
}

BatchLoader::Batch& BatchLoader::wait(std::int64_t b) {
  std::unique_lock<std::mutex> lk(mu_);
  TLKIT_ASSERT(b == released_ && taken_ < b && b < num_batches_);
  Slot& s = slots_[static_cast<std::size_t>(b % prefetch_)];
  done_cv_.wait(lk, [&] { return fatal_ || s.remaining == 0; });
  if (fatal_) std::rethrow_exception(fatal_);
  taken_ = b;
  return s.batch;
}

void BatchLoader::release(std::int64_t b) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    TLKIT_ASSERT(b == taken_ && b == released_);
    released_ = b + 1;
    if (b + prefetch_ < num_batches_) assign(b + prefetch_);
  }
  work_cv_.notify_all();
}

double BatchLoader::decode_seconds() const {
  std::lock_guard<std::mutex> lk(mu_);
  return decode_s_;
}

}  // namespace tlkit::model
