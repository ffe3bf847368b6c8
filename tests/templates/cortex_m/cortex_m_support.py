"""Shared constants and skips for the cortex_m template tests (a plain module: `conftest` is a name
several test folders use, so tests import from here instead)."""

from __future__ import annotations

import importlib.util
import shutil
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
