"""The package's layout rules that a reader relies on: the runtime stands alone, and tests share
their helpers through conftest.py and vidm_rt.testing rather than through each other."""

from __future__ import annotations

import ast
from pathlib import Path

import vidm_rt

PACKAGE = Path(vidm_rt.__file__).parent
TESTS = Path(__file__).parent
# The stages above the runtime: the runtime runs their artifacts but never their code.
ABOVE_RUNTIME = ("export", "train", "eval", "cli", "serve", "build", "bench")


def imported_modules(path: Path, package: str) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved in `package`)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            base = base[:len(base) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_the_runtime_imports_no_stage_above_it() -> None:
    upward = {}
    for path in sorted((PACKAGE / "runtime").glob("*.py")):
        bad = {m for m in imported_modules(path, "vidm_rt.runtime")
               if m.split(".")[:2] in (["vidm_rt", s] for s in ABOVE_RUNTIME)}
        if bad:
            upward[path.name] = sorted(bad)
    assert not upward, f"vidm_rt/runtime imports from a later stage: {upward}"


def test_the_import_check_sees_a_relative_upward_import(tmp_path) -> None:
    module = tmp_path / "m.py"
    module.write_text("from ..export.fp16 import convert_to_fp16\n")
    assert "vidm_rt.export.fp16" in imported_modules(module, "vidm_rt.runtime")


def test_no_test_module_imports_another() -> None:
    """Shared fixtures live in conftest.py, shared helpers in vidm_rt.testing (or the fakes):
    a test module that imports another runs that module's tests' setup and couples the two."""
    coupled = {}
    for path in sorted(TESTS.glob("test_*.py")):
        others = {m for m in imported_modules(path, "tests")
                  if m.split(".")[0] in ("tests", *[p.stem for p in TESTS.glob("test_*.py")])
                  and any(part.startswith("test_") for part in m.split("."))}
        if others:
            coupled[path.name] = sorted(others)
    assert not coupled, f"test modules that import other test modules: {coupled}"
