"""The cortex_m template's firmware knowledge, kept out of the thin server: the board table, the files
generated per board (config header, linker memory map), the arm-none-eabi-gcc command line, the section
size report and the does-it-fit check. Pure functions over data, so tests can check them one by one.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microtvm_api.errors import ServerError, ToolNotFoundError

TEMPLATE_DIR = Path(__file__).resolve().parent
BOARDS_YAML = TEMPLATE_DIR / "boards.yaml"
FIRMWARE_DIR = TEMPLATE_DIR / "firmware"

GCC = "arm-none-eabi-gcc"
SIZE = "arm-none-eabi-size"
QEMU = "qemu-system-arm"
# What to install when a tool is missing (Debian/Ubuntu package names).
APT_PACKAGES = {
    GCC: "gcc-arm-none-eabi libnewlib-arm-none-eabi",
    SIZE: "binutils-arm-none-eabi",
    QEMU: "qemu-system-arm",
}
UART_DRIVERS = ("cmsdk", "pl011")
TIMER_DRIVERS = ("cmsdk", "systick")


class FirmwareError(ServerError):
    """A problem with the board table or the firmware image; the message says what to do."""


@dataclass(frozen=True)
class Region:
    origin: int
    size: int


@dataclass(frozen=True)
class Board:
    name: str
    description: str
    qemu_machine: str | None
    cpu: str
    fpu: str | None
    float_abi: str
    flash: Region
    ram: Region
    uart_type: str
    uart_base: int
    uart_clock_hz: int
    timer_type: str
    timer_base: int | None
    timer_clock_hz: int
    timer_irq: int | None
    semihosting: bool
    clock_hz: int | None = None  # the real part's core clock (what DWT CYCCNT counts at)


def _field(entry: Mapping[str, Any], key: str, board: str, kind: type | tuple[type, ...]) -> Any:
    if key not in entry:
        raise FirmwareError(f"boards.yaml: board {board!r} has no {key!r} field")
    value = entry[key]
    if not isinstance(value, kind):
        raise FirmwareError(f"boards.yaml: board {board!r}: {key!r} is {value!r}, expected {kind}")
    return value


def _region(entry: Mapping[str, Any], key: str, board: str) -> Region:
    raw = _field(entry, key, board, dict)
    return Region(
        origin=_field(raw, "origin", f"{board}.{key}", int), size=_field(raw, "size", f"{board}.{key}", int)
    )


def parse_board(name: str, entry: Mapping[str, Any]) -> Board:
    """One boards.yaml entry as a Board; any missing or mistyped field is named in the error."""
    if not isinstance(entry, Mapping):
        raise FirmwareError(f"boards.yaml: board {name!r} must be a mapping of fields")
    uart = _field(entry, "uart", name, dict)
    timer = _field(entry, "timer", name, dict)
    board = Board(
        name=name,
        description=str(entry.get("description", name)),
        qemu_machine=_field(entry, "qemu_machine", name, (str, type(None))),
        cpu=_field(entry, "cpu", name, str),
        fpu=_field(entry, "fpu", name, (str, type(None))),
        float_abi=_field(entry, "float_abi", name, str),
        flash=_region(entry, "flash", name),
        ram=_region(entry, "ram", name),
        uart_type=_field(uart, "type", f"{name}.uart", str),
        uart_base=_field(uart, "base", f"{name}.uart", int),
        uart_clock_hz=_field(uart, "clock_hz", f"{name}.uart", int),
        timer_type=_field(timer, "type", f"{name}.timer", str),
        timer_base=_field(timer, "base", f"{name}.timer", (int, type(None))),
        timer_clock_hz=_field(timer, "clock_hz", f"{name}.timer", int),
        timer_irq=_field(timer, "irq", f"{name}.timer", (int, type(None))),
        semihosting=bool(entry.get("semihosting", False)),
        clock_hz=_field(entry, "clock_hz", name, (int, type(None))) if "clock_hz" in entry else None,
    )
    if board.uart_type not in UART_DRIVERS:
        raise FirmwareError(
            f"boards.yaml: board {name!r} uses UART type {board.uart_type!r}; drivers exist for "
            f"{', '.join(UART_DRIVERS)} (add firmware/drivers/uart_{board.uart_type}.c to support it)"
        )
    if board.timer_type not in TIMER_DRIVERS:
        raise FirmwareError(
            f"boards.yaml: board {name!r} uses timer type {board.timer_type!r}; drivers exist for "
            f"{', '.join(TIMER_DRIVERS)} (add firmware/drivers/timer_{board.timer_type}.c to support it)"
        )
    if board.float_abi not in ("hard", "softfp", "soft"):
        raise FirmwareError(f"boards.yaml: board {name!r}: float_abi must be hard, softfp or soft")
    if board.fpu is None and board.float_abi != "soft":
        raise FirmwareError(f"boards.yaml: board {name!r} has no fpu, so float_abi must be soft")
    return board


def load_boards(path: Path = BOARDS_YAML) -> dict[str, Board]:
    import yaml  # imported here: only the server's board-aware methods need it

    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise FirmwareError(f"cannot read the board table {path}: {err}") from err
    if not isinstance(raw, dict) or not raw:
        raise FirmwareError(f"board table {path} must map board names to their fields")
    return {str(name): parse_board(str(name), entry) for name, entry in raw.items()}


# Cores with a DWT whose CYCCNT may be implemented (Armv7-M and Armv8-M Mainline; not M0/M0+/M23).
DWT_CPUS = ("cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m35p", "cortex-m55", "cortex-m85")


def board_config_header(board: Board, uart_baud: int) -> str:
    """board_config.h: the board's addresses and clocks as macros for the drivers and startup code."""
    lines = [
        f"/* Generated by the cortex_m template from boards.yaml ({board.name}); do not edit. */",
        "#ifndef CORTEX_M_BOARD_CONFIG_H_",
        "#define CORTEX_M_BOARD_CONFIG_H_",
        f'#define BOARD_NAME "{board.name}"',
        f"#define BOARD_HAS_FPU {1 if board.fpu else 0}",
        f"#define BOARD_SEMIHOSTING {1 if board.semihosting else 0}",
        f"#define BOARD_UART_BASE 0x{board.uart_base:08X}u",
        f"#define BOARD_UART_CLOCK_HZ {board.uart_clock_hz}u",
        f"#define BOARD_UART_BAUD {uart_baud}u",
        f"#define BOARD_TIMER_CLOCK_HZ {board.timer_clock_hz}u",
    ]
    if board.timer_base is not None:
        lines.append(f"#define BOARD_TIMER_BASE 0x{board.timer_base:08X}u")
    if board.timer_irq is not None:
        lines.append(f"#define BOARD_TIMER_IRQ {board.timer_irq}")
    # The core's cycle counter: the firmware uses it when it counts (probed at run time; never under QEMU),
    # which needs the core clock to report its rate.
    has_dwt = board.cpu in DWT_CPUS and board.clock_hz is not None
    lines.append(f"#define BOARD_HAS_DWT {1 if has_dwt else 0}")
    if board.clock_hz is not None:
        lines.append(f"#define BOARD_CORE_CLOCK_HZ {board.clock_hz}u")
    lines += ["#endif", ""]
    return "\n".join(lines)


