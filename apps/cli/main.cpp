// tlkit command-line front end: parse, dispatch, and map exceptions to exit codes
// (0 success, 2 bad usage or bad input, 1 internal error). Nothing else lives here.
//
// Under an MPI launcher (mpirun, srun --mpi=pmix; built with TLKIT_MPI) main() starts MPI, only
// rank 0 writes standard output, and a rank that fails prints its error and ends the whole job
// with its exit code (MPI_Abort). A plain run never initialises MPI.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "commands.h"
#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"
#include "world.h"
#ifdef TLKIT_HAVE_TORCH
#include "tlkit/model/runtime.h"
#endif
#ifdef TLKIT_HAVE_MPI
#include "mpi_communicator.h"
#endif

namespace {

int run_cli(int argc, char** argv);

// Under several processes a failed rank ends the job: the others may be waiting for it in a
// collective operation and would never return.
int finish(int code, const std::string& error) {
  tlkit::Communicator& w = tlkit::cli::world();
  if (w.size() > 1 && code != 0) {
    std::fflush(stdout);
    // An error every rank meets (a bad option, a missing file) is printed by rank 0 alone: the
    // others wait a moment, and rank 0's abort ends them first. An error only this rank meets
    // (a bad value in its rows) is printed after the wait.
    if (!w.is_root()) std::this_thread::sleep_for(std::chrono::milliseconds(300));
    w.abort(code, error);
  }
  if (!error.empty()) std::fprintf(stderr, "%s\n", error.c_str());
  return code;
}

// "tlkit: error: ..." with the rank named when there are several.
std::string error_line(const char* kind, const std::string& what) {
  const tlkit::Communicator& w = tlkit::cli::world();
  if (w.size() > 1)
    return fmt::format("tlkit: {} (rank {} of {}): {}", kind, w.rank(), w.size(), what);
  return fmt::format("tlkit: {}: {}", kind, what);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef TLKIT_HAVE_MPI
  std::unique_ptr<tlkit::Communicator> mpi;
  if (tlkit::dist::launched_by_mpi_launcher()) {
    try {
      mpi = tlkit::dist::start_mpi(&argc, &argv);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "tlkit: error: %s\n", e.what());
      return 1;
    }
    tlkit::cli::set_world(*mpi);
    // Rank 0 alone writes the results; the others keep standard error for their errors.
    if (mpi->rank() != 0 && std::freopen("/dev/null", "w", stdout) == nullptr) {
      std::fprintf(stderr, "tlkit: error: rank %d: cannot redirect standard output\n", mpi->rank());
      mpi->abort(1, "");
    }
  }
#endif
  return run_cli(argc, argv);
}

namespace {

int run_cli(int argc, char** argv) {
  CLI::App app{
      "tlkit: rank pretrained models for a labelled dataset before fine-tuning them.\n"
      "Run 'tlkit COMMAND --help' for the options of each command."};
#ifdef TLKIT_HAVE_TORCH
  app.set_version_flag("--version", fmt::format("tlkit {} (LibTorch {})", tlkit::version(),
                                                tlkit::model::torch_version()));
#else
  app.set_version_flag("--version",
                       fmt::format("tlkit {} (built without LibTorch)", tlkit::version()));
#endif
  app.require_subcommand(1, 1);
  app.fallthrough(false);

  // Each command registers its options and returns how to run it (commands.h); the order here is
  // the order of `tlkit --help`.
  std::vector<tlkit::cli::Command> commands;
  commands.push_back(tlkit::cli::add_score_command(app));
  commands.push_back(tlkit::cli::add_evaluate_command(app));
#ifdef TLKIT_HAVE_TORCH
  commands.push_back(tlkit::cli::add_extract_command(app));
  commands.push_back(tlkit::cli::add_rank_command(app));
  commands.push_back(tlkit::cli::add_finetune_command(app));
  commands.push_back(tlkit::cli::add_predict_command(app));
  commands.push_back(tlkit::cli::add_probe_command(app));
  commands.push_back(tlkit::cli::add_truth_command(app));
  commands.push_back(tlkit::cli::add_select_command(app));
#endif
  commands.push_back(tlkit::cli::add_report_command(app));

  // CLI11 would report a misspelt command as "A subcommand is required": name it instead.
  if (argc >= 2 && argv[1][0] != '-') {
    std::string known;
    bool found = false;
    for (const auto& c : commands) {
      found = found || c.app->get_name() == argv[1];
      known += (known.empty() ? "" : ", ") + c.app->get_name();
    }
    if (!found) {
      fmt::print(stderr, "tlkit: error: unknown command '{}' (commands: {}; see tlkit --help)\n",
                 argv[1], known);
      return 2;
    }
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where;
    for (const auto& c : commands)
      if (c.app->parsed()) where = " " + c.app->get_name();
    fmt::print(stderr, "tlkit: error: {} (see tlkit{} --help)\n", e.what(), where);
    return 2;
  }

  // The handlers print with stdio, which cannot throw (fmt::print throws when stderr fails, and
  // an exception from a handler would abort).
  try {
    for (const auto& c : commands) {
      if (!c.app->parsed()) continue;
      // Only score, rank, finetune and probe divide their work over an MPI job's processes; P
      // copies of another command would write the same outputs.
      const std::string name = c.app->get_name();
      TLKIT_CHECK_ARG(tlkit::cli::world().size() == 1 || name == "score" || name == "rank" ||
                          name == "finetune" || name == "probe",
                      "tlkit {} runs in one process (under mpirun or srun only score, rank, "
                      "finetune and probe are divided over the processes); run it without the MPI "
                      "launcher",
                      name);
      const int code = c.run();
      // Output goes through stdio's buffer: a full disk shows only when it is flushed.
      if (std::fflush(stdout) != 0 || std::ferror(stdout))
        throw std::system_error(errno, std::generic_category(), "standard output: write failed");
      return code == 0 ? 0 : finish(code, "");
    }
    return 2;
  } catch (const tlkit::Interrupted&) {
    return finish(130,
                  "tlkit: interrupted (finished work is kept; run the command again to resume)");
  } catch (const std::invalid_argument& e) {
    return finish(2, error_line("error", e.what()));
  } catch (const std::system_error& e) {
    // The environment failed (a full disk, a closed pipe): not a bug in tlkit.
    return finish(1, error_line("error", e.what()));
  } catch (const std::exception& e) {
    return finish(1, error_line("internal error", e.what()));
  } catch (...) {
    return finish(1, error_line("internal error", "unknown exception"));
  }
}

}  // namespace
