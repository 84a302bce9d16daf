// tlkit command-line front end: parse, dispatch, and map exceptions to exit codes
// (0 success, 2 bad usage or bad input, 1 internal error). Nothing else lives here.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <exception>
#include <stdexcept>

#include "commands.h"
#include "tlkit/core/metrics.h"
#ifdef TLKIT_HAVE_TORCH
#include "tlkit/model/runtime.h"
#endif

int main(int argc, char** argv) {
  CLI::App app{"tlkit: rank pretrained models for a labelled dataset before fine-tuning them.\n"
               "Run 'tlkit COMMAND --help' for the options of each command."};
#ifdef TLKIT_HAVE_TORCH
  app.set_version_flag("--version", fmt::format("tlkit {} (LibTorch {})", tlkit::version(),
                                                tlkit::model::torch_version()));
#else
  app.set_version_flag("--version", fmt::format("tlkit {} (built without LibTorch)",
                                                tlkit::version()));
#endif
  app.require_subcommand(1, 1);
  app.fallthrough(false);
  tlkit::cli::ScoreArgs score_args;
  CLI::App* score = tlkit::cli::add_score_command(app, score_args);
  tlkit::cli::EvaluateArgs evaluate_args;
  CLI::App* evaluate = tlkit::cli::add_evaluate_command(app, evaluate_args);
#ifdef TLKIT_HAVE_TORCH
  tlkit::cli::ExtractArgs extract_args;
  CLI::App* extract = tlkit::cli::add_extract_command(app, extract_args);
#endif

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
#ifdef TLKIT_HAVE_TORCH
    if (extract->parsed()) {
      fmt::print(stderr, "tlkit: error: {} (see tlkit extract --help)\n", e.what());
      return 2;
    }
#endif
    fmt::print(stderr, "tlkit: error: {} (see tlkit{} --help)\n", e.what(),
               score->parsed()      ? " score"
               : evaluate->parsed() ? " evaluate"
                                    : "");
    return 2;
  }

  try {
    if (score->parsed()) return tlkit::cli::run_score(score_args);
    if (evaluate->parsed()) return tlkit::cli::run_evaluate(evaluate_args);
#ifdef TLKIT_HAVE_TORCH
    if (extract->parsed()) return tlkit::cli::run_extract(extract_args);
#endif
    return 2;
  } catch (const std::invalid_argument& e) {
    fmt::print(stderr, "tlkit: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "tlkit: internal error: {}\n", e.what());
    return 1;
  } catch (...) {
    fmt::print(stderr, "tlkit: internal error: unknown exception\n");
    return 1;
  }
}