def board_memory_ld(board: Board, stack_bytes: int) -> str:
    """board_memory.ld: the MEMORY block and stack size that cortex_m.ld INCLUDEs."""
    return (
        f"/* Generated by the cortex_m template from boards.yaml ({board.name}); do not edit. */\n"
        "MEMORY\n{\n"
        f"  FLASH (rx) : ORIGIN = 0x{board.flash.origin:08X}, LENGTH = 0x{board.flash.size:08X}\n"
        f"  RAM (rwx) : ORIGIN = 0x{board.ram.origin:08X}, LENGTH = 0x{board.ram.size:08X}\n"
        "}\n"
        f"STACK_SIZE = 0x{stack_bytes:X};\n"
    )


def write_board_files(board: Board, out_dir: Path, *, uart_baud: int, stack_bytes: int) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "board_config.h").write_text(board_config_header(board, uart_baud), encoding="utf-8")
    (out_dir / "board_memory.ld").write_text(board_memory_ld(board, stack_bytes), encoding="utf-8")


def cpu_flags(board: Board) -> list[str]:
    flags = [f"-mcpu={board.cpu}", "-mthumb", f"-mfloat-abi={board.float_abi}"]
    if board.fpu:
        flags.append(f"-mfpu={board.fpu}")
    return flags


