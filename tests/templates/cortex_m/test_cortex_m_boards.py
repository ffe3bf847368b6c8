"""The board table and the files and command lines made from it (no toolchain needed)."""

from __future__ import annotations

from pathlib import Path

import cortex_m_firmware as fw
import pytest
from microtvm_api.errors import ToolNotFoundError


def test_table_has_the_required_boards(boards: dict[str, fw.Board]) -> None:
    assert {"mps2_an385", "mps2_an386", "mps2_an500", "lm3s6965evb"} <= set(boards)
    an386 = boards["mps2_an386"]
    assert (an386.cpu, an386.fpu, an386.float_abi) == ("cortex-m4", "fpv4-sp-d16", "hard")
    assert boards["lm3s6965evb"].ram.size == 64 * 1024
    assert boards["mps2_an385"].fpu is None


def test_memory_map_and_config_header_come_from_the_row(boards: dict[str, fw.Board]) -> None:
    lm3s = boards["lm3s6965evb"]
    ld = fw.board_memory_ld(lm3s, stack_bytes=4096)
    assert "FLASH (rx) : ORIGIN = 0x00000000, LENGTH = 0x00040000" in ld
    assert "RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 0x00010000" in ld
    assert "STACK_SIZE = 0x1000;" in ld
    header = fw.board_config_header(boards["mps2_an386"], 115200)
    assert "#define BOARD_UART_BASE 0x40004000u" in header
    assert "#define BOARD_TIMER_IRQ 8" in header
    assert "#define BOARD_HAS_FPU 1" in header
    assert "BOARD_TIMER_IRQ" not in fw.board_config_header(lm3s, 115200)


def test_gcc_command_is_an_argv_with_the_board_flags(boards: dict[str, fw.Board], tmp_path: Path) -> None:
    argv = fw.gcc_command(
        boards["mps2_an500"],
        sources=[tmp_path / "a.c"],
        include_dirs=[tmp_path / "inc"],
        generated_dir=tmp_path / "gen",
        firmware_dir=tmp_path / "fw",
        output=tmp_path / "out.elf",
        opt_level="Os",
    )
    assert argv[0] == "arm-none-eabi-gcc"
    for flag in (
        "-mcpu=cortex-m7",
        "-mthumb",
        "-mfloat-abi=hard",
        "-mfpu=fpv5-d16",
        "-Os",
        "--specs=nano.specs",
    ):
        assert flag in argv
    assert f"-T{tmp_path / 'fw' / 'cortex_m.ld'}" in argv
    assert argv[-3:] == ["-o", str(tmp_path / "out.elf"), "-lm"]


def _write_table(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "boards.yaml"
    path.write_text(text)
    return path


GOOD_ROW = """
myboard:
  qemu_machine: mps2-an385
  cpu: cortex-m3
  fpu: null
  float_abi: soft
  flash: {origin: 0, size: 4096}
  ram: {origin: 0x20000000, size: 4096}
  uart: {type: cmsdk, base: 0x40004000, clock_hz: 25000000}
  timer: {type: cmsdk, base: 0x40000000, clock_hz: 25000000, irq: 8}
"""


def test_adding_a_board_is_adding_a_row(tmp_path: Path) -> None:
    boards = fw.load_boards(_write_table(tmp_path, GOOD_ROW))
    assert boards["myboard"].ram == fw.Region(0x20000000, 4096)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("  cpu: cortex-m3\n", ""), "board 'myboard' has no 'cpu' field"),
        (
            lambda t: t.replace("type: cmsdk, base: 0x40004000", "type: usart9, base: 0x40004000"),
            "uses UART type 'usart9'",
        ),
        (
            lambda t: t.replace("type: cmsdk, base: 0x40000000", "type: rtc, base: 0x40000000"),
            "uses timer type 'rtc'",
        ),
        (lambda t: t.replace("float_abi: soft", "float_abi: hard"), "has no fpu, so float_abi must be soft"),
        (lambda t: t.replace("size: 4096}\n  uart", "size: lots}\n  uart"), "'size' is 'lots'"),
        (lambda t: "[not, a, mapping]", "must map board names"),
        (lambda t: "a: [unclosed", "cannot read the board table"),
    ],
)
def test_bad_board_rows_are_named(tmp_path: Path, edit, message: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(fw.FirmwareError, match=message.replace("(", r"\(").replace("'", "'")):
        fw.load_boards(_write_table(tmp_path, edit(GOOD_ROW)))


def test_size_report_parses_arm_none_eabi_size(boards: dict[str, fw.Board]) -> None:
    text = """firmware.elf  :
section             size        addr
.isr_vector          192           0
.text              12000         192
.rodata            52000       12192
.data                 16   536870912
.bss              100000   536870928
.stack              8192   536970928
.comment              30           0
Total             172430
"""
    sizes = fw.parse_size_output(text)
    assert sizes == {
        ".isr_vector": 192,
        ".text": 12000,
        ".rodata": 52000,
        ".data": 16,
        ".bss": 100000,
        ".stack": 8192,
    }
    report = fw.usage_report(boards["lm3s6965evb"], sizes)
    assert "FLASH used       64208 B of 262144" in report
    assert "RAM used        108208 B of 65536" in report


def test_model_that_does_not_fit_is_refused_with_sizes(boards: dict[str, fw.Board]) -> None:
    memory = {"arena_bytes": 220 * 1024, "io_bytes": 502, "constants_bytes": 52000}
    with pytest.raises(fw.FirmwareError, match=r"arena 220.0 KB .* > 64.0 KB RAM on lm3s6965evb"):
        fw.check_model_fits(boards["lm3s6965evb"], memory, stack_bytes=4096)
    fw.check_model_fits(boards["mps2_an386"], memory, stack_bytes=4096)
    with pytest.raises(fw.FirmwareError, match=r"constants 500.0 KB > 256.0 KB flash"):
        fw.check_model_fits(boards["lm3s6965evb"], {"constants_bytes": 500 * 1024}, stack_bytes=0)


def test_linker_overflow_is_explained(boards: dict[str, fw.Board]) -> None:
    ld_output = (
        "ld: firmware.elf section `.bss' will not fit in region `RAM'\n"
        "ld: region `RAM' overflowed by 34000 bytes"
    )
    text = fw.explain_link_failure(boards["lm3s6965evb"], ld_output)
    assert text is not None and "RAM overflowed by 33.2 KB" in text and "> 64.0 KB RAM on lm3s6965evb" in text
    assert fw.explain_link_failure(boards["lm3s6965evb"], "undefined reference to `foo'") is None


def test_missing_tool_names_the_apt_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    with pytest.raises(ToolNotFoundError, match="arm-none-eabi-gcc not found") as info:
        fw.require_tool(fw.GCC)
    assert "apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi" in str(info.value)
    with pytest.raises(ToolNotFoundError) as info:
        fw.require_tool(fw.QEMU)
    assert "apt-get install qemu-system-arm" in str(info.value)
