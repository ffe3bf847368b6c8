"""The Armv8-M boards: Cortex-M33 on mps2_an505 and Cortex-M55 on mps3_an547 (QEMU's TrustZone machines).

Their rows carry facts read from QEMU's hw/arm/mps2-tz.c and checked here: the core boots Secure from
INITSVTOR (0x10000000 on AN505, 0 on AN547), so the image's vector table must sit there; the -mcpu/-mfpu
flags give the DSP extension (the int8 micro-kernels' SMLAD path), the FPU, and MVE on the M55. Under real
QEMU: a model runs bit-exact with exact timer counts, and a stack overflow is caught by PSPLIM. A QEMU
without the machine skips with the reason (the conftest does the same for the board-parametrised tests).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from cortex_m_device import make_project, open_session
from cortex_m_support import (
    TEMPLATE_DIR,
    cm_server,
    fw,
    missing_machine,
    qemu_machines,
    require_machine,
    require_toolchain,
)
from cortex_m_tiny_mlf import SOURCE, expected_output, write_tiny_mlf
from microtvm_api.options import resolve
from tvmc_micro.device import DeviceTransportClosedError

V8M_BOARDS = ("mps2_an505", "mps3_an547")
# INITSVTOR of each machine (mps2-tz.c: mmc->init_svtor): where the Secure vector table must be.
BOOT_VECTOR = {"mps2_an505": 0x10000000, "mps3_an547": 0x00000000}
# A model operator with a 4 KiB frame: more than the 1 KiB stack the overflow test gives it.
BIG_FRAME_SOURCE = SOURCE.replace(
    "  for (int i = 0; i < 16; ++i) {\n",
    "  volatile uint8_t scratch[4096];\n  for (int i = 0; i < 4096; ++i) scratch[i] = (uint8_t)i;\n"
    "  for (int i = 0; i < 16; ++i) {\n",
    1,
)


@pytest.fixture(scope="module")
def v8m(boards: dict[str, fw.Board]) -> dict[str, fw.Board]:
    return {name: boards[name] for name in V8M_BOARDS}


def test_rows_boot_where_the_machines_look_and_use_secure_aliases(v8m: dict[str, fw.Board]) -> None:
    an505, an547 = v8m["mps2_an505"], v8m["mps3_an547"]
    assert (an505.qemu_machine, an505.cpu, an505.fpu, an505.float_abi) == (
        "mps2-an505", "cortex-m33", "fpv5-sp-d16", "hard"
    )
    assert (an547.qemu_machine, an547.cpu, an547.fpu, an547.float_abi) == (
        "mps3-an547", "cortex-m55", "auto", "hard"
    )
    for name, board in v8m.items():
        assert board.flash.origin == BOOT_VECTOR[name]
    # AN505: SSRAM1 (4 MiB) through its Secure alias, SSRAM2+3 (4 MiB) at 0x38000000; UART0 and IoTKit
    # TIMER0 at their Secure aliases on the 20 MHz SYSCLK, TIMER0's interrupt is IRQ 3.
    assert (an505.flash.size, an505.ram) == (4 << 20, fw.Region(0x38000000, 4 << 20))
    assert (an505.uart_type, an505.uart_base, an505.uart_clock_hz) == ("cmsdk", 0x50200000, 20_000_000)
    assert (an505.timer_type, an505.timer_base, an505.timer_clock_hz, an505.timer_irq) == (
        "cmsdk", 0x50000000, 20_000_000, 3
    )
    # AN547: 512 KiB ITCM at 0 (QEMU's boot RAM), 4 MiB SRAM at its Secure alias, UART0 on the 25 MHz APB
    # clock, SysTick on the 32 MHz CPU clock (the SSE-300 has no CMSDK timer on the system clock).
    assert (an547.flash.size, an547.ram) == (512 << 10, fw.Region(0x31000000, 4 << 20))
    assert (an547.uart_type, an547.uart_base, an547.uart_clock_hz) == ("cmsdk", 0x59303000, 25_000_000)
    assert (an547.timer_type, an547.timer_base, an547.timer_clock_hz) == ("systick", None, 32_000_000)
    assert "#define BOARD_HAS_FPU 1" in fw.board_config_header(an547, 115200)
    assert fw.cpu_flags(an547) == ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard", "-mfpu=auto"]


def _predefined(board: fw.Board) -> dict[str, str]:
    out = subprocess.run(
        [fw.GCC, *fw.cpu_flags(board), "-dM", "-E", "-"], input="", capture_output=True, text=True, check=True
    ).stdout
    return {p[1]: p[2] if len(p) > 2 else "" for p in (line.split(maxsplit=2) for line in out.splitlines())}


def test_cpu_flags_give_the_cores_dsp_fpu_and_mve(v8m: dict[str, fw.Board]) -> None:
    require_toolchain()
    m33, m55 = _predefined(v8m["mps2_an505"]), _predefined(v8m["mps3_an547"])
    for macros in (m33, m55):
        assert macros.get("__ARM_FEATURE_DSP") == "1"  # the int8 micro-kernels' SMLAD/SXTB16 path
        assert macros.get("__ARM_ARCH_8M_MAIN__") == "1"  # startup.c sets PSPLIM
        assert "__ARM_PCS_VFP" in macros  # hard-float ABI
    assert m33["__ARM_FP"] == "4" and "__ARM_FEATURE_MVE" not in m33  # single-precision FPU only
    assert m55["__ARM_FP"] == "14" and m55["__ARM_FEATURE_MVE"] == "3"  # double precision; MVE-I and MVE-F


@pytest.mark.parametrize("board_name", V8M_BOARDS)
def test_vector_table_is_at_the_boot_address(board_name: str, echo_firmware: Callable[[str], Path]) -> None:
    require_toolchain()
    symbols = subprocess.run(
        ["arm-none-eabi-nm", str(echo_firmware(board_name))], capture_output=True, text=True, check=True
    ).stdout
    address = next(int(s.split()[0], 16) for s in symbols.splitlines() if s.endswith(" g_vector_table"))
    assert address == BOOT_VECTOR[board_name]


def _tiny_inputs() -> list[bytes]:
    rng = np.random.default_rng(1)
    return [bytes(16), bytes(range(16)), rng.integers(0, 256, 16, dtype=np.uint8).tobytes()]


@pytest.mark.slow
@pytest.mark.parametrize("board", V8M_BOARDS)
def test_small_model_runs_on_the_board(board: str, v8m: dict[str, fw.Board], tmp_path: Path) -> None:
    require_toolchain()
    require_machine(v8m[board])
    handler = make_project(write_tiny_mlf(tmp_path / "tiny.tar"), tmp_path / "proj", board)
    with open_session(handler) as session:
        info = session.info()
        assert info.timer_hz == v8m[board].timer_clock_hz
        for x in _tiny_inputs():
            session.set_input(0, x)
            session.run()
            assert session.get_output(0) == expected_output(x)
        first, second = session.time_runs(5), session.time_runs(5)
    # -icount shift=0 works as on the other boards: counts are exact and repeat.
    assert first.total_ticks == second.total_ticks and first.min_ticks == first.max_ticks > 0


@pytest.mark.slow
@pytest.mark.parametrize("board", V8M_BOARDS)
def test_stack_overflow_is_caught_by_psplim(board: str, v8m: dict[str, fw.Board], tmp_path: Path) -> None:
    """PSPLIM turns the overflow into a UsageFault (STKOF) before the first write below the stack; the
    report names the overflow and the stack_bytes option."""
    require_toolchain()
    require_machine(v8m[board])
    mlf = write_tiny_mlf(tmp_path / "big_frame.tar", source=BIG_FRAME_SOURCE)
    handler = make_project(mlf, tmp_path / "proj", board)  # the default 8 KiB stack: runs
    with open_session(handler) as session:
        session.set_input(0, bytes(range(16)))
        session.run()
        assert session.get_output(0) == expected_output(bytes(range(16)))
    handler = _project_with_stack(mlf, tmp_path / "small", board, stack_bytes=1024)
    with pytest.raises(DeviceTransportClosedError) as info, open_session(handler) as session:
        session.set_input(0, bytes(16))
        session.run()
    text = str(info.value)
    assert "UsageFault exception caused by a stack overflow" in text, text
    assert "stack_bytes=1024" in text
    log = (handler.project_dir / "build" / "qemu.log").read_text()
    assert "cortex_m firmware: UsageFault (stack overflow" in log


def _project_with_stack(mlf: Path, project_dir: Path, board: str, *, stack_bytes: int) -> Any:
    """make_project with a stack_bytes of our choosing (a generate_project option)."""
    template = cm_server.CortexMHandler(TEMPLATE_DIR)
    given = {"board": board, "stack_bytes": stack_bytes}
    options = resolve(cm_server.PROJECT_OPTIONS, "generate_project", given)
    template.generate_project(mlf, None, project_dir, options)
    handler = cm_server.CortexMHandler(project_dir)
    saved = handler.saved_option_values()
    handler.build(resolve(cm_server.PROJECT_OPTIONS, "build", {}, saved=saved))
    handler.flash(resolve(cm_server.PROJECT_OPTIONS, "flash", {}, saved=saved))
    return handler


def test_missing_machine_is_a_skip_reason(v8m: dict[str, fw.Board], tmp_path: Path) -> None:
    """The skip path, with a stand-in QEMU that lists only the M3 machine (and with no QEMU at all)."""
    fake = tmp_path / "qemu-system-arm"
    fake.write_text("#!/bin/sh\necho 'Supported machines are:'\necho 'mps2-an385  ARM MPS2 (Cortex-M3)'\n")
    fake.chmod(0o755)
    assert qemu_machines(str(fake)) == frozenset({"mps2-an385"})
    reason = missing_machine(v8m["mps3_an547"], str(fake))
    assert reason is not None and "has no machine 'mps3-an547' for board mps3_an547" in reason
    assert qemu_machines(str(tmp_path / "no-such-qemu")) == frozenset()
    assert missing_machine(v8m["mps2_an505"], str(tmp_path / "no-such-qemu")) is not None


def _benchmark() -> ModuleType:
    path = TEMPLATE_DIR.parent.parent / "benchmarks" / "cortex_m_kws.py"
    spec = importlib.util.spec_from_file_location("cortex_m_kws_benchmark", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_benchmark_compiles_for_the_boards_core() -> None:
    bench = _benchmark()
    assert bench.board_target("mps2_an505") == "c -mcpu=cortex-m33"
    assert bench.board_target("mps3_an547") == "c -mcpu=cortex-m55"
    unknown = r"--board mps9_an999: not a row of .*boards.yaml \(known: .*mps3_an547"
    with pytest.raises(SystemExit, match=unknown):
        bench.board_target("mps9_an999")
