"""The ONNX importer's modules import one way: importer -> lowerer and converter families -> the view
(`onnx_view.LowererView`) and the values. No circle, not even one under TYPE_CHECKING or inside a
function, and each module imports on its own (in a fresh interpreter, so no other test has loaded a
module it silently relies on)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = "tvmc_micro.compiler.quantized"
PACKAGE_DIR = Path(__file__).resolve().parents[2] / "client" / "tvmc_micro" / "compiler" / "quantized"
ONNX_MODULES = sorted(p.stem for p in PACKAGE_DIR.glob("onnx_*.py"))
FAMILIES = [m for m in ONNX_MODULES if m.startswith("onnx_convert_")]
# The modules of the split (each started by a fresh interpreter: a second or more each, for TVM).
SPLIT_MODULES = ["onnx_view", "onnx_lowerer", *FAMILIES, "onnx_importer"]


def _imported_modules(module: str) -> set[str]:
    """The package's modules `module` imports anywhere in its source (top level, TYPE_CHECKING blocks,
    function bodies), by short name."""
    tree = ast.parse((PACKAGE_DIR / f"{module}.py").read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this package
                parent = PACKAGE.split(".")[: len(PACKAGE.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            # `from package import module` names modules; `from package.module import name` a module.
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        else:
            continue
        for target in targets:
            if target.startswith(PACKAGE + "."):
                short = target[len(PACKAGE) + 1 :].split(".")[0]
                if (PACKAGE_DIR / f"{short}.py").exists():
                    found.add(short)
    found.discard(module)
    return found


def _onnx_graph() -> dict[str, set[str]]:
    return {m: _imported_modules(m) & set(ONNX_MODULES) for m in ONNX_MODULES}


def test_the_onnx_modules_import_no_circle() -> None:
    graph = _onnx_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            cycle = [*path[path.index(module) :], module]
            pytest.fail("import circle: " + " -> ".join(cycle))
        if module in done:
            return
        for target in sorted(graph[module]):
            visit(target, [*path, module])
        done.add(module)

    for module in ONNX_MODULES:
        visit(module, [])


def test_the_converters_see_the_lowerer_only_through_the_view() -> None:
    graph = _onnx_graph()
    assert FAMILIES, "no onnx_convert_* modules found"
    for family in FAMILIES:
        assert not graph[family] & {"onnx_importer", "onnx_lowerer"}, (family, graph[family])
    assert graph["onnx_view"] <= {"onnx_values"}, graph["onnx_view"]
    assert not graph["onnx_lowerer"] & {"onnx_importer", *FAMILIES}, graph["onnx_lowerer"]
    assert "onnx_importer" not in set().union(*graph.values())


@pytest.mark.parametrize("module", SPLIT_MODULES)
def test_each_onnx_module_imports_alone(module: str) -> None:
    code = f"import {PACKAGE}.{module}"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


def test_the_family_tables_do_not_overlap() -> None:
    """The importer merges the families' tables: an operator in two of them would silently lose one."""
    from tvmc_micro.compiler.quantized import onnx_convert_conv as conv
    from tvmc_micro.compiler.quantized import onnx_convert_elementwise as elementwise
    from tvmc_micro.compiler.quantized import onnx_convert_moves as moves
    from tvmc_micro.compiler.quantized import onnx_convert_pool as pool
    from tvmc_micro.compiler.quantized import onnx_convert_qdq as qdq
    from tvmc_micro.compiler.quantized import onnx_importer

    qoperator = [
        qdq.BOUNDARY_CONVERTERS,
        conv.CONV_QOPERATOR_CONVERTERS,
        elementwise.ELEMENTWISE_QOPERATOR_CONVERTERS,
        pool.POOL_QOPERATOR_CONVERTERS,
        moves.MOVE_QOPERATOR_CONVERTERS,
    ]
    groups = [
        conv.CONV_GROUP_CONVERTERS,
        elementwise.ELEMENTWISE_GROUP_CONVERTERS,
        pool.POOL_GROUP_CONVERTERS,
        moves.MOVE_GROUP_CONVERTERS,
    ]
    assert len(onnx_importer.QOPERATOR_CONVERTERS) == sum(len(t) for t in qoperator)
    assert len(onnx_importer.QDQ_GROUP_CONVERTERS) == sum(len(t) for t in groups)
