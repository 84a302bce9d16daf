#include "extraction_options.h"

#include <fmt/format.h>

#include <exception>

#include "tlkit/core/error.h"
#include "world.h"

namespace tlkit::cli {

void add_extraction_options(CLI::App* cmd, ExtractionArgs& a) {
  cmd->add_option("--split", a.split,
                  "Sub-folder of an image --data folder holding the class folders (train, ...)");
  cmd->add_option("--batch", a.batch, "Samples per forward call")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option(
         "--threads", a.threads,
         "LibTorch and BLAS threads (0: the cores not busy with other processes, at least 1; "
         "under mpirun: the cores divided by the processes on the machine)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--decode-threads", a.decode_threads,
                  "Image decoding threads, running ahead of the model (0: half the cores; with "
                  "--device cuda all cores but one)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--per-class", a.per_class,
                  "At most K samples per class, chosen with --seed (0: all)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--limit", a.limit, "At most N samples in all, chosen with --seed (0: all)")
      ->check(kNonNegativeInteger)
      ->capture_default_str();
  cmd->add_option("--seed", a.seed, "Seed of the subsampling (std::mt19937_64)")
      ->capture_default_str();
  cmd->add_option("--on-bad-image", a.on_bad_image,
                  "An image that cannot be decoded fails the run, or is skipped with a warning")
      ->check(CLI::IsMember({"skip", "fail"}))
      ->capture_default_str();
  cmd->add_option("--optimize", a.optimize,
                  "freeze: torch::jit::freeze; full: freeze + optimize_for_inference (faster "
                  "for ResNets, slower for MobileNets); none: the model as loaded. Checked "
                  "against the model as loaded on the first batch")
      ->check(CLI::IsMember({"none", "freeze", "full"}))
      ->capture_default_str();
  cmd->add_flag("--channels-last,!--no-channels-last", a.channels_last,
                "Run image models in channels-last (NHWC) memory format (the default): the same "
                "features to float32 rounding (within 3e-6 relative on every kit model), "
                "1.05-1.6x faster end to end on the kit's CNNs; --no-channels-last runs them "
                "channels-first (NCHW) as stored (docs/extract.md)");
  cmd->add_option("--precision", a.precision,
                  "fp32; bf16: forward under autocast to bfloat16 on the --device (on the CPU "
                  "1.0-3x faster on the kit's models with AVX-512 BF16/AMX, features 0.8-21 % "
                  "off; --optimize full runs frozen); auto: the first batch runs both, bf16 for "
                  "the rest when its relative feature error is within --precision-tolerance "
                  "(docs/extract.md)")
      ->check(CLI::IsMember({"fp32", "bf16", "auto"}))
      ->capture_default_str();
  cmd->add_option("--precision-tolerance", a.precision_tolerance,
                  "With --precision auto: the largest relative feature error "
                  "||f_bf16 - f_fp32|| / ||f_fp32|| (Frobenius, first batch) that selects bf16")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--device", a.device,
                  "Where the model runs: cpu, cuda (device 0) or cuda:N; CUDA needs tlkit built "
                  "against a CUDA LibTorch (docs/gpu-models.md). Image batches are decoded into "
                  "pinned memory and copied to the GPU; text models run on the CPU only")
      ->capture_default_str();
  cmd->add_flag("--quiet", a.quiet, "No progress bar and no summary (warnings still go to stderr)");
}

model::ExtractOptions to_extract_options(const ExtractionArgs& a) {
  model::ExtractOptions o;
  o.split = a.split;
  o.batch = a.batch;
  o.threads = threads_per_process(a.threads);  // under mpirun: the ranks share the cores
  o.decode_threads = a.decode_threads;
  o.sample.per_class = a.per_class;
  o.sample.limit = a.limit;
  o.sample.seed = a.seed;
  o.on_bad_image = model::parse_bad_image_policy(a.on_bad_image);
  o.model_options.optimization = model::parse_optimization(a.optimize);
  o.model_options.channels_last = a.channels_last;
  o.model_options.precision = model::parse_precision(a.precision);
  o.model_options.precision_tolerance = a.precision_tolerance;
  o.model_options.device = model::device_from_flag(a.device, "--device");
  return o;
}

void add_task_option(CLI::App* cmd, std::string& task) {
  cmd->add_option("--task", task,
                  "What the labels are: classification (class labels), regression (a CSV listing "
                  "with a header: the sample column, then one or more real-valued target columns) "
                  "or multilabel (the same with 0/1 columns, one per label)")
      ->check(CLI::IsMember({"classification", "regression", "multilabel"}))
      ->capture_default_str();
}

void add_zoo_options(CLI::App* cmd, ZooArgs& a) {
  cmd->add_option("--zoo", a.zoo,
                  "Zoo manifest (the format of tlkit rank's --zoo); with --model-name, instead of "
                  "--model: the entry's file, input_size, outputs and mean/std are used");
  cmd->add_option("--model-name", a.model_name,
                  "The entry of --zoo to run (its \"name\", as tlkit rank prints it)");
}

bool zoo_model_wanted(const ZooArgs& a, const std::string& model, const char* command) {
  TLKIT_CHECK_ARG(a.zoo.empty() || model.empty(),
                  "--model and --zoo: give one (--zoo zoo.json --model-name NAME names a model of "
                  "a manifest)");
  TLKIT_CHECK_ARG(a.model_name.empty() || !a.zoo.empty(),
                  "--model-name {} needs --zoo (the manifest it names a model of)", a.model_name);
  TLKIT_CHECK_ARG(a.zoo.empty() || !a.model_name.empty(),
                  "--zoo {} needs --model-name NAME (which of its models to run)", a.zoo);
  TLKIT_CHECK_ARG(!a.zoo.empty() || !model.empty(),
                  "tlkit {} needs --model M.pt, or --zoo zoo.json with --model-name NAME", command);
  return !a.zoo.empty();
}

int parse_output_index(const std::string& s, const char* flag, bool allow_none) {
  if (allow_none && s == "none") return model::kNoOutput;
  if (allow_none && s == "auto") return model::kAutoOutput;
  int v = -1;
  std::size_t used = 0;
  try {
    v = std::stoi(s, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  TLKIT_CHECK_ARG(used == s.size() && v >= 0, "{} {}: expected an output index >= 0{}", flag, s,
                  allow_none ? ", auto or none" : "");
  return v;
}

void print_extract_warnings(const model::ExtractResult& r) {
  for (const auto& note : r.listing.notes) fmt::print(stderr, "tlkit: warning: {}\n", note);
  for (const auto& s : r.skipped) fmt::print(stderr, "tlkit: warning: skipped {}\n", s.reason);
  for (const auto& note : r.model_notes) fmt::print(stderr, "tlkit: warning: {}\n", note);
}

}  // namespace tlkit::cli
