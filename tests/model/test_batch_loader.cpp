// Tests of the decoding thread pool (src/model/batch_loader.cpp): order, bad items, and
// exceptions from worker threads rethrown on the consumer's thread.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <new>
#include <thread>

#include "model/batch_loader.h"
#include "tlkit/core/error.h"

namespace tlkit::model {
namespace {

TEST(BatchLoader, DeliversEveryItemInOrderWithAnyThreadCount) {
  for (int threads : {1, 2, 5}) {
    for (std::int64_t batch : {1, 3, 7, 100}) {
      const std::int64_t count = 23, item = 2;
      BatchLoader loader(count, batch, item, threads, 2, [](std::int64_t i, float* out) {
        out[0] = static_cast<float>(i);
        out[1] = static_cast<float>(-i);
      });
      ASSERT_EQ(loader.num_batches(), (count + batch - 1) / batch);
      std::int64_t next = 0;
      for (std::int64_t b = 0; b < loader.num_batches(); ++b) {
        BatchLoader::Batch& bt = loader.wait(b);
        ASSERT_EQ(bt.begin, next);
        for (std::int64_t j = 0; j < bt.size; ++j, ++next) {
          EXPECT_TRUE(bt.errors[j].empty());
          EXPECT_EQ(bt.data[j * item], static_cast<float>(next));
          EXPECT_EQ(bt.data[j * item + 1], static_cast<float>(-next));
        }
        loader.release(b);
      }
      EXPECT_EQ(next, count) << threads << " threads, batch " << batch;
    }
  }
}

TEST(BatchLoader, DecodesAheadWhileTheConsumerWorks) {
  std::atomic<std::int64_t> decoded{0};
  BatchLoader loader(40, 10, 1, 2, 3, [&](std::int64_t, float* out) {
    *out = 1;
    ++decoded;
  });
  loader.wait(0);
  // While batch 0 is held, batches 1 and 2 (prefetch 3) get decoded, and no more.
  // The wait is long (a loaded machine may not schedule the workers for a while); it ends at 30.
  for (int i = 0; i < 12000 && decoded < 30; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(
      std::chrono::milliseconds(20));  // room for a 31st, which must not come
  EXPECT_EQ(decoded.load(), 30);
  loader.release(0);
}

TEST(BatchLoader, MarksItemsWhoseDecodeThrowsInputError) {
  BatchLoader loader(10, 4, 1, 3, 2, [](std::int64_t i, float* out) {
    if (i % 3 == 1) throw InputError("item " + std::to_string(i) + " is bad");
    *out = static_cast<float>(i);
  });
  std::vector<std::string> errors;
  for (std::int64_t b = 0; b < loader.num_batches(); ++b) {
    auto& bt = loader.wait(b);
    for (const auto& e : bt.errors) errors.push_back(e);
    loader.release(b);
  }
  ASSERT_EQ(errors.size(), 10u);
  for (std::size_t i = 0; i < errors.size(); ++i)
    EXPECT_EQ(errors[i], i % 3 == 1 ? "item " + std::to_string(i) + " is bad" : "") << i;
}

TEST(BatchLoader, RethrowsAWorkersOtherExceptionsOnTheConsumerThread) {
  const std::thread::id consumer = std::this_thread::get_id();
  std::atomic<bool> decoded_elsewhere{false};
  auto run = [&](auto make_error) {
    BatchLoader loader(50, 5, 1, 2, 2, [&](std::int64_t i, float* out) {
      decoded_elsewhere = decoded_elsewhere || std::this_thread::get_id() != consumer;
      if (i == 12) make_error();
      *out = 0;
    });
    for (std::int64_t b = 0; b < loader.num_batches(); ++b) {
      loader.wait(b);
      loader.release(b);
    }
  };
  EXPECT_THROW(run([] { throw std::runtime_error("disk on fire"); }), std::runtime_error);
  EXPECT_THROW(run([] { throw std::bad_alloc(); }), std::bad_alloc);
  EXPECT_THROW(run([] { throw 42; }), int);
  EXPECT_TRUE(decoded_elsewhere.load());
}

TEST(BatchLoader, StopsCleanlyWhenTheConsumerGivesUpEarly) {
  std::atomic<std::int64_t> decoded{0};
  {
    BatchLoader loader(1000, 10, 1, 4, 3, [&](std::int64_t, float* out) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      *out = 0;
      ++decoded;
    });
    loader.wait(0);
  }  // destroyed holding batch 0: joins without deadlock
  EXPECT_LE(decoded.load(), 40);
}

TEST(BatchLoader, RefusesBadSizes) {
  auto noop = [](std::int64_t, float*) {};
  EXPECT_THROW(BatchLoader(10, 0, 1, 1, 2, noop), InputError);
  EXPECT_THROW(BatchLoader(10, 1, 1, 0, 2, noop), InputError);
  BatchLoader empty(0, 4, 1, 2, 2, noop);
  EXPECT_EQ(empty.num_batches(), 0);
}

}  // namespace
}  // namespace tlkit::model