def driver_sources(board: Board, firmware_dir: Path) -> list[Path]:
    """The startup code and the two drivers the board's table entry selects."""
    return [
        firmware_dir / "startup.c",
        firmware_dir / "drivers" / f"uart_{board.uart_type}.c",
        firmware_dir / "drivers" / f"timer_{board.timer_type}.c",
    ]


def gcc_command(
    board: Board,
    *,
    sources: Sequence[Path],
    include_dirs: Sequence[Path],
    generated_dir: Path,
    firmware_dir: Path,
    output: Path,
    opt_level: str = "O2",
    extra_flags: Sequence[str] = (),
    defines: Sequence[str] = (),
    gcc: str = GCC,
) -> list[str]:
    """One arm-none-eabi-gcc invocation that compiles and links the whole image (argv, never a shell)."""
    argv = [gcc, *cpu_flags(board), f"-{opt_level}", "-g", "-std=gnu11", "-Wall"]
    argv += ["-ffunction-sections", "-fdata-sections", "-fno-common"]
    argv += [f"-D{d}" for d in defines]
    argv += [f"-I{d}" for d in (generated_dir, firmware_dir, *include_dirs)]
    argv += list(extra_flags)
    argv += [str(s) for s in sources]
    argv += ["--specs=nano.specs", "-nostartfiles", f"-L{generated_dir}", f"-T{firmware_dir / 'cortex_m.ld'}"]
    argv += ["-Wl,--gc-sections", f"-Wl,-Map={output.with_suffix('.map')}", "-o", str(output), "-lm"]
    return argv


def require_tool(tool: str) -> str:
    """The tool's path, or an error naming the package that provides it."""
    path = shutil.which(tool)
    if path is None:
        raise ToolNotFoundError(
            f"{tool} not found on PATH",
            f"install it with `apt-get install {APT_PACKAGES.get(tool, tool)}`",
            data={"tool": tool},
        )
    return path


# `arm-none-eabi-size -A` lines: "<section> <size> <addr>".
_SIZE_LINE = re.compile(r"^(\.\S+)\s+(\d+)\s+(\d+)\s*$")
FLASH_SECTIONS = (".isr_vector", ".text", ".rodata", ".ARM.extab", ".ARM.exidx", ".data")
RAM_SECTIONS = (".data", ".bss", ".stack")


def parse_size_output(text: str) -> dict[str, int]:
    """Section sizes from `arm-none-eabi-size -A` (only allocated sections we lay out)."""
    sizes: dict[str, int] = {}
    for line in text.splitlines():
        m = _SIZE_LINE.match(line.strip())
        if m and m.group(1) in set(FLASH_SECTIONS) | set(RAM_SECTIONS):
            sizes[m.group(1)] = int(m.group(2))
    return sizes


def usage(board: Board, sizes: Mapping[str, Any]) -> dict[str, int]:
    """Flash and RAM the image's laid-out sections take, beside the board's totals (.data is in both:
    its initial values are in flash and copied to RAM at reset)."""
    return {
        "flash_bytes": sum(int(sizes.get(s, 0)) for s in FLASH_SECTIONS),
        "flash_total_bytes": board.flash.size,
        "ram_bytes": sum(int(sizes.get(s, 0)) for s in RAM_SECTIONS),
        "ram_total_bytes": board.ram.size,
    }


def usage_report(board: Board, sizes: Mapping[str, Any]) -> str:
    used = usage(board, sizes)
    flash, ram = used["flash_bytes"], used["ram_bytes"]
    rows = [f"{name:<12}{sizes[name]:>10} B" for name in (*FLASH_SECTIONS, ".bss", ".stack") if name in sizes]
    rows.append(f"FLASH used  {flash:>10} B of {board.flash.size} ({100.0 * flash / board.flash.size:.1f}%)")
    rows.append(f"RAM used    {ram:>10} B of {board.ram.size} ({100.0 * ram / board.ram.size:.1f}%)")
    return "\n".join(rows)


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


