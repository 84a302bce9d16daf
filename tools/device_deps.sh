#!/usr/bin/env bash
# Downloads the Debian 12 packages that tools/device_check.sh needs on a GPU machine that has the
# CUDA toolkit, CMake and a compiler but none of tlkit's own build dependencies and no network:
# Eigen, fmt, nlohmann-json, CLI11, GoogleTest, OpenBLAS (pthreads), LAPACKE, libzip, liblbfgs,
# gfortran's runtime (OpenBLAS needs it) and pkgconf. Run here, where apt works; the .deb files
# land in .devdeps/ (ignored through .git/info/exclude: `echo /.devdeps/ >> .git/info/exclude`),
# which the device call carries. device_check.sh unpacks them with `dpkg -x` into a prefix under
# build-cuda/, never into /.
#
#   tools/device_deps.sh          # into .devdeps/ of the repository root
set -euo pipefail
cd "$(dirname "$0")/.."
out=.devdeps
mkdir -p "$out"
packages=(
  libeigen3-dev libfmt9 libfmt-dev nlohmann-json3-dev libcli11-dev libgtest-dev
  libopenblas0-pthread libopenblas-pthread-dev liblapacke liblapacke-dev libtmglib3
  libzip4 libzip-dev liblbfgs0 liblbfgs-dev libgfortran5 libquadmath0
  pkgconf-bin libpkgconf3
)
(cd "$out" && apt-get download "${packages[@]}")
# One version of each package: a second download of a newer version would leave two.
ls "$out"/*.deb | sed 's|.*/||; s|_.*||' | sort | uniq -d | while read -r dup; do
  echo "device_deps: two versions of $dup in $out; remove the older" >&2
  exit 1
done
du -ch "$out"/*.deb | tail -1
