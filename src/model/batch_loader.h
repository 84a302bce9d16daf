// Decodes the items of a dataset in batches on a pool of threads, ahead of the consumer: while
// the model runs batch b, the workers fill batches b + 1 .. b + prefetch - 1.
//
// The decode function writes one item's floats. A tlkit::InputError from it marks that item bad
// (its message is kept, the batch goes on); any other exception is fatal: the workers stop and
// wait() rethrows it on the consumer's thread. No exception escapes a worker thread.
//
// For a CUDA device the batches are decoded into pinned host memory (HostBuffer), allocated once
// per slot, from which TorchScriptModel::forward copies them to the device asynchronously.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tlkit/model/device.h"

namespace tlkit::model {

class BatchLoader {
 public:
  using DecodeFn = std::function<void(std::int64_t index, float* out)>;

  struct Batch {
    std::int64_t begin = 0;  ///< index of the first item
    std::int64_t size = 0;
    std::vector<float> data;          ///< size x item_floats (empty when pinned)
    HostBuffer pinned;                ///< batch x item_floats, for a CUDA device (else empty)
    std::vector<std::string> errors;  ///< per item: empty when decoded, else the InputError text
    /// The batch's values: `pinned` for a CUDA device, else `data`.
    float* floats() { return pinned.size() ? pinned.data() : data.data(); }
  };

  /// `device`: where the batches go (CUDA: decoded into pinned memory, Batch::pinned).
  BatchLoader(std::int64_t count, std::int64_t batch, std::int64_t item_floats, int threads,
              int prefetch, DecodeFn decode, const Device& device = Device());
  ~BatchLoader();  ///< stops and joins the workers
  BatchLoader(const BatchLoader&) = delete;
  BatchLoader& operator=(const BatchLoader&) = delete;

  std::int64_t num_batches() const { return num_batches_; }
  /// Blocks until batch `b` is decoded and returns it; batches are taken in order 0, 1, 2, ...
  /// and each released before the next is taken. Rethrows a worker's fatal exception.
  Batch& wait(std::int64_t b);
  /// Hands batch `b`'s buffer back to the workers.
  void release(std::int64_t b);
  /// Seconds spent decoding, summed over the workers.
  double decode_seconds() const;

 private:
  struct Slot {
    Batch batch;
    std::int64_t remaining = 0;
  };
  void assign(std::int64_t b);  // prepares slot b % prefetch for batch b; holds mu_
  void work();

  const std::int64_t count_, batch_, item_floats_, num_batches_;
  const int prefetch_;
  DecodeFn decode_;
  std::vector<Slot> slots_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::int64_t next_item_ = 0;
  std::int64_t released_ = 0;  // batches handed back
  std::int64_t taken_ = -1;    // the batch the consumer holds
  bool stop_ = false;
  std::exception_ptr fatal_;
  double decode_s_ = 0.0;
  std::vector<std::thread> threads_;
};

}  // namespace tlkit::model
