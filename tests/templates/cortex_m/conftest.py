"""Fixtures for the cortex_m template tests: the bring-up (echo) firmware built once per board."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from cortex_m_support import TEMPLATE_DIR, fw, missing_machine, require_toolchain


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


@pytest.fixture(autouse=True)
def _skip_boards_this_qemu_cannot_emulate(request: pytest.FixtureRequest) -> None:
    """A test parametrised by board skips, with the reason, when qemu-system-arm lacks the board's machine
    (an older QEMU without mps3-an547, say) instead of failing when QEMU refuses to start."""
    callspec = getattr(request.node, "callspec", None)
    name = callspec.params.get("board", callspec.params.get("board_name")) if callspec is not None else None
    board = fw.load_boards().get(name) if isinstance(name, str) else None
    if board is None or board.qemu_machine is None or shutil.which(fw.QEMU) is None:
        return  # not a board test, or require_qemu() names the missing QEMU itself
    reason = missing_machine(board)
    if reason is not None:
        pytest.skip(reason)
