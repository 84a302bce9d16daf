"""The package surface that is generated from the metric registry stays in step with it: the
convenience functions and the type stubs the build writes (python/gen_stubs.py)."""

import importlib.util
import inspect
import re
from pathlib import Path

import tlkit
from conftest import REPO


def _gen_stubs():
    spec = importlib.util.spec_from_file_location("gen_stubs", REPO / "python" / "gen_stubs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_built_stub_matches_the_registry():
    """The stub next to the imported module has the registry's metrics filled in."""
    gen = _gen_stubs()
    built = (Path(tlkit.__file__).parent / "__init__.pyi").read_text()
    template = Path(gen.TEMPLATE).read_text()
    assert built == gen.fill(template, gen.render(tlkit))
    for name in tlkit._METRIC_FUNCTIONS:
        assert re.search(r"^def %s\(" % name, built, flags=re.M), name


def test_committed_stub_leaves_the_generated_section_empty():
    gen = _gen_stubs()
    template = Path(gen.TEMPLATE).read_text()
    assert gen.BEGIN + "\n" + gen.END in template


def test_every_public_name_has_a_stub():
    text = (Path(tlkit.__file__).parent / "__init__.pyi").read_text()
    stubbed = set(re.findall(r"^(?:def|class) (\w+)", text, flags=re.M)) | {"__version__"}
    assert set(tlkit.__all__) <= stubbed, set(tlkit.__all__) - stubbed


def test_installed_package_is_typed():
    package = Path(tlkit.__file__).parent
    assert (package / "py.typed").exists() and (package / "__init__.pyi").exists()


def test_generated_signatures():
    for info in tlkit.metrics():
        fn = getattr(tlkit, info["name"])
        if fn is tlkit.logme:
            continue
        params = inspect.signature(fn).parameters
        data = [i for i in info["inputs"] if i != "labels"] + ["labels"]
        assert list(params)[:len(data)] == data
        for p in info["params"]:
            assert params[p["name"]].kind is inspect.Parameter.KEYWORD_ONLY
            assert params[p["name"]].default is None
        assert params["seed"].default == 0 and params["threads"].default == 0


def test_version_is_the_cmake_project_version():
    cmake = (REPO / "CMakeLists.txt").read_text()
    assert re.search(r"project\(tlkit VERSION ([0-9.]+)", cmake).group(1) == tlkit.__version__
