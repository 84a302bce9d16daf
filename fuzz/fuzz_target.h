// Defines LLVMFuzzerTestOneInput for one entry point of entries.h: tlkit::InputError is the
// expected outcome for a bad input; any other exception escapes and libFuzzer reports it.
#pragma once

#include <cstddef>
#include <cstdint>

#include "tlkit/core/error.h"

#define TLKIT_FUZZ_TARGET(entry)                                                      \
  extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) { \
    try {                                                                             \
      entry(data, size);                                                              \
    } catch (const ::tlkit::InputError&) {                                            \
    }                                                                                 \
    return 0;                                                                         \
  }
