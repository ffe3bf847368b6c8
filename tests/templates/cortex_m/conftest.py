"""Fixtures for the cortex_m template tests: the template's firmware module, tool checks, and the
bring-up (echo) firmware built once per board for the whole session."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

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


@pytest.fixture(scope="session")
def boards() -> dict[str, fw.Board]:
    return fw.load_boards()


@pytest.fixture(scope="session")
def echo_firmware(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Builds firmware/echo_main.c for a board on first use (then cached): the bring-up image."""
    built: dict[str, Path] = {}
    root = tmp_path_factory.mktemp("echo_fw")

    def get(board_name: str) -> Path:
        require_toolchain()
        if board_name not in built:
            board = fw.load_boards()[board_name]
            out = root / board_name
            fw.write_board_files(board, out / "generated", uart_baud=115200, stack_bytes=2048)
            argv = fw.gcc_command(
                board,
                sources=[*fw.driver_sources(board, fw.FIRMWARE_DIR), fw.FIRMWARE_DIR / "echo_main.c"],
                include_dirs=[],
                generated_dir=out / "generated",
                firmware_dir=fw.FIRMWARE_DIR,
                output=out / "echo.elf",
                extra_flags=["-Werror"],
            )
            subprocess.run(argv, check=True, capture_output=True, text=True)
            built[board_name] = out / "echo.elf"
        return built[board_name]

    return get
