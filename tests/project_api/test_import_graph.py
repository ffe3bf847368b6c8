"""The microtvm_api modules import one way: no cycle among them (read from the source with `ast`, lazy
imports inside functions included), and the modules split out of the client and the conformance checker
each import alone in a fresh interpreter and know only the layers below them."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import microtvm_api
import pytest

PACKAGE_DIR = Path(microtvm_api.__file__).resolve().parent
LIBRARY_ROOT = PACKAGE_DIR.parent


def _module_name(path: Path) -> str:
    parts = path.relative_to(LIBRARY_ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    _module_name(path): path for path in sorted(PACKAGE_DIR.rglob("*.py")) if "__pycache__" not in path.parts
}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _resolve(importer: str, module: str | None, level: int) -> str:
    """The absolute name of `from <level dots><module> import ...` inside `importer`."""
    if level == 0:
        return module or ""
    package = importer if _is_package(importer) else importer.rpartition(".")[0]
    for _ in range(level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{module}" if module else package


def imports_of(name: str) -> set[str]:
    """The microtvm_api modules `name` imports. `from package import submodule` counts as importing the
    submodule, not the package's __init__ (Python runs that first anyway, and an __init__ importing its
    own submodules is not a cycle between them)."""
    tree = ast.parse(MODULES[name].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(name, node.module, node.level)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.add(submodule if submodule in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: imports_of(name) for name in MODULES}


def _find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path (first module repeated at the end), or None."""
    done: set[str] = set()
    stack: list[str] = []
    on_stack: set[str] = set()

    def visit(node: str) -> list[str] | None:
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt in on_stack:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in done:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        on_stack.discard(node)
        done.add(node)
        return None

    for start in sorted(graph):
        if start not in done:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_the_graph_reader_sees_imports_and_cycles() -> None:
    # The reader itself: it must see both import forms, or "no cycle" below would prove nothing.
    assert "microtvm_api.rpc_connection" in GRAPH["microtvm_api.client"]
    assert "microtvm_api.server_process" in GRAPH["microtvm_api.rpc_connection"]
    assert "microtvm_api.compat.v018.server" in GRAPH["microtvm_api.compat.v018.client"]
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_among_microtvm_api_modules() -> None:
    cycle = _find_cycle(GRAPH)
    assert cycle is None, "import cycle: " + " → ".join(cycle or [])


# Each split module and the microtvm_api modules it may import (besides errors, options, protocol, framing,
# transport, lifeline and the package itself, which sit below all of them).
FOUNDATION = {
    "microtvm_api",
    "microtvm_api.errors",
    "microtvm_api.options",
    "microtvm_api.protocol",
    "microtvm_api.framing",
    "microtvm_api.transport",
    "microtvm_api.lifeline",
}
ALLOWED = {
    "microtvm_api.server_process": set(),
    "microtvm_api.rpc_connection": {"microtvm_api.server_process"},
    "microtvm_api.v018_servers": set(),
    "microtvm_api.client": {
        "microtvm_api.server_process",
        "microtvm_api.rpc_connection",
        "microtvm_api.v018_servers",
    },
    "microtvm_api.conformance_sandbox": set(),
    "microtvm_api.conformance_harness": {"microtvm_api.client", "microtvm_api.rpc_connection"},
    "microtvm_api.conformance_checks": {
        "microtvm_api.client",
        "microtvm_api.conformance_harness",
        "microtvm_api.conformance_sandbox",
    },
    "microtvm_api.conformance": {
        "microtvm_api.client",
        "microtvm_api.conformance_args",
        "microtvm_api.conformance_checks",
        "microtvm_api.conformance_harness",
        "microtvm_api.conformance_sandbox",
    },
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_split_modules_know_only_the_layers_below(name: str) -> None:
    unexpected = GRAPH[name] - FOUNDATION - ALLOWED[name]
    assert not unexpected, f"{name} imports {sorted(unexpected)}"


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_split_module_imports_alone(name: str) -> None:
    """In a fresh interpreter, so it does not lean on another module having been imported first."""
    result = subprocess.run(
        [sys.executable, "-c", f"import {name}"],
        env=dict(os.environ, PYTHONPATH=str(LIBRARY_ROOT)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
