#!/usr/bin/env bash
# The GPU check of tlkit's models (docs/gpu-models.md), for a machine with a CUDA PyTorch:
#   1. builds tlkit, tlkit_model_tests and tlkit_forward_bench against the LibTorch of the Python
#      install (torch.utils.cmake_prefix_path; Python module and benchmarks off);
#   2. runs the device tests (Device.*: the GPU ones skip without a GPU);
#   3. exports torchvision resnet18, mobilenet_v2 and resnet50 (random weights) to the kit's
#      contract and times them in PyTorch (tools/device_anchors.py) and in tlkit
#      (tlkit_forward_bench) at batch 256, 224 x 224, channels-last, fp32 and bf16, plus the kit
#      models found in $TLKIT_KIT; prints a summary.
#
#   tools/device_models_check.sh [BUILD_DIR]      (default build-cuda)
# Environment: PYTHON (python3), TLKIT_DEPS (a prefix where Debian packages of the dependencies
# were unpacked, with usr/ inside), TLKIT_KIT (a folder of kit models, *.pt; default
# ../shared/kit/models/image), ROUNDS (20), STEPS (build,test,bench: a comma list),
# TLKIT_TORCH_PREFIX (instead of the Python install's LibTorch, e.g. /usr for Debian's: a rehearsal
# on a CPU-only machine, where the GPU tests and the timings are skipped), TLKIT_WERROR (OFF: a
# newer LibTorch's deprecation warnings do not stop the build), TLKIT_WITH_OPENCV (ON or OFF
# instead of looking for its headers). ccache is used when installed.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-cuda}
PY=${PYTHON:-python3}
ROUNDS=${ROUNDS:-20}
STEPS=${STEPS:-build,test,bench}
KIT=${TLKIT_KIT:-../shared/kit/models/image}
OUT="$BUILD/device-check"
mkdir -p "$OUT"
step() { [[ ",$STEPS," == *",$1,"* ]]; }
say() { echo "== $*"; }

# ---- the LibTorch and what it sees
if [ -n "${TLKIT_TORCH_PREFIX:-}" ]; then
  TORCH_PREFIX=$TLKIT_TORCH_PREFIX
  LINKDIRS=""
else
  TORCH_PREFIX=$("$PY" -c 'import torch;print(torch.utils.cmake_prefix_path)')
  # libtorch_cuda.so needs cuDNN, cuBLAS, ... from the nvidia/*/lib folders of the Python install
  # (its RPATH finds them at run time; the linker needs -rpath-link).
  LINKDIRS=$("$PY" - <<'EOF'
import glob, os, torch
dirs = [os.path.join(os.path.dirname(torch.__file__), "lib")]
try:
    import nvidia
    for p in nvidia.__path__:
        dirs += sorted(glob.glob(os.path.join(p, "*", "lib")))
except ImportError:
    pass
print(" ".join(d for d in dirs if os.path.isdir(d)))
EOF
)
  "$PY" -c 'import torch; c = torch.cuda.is_available(); print("== torch", torch.__version__, "CUDA", torch.version.cuda, "GPU", torch.cuda.get_device_name(0) if c else "none", "cxx11 abi", torch.compiled_with_cxx11_abi())'
fi
LINK_FLAGS=""
for d in $LINKDIRS; do LINK_FLAGS+=" -Wl,-rpath-link,$d"; done

PREFIXES="$TORCH_PREFIX"
DEP_ARGS=()
if [ -n "${TLKIT_DEPS:-}" ]; then
  PREFIXES+=";$TLKIT_DEPS/usr"
  export LD_LIBRARY_PATH="$TLKIT_DEPS/usr/lib/x86_64-linux-gnu:$TLKIT_DEPS/usr/lib:${LD_LIBRARY_PATH:-}"
  export PKG_CONFIG_PATH="$TLKIT_DEPS/usr/lib/x86_64-linux-gnu/pkgconfig:$TLKIT_DEPS/usr/share/pkgconfig:${PKG_CONFIG_PATH:-}"
  # As tools/device_check.sh: each carried dependency named where CMake would not look (Debian's
  # OpenBLAS lives in a sub-folder that only its alternatives link names).
  dl="$TLKIT_DEPS/usr/lib/x86_64-linux-gnu"
  export LD_LIBRARY_PATH="$dl/openblas-pthread:$LD_LIBRARY_PATH"
  DEP_ARGS+=(-DEigen3_DIR="$TLKIT_DEPS/usr/share/eigen3/cmake" -Dfmt_DIR="$dl/cmake/fmt"
    -Dnlohmann_json_DIR="$TLKIT_DEPS/usr/share/cmake/nlohmann_json"
    -DCLI11_DIR="$TLKIT_DEPS/usr/share/cmake/CLI11" -DGTest_DIR="$dl/cmake/GTest"
    -DTLKIT_OPENBLAS_LIB="$dl/openblas-pthread/libopenblas.so"
    -DTLKIT_CBLAS_INCLUDE="$TLKIT_DEPS/usr/include/x86_64-linux-gnu/openblas-pthread"
    -DTLKIT_LAPACKE_LIB="$dl/liblapacke.so" -DTLKIT_LAPACKE_INCLUDE="$TLKIT_DEPS/usr/include"
    -DTLKIT_LBFGS_LIB="$dl/liblbfgs.so" -DTLKIT_LBFGS_INCLUDE="$TLKIT_DEPS/usr/include"
    -DCMAKE_POLICY_VERSION_MINIMUM=3.5)
  [ -x "$TLKIT_DEPS/usr/bin/pkgconf" ] && DEP_ARGS+=(-DPKG_CONFIG_EXECUTABLE="$TLKIT_DEPS/usr/bin/pkgconf")
