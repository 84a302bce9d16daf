// Throughput of TorchScriptModel::forward from decoded batches (no image decoding): the number
// tools/device_models_check.sh compares with PyTorch's. Built on demand (target
// tlkit_forward_bench, tests/CMakeLists.txt); not a test.
//
//   tlkit_forward_bench MODEL.pt SIZE BATCH DEVICE PRECISION CHANNELS_LAST ROUNDS
//   e.g. tlkit_forward_bench resnet50.pt 224 256 cuda bf16 1 20
//
// Each round is one forward call on a [BATCH, 3, SIZE, SIZE] batch in a HostBuffer (pinned for a
// CUDA device): the copy to the device, forward, the features and logits back as float32 (which
// waits for the device). Three rounds warm up first (cuDNN's algorithm search, the profiling
// executor). Prints one JSON line: images/s over the timed rounds.
#include <fmt/format.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <random>
#include <string>

#include "tlkit/model/device.h"
#include "tlkit/model/runtime.h"
#include "tlkit/model/torchscript_model.h"

int main(int argc, char** argv) {
  using namespace tlkit::model;
  if (argc != 8) {
    std::fprintf(stderr,
                 "usage: tlkit_forward_bench MODEL.pt SIZE BATCH DEVICE PRECISION CHANNELS_LAST "
                 "ROUNDS\n");
    return 2;
  }
  try {
    const std::string model = argv[1];
    const int size = std::atoi(argv[2]);
    const int batch = std::atoi(argv[3]);
    ModelOptions mo;
    mo.device = device_from_flag(argv[4]);
    mo.precision = parse_precision(argv[5]);
    mo.channels_last = std::string(argv[6]) == "1";
    const int rounds = std::atoi(argv[7]);
    if (size <= 0 || batch <= 0 || rounds <= 0) throw std::invalid_argument("bad sizes");
    set_torch_threads(0);
    const auto t_load = std::chrono::steady_clock::now();
    TorchScriptModel m(model, mo);
    const double load_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t_load).count();
    HostBuffer x(static_cast<std::size_t>(batch) * 3 * size * size, mo.device);
    std::mt19937 rng(0);
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    for (std::size_t i = 0; i < x.size(); ++i) x.data()[i] = u(rng);
    ModelOutputs out;
    for (int r = 0; r < 3; ++r) out = m.forward(x.data(), batch, size, size);
    const auto t0 = std::chrono::steady_clock::now();
    for (int r = 0; r < rounds; ++r) out = m.forward(x.data(), batch, size, size);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    fmt::print(
        "{{\"tool\": \"tlkit\", \"model\": \"{}\", \"size\": {}, \"batch\": {}, \"device\": "
        "\"{}\", "
        "\"precision\": \"{}\", \"channels_last\": {}, \"pinned\": {}, \"rounds\": {}, "
        "\"seconds\": {:.4f}, \"images_per_second\": {:.1f}, \"features_dim\": {}, "
        "\"load_seconds\": {:.2f}, \"torch\": \"{}\"}}\n",
        model, size, batch, to_string(mo.device), to_string(m.precision()),
        mo.channels_last ? "true" : "false", x.pinned() ? "true" : "false", rounds, s,
        batch * rounds / s, out.features_dim, load_s, torch_version());
    for (const auto& n : m.notes()) std::fprintf(stderr, "note: %s\n", n.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tlkit_forward_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
