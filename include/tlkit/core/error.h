// Error policy of tlkit (stated once, used everywhere).
//
// * Invalid input from a user (a bad file, a wrong shape, NaN in the features, an unknown option)
//   throws std::invalid_argument whose message names the argument and the bad value. The CLI maps
//   it to exit code 2, the Python bindings to ValueError.
// * Failures of the environment (I/O errors while writing, out of memory) throw std::runtime_error
//   (CLI exit code 1); I/O errors are std::system_error, printed as "tlkit: error: <path>: <what
//   failed>: <errno text>" (not as an internal error).
// * A broken internal invariant is a bug: TLKIT_ASSERT prints the condition and aborts.
// * Non-convergence of an iterative method is a result field, never an exception.
#pragma once

#include <fmt/format.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace tlkit {

/// Thrown for invalid user input; a std::invalid_argument so that pybind11 raises ValueError.
class InputError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

/// Thrown when a long run stops because the user asked it to (SIGINT/SIGTERM in the CLI, exit
/// code 130); whatever was finished before it is complete on disk.
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace tlkit

/// Throws tlkit::InputError with a fmt-formatted message when `cond` is false.
#define TLKIT_CHECK_ARG(cond, ...)                              \
  do {                                                          \
    if (!(cond)) throw ::tlkit::InputError(fmt::format(__VA_ARGS__)); \
  } while (false)

/// Throws tlkit::InputError with a fmt-formatted message.
#define TLKIT_THROW_ARG(...)                                    \
  do {                                                          \
    throw ::tlkit::InputError(fmt::format(__VA_ARGS__));        \
  } while (false)

/// Aborts on a broken internal invariant (a bug in tlkit, not bad input).
#define TLKIT_ASSERT(cond)                                                                     \
  do {                                                                                         \
    if (!(cond)) {                                                                             \
      std::fprintf(stderr, "tlkit: internal invariant failed: %s (%s:%d)\n", #cond, __FILE__, \
                   __LINE__);                                                                  \
      std::abort();                                                                            \
    }                                                                                          \
  } while (false)
