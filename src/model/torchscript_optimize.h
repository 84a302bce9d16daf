// The optimisation step of TorchScriptModel, replaceable by tests (internal; not installed).
//
// TorchScriptModel checks an optimised module against the module as loaded and falls back when
// they disagree (docs/extract.md, "Speed and --optimize"). Whether LibTorch's own
// optimize_for_inference is wrong depends on the processor, so the tests of that fallback inject
// a step whose result is wrong by construction instead of relying on LibTorch's bug.
#pragma once

#include <torch/script.h>

#include "tlkit/model/torchscript_model.h"

namespace tlkit::model::detail {

// Returns the module that forward runs for `o` (kFreeze or kFull), built from `loaded` (in eval
// mode; must not be modified). May throw: the model then falls back as for any failed step.
using OptimizeFunction = torch::jit::Module (*)(const torch::jit::Module& loaded, Optimization o);

// LibTorch's: torch::jit::freeze, then torch::jit::optimize_for_inference for kFull.
torch::jit::Module default_optimize(const torch::jit::Module& loaded, Optimization o);

// Sets the step used by TorchScriptModels constructed from now on (nullptr: the default) and
// returns the previous one. Not thread-safe: for tests.
OptimizeFunction set_optimize_function(OptimizeFunction f);

}  // namespace tlkit::model::detail
