// Ctrl-C and SIGTERM for the long-running commands: the first signal sets a flag that the work
// polls between batches (it then throws tlkit::Interrupted, main() exits with 130 after the
// command has removed or never renamed anything half-written); a second signal kills the process
// at once with the default action, for a user who does not want to wait for the batch to end.
#pragma once

#include <csignal>

namespace tlkit::cli {

namespace detail {
inline volatile std::sig_atomic_t g_interrupted = 0;
extern "C" inline void on_interrupt(int sig) {
  g_interrupted = 1;
  std::signal(sig, SIG_DFL);
}
}  // namespace detail

/// Installs the handler for SIGINT and SIGTERM (once per command run).
inline void catch_interrupts() {
  std::signal(SIGINT, detail::on_interrupt);
  std::signal(SIGTERM, detail::on_interrupt);
}

/// True once SIGINT or SIGTERM arrived after catch_interrupts().
inline bool interrupted() { return detail::g_interrupted != 0; }

}  // namespace tlkit::cli