def check_model_fits(
    board: Board, memory: Mapping[str, Any], *, stack_bytes: int, reserve_bytes: int = 0
) -> None:
    """Refuses, before compiling, a model whose arena and I/O buffers cannot fit the board's RAM.

    `memory` is metadata.json's per-model "memory" object; reserve_bytes covers the runtime's own buffers.
    """
    arena = int(memory.get("arena_bytes", 0))
    io = int(memory.get("io_bytes", 0))
    need = arena + io + stack_bytes + reserve_bytes
    if need > board.ram.size:
        raise FirmwareError(
            f"model does not fit {board.name}: arena {_kb(arena)} + I/O {_kb(io)} + stack {_kb(stack_bytes)}"
            f" + runtime {_kb(reserve_bytes)} = {_kb(need)} > {_kb(board.ram.size)} RAM on {board.name}; "
            "pick a board with more RAM or a smaller model (int8 quantised, fewer channels)"
        )
    constants = int(memory.get("constants_bytes", 0))
    if constants > board.flash.size:
        raise FirmwareError(
            f"model does not fit {board.name}: constants {_kb(constants)} > {_kb(board.flash.size)} flash "
            f"on {board.name}; pick a board with more flash or a smaller model"
        )


_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")


def explain_link_failure(board: Board, output: str) -> str | None:
    """A plain sentence for the linker's region-overflow error, or None for other failures."""
    m = _OVERFLOW.search(output)
    if not m:
        return None
    region, excess = m.group(1), int(m.group(2))
    total = board.ram.size if region == "RAM" else board.flash.size
    return (
        f"firmware does not fit {board.name}: {region} overflowed by {_kb(excess)} "
        f"({_kb(total + excess)} needed > {_kb(total)} {region} on {board.name}); "
        "pick a board with more memory, lower stack_bytes, or a smaller model"
    )


# ---- stack depth and fault reports ---------------------------------------------------------------------

# Exit statuses of the firmware under QEMU semihosting (startup.c, platform_cortex_m.c).
FAULT_NAMES = {2: "NMI", 3: "HardFault", 4: "MemManage", 5: "BusFault", 6: "UsageFault"}
FAULT_EXIT_BASE = 70
STACK_OVERFLOW_EXIT_BASE = 80
ABORT_EXIT_BASE = 100
UNEXPECTED_IRQ_EXIT_BASE = 170
# Pushed on the process stack by an interrupt taken in main(): 8 words, 26 with the FP context.
EXCEPTION_FRAME_BYTES = 32
EXCEPTION_FRAME_FP_BYTES = 104
# newlib-nano functions the firmware calls (memcpy, memset) are not compiled here: no call graph for them.
LIBRARY_MARGIN_BYTES = 64
STACK_ROOT = "main"


@dataclass(frozen=True)
class ExitReason:
    """What a QEMU exit status says about how the firmware stopped."""

    text: str
    fault: str | None = None  # the exception's name for a fault
    stack_overflow: bool = False


def describe_exit_status(status: int) -> ExitReason | None:
    """The firmware's semihosting exit status as words; None for a status it does not use."""
    for base, overflow in ((FAULT_EXIT_BASE, False), (STACK_OVERFLOW_EXIT_BASE, True)):
        name = FAULT_NAMES.get(status - base)
        if name is not None:
            cause = " caused by a stack overflow" if overflow else ""
            return ExitReason(f"the firmware took a {name} exception{cause}", name, overflow)
    if ABORT_EXIT_BASE <= status < ABORT_EXIT_BASE + 0x40:
        code = status - ABORT_EXIT_BASE
        return ExitReason(f"the firmware aborted (tvmrt_platform_abort, code {code} mod 64)")
    if UNEXPECTED_IRQ_EXIT_BASE <= status < UNEXPECTED_IRQ_EXIT_BASE + 0x40:
        number = status - UNEXPECTED_IRQ_EXIT_BASE
        return ExitReason(f"the firmware took an unexpected exception (number {number})")
    return None


