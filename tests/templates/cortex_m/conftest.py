"""Fixtures for the cortex_m template tests: the bring-up (echo) firmware built once per board."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cortex_m_support import TEMPLATE_DIR, fw, require_toolchain


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
                sources=[
                    *fw.driver_sources(board, fw.FIRMWARE_DIR),
                    fw.FIRMWARE_DIR / "platform_cortex_m.c",
                    fw.FIRMWARE_DIR / "echo_main.c",
                ],
                include_dirs=[TEMPLATE_DIR.parent.parent / "runtime" / "include"],
                generated_dir=out / "generated",
                firmware_dir=fw.FIRMWARE_DIR,
                output=out / "echo.elf",
                extra_flags=["-Werror"],
            )
            subprocess.run(argv, check=True, capture_output=True, text=True)
            built[board_name] = out / "echo.elf"
        return built[board_name]

    return get
