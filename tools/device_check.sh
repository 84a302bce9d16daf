#!/usr/bin/env bash
# The GPU check of tlkit's CUDA statistics backend (docs/gpu.md), as one prepared command: unpacks
# the carried Debian packages (tools/device_deps.sh) into a prefix, builds the CUDA variant (core,
# tlkit::cuda, the tlkit CLI, tlkit_cuda_tests, tlkit_cuda_bench; no LibTorch, Python or MPI),
# runs the GPU tests, a CLI comparison of `--device cuda` with `--device cpu`, and the benchmark,
# and prints a summary. Where no CUDA device can be used (this machine without a GPU) it builds
# everything, the GPU tests skip, the CLI says "no CUDA device", and the summary says so.
#
# Once, where apt works, in the repository root:
#   tools/device_deps.sh                   # .devdeps/*.deb, ~15 MB (ignored: .git/info/exclude)
# Then through the device tool (one call; each build takes 1-3 minutes on 16 cores):
#   run(command="bash tools/device_check.sh", carry=[".devdeps"], timeout_s=590)
# (the summary is printed last and written with the whole log to $OUT). The models part
# (tools/device_models_check.sh: tlkit against the machine's CUDA LibTorch, extraction timed
# against PyTorch) runs last, within TLKIT_DEVICE_CHECK_BUDGET seconds of the start (560). For the
# scoring part alone, with device time left for one rerun within a session's 15 minutes:
#   run(command="TLKIT_DEVICE_CHECK_MODELS=0 bash tools/device_check.sh", carry=[".devdeps"],
#       timeout_s=420)
# Here, without a GPU (a rehearsal: every step but the GPU's):
#   TLKIT_DEVICE_CHECK_JOBS=2 nice -n 19 bash tools/device_check.sh
#
# Environment: OUT (where the log and summary are copied; the device tool sets it),
# TLKIT_DEVICE_CHECK_JOBS (build jobs, default nproc), TLKIT_DEVICE_CHECK_BENCH (the benchmark's
# cases, default "20000x2048x100:cpu 1000000x4096x100"), TLKIT_DEVICE_CHECK_LAUNCHER (a compiler
# launcher such as ccache, for rehearsals), TLKIT_DEVICE_CHECK_MODELS (0: skip the models part),
# TLKIT_DEVICE_CHECK_BUDGET (seconds from the start within which the models part must end, 560).
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build="$root/build-cuda"
prefix="$build/deps"
out="${OUT:-$build/out}"
mkdir -p "$build" "$out"
log="$out/device_check.log"
summary="$out/device_check_summary.txt"
: >"$log"
: >"$summary"
jobs="${TLKIT_DEVICE_CHECK_JOBS:-$(nproc)}"
bench_cases="${TLKIT_DEVICE_CHECK_BENCH:-20000x2048x100:cpu 1000000x4096x100}"
t_start=$(date +%s)
failed=0

note() { echo "$*" | tee -a "$summary"; }
# step NAME CMD...: runs CMD with its output in the log (and on stdout), notes status and seconds.
step() {
  local name=$1
  shift
  local t0=$(date +%s)
  echo "== $name: $*" | tee -a "$log"
  "$@" 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  note "$(printf '%-10s %s (%ss)' "$name" "$([ "$rc" = 0 ] && echo ok || echo "FAILED rc=$rc")" \
    "$(($(date +%s) - t0))")"
  [ "$rc" = 0 ] || failed=1
  return "$rc"
}
finish() {
  note "total      $(($(date +%s) - t_start))s"
  echo "== summary (also $summary)"
  cat "$summary"
  exit "$failed"
}

note "tlkit device check, $(date -u +%FT%TZ), $(uname -m), $(nproc) cores"
note "compiler   $(c++ --version 2>/dev/null | head -1 || echo none)"
note "cmake      $(cmake --version 2>/dev/null | head -1 || echo none)"
nvcc_bin=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
note "nvcc       ${nvcc_bin:-none} $("${nvcc_bin:-false}" --version 2>/dev/null | tail -1)"
note "gpu        $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader \
  2>/dev/null | head -1 || true)"

