// tlkit command-line front end: parse, dispatch, and map exceptions to exit codes
// (0 success, 2 bad usage or bad input, 1 internal error). Nothing else lives here.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <system_error>
#include <vector>

#include "commands.h"
#include "tlkit/core/error.h"
#include "tlkit/core/metrics.h"
#ifdef TLKIT_HAVE_TORCH
#include "tlkit/model/runtime.h"
#endif

int main(int argc, char** argv) {
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
      const int code = c.run();
      // Output goes through stdio's buffer: a full disk shows only when it is flushed.
      if (std::fflush(stdout) != 0 || std::ferror(stdout))
        throw std::system_error(errno, std::generic_category(), "standard output: write failed");
      return code;
    }
    return 2;
  } catch (const tlkit::Interrupted&) {
    fmt::print(stderr,
               "tlkit: interrupted (finished work is kept; run the command again to "
               "resume)\n");
    return 130;
  } catch (const std::invalid_argument& e) {
    std::fprintf(stderr, "tlkit: error: %s\n", e.what());
    return 2;
  } catch (const std::system_error& e) {
    // The environment failed (a full disk, a closed pipe): not a bug in tlkit.
    std::fprintf(stderr, "tlkit: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tlkit: internal error: %s\n", e.what());
    return 1;
  } catch (...) {
    std::fputs("tlkit: internal error: unknown exception\n", stderr);
    return 1;
  }
}
