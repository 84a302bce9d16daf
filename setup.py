"""Builds the tlkit Python package (python/) for pip:

    pip install --no-build-isolation --no-deps .

CMake configures the repository with only the core and the Python module (no tests, CLI,
benchmarks or LibTorch) for the running interpreter, builds the `tlkit_python` target (the
`_tlkit` extension and the registry-generated type stubs) in build-pip/cmake (kept between
installs, so rebuilds are incremental) and puts both next to python/tlkit/*.py in the wheel.
Needs the Debian packages of scripts/setup plus pybind11-dev; nothing is downloaded. TLKIT_JOBS
sets the build parallelism (default: all cores). Details: docs/python.md.
"""

import glob
import os
import re
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(ROOT, "build-pip")


def project_version():
    with open(os.path.join(ROOT, "CMakeLists.txt")) as f:
        return re.search(r"project\(tlkit VERSION ([0-9.]+)", f.read()).group(1)


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        cmake_dir = os.path.join(BUILD, "cmake")
        configure = ["cmake", "-S", ROOT, "-B", cmake_dir, "-DCMAKE_BUILD_TYPE=Release",
                     "-DTLKIT_BUILD_PYTHON=ON", "-DTLKIT_BUILD_TESTS=OFF", "-DTLKIT_BUILD_CLI=OFF",
                     "-DTLKIT_BUILD_BENCHMARKS=OFF", "-DTLKIT_WITH_TORCH=OFF",
                     "-DPython_EXECUTABLE=" + sys.executable]
        if shutil.which("ninja") and not os.path.exists(os.path.join(cmake_dir, "Makefile")):
            configure += ["-G", "Ninja"]
        jobs = os.environ.get("TLKIT_JOBS", str(os.cpu_count() or 1))
        subprocess.check_call(configure)
        subprocess.check_call(["cmake", "--build", cmake_dir, "--target", "tlkit_python", "-j",
                               jobs])
        package = os.path.join(cmake_dir, "python", "tlkit")
        built = glob.glob(os.path.join(package, "_tlkit*.so"))
        if len(built) != 1:
            raise RuntimeError("expected one _tlkit extension in %s, found %r" % (package, built))
        target = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copyfile(built[0], target)
        # The stubs with the registry's metrics filled in (python/gen_stubs.py, run by the build).
        shutil.copyfile(os.path.join(package, "__init__.pyi"),
                        os.path.join(os.path.dirname(target), "__init__.pyi"))


os.makedirs(BUILD, exist_ok=True)
setup(
    name="tlkit",
    version=project_version(),
    description="Exact, fast transferability metrics (LogME, LEEP, H-score, ...) for NumPy arrays",
    python_requires=">=3.7",
    install_requires=["numpy"],
    packages=["tlkit"],
    package_dir={"": "python"},
    package_data={"tlkit": ["py.typed", "__init__.pyi"]},
    ext_modules=[Extension("tlkit._tlkit", sources=[])],
    cmdclass={"build_ext": CMakeBuild},
    options={"build": {"build_base": os.path.relpath(BUILD)},
             "egg_info": {"egg_base": os.path.relpath(BUILD)}},
    zip_safe=False,
)
