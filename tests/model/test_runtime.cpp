// Tests of the LibTorch runtime helpers (src/model/runtime.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "tlkit/model/runtime.h"

namespace tlkit::model {
namespace {

TEST(Runtime, ReportsTheLibTorchVersion) {
  const std::string v = torch_version();
  ASSERT_FALSE(v.empty());
  EXPECT_EQ(v.find('.'), 1u) << v;  // "1.13.1"-style
}

// Debian's LibTorch starts with one intra-op thread; tlkit sets it explicitly.
TEST(Runtime, SetsTorchThreads) {
  set_torch_threads(2);
  EXPECT_EQ(torch_threads(), 2);
  set_torch_threads(1);
  EXPECT_EQ(torch_threads(), 1);
  set_torch_threads(0);  // the idle cores: at least 1, at most all
  EXPECT_GE(torch_threads(), 1);
  EXPECT_LE(torch_threads(), static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
}

}  // namespace
}  // namespace tlkit::model
