"""Seeded byte mutations of real int8 models: each mutant is refused clearly or compiles bit-exact.

The issue-12 review mutated models byte by byte and found out-of-bounds kernels, silent wrong results,
hangs and internal exceptions. Here a fixed-seed sample (bounded to well under a minute) goes through
the reader, the census and the importer in a worker process (so a segfault or hang is counted, not
fatal), and a few accepted mutants with damaged structure (not just weights) are compiled, built with
the host C harness and compared with TFLite Micro. scripts/fuzz_models.py runs the long version.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import REPO_ROOT, model_path


def _fuzz() -> ModuleType:
    spec = importlib.util.spec_from_file_location("fuzz_models", REPO_ROOT / "scripts" / "fuzz_models.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_models"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def fuzz() -> ModuleType:
    pytest.importorskip("tvm")
    pytest.importorskip("tflite_micro")
    return _fuzz()


def test_mutants_are_seeded_and_mostly_structural() -> None:
    fz = _fuzz()
    path = model_path("hello_world_int8.tflite")
    a, b = fz.mutants(path, 20, seed=3), fz.mutants(path, 20, seed=3)
    assert [m.changes for m in a] == [m.changes for m in b]
    assert all(1 <= len(m.changes) <= 2 and m.data != path.read_bytes() for m in a)
    assert sum(m.structural for m in a) >= 12


@pytest.mark.parametrize(
    "name, count, e2e", [("kws_ref_model.tflite", 36, 1), ("hello_world_int8.tflite", 24, 2)]
)
def test_every_mutant_is_refused_or_bit_exact(
    fuzz: ModuleType, tmp_path: Path, name: str, count: int, e2e: int
) -> None:
    outcomes = fuzz.run([model_path(name)], count, seed=12, e2e=e2e, timeout=60.0)
    kinds = [o.kind for o in outcomes]
    problems = [
        f"#{o.mutant.index} {o.mutant.describe()}: {o.kind} {o.message}"
        for o in outcomes
        if o.kind in ("crash", "hang")
    ]
    assert not problems, "\n".join(problems)
    assert kinds.count("refused") >= count // 4  # the sample reaches the checks, not only weights
    for o in outcomes:
        if o.kind == "refused":
            assert "Traceback" not in o.message and o.message.strip()
    compared = [o.e2e for o in outcomes if o.e2e]
    assert compared and all(r in ("exact", "refused-at-compile") for r in compared), compared
    assert "exact" in compared
