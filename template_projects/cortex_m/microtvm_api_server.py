"""Project API server of the `cortex_m` template: bare-metal Cortex-M firmware built with arm-none-eabi-gcc
and newlib-nano, run under `qemu-system-arm` with the board UART on a pty.

From the template directory it generates projects; inside a generated project it builds, flashes (records
the image QEMU boots) and opens the transport. A project holds this server, `cortex_m_firmware.py` (board
table logic), `boards.yaml`, `firmware/` (startup, linker script, drivers, platform layer, main loop),
`model.tar` + `model/` (the MLF, whose `runtime/` is the C runtime), `generated/` (board header, linker
memory map, model glue), `project_options.json`, and after building `build/firmware.elf`.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # run as a script the folder is on sys.path already; imported, it may not be
    sys.path.insert(0, str(HERE))

import cortex_m_firmware as fw  # noqa: E402
import cortex_m_project_types as ptypes  # noqa: E402
from microtvm_api.commands import run_command  # noqa: E402
from microtvm_api.errors import (  # noqa: E402
    ArchiveError,
    CommandFailedError,
    InvalidOptionError,
    NotImplementedInTemplateError,
    ServerError,
    TransportClosedError,
)
from microtvm_api.image_sizes import SIZES_FILE, measure  # noqa: E402
from microtvm_api.mlf_metadata import load_metadata  # noqa: E402
from microtvm_api.new_project import MODEL_DIR, TemplateHandler, new_project  # noqa: E402
from microtvm_api.options import ProjectOption, load_options, save_options  # noqa: E402
from microtvm_api.qemu import QemuTransport, qemu_argv  # noqa: E402
from microtvm_api.server import TransportTimeouts, main  # noqa: E402

TEMPLATE_FILES = (
    "microtvm_api_server.py", "cortex_m_firmware.py", "cortex_m_project_types.py", "boards.yaml", "firmware"
)
ELF = Path("build") / "firmware.elf"
FLASHED = Path("build") / "flashed.json"
# Static RAM the firmware needs besides the model: the server's frame buffers (main.c) and its state.
RUNTIME_RESERVE_BYTES = 4096

_GEN, _BUILD, _ALL = ("generate_project",), ("generate_project", "build"), ()
# fmt: off
PROJECT_OPTIONS = (
    ProjectOption("board", "str", None, "board to build for (boards.yaml)",
                  choices=tuple(sorted(fw.load_boards())), required=_GEN,
                  optional=("build", "flash", "open_transport")),
    ProjectOption("opt_level", "str", "O2", "optimisation level", choices=("O0", "O1", "O2", "O3", "Os"),
                  optional=_BUILD),
    ProjectOption("compiler_flags", "str", "", "extra arm-none-eabi-gcc flags, split like a shell would",
                  optional=_BUILD, words=True),
    # Below 128 bytes not even an exception frame fits; a stack above that but smaller than the call chain
    # needs (about 1 KiB) is the build's warning (its -fcallgraph-info estimate) and a named fault at run
    # time. More than 16 MiB is no microcontroller's RAM (check_model_fits then checks the board's own).
    ProjectOption("stack_bytes", "int", 8192, "main stack size in bytes", optional=_GEN,
                  minimum=128, maximum=16 * 1024 * 1024),
    ProjectOption("uart_baud", "int", 115200, "UART baud rate (real boards; QEMU ignores it)", optional=_GEN,
                  minimum=300, maximum=12_000_000),
    ProjectOption("qemu_icount", "bool", True, "run QEMU with -icount shift=0: timer ticks are exact "
                  "instruction counts", optional=("open_transport",)),
    ProjectOption("verbose", "bool", False, "show compiler output in full", optional=_ALL),
    *ptypes.OPTIONS,  # project_type, input, mlperftiny_model
)
# fmt: on


class CortexMHandler(TemplateHandler):
    platform_name = "cortex_m"
    project_options = PROJECT_OPTIONS

    def __init__(self, project_dir: Path = HERE) -> None:
        super().__init__(project_dir)
        self._transport: QemuTransport | None = None

    # ---- generate_project ------------------------------------------------------------------------

    def generate_project(
        self,
        model_library_format_path: Path,
        standalone_crt_dir: Path | None,
        project_dir: Path,
        options: Mapping[str, Any],
    ) -> None:
        self.require_template()
        board = fw.load_boards()[options["board"]]
        copies = [(HERE / name, name) for name in TEMPLATE_FILES]
        with new_project(
            model_library_format_path, project_dir, copies, platform="cortex_m", template_dir=HERE
        ) as model_dir:
            self._populate(model_dir, standalone_crt_dir, project_dir, board, options)

    def _populate(
        self, model_dir: Path, crt_dir: Path | None, project_dir: Path, board: fw.Board,
        options: Mapping[str, Any],
    ) -> None:
        metadata_path = model_dir / "metadata.json"
        models = load_metadata(metadata_path)["models"]
        target = models[0].get("target") or {}
        if isinstance(target, dict) and target.get("mcpu") != board.cpu:
            # Runs either way; but kernels specialised to this core (SMLAD on DSP cores) need its -mcpu.
            print(
                f"note: the model was compiled for {models[0].get('target_str', 'c')!r}; {board.name} is a "
                f"{board.cpu}: compile with --target \"c -mcpu={board.cpu}\" for kernels made for it",
                file=sys.stderr,
            )
        fw.check_model_fits(
            board,
            models[0].get("memory", {}),
            stack_bytes=options["stack_bytes"],
            reserve_bytes=RUNTIME_RESERVE_BYTES,
        )
        if not (model_dir / "runtime" / "src").is_dir():
            # An MLF without the runtime (older or hand-made): standalone_crt_dir, else the runtime/ tree
            # beside this template in the tvmc source tree. Without either, build says what is missing.
            for candidate in (crt_dir, HERE.parent.parent / "runtime"):
                if candidate is not None and (Path(candidate) / "src").is_dir():
                    shutil.copytree(candidate, model_dir / "runtime", dirs_exist_ok=True)
                    break
        generated = project_dir / "generated"
        fw.write_board_files(
            board, generated, uart_baud=options["uart_baud"], stack_bytes=options["stack_bytes"]
        )
        from microtvm_api.model_glue import write_model_glue

        write_model_glue(metadata_path, generated / "model_glue.c")
        ptypes.generate(project_dir, models[0], options)
        save_options(project_dir, {k: v for k, v in options.items() if k != "verbose"})

    # ---- build and flash -------------------------------------------------------------------------

    def _project_board(self, options: Mapping[str, Any]) -> fw.Board:
        if self.is_template:
            raise NotImplementedInTemplateError(
                f"{self.project_dir} is the cortex_m template, not a generated project",
                "create a project first: tvmc micro create-project DIR model.tar cortex_m "
                "--project-option board=<board>",
            )
        saved = load_options(self.project_dir).get("board")
        if options.get("board") not in (None, saved):
            raise InvalidOptionError(
                f"this project was generated for board {saved!r}, not {options['board']!r}",
                f"create a new project with --project-option board={options['board']}",
                data={"option": "board"},
            )
        boards = fw.load_boards(self.project_dir / "boards.yaml")
        if not isinstance(saved, str) or saved not in boards:
            raise InvalidOptionError(f"{self.project_dir} records no known board: {saved!r}",
                                     "generate the project again with --project-option board=<board>")
        return boards[saved]

    def build(self, options: Mapping[str, Any]) -> None:
        from microtvm_api.model_glue import runtime_sources

        board = self._project_board(options)
        if not (self.project_dir / MODEL_DIR / "runtime" / "src").is_dir():
            raise ArchiveError(f"{self.project_dir / MODEL_DIR} has no runtime/ (device runtime sources)",
                               "recompile the model with this tvmc (it puts the runtime in the MLF)")
        fw.require_tool(fw.GCC)
        root = self.project_dir
        model = root / MODEL_DIR
        kind = ptypes.project_type(load_options(root))
        sources = [
            *fw.driver_sources(board, root / "firmware"),
            root / "firmware" / "platform_cortex_m.c",
            *ptypes.firmware_sources(kind, root),
            root / "generated" / "model_glue.c",
            *sorted((model / "codegen" / "host" / "src").glob("*.c")),
            *runtime_sources(model / "runtime", platform=None),  # firmware/ is this board's port
        ]
        (root / ELF).parent.mkdir(exist_ok=True)
        (root / ELF).unlink(missing_ok=True)
        (root / SIZES_FILE).unlink(missing_ok=True)  # a failed build leaves no figures of an older image
        for stale in (root / ELF).parent.glob(f"{ELF.name}-*.ci"):
            stale.unlink()
        argv = fw.gcc_command(
            board,
            sources=[s.relative_to(root) for s in sources],
            include_dirs=[
                Path(MODEL_DIR) / "codegen" / "host" / "include",
                Path(MODEL_DIR) / "runtime" / "include",
                *ptypes.include_dirs(kind),
            ],
            generated_dir=Path("generated"),
            firmware_dir=Path("firmware"),
            output=ELF,
            opt_level=options["opt_level"],
            # Call graphs with frame sizes (build/firmware.elf-*.ci) for the stack estimate.
            extra_flags=["-fcallgraph-info=su", *shlex.split(options["compiler_flags"])],
            defines=ptypes.defines(kind),
        )
        try:
            run_command(argv, cwd=root, echo_output=options["verbose"])
        except CommandFailedError as err:
            reason = fw.explain_link_failure(board, str(err.data.get("output_tail", "")))
            if reason is None:
                raise
            raise fw.FirmwareError(reason, "the full linker output is above") from err
        measured = measure(fw.SIZE, ELF, cwd=root, package=fw.APT_PACKAGES.get(fw.SIZE))
        # The laid-out sections stay at the top level too: the form older readers of sizes.json know.
        sizes: dict[str, Any] = {
            name: measured["sections"][name]
            for name in (*fw.FLASH_SECTIONS, *fw.RAM_SECTIONS)
            if name in measured["sections"]
        }
        sizes.update(measured)
        sizes["usage"] = fw.usage(board, sizes)
        stack_bytes = int(load_options(root).get("stack_bytes", 0))
        call_graphs = sorted((root / ELF).parent.glob(f"{ELF.name}-*.ci"))
        estimate = fw.estimate_stack(call_graphs, fpu=bool(board.fpu))
        if estimate is not None:
            sizes["stack"] = {"stack_bytes": stack_bytes, **estimate.to_json()}
        (root / SIZES_FILE).write_text(json.dumps(sizes, indent=2) + "\n")
        print(f"{ELF} for {board.name}:\n{fw.usage_report(board, sizes)}", file=sys.stderr)
        if estimate is not None and estimate.bytes > stack_bytes:
            print(
                f"warning: the main stack is {stack_bytes} bytes (stack_bytes) but the deepest call path "
                f"needs about {estimate.bytes} ({' -> '.join(estimate.path)}); the firmware will fault. "
                f"{_stack_advice(estimate.bytes)}",
                file=sys.stderr,
            )

    def flash(self, options: Mapping[str, Any]) -> None:
        """QEMU boots an image file, so flashing records which build the "device" now holds."""
        board = self._project_board(options)
        elf = self.project_dir / ELF
        if not elf.is_file():
            raise CommandFailedError(f"{elf} does not exist", "build the project first: tvmc micro build DIR")
        image = self.project_dir / "build" / "flashed.elf"
        shutil.copy2(elf, image)
        digest = hashlib.sha256(image.read_bytes()).hexdigest()
        (self.project_dir / FLASHED).write_text(json.dumps({"image": image.name, "sha256": digest}) + "\n")
        print(f"flashed {ELF} ({digest[:12]}) to the emulated {board.name}", file=sys.stderr)
        if ptypes.project_type(load_options(self.project_dir)) == ptypes.pt.STANDALONE:
            # No host session to wait for: run it now, as a board would at reset, and show its UART.
            icount = bool(options.get("qemu_icount", True))
            ptypes.run_standalone(
                board, self.project_dir, image, icount=icount, explain_exit=self._explain_exit
            )

    # ---- transport -------------------------------------------------------------------------------

    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts:
        board = self._project_board(options)
        ptypes.refuse_transport(ptypes.project_type(load_options(self.project_dir)))
        fw.require_tool(fw.QEMU)
        if not (self.project_dir / FLASHED).is_file():
            raise CommandFailedError(
                "nothing has been flashed to the emulated board yet",
                "run: tvmc micro build DIR && tvmc micro flash DIR",
            )
        if board.qemu_machine is None:
            raise ServerError(
                f"board {board.name} has no QEMU machine, so it cannot be emulated",
                "use a board whose boards.yaml row has qemu_machine set",
            )
        self.close_transport()
        image = self.project_dir / "build" / json.loads((self.project_dir / FLASHED).read_text())["image"]
        argv = qemu_argv(
            board.qemu_machine, image, icount=options["qemu_icount"], semihosting=board.semihosting
        )
        self._transport = QemuTransport(
            argv, self.project_dir / "build" / "qemu.log", explain_exit=self._explain_exit
        )
        # The firmware pokes its UART while waiting, so QEMU notices the pty reader within milliseconds.
        return TransportTimeouts(
            session_start_retry_timeout_sec=2.0,
            session_start_timeout_sec=15.0,
            session_established_timeout_sec=120.0,
        )

    def _explain_exit(self, status: int) -> tuple[str, str] | None:
        """QEMU's exit status as the firmware meant it, and what to do (the stack advice for overflows)."""
        reason = fw.describe_exit_status(status)
        if reason is None:
            return None
        if reason.stack_overflow:
            stack_bytes = load_options(self.project_dir).get("stack_bytes")
            try:
                sizes = json.loads((self.project_dir / "build" / "sizes.json").read_text())
                needed = int(sizes["stack"]["estimated_bytes"])
            except (OSError, ValueError, KeyError, TypeError):
                needed = None
            estimate = f"; the build estimated {needed} bytes" if needed else ""
            return (
                f"{reason.text}: the main stack (stack_bytes={stack_bytes}) is too small{estimate}",
                _stack_advice(needed or 2 * int(stack_bytes or 1024)),
            )
        if reason.fault is not None:
            return reason.text, (
                "a bad pointer or an out-of-bounds access in the firmware or the model's code; "
                "the fault is reported in build/qemu.log"
            )
        return reason.text, "the firmware's message is in build/qemu.log"

    def close_transport(self) -> None:
        transport, self._transport = self._transport, None
        if transport is not None:
            transport.close()

    def _open(self) -> QemuTransport:
        if self._transport is None:
            raise TransportClosedError("the transport is not open", "call open_transport first")
        return self._transport

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        return self._open().read(n, timeout_sec)

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        self._open().write(data, timeout_sec)


def _stack_advice(needed: int) -> str:
    suggested = fw.suggested_stack_bytes(needed)
    return (
        f"give it more: recreate the project with --project-option stack_bytes={suggested} "
        "(tvmc micro create-project -f DIR model.tar cortex_m --project-option board=... "
        f"--project-option stack_bytes={suggested}), then build and flash"
    )


if __name__ == "__main__":
    main(CortexMHandler)