fi
# OpenCV (image decoding) only where its headers are: Debian's runtime closure is too large to carry.
OPENCV=OFF
for inc in /usr/include/opencv4 "${TLKIT_DEPS:-/nonexistent}/usr/include/opencv4"; do
  [ -e "$inc/opencv2/imgcodecs.hpp" ] && OPENCV=ON
done
OPENCV=${TLKIT_WITH_OPENCV:-$OPENCV}
CUDA_ARGS=()
command -v ccache >/dev/null && CUDA_ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
NVCC=$(command -v nvcc || true)
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -n "$NVCC" ]; then
  CUDA_ARGS+=(-DCMAKE_CUDA_COMPILER="$NVCC" -DCUDAToolkit_ROOT="$(dirname "$(dirname "$NVCC")")")
fi

if step build; then
  say "configure $BUILD (LibTorch from $TORCH_PREFIX, OpenCV $OPENCV, nvcc ${NVCC:-none})"
  t0=$(date +%s)
  cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DCMAKE_PREFIX_PATH="$PREFIXES" -DTLKIT_BUILD_PYTHON=OFF -DTLKIT_BUILD_BENCHMARKS=OFF \
    -DTLKIT_MPI=OFF -DTLKIT_WITH_OPENCV=$OPENCV -DTLKIT_WERROR="${TLKIT_WERROR:-OFF}" \
    -DCMAKE_EXE_LINKER_FLAGS="$LINK_FLAGS" -DCMAKE_SHARED_LINKER_FLAGS="$LINK_FLAGS" \
    "${DEP_ARGS[@]}" "${CUDA_ARGS[@]}" >"$OUT/configure.log" 2>&1 || { tail -n 40 "$OUT/configure.log"; exit 1; }
  grep -E "tlkit: LibTorch|Caffe2: CUDA|CUDA detected|Found CUDAToolkit" "$OUT/configure.log" || true
  say "build ($(nproc) jobs)"
  cmake --build "$BUILD" -j"$(nproc)" --target tlkit tlkit_model_tests tlkit_forward_bench \
    >"$OUT/build.log" 2>&1 || { grep -E "error|Error" "$OUT/build.log" | head -n 30; exit 1; }
  echo "built in $(( $(date +%s) - t0 )) s; $(grep -c 'warning:' "$OUT/build.log" || true) warnings"
fi

if step test; then
  say "device tests"
  FILTER='Device.*'
  [ "$OPENCV" = ON ] && FILTER+=':Extract.*:Precision.*'
  "$BUILD/tests/tlkit_model_tests" --gtest_filter="$FILTER" 2>&1 | tee "$OUT/tests.log" |
    grep -E "^\[  (PASSED|FAILED) |^\[  SKIPPED \] [0-9]|^no CUDA|^tlkit was built|Failure" |
    sort | uniq -c | head -n 40
  "$BUILD/apps/cli/tlkit" --version
fi

if step bench; then
  if ! "$PY" -c 'import torch,sys; sys.exit(not torch.cuda.is_available())' 2>/dev/null; then
    say "no CUDA device: no timings"
    exit 0
  fi
  say "PyTorch anchors (and the torchvision exports)"
  "$PY" tools/device_anchors.py --rounds "$ROUNDS" --export-dir "$OUT/models" | tee "$OUT/anchors.jsonl"
  say "tlkit_forward_bench"
  : >"$OUT/tlkit.jsonl"
  bench() {  # model size
    for p in fp32 bf16; do
      "$BUILD/tests/tlkit_forward_bench" "$1" "$2" 256 cuda "$p" 1 "$ROUNDS" |
        tee -a "$OUT/tlkit.jsonl" || true
    done
  }
  for arch in resnet18 mobilenet_v2 resnet50; do bench "$OUT/models/$arch.pt" 224; done
  for m in "$KIT"/*.pt; do
    [ -e "$m" ] || continue
    case $(basename "$m" .pt) in
      cifar10_resnet*) s=32 ;; doodlenet_quickdraw) s=28 ;; imagenet_mobilenet_v1_025_128) s=128 ;;
      imagenet_mobilenet_v1_050_160) s=160 ;; imagenet_mobilenet_v1_075_192) s=192 ;; *) s=224 ;;
    esac
    bench "$m" "$s"
  done
  say "summary (images/s at batch 256, channels-last)"
  "$PY" - "$OUT/anchors.jsonl" "$OUT/tlkit.jsonl" <<'EOF'
import json, os, sys
anchors = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
tlkit = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{")]
a = {(r["model"], r["precision"], r["input"]): r["images_per_second"] for r in anchors}
print("%-32s %-5s %12s %14s %10s %12s" % ("model", "prec", "tlkit", "pytorch-pinned", "pytorch-gpu", "gpu/tlkit"))
for r in tlkit:
    name = os.path.basename(r["model"])[:-3]
    g, p = a.get((name, r["precision"], "gpu")), a.get((name, r["precision"], "pinned"))
    print("%-32s %-5s %12.0f %14s %10s %12s" % (name, r["precision"], r["images_per_second"],
          "%.0f" % p if p else "-", "%.0f" % g if g else "-",
          "%.2f" % (g / r["images_per_second"]) if g else "-"))
EOF
fi
