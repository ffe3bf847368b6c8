"""What goes into a generated Zephyr project and the commands around it, as pure functions: prj.conf, the
runtime source list, the Zephyr tree's version, the toolchain environment, the does-it-fit check and the
emulator command line. The server (microtvm_api_server.py) stays a thin handler over these.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from microtvm_api.errors import CommandFailedError, ServerError, ToolNotFoundError
from zephyr_boards import Board

# RAM the firmware needs besides the model and the main stack (kernel, idle/ISR stacks, RPC buffers):
# measured 11,716 B in all on qemu_cortex_m3 with a 4 KiB main stack and a 136 B model; rounded up.
FIRMWARE_RAM_BYTES = 8192


def write_runtime_list(project_dir: Path, sources: Sequence[Path]) -> None:
    """runtime_sources.cmake: the device runtime's C files (not its unit tests, not the host port)."""
    relative = [p.relative_to(project_dir).as_posix() for p in sources]
    listed = "".join(f"  ${{CMAKE_CURRENT_SOURCE_DIR}}/{r}\n" for r in relative)
    (project_dir / "runtime_sources.cmake").write_text(
        f"# Written by generate_project: the device runtime's C files.\nset(runtime_sources\n{listed})\n"
    )


def zephyr_version(base: Path) -> tuple[int, str]:
    """(major, "4.2.0-rc1") from the tree's VERSION file; ServerError when `base` is not a Zephyr tree."""
    try:
        lines = (base / "VERSION").read_text().splitlines()
        numbers = {k.strip(): v.strip() for k, _, v in (line.partition("=") for line in lines) if v}
        text = f"{numbers['VERSION_MAJOR']}.{numbers['VERSION_MINOR']}.{numbers.get('PATCHLEVEL', '0')}"
        extra = numbers.get("EXTRAVERSION", "")
        return int(numbers["VERSION_MAJOR"]), text + (f"-{extra}" if extra else "")
    except (OSError, KeyError, ValueError):
        raise ServerError(f"ZEPHYR_BASE={base} is not a Zephyr tree (no readable VERSION file)",
                          "point it at the zephyr/ folder of a west workspace") from None


def prj_conf(app_dir: Path, board: Board, options: Mapping[str, Any]) -> str:
    """The app's base prj.conf, then the board's Kconfig lines, then the options'."""
    lines = [(app_dir / "prj.conf").read_text().rstrip("\n"), f"\n# Board {board.name} (boards.yaml)"]
    lines += [f"{key}={value}" for key, value in board.kconfig.items()]
    lines += ["\n# Project options", f"CONFIG_MAIN_STACK_SIZE={int(options['config_main_stack_size'])}"]
    return "\n".join(lines) + "\n"


def toolchain_setup(variant: str, env: dict[str, str]) -> list[str]:
    """Put ZEPHYR_TOOLCHAIN_VARIANT (and what that variant needs) in `env`; returns extra CMake arguments."""
    env["ZEPHYR_TOOLCHAIN_VARIANT"] = variant
    if variant != "gnuarmemb":
        return []
    if "GNUARMEMB_TOOLCHAIN_PATH" not in env:
        gcc = shutil.which("arm-none-eabi-gcc")
        if gcc is None:
            raise ToolNotFoundError("arm-none-eabi-gcc not found (toolchain variant gnuarmemb)",
                                    "apt-get install gcc-arm-none-eabi picolibc-arm-none-eabi")
        env["GNUARMEMB_TOOLCHAIN_PATH"] = str(Path(gcc).resolve().parent.parent)
    # Distribution newlib (Debian's) lacks the retargetable locking Zephyr's newlib glue asserts; a picolibc
    # installed with the toolchain works, but Zephyr only considers it when told the toolchain has one.
    root = Path(env["GNUARMEMB_TOOLCHAIN_PATH"])
    specs = [*root.glob("lib/gcc/arm-none-eabi/*/picolibc.specs"), *root.glob("lib/picolibc/*/*.specs")]
    return ["-DTOOLCHAIN_HAS_PICOLIBC=ON"] if specs else []


def emulator_argv(board: Board, image: Path) -> list[str]:
    """The exact command that boots `image` with the console UART on a new pty (no monitor on it)."""
    if board.transport == "native":
        # --wait_uart: the firmware's first bytes wait until we have opened the pty, instead of being lost.
        return [str(image), "--wait_uart"]
    assert board.qemu_binary is not None
    return [board.qemu_binary, *board.qemu_args, "-nographic", "-monitor", "none", "-serial", "pty",
            "-kernel", str(image)]


def check_fits(board: Board, metadata: Mapping[str, Any], stack_bytes: int) -> None:
    """Refuse before a long build when the model (arena + I/O buffers) and the firmware cannot fit in RAM."""
    if board.ram_bytes is None:
        return
    for model in metadata.get("models", []):
        memory = model.get("memory", {})
        need = int(memory.get("arena_bytes", 0)) + int(memory.get("io_bytes", 0))
        if need + FIRMWARE_RAM_BYTES + stack_bytes > board.ram_bytes:
            raise CommandFailedError(
                f"model {model.get('name')!r} needs {need} B of RAM (arena {memory.get('arena_bytes')} B + "
                f"I/O {memory.get('io_bytes')} B); with the firmware (about {FIRMWARE_RAM_BYTES} B + a "
                f"{stack_bytes} B main stack) that is more than the {board.ram_bytes} B {board.name} has",
                "pick a board with more RAM (e.g. mps2/an385 under QEMU), or shrink the model (quantise it)",
            )


# ---- project types (microtvm_api.project_types) ------------------------------------------------------

# The main loop each project type compiles; the others are removed from the generated src/.
MAINS = {"host_driven": "main.c", "standalone": "main_standalone.c", "mlperftiny": "main_mlperftiny.c"}


def app_sources_cmake(kind: str) -> str:
    """app_sources.cmake: the project type's main, app sources, include dirs and compile definitions."""
    from microtvm_api import project_types as pt

    sources = [f"src/{MAINS[kind]}", *(f"src/{pt.APP_DIR_NAME}/{name}" for name in pt.APP_SOURCES[kind])]
    if kind == pt.STANDALONE:
        sources.append(f"src/{pt.INPUT_SOURCE}")
    includes = [] if kind == pt.HOST_DRIVEN else ["src", f"src/{pt.APP_DIR_NAME}"]
    definitions = ["TVMGEN_PROFILE"] if kind == pt.HOST_DRIVEN else []
    return "".join([
        f"# Written by generate_project for project_type {kind}.\n",
        "set(app_sources\n", *(f"  ${{CMAKE_CURRENT_SOURCE_DIR}}/{s}\n" for s in sources), ")\n",
        "set(app_include_dirs\n", *(f"  ${{CMAKE_CURRENT_SOURCE_DIR}}/{d}\n" for d in includes), ")\n",
        f"set(app_definitions {' '.join(definitions)})\n",
    ])  # fmt: skip


def standalone_argv(board: Board, image: Path) -> list[str]:
    """The emulator with the console UART on its stdout: a standalone image prints at boot, before a pty
    could be opened, so its output is read from the process."""
    if board.transport == "native":
        return [str(image), "-uart_stdinout"]
    argv = emulator_argv(board, image)
    argv[argv.index("-serial") + 1] = "stdio"
    return argv