# ---- the carried packages, unpacked into the prefix (never into /) ----
unpack() {
  ls "$root"/.devdeps/*.deb >/dev/null 2>&1 || {
    echo "no .devdeps/*.deb: run tools/device_deps.sh where apt works, and carry .devdeps"
    return 1
  }
  rm -rf "$prefix"
  mkdir -p "$prefix"
  for f in "$root"/.devdeps/*.deb; do
    if command -v dpkg >/dev/null; then
      dpkg -x "$f" "$prefix" || return 1
    else  # a .deb is an ar archive holding data.tar.xz
      (cd "$prefix" && ar p "$f" data.tar.xz | tar -xJf -) || return 1
    fi
  done
  # libzip.pc names prefix=/usr: point it at the prefix.
  sed -i "s|^prefix=/usr\$|prefix=$prefix/usr|" "$prefix/usr/lib/x86_64-linux-gnu/pkgconfig/libzip.pc"
  du -sh "$root/.devdeps" "$prefix"
}
step deps unpack || finish

lib="$prefix/usr/lib/x86_64-linux-gnu"
blas="$lib/openblas-pthread"
export LD_LIBRARY_PATH="$lib:$blas${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_LIBDIR="$lib/pkgconfig:$prefix/usr/share/pkgconfig"
cuda_root=""
[ -n "$nvcc_bin" ] && cuda_root=$(dirname "$(dirname "$(readlink -f "$nvcc_bin")")")
# /usr is ignored by the find_* calls (the carried packages win over installed ones), unless the
# CUDA toolkit itself lives there.
ignore=(-DCMAKE_IGNORE_PREFIX_PATH=/usr)
[ "$cuda_root" = /usr ] && ignore=()
launcher=()
[ -n "${TLKIT_DEVICE_CHECK_LAUNCHER:-}" ] &&
  launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER="$TLKIT_DEVICE_CHECK_LAUNCHER"
    -DCMAKE_C_COMPILER_LAUNCHER="$TLKIT_DEVICE_CHECK_LAUNCHER")

# Every dependency from the prefix, named explicitly, so that a rehearsal on a machine that has the
# packages installed uses the carried ones too. Warnings are not errors here: the GPU machine's
# compiler may be newer.
configure() {
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DTLKIT_CUDA=ON -DTLKIT_WITH_TORCH=OFF -DTLKIT_BUILD_PYTHON=OFF \
    -DTLKIT_BUILD_BENCHMARKS=OFF -DTLKIT_MPI=OFF -DTLKIT_BUILD_TESTS=ON -DTLKIT_BUILD_CLI=ON \
    -DTLKIT_WERROR=OFF -DCMAKE_POLICY_VERSION_MINIMUM=3.5 \
    "${ignore[@]}" -DCMAKE_PREFIX_PATH="$prefix/usr" \
    -DEigen3_DIR="$prefix/usr/share/eigen3/cmake" \
    -Dfmt_DIR="$lib/cmake/fmt" -Dnlohmann_json_DIR="$prefix/usr/share/cmake/nlohmann_json" \
    -DCLI11_DIR="$prefix/usr/share/cmake/CLI11" -DGTest_DIR="$lib/cmake/GTest" \
    -DPKG_CONFIG_EXECUTABLE="$prefix/usr/bin/pkgconf" \
    -DTLKIT_OPENBLAS_LIB="$blas/libopenblas.so" \
    -DTLKIT_CBLAS_INCLUDE="$prefix/usr/include/x86_64-linux-gnu/openblas-pthread" \
    -DTLKIT_LAPACKE_LIB="$lib/liblapacke.so" -DTLKIT_LAPACKE_INCLUDE="$prefix/usr/include" \
    -DTLKIT_LBFGS_LIB="$lib/liblbfgs.so" -DTLKIT_LBFGS_INCLUDE="$prefix/usr/include" \
    ${cuda_root:+-DCUDAToolkit_ROOT="$cuda_root"} "${launcher[@]}" || return 1
  # The carried packages, not the system's: every found path must lie in the prefix.
  local bad
  bad=$(grep -E '^(Eigen3_DIR|fmt_DIR|nlohmann_json_DIR|CLI11_DIR|GTest_DIR|LIBZIP_LINK_LIBRARIES|pkgcfg_lib_LIBZIP_zip)[:=]' \
    "$build/CMakeCache.txt" | grep -v "$prefix" || true)
  [ -z "$bad" ] || {
    echo "found outside the prefix: $bad"
    return 1
  }
}
step configure configure || finish
step build cmake --build "$build" -j "$jobs" --target tlkit tlkit_cuda_tests tlkit_cuda_bench ||
  finish

# ---- the GPU tests (each skips with a message where no device can be used) ----
gpu_reason=$("$build/tests/tlkit_cuda_tests" --gtest_filter='CudaBackend.AMissingDeviceIndexIsAnError' \
  2>&1 | grep -o 'no CUDA device ([^)]*)' | head -1)
step tests "$build/tests/tlkit_cuda_tests" --gtest_brief=1
tests_line=$(grep -E '^\[  (PASSED|SKIPPED|FAILED) ' "$log" | tr '\n' ' ')
note "tests      $tests_line"

# ---- the CLI: --device cuda against --device cpu on the same .npy files ----
# A Python with NumPy (the GPU machine's python3 has it) writes the inputs and compares the scores.
py=""
for p in python3 /usr/bin/python3; do
  if "$p" -c 'import numpy' 2>/dev/null; then
    py=$p
    break
  fi
done
cli_check() {
  local dir="$build/cli-check"
  mkdir -p "$dir"
  [ -n "$py" ] || {
    echo "no python3 with numpy"
    return 1
  }
  "$py" - "$dir" <<'EOF' || return 1
import sys, numpy as np
d = sys.argv[1]
rng = np.random.default_rng(5)
y = rng.integers(0, 20, 6000)
f = rng.standard_normal((6000, 128)) + 0.5 * np.sin(y[:, None] * np.arange(1, 129))
np.save(f"{d}/f.npy", f.astype(np.float32))
np.save(f"{d}/y.npy", y.astype(np.int64))
EOF
  local m=logme,hscore,hscore_shrink,transrate,sfda
  "$build/apps/cli/tlkit" score --features "$dir/f.npy" --labels "$dir/y.npy" --metric $m \
    --format json >"$dir/cpu.json" || return 1
  "$build/apps/cli/tlkit" score --features "$dir/f.npy" --labels "$dir/y.npy" --metric $m \
    --format json --device cuda >"$dir/cuda.json" 2>"$dir/cuda.err"
  local rc=$?
  cat "$dir/cuda.err"
  if [ -n "$gpu_reason" ]; then
    # No device: one line, exit 1, nothing on stdout.
    [ "$rc" = 1 ] && [ "$(wc -l <"$dir/cuda.err")" = 1 ] && [ ! -s "$dir/cuda.json" ] &&
      grep -q 'no CUDA device' "$dir/cuda.err"
    return
  fi
  [ "$rc" = 0 ] || return 1
  "$py" - "$dir" <<'EOF'
import json, sys
d = sys.argv[1]
def scores(p):
    return {k: v["score"] for k, v in json.load(open(p))["metrics"].items()}
a, b = scores(f"{d}/cpu.json"), scores(f"{d}/cuda.json")
worst = 0.0
for k in a:
    rel = abs(a[k] - b[k]) / max(abs(a[k]), abs(b[k]), 1e-300)
    worst = max(worst, rel)
    print(f"cli {k}: cpu {a[k]!r} cuda {b[k]!r} rel {rel:.2e}")
print(f"cli worst rel {worst:.2e}")
sys.exit(0 if worst <= 1e-9 else 1)
EOF
}
step cli cli_check
grep -E '^cli worst rel' "$log" | sed 's/^/           /' | tee -a "$summary" >/dev/null

# ---- the benchmark ----
# shellcheck disable=SC2086
step bench timeout 240 "$build/tlkit_cuda_bench" $bench_cases
sed -n '/^== bench:/,$p' "$log" |
  grep -E '(device_(gram|syevd|total)_s|h2d_copy_s|host_(gram|total)_s|host_total_over_h2d|agree_worst_rel|logme_device_vs_host|no CUDA device|^device |^error)' |
  sed 's/^/           /' | tee -a "$summary" >/dev/null
[ -n "$gpu_reason" ] && note "gpu        $gpu_reason: GPU tests skipped, no GPU measurements"

# ---- the models on the GPU: tools/device_models_check.sh (docs/gpu-models.md) builds tlkit
# against the LibTorch of the machine's PyTorch with the same carried packages, runs the device
# tests and times extraction against PyTorch, within what is left of the budget.
budget="${TLKIT_DEVICE_CHECK_BUDGET:-560}"
if [ "${TLKIT_DEVICE_CHECK_MODELS:-1}" = 0 ]; then
  note "models     not run (TLKIT_DEVICE_CHECK_MODELS=0)"
elif ! python3 -c 'import torch' >/dev/null 2>&1; then
  note "models     not run: python3 has no torch (a CUDA PyTorch's LibTorch is what they build on)"
else
  left=$((budget - ($(date +%s) - t_start)))
  if [ "$left" -lt 120 ]; then
    note "models     not run: ${left}s left of the ${budget}s budget"
  else
    step models timeout "$left" env TLKIT_DEPS="$prefix" \
      bash "$root/tools/device_models_check.sh" "$root/build-gpu-models"
    sed -n '/^== models:/,$p' "$log" | sed -n '/^== summary/,$p' | sed 's/^/           /' |
      tee -a "$summary" >/dev/null
  fi
fi
finish