@dataclass(frozen=True)
class StackEstimate:
    """The deepest call path from main() by gcc's -fcallgraph-info=su, plus what a call graph cannot see."""

    bytes: int  # frames on the path + an exception frame + LIBRARY_MARGIN_BYTES
    path: tuple[str, ...]
    dynamic: tuple[str, ...]  # functions with variable-size frames (alloca, VLAs): the estimate may be low

    def to_json(self) -> dict[str, Any]:
        return {
            "estimated_bytes": self.bytes,
            "worst_path": list(self.path),
            "dynamic_frames": list(self.dynamic),
        }


_CI_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_CI_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_CI_FRAME = re.compile(r"\\n(\d+) bytes \(([a-z,]+)\)")
INDIRECT = "__indirect_call"


def estimate_stack(ci_files: Sequence[Path], *, fpu: bool, root: str = STACK_ROOT) -> StackEstimate | None:
    """Worst stack depth from `root` over the call graphs gcc wrote (-fcallgraph-info=su), or None when
    there are none (a compiler without the option).

    An indirect call (the runtime calls the model's run function and the platform through pointers)
    counts as the deepest function that no code calls directly and that makes no indirect call itself:
    the callbacks (model run function, platform hooks) rather than entry points such as main() or the
    runtime's API. Recursion is not followed (the firmware has none; a cycle counts once).
    """
    frames: dict[str, int] = {}
    dynamic: set[str] = set()
    calls: dict[str, set[str]] = {}
    for path in ci_files:
        text = path.read_text(encoding="utf-8", errors="replace")
        for title, label in _CI_NODE.findall(text):
            m = _CI_FRAME.search(label)
            if m:
                frames[title] = int(m.group(1))
                if "dynamic" in m.group(2) and "bounded" not in m.group(2):
                    dynamic.add(title.rsplit(":", 1)[-1])
        for source, target in _CI_EDGE.findall(text):
            calls.setdefault(source, set()).add(target)
    if not frames:
        return None
    # A static function's node is "file:name"; calls name the function as written: map names to nodes.
    by_name: dict[str, str] = {}
    for title in frames:
        by_name.setdefault(title.rsplit(":", 1)[-1] if ":" in title else title, title)

    def node(name: str) -> str:
        return name if name in frames else by_name.get(name.rsplit(":", 1)[-1], name)

    called = {node(t) for targets in calls.values() for t in targets}

    def reaches_indirect(name: str, seen: set[str]) -> bool:
        if name == INDIRECT:
            return True
        key = node(name)
        if key in seen:
            return False
        seen.add(key)
        return any(reaches_indirect(t, seen) for t in calls.get(key, ()))

    pointer_targets = sorted(
        t for t in frames if t not in called and node(t) != node(root) and not reaches_indirect(t, set())
    )
    memo: dict[str, tuple[int, tuple[str, ...]]] = {}

    def deepest(name: str, on_path: frozenset[str]) -> tuple[int, tuple[str, ...]]:
        if name == INDIRECT:
            options = [deepest(t, on_path) for t in pointer_targets if t not in on_path]
            best_target = max(options, default=(0, ()))
            return best_target[0], (f"(through a pointer) {best_target[1][0]}", *best_target[1][1:]) if (
                best_target[1]) else ()
        key = node(name)
        if key in on_path:
            return 0, ()
        if key not in memo:
            best: tuple[int, tuple[str, ...]] = (0, ())
            for callee in sorted(calls.get(key, ())):
                best = max(best, deepest(callee, on_path | {key}))
            memo[key] = (frames.get(key, 0) + best[0], (key.rsplit(":", 1)[-1], *best[1]))
        return memo[key]

    depth, path = deepest(root, frozenset())
    extra = (EXCEPTION_FRAME_FP_BYTES if fpu else EXCEPTION_FRAME_BYTES) + LIBRARY_MARGIN_BYTES
    return StackEstimate(depth + extra, path, tuple(sorted(dynamic)))


def suggested_stack_bytes(needed: int) -> int:
    """A stack_bytes value covering `needed` with a quarter to spare, rounded up to 256 bytes."""
    return -(-(needed * 5 // 4) // 256) * 256
