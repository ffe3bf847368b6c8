"""Shared constants and skips for the cortex_m template tests (a plain module: `conftest` is a name
several test folders use, so tests import from here instead)."""

from __future__ import annotations

import functools
import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

TEMPLATE_DIR = Path(__file__).resolve().parents[3] / "template_projects" / "cortex_m"
if str(TEMPLATE_DIR) not in sys.path:
    sys.path.insert(0, str(TEMPLATE_DIR))

import cortex_m_firmware as fw  # noqa: E402  (needs the template folder on sys.path first)

BOARD_NAMES = sorted(fw.load_boards())


def require_toolchain() -> None:
    if shutil.which(fw.GCC) is None:
        pytest.skip(
            "arm-none-eabi-gcc is not installed (apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)"
        )


def require_qemu() -> None:
    if shutil.which(fw.QEMU) is None:
        pytest.skip("qemu-system-arm is not installed (apt-get install qemu-system-arm)")


@functools.cache
def qemu_machines(qemu: str = fw.QEMU) -> frozenset[str]:
    """The machine names `qemu -M help` lists (empty when that QEMU is missing or does not answer)."""
    try:
        listing = subprocess.run([qemu, "-M", "help"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired):
        return frozenset()
    # "Supported machines are:" then one "<name>  <description>" line per machine.
    return frozenset(line.split()[0] for line in listing.splitlines()[1:] if line.strip())


def missing_machine(board: fw.Board, qemu: str = fw.QEMU) -> str | None:
    """Why `qemu` cannot emulate the board (a skip reason), or None when it can."""
    if board.qemu_machine is None or board.qemu_machine not in qemu_machines(qemu):
        return f"{qemu} has no machine {board.qemu_machine!r} for board {board.name} (see `{qemu} -M help`)"
    return None


def require_machine(board: fw.Board, qemu: str = fw.QEMU) -> None:
    """Skips unless `qemu` emulates the board's machine (mps3-an547 needs QEMU >= 6.0, for instance)."""
    require_qemu()
    reason = missing_machine(board, qemu)
    if reason is not None:
        pytest.skip(reason)


def _load_server() -> ModuleType:
    # Every template has a microtvm_api_server.py: load ours under a name of its own so it never
    # collides in sys.modules with another template's server imported by another test folder.
    path = TEMPLATE_DIR / "microtvm_api_server.py"
    spec = importlib.util.spec_from_file_location("cortex_m_microtvm_api_server", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


cm_server = _load_server()
