"""The cortex_m template's project types (microtvm_api.project_types): which firmware main and app sources a
project compiles, and the standalone run `flash` does under QEMU. Kept out of the thin server.

- host_driven: firmware/main.c (the device RPC server), per-operator profiling compiled in.
- standalone: firmware/standalone_main.c + apps/tvmc_standalone.c + generated/standalone_input.c.
- mlperftiny: firmware/mlperftiny_main.c + apps/tvmc_mlperftiny.c.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cortex_m_firmware as fw
from microtvm_api import project_types as pt
from microtvm_api.errors import NotImplementedInTemplateError, ServerError
from microtvm_api.qemu import qemu_argv

OPTIONS = pt.project_type_options()
MAINS = {pt.HOST_DRIVEN: "main.c", pt.STANDALONE: "standalone_main.c", pt.MLPERFTINY: "mlperftiny_main.c"}
# A standalone run under QEMU takes milliseconds to seconds; this only bounds a firmware that hangs.
STANDALONE_TIMEOUT_SEC = 120.0


def project_type(saved: Mapping[str, Any]) -> str:
    kind = str(saved.get("project_type") or pt.HOST_DRIVEN)
    if kind not in pt.PROJECT_TYPES:
        raise ServerError(
            f"the project records an unknown project_type {kind!r}",
            f"generate it again with --project-option project_type=<{'|'.join(pt.PROJECT_TYPES)}>",
        )
    return kind


def firmware_sources(kind: str, root: Path) -> list[Path]:
    """The project type's main loop and app files (board drivers, glue and model come on top)."""
    firmware = root / "firmware"
    sources = [firmware / MAINS[kind], *(firmware / pt.APP_DIR_NAME / name for name in pt.APP_SOURCES[kind])]
    if kind == pt.STANDALONE:
        sources.append(root / "generated" / pt.INPUT_SOURCE)
    return sources


def include_dirs(kind: str) -> list[Path]:
    return [] if kind == pt.HOST_DRIVEN else [Path("firmware") / pt.APP_DIR_NAME]


def defines(kind: str) -> list[str]:
    # Only the RPC server reports per-operator profiles; the other types time whole runs without the hook.
    return ["TVMGEN_PROFILE"] if kind == pt.HOST_DRIVEN else []


def generate(project_dir: Path, model: Mapping[str, Any], options: Mapping[str, Any]) -> None:
    """The project type's generated files (generated/tvmc_app_config.h, standalone_input.c)."""
    for note in pt.write_app_files(project_dir / "generated", model, options):
        print(note, file=sys.stderr)


def refuse_transport(kind: str) -> None:
    """open_transport serves the RPC session, which only host_driven firmware speaks."""
    if kind == pt.STANDALONE:
        raise NotImplementedInTemplateError(
            "this project's firmware is standalone: it runs the model at boot and prints the outputs, it "
            "serves no `tvmc run` session",
            "`tvmc micro flash DIR` runs it and shows what it printed; for tvmc run, create the project "
            "with --project-option project_type=host_driven",
        )
    if kind == pt.MLPERFTINY:
        raise NotImplementedInTemplateError(
            "this project's firmware speaks the MLPerf Tiny UART API, not the `tvmc run` session",
            "drive it with scripts/mlperftiny_runner.py DIR (or the MLPerf Tiny runner on its UART)",
        )


def standalone_argv(board: fw.Board, image: Path, *, icount: bool) -> list[str]:
    """QEMU with the board UART on QEMU's stdout: the firmware prints at boot, before anyone could open a
    pty, so its output is read from the process instead (nothing is lost, nothing waits for a reader)."""
    if board.qemu_machine is None:
        raise ServerError(
            f"board {board.name} has no QEMU machine, so the standalone image cannot run here",
            "flash it to the board with your tools and read its UART (115200 8N1)",
        )
    argv = qemu_argv(board.qemu_machine, image, icount=icount, semihosting=board.semihosting)
    argv[argv.index("-serial") + 1] = "stdio"
    return argv


def count_text(report: pt.StandaloneReport, icount: bool) -> str | None:
    """The ticks as instructions under QEMU -icount shift=0 (1 instruction = 1 ns of virtual time)."""
    if not icount or not report.ticks or not report.timer_hz:
        return None
    return f"{report.ticks * 1e9 / report.timer_hz:,.0f} instructions (QEMU -icount shift=0)"


def run_standalone(
    board: fw.Board,
    project_dir: Path,
    image: Path,
    *,
    icount: bool,
    explain_exit: Callable[[int], tuple[str, str] | None],
) -> pt.StandaloneReport:
    """Boots the image under QEMU until it prints its end line; shows and saves (build/) the report."""
    fw.require_tool(fw.QEMU)
    build = project_dir / "build"
    run = pt.run_until_marker(
        standalone_argv(board, image, icount=icount),
        pt.STANDALONE_END,
        timeout_sec=STANDALONE_TIMEOUT_SEC,
        log_path=build / "standalone_qemu.log",
        explain_exit=explain_exit,
    )
    (build / "standalone_uart.txt").write_text(run.text, encoding="utf-8")
    report = pt.parse_standalone_output(run.text)
    pt.save_report(report, build / pt.STANDALONE_OUTPUT_JSON)
    print("\n".join(report.lines), file=sys.stderr)
    print(pt.format_report(report, count_text(report, icount)), file=sys.stderr)
    if report.status != 0:
        raise ServerError(
            f"the standalone firmware's run failed with status {report.status}",
            f"its UART output is in {build / 'standalone_uart.txt'}",
        )
    return report
