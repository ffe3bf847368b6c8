"""Project API server of the `zephyr` template: a Zephyr 4.x application serving one model over the device
RPC protocol. generate_project lays out the app with the MLF; build runs `west build`; flash runs
`west flash` (emulated boards: the image is recorded); the transport is the board's USB serial port, or the
UART pty of QEMU / native_sim. Board facts live in boards.yaml, outside-world calls in zephyr_io.Tools.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microtvm_api import project_types as pt
from microtvm_api.errors import (
    NotImplementedInTemplateError,
    ServerError,
    ToolNotFoundError,
    TransportClosedError,
)
from microtvm_api.image_sizes import write_sizes
from microtvm_api.mlf_metadata import load_metadata
from microtvm_api.new_project import MODEL_DIR, TemplateHandler, new_project
from microtvm_api.options import ProjectOption, save_options
from microtvm_api.server import TransportTimeouts, main

# Helper modules beside this file (the script's folder is on sys.path when Python runs it).
from zephyr_boards import Board, BoardError, choose_port, console_baud, load_boards
from zephyr_io import Tools
from zephyr_project import (
    MAINS,
    app_sources_cmake,
    check_fits,
    emulator_argv,
    prj_conf,
    standalone_argv,
    toolchain_setup,
    write_runtime_list,
    zephyr_version,
)

HERE = Path(__file__).resolve().parent
APP_DIR = HERE / "app"
# Copied into each project: a generated project runs its own server (build, flash, transport).
SERVER_FILES = ("microtvm_api_server.py", "zephyr_boards.py", "zephyr_io.py", "zephyr_project.py",
                "boards.yaml")
BUILD_DIR, FLASHED_DIR = "build", "flashed"
IMAGES = {"qemu": "zephyr.elf", "native": "zephyr.exe"}  # what an emulated board boots, in build/zephyr
_GEN, _BUILD, _FLASH, _OPEN = "generate_project", "build", "flash", "open_transport"

PROJECT_OPTIONS = (
    ProjectOption("board", "str", help="Zephyr board (a boards.yaml name, e.g. qemu_cortex_m3, native_sim)",
                  required=(_GEN,), optional=(_BUILD, _FLASH, _OPEN)),
    ProjectOption("zephyr_base", "str", help="path to the Zephyr tree (default: $ZEPHYR_BASE)",
                  optional=(_GEN, _BUILD, _FLASH)),
    ProjectOption("west_cmd", "str", default="west",
                  help="how to run west, split like a shell would (e.g. '/venv/bin/python3 -m west')",
                  optional=(_GEN, _BUILD, _FLASH), words=True),
    ProjectOption("zephyr_toolchain_variant", "str",
                  help="ZEPHYR_TOOLCHAIN_VARIANT (default: $ZEPHYR_TOOLCHAIN_VARIANT, else the board's)",
                  optional=(_GEN, _BUILD)),
    ProjectOption("config_main_stack_size", "int", default=4096, help="CONFIG_MAIN_STACK_SIZE in bytes",
                  optional=(_GEN,), minimum=512, maximum=16 * 1024 * 1024),
    ProjectOption("west_runner", "str", help="west flash runner (default: the board's in boards.yaml)",
                  optional=(_GEN, _FLASH)),
    ProjectOption("serial_number", "str", help="serial number of the board's debug probe (several boards)",
                  optional=(_GEN, _FLASH, _OPEN)),
    ProjectOption("serial_port", "str", help="serial device to use instead of finding it by USB id",
                  optional=(_GEN, _OPEN)),
    ProjectOption("baud_rate", "int", help="UART baud rate (default: the console's current-speed in the "
                  "built devicetree)", optional=(_GEN, _OPEN), minimum=300, maximum=12_000_000),
    ProjectOption("verbose", "bool", default=False, help="run west verbosely", optional=(_BUILD, _FLASH)),
    *pt.project_type_options(),  # project_type, input, mlperftiny_model (shared with cortex_m)
)
# The portable app sources of the standalone and mlperftiny firmware live in the cortex_m template.
APPS_DIR = HERE.parent / "cortex_m" / "firmware" / pt.APP_DIR_NAME
STANDALONE_TIMEOUT_SEC = 120.0
# Timeouts the host session uses: an emulator is local and fast to answer; a board may be mid-reset.
TIMEOUTS = {
    "qemu": TransportTimeouts(2.0, 10.0, 30.0),
    "native": TransportTimeouts(2.0, 10.0, 30.0),
    "serial": TransportTimeouts(5.0, 20.0, 60.0),
}


class ZephyrHandler(TemplateHandler):
    platform_name = "zephyr"
    project_options = PROJECT_OPTIONS

    def __init__(self, tools: Tools | None = None, project_dir: Path = HERE) -> None:
        super().__init__(project_dir)
        self.tools = tools or Tools()
        self.transport: Any = None

    # ---- generate_project --------------------------------------------------------------------------------

    def generate_project(self, model_library_format_path: Path, standalone_crt_dir: Path | None,
                         project_dir: Path, options: Mapping[str, Any]) -> None:
        # The MLF carries its own runtime/ sources, so standalone_crt_dir is not needed.
        self.require_template()
        from microtvm_api.model_glue import runtime_sources, write_model_glue

        board = load_boards().get(options["board"])
        kind = pt.check_project_type_options(options)
        copies = [(APP_DIR / "src", "src"), (APP_DIR / "CMakeLists.txt", "CMakeLists.txt")]
        if kind != pt.HOST_DRIVEN:
            copies.append((APPS_DIR, f"src/{pt.APP_DIR_NAME}"))
        copies += [(HERE / name, name) for name in SERVER_FILES]
        with new_project(model_library_format_path, project_dir, copies, platform="zephyr",
                         template_dir=HERE) as model_dir:
            write_model_glue(model_dir / "metadata.json", project_dir / "src" / "model_glue.c")
            write_runtime_list(project_dir, runtime_sources(model_dir / "runtime", platform=None))
            (project_dir / "prj.conf").write_text(prj_conf(APP_DIR, board, options))
            for name in set(MAINS.values()) - {MAINS[kind]}:
                (project_dir / "src" / name).unlink()
            (project_dir / "app_sources.cmake").write_text(app_sources_cmake(kind))
            model = load_metadata(model_dir / "metadata.json")["models"][0]
            for note in pt.write_app_files(project_dir / "src", model, options):
                print(note, file=sys.stderr)
            save_options(project_dir, {k: v for k, v in options.items() if v is not None})

    # ---- build and flash ---------------------------------------------------------------------------------

    def _board(self, options: Mapping[str, Any]) -> Board:
        generated_for = self.saved_option_values().get("board")
        if generated_for and options["board"] != generated_for:
            # prj.conf and the flashed image are per board: silently building another would mislead.
            raise BoardError(f"this project was generated for {generated_for}, not {options['board']}",
                             f"create another project for {options['board']} (tvmc micro create-project)")
        return load_boards(self.project_dir / "boards.yaml").get(options["board"])

    def _west(self, options: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
        """The west argv prefix and the environment it runs in (ZEPHYR_BASE checked)."""
        west = shlex.split(options.get("west_cmd") or "west")
        if not west or shutil.which(west[0]) is None:
            raise ToolNotFoundError(
                f"west not found (west_cmd={options.get('west_cmd')!r})",
                "install it in a Python >= 3.12.1 venv (`pip install west`) and put the venv on PATH, "
                "or pass --project-option west_cmd=/path/to/west",
            )
        env = dict(os.environ)
        base = options.get("zephyr_base") or env.get("ZEPHYR_BASE")
        if not base:
            raise ServerError("ZEPHYR_BASE is not set: no Zephyr tree to build with",
                              "export ZEPHYR_BASE=/path/to/zephyrproject/zephyr, "
                              "or pass --project-option zephyr_base=/path/to/zephyr")
        major, version = zephyr_version(Path(base))
        if major < 4:
            # The app uses Zephyr 4 APIs (board qualifiers, DEVICE_API): an older tree fails deep in CMake.
            raise ServerError(f"ZEPHYR_BASE={base} is Zephyr {version}; this template needs Zephyr 4.x "
                              "(tested with 4.2)", "point ZEPHYR_BASE at a Zephyr 4.x tree")
        env["ZEPHYR_BASE"] = str(Path(base).resolve())
        return ([*west, "-v"] if options.get("verbose") else west), env

    def build(self, options: Mapping[str, Any]) -> None:
        self._require_project("build")
        board = self._board(options)
        west, env = self._west(options)
        metadata = load_metadata(self.project_dir / MODEL_DIR / "metadata.json")
        check_fits(board, metadata, int(self.saved_option_values().get("config_main_stack_size", 0)))
        variant = options.get("zephyr_toolchain_variant") or env.get("ZEPHYR_TOOLCHAIN_VARIANT")
        cmake_args = toolchain_setup(variant or board.toolchain, env)
        # --pristine auto: west starts the build directory afresh when its cache no longer matches.
        project, build_dir = str(self.project_dir), str(self.project_dir / BUILD_DIR)
        argv = [*west, "build", "-b", board.name, "-d", build_dir, "--pristine", "auto", project]
        argv += ["--", *cmake_args] if cmake_args else []
        self.tools.run(argv, cwd=self.project_dir, env=env)
        # The size tool of the toolchain that built the image (the Zephyr SDK's own binutils are not on
        # PATH: such a build says so and writes no sizes).
        size_tool = "size" if board.toolchain == "host" else "arm-none-eabi-size"
        write_sizes(size_tool, Path(BUILD_DIR) / "zephyr" / "zephyr.elf", project_dir=self.project_dir,
                    package="binutils" if size_tool == "size" else "binutils-arm-none-eabi")

    def flash(self, options: Mapping[str, Any]) -> None:
        self._require_project("flash")
        board = self._board(options)
        if board.transport in IMAGES:
            # Emulated: "flashing" keeps a copy of the image, which open_transport then boots.
            image = self._built_image(board)
            (self.project_dir / FLASHED_DIR).mkdir(exist_ok=True)
            shutil.copy2(image, self.project_dir / FLASHED_DIR / image.name)
            record = {"board": board.name, "image": image.name,
                      "sha256": hashlib.sha256(image.read_bytes()).hexdigest()}
            (self.project_dir / FLASHED_DIR / "flash.json").write_text(json.dumps(record, indent=2) + "\n")
            if self._project_type() == pt.STANDALONE:
                self._run_standalone(board, self.project_dir / FLASHED_DIR / image.name)
            return
        west, env = self._west(options)
        runner = options.get("west_runner") or board.runner
        argv = [*west, "flash", "-d", str(self.project_dir / BUILD_DIR), "--runner", str(runner)]
        if options.get("serial_number"):
            flag = load_boards(self.project_dir / "boards.yaml").serial_flags.get(str(runner))
            if not flag:
                raise BoardError(f"west runner {runner!r} cannot select a probe by serial number",
                                 "use another runner (--project-option west_runner=...) or unplug the other "
                                 "boards")
            argv += [flag, options["serial_number"]]
        self.tools.run(argv, cwd=self.project_dir, env=env)

    def _project_type(self) -> str:
        return str(self.saved_option_values().get("project_type") or pt.HOST_DRIVEN)

    def _run_standalone(self, board: Board, image: Path) -> None:
        """Boot the standalone image in its emulator until it prints its end line; show what it printed."""
        log = self.project_dir / FLASHED_DIR / "standalone.log"
        run = self.tools.run_until_marker(standalone_argv(board, image), pt.STANDALONE_END,
                                          timeout_sec=STANDALONE_TIMEOUT_SEC, log_path=log)
        report = pt.parse_standalone_output(run.text)
        pt.save_report(report, self.project_dir / FLASHED_DIR / pt.STANDALONE_OUTPUT_JSON)
        print("\n".join(report.lines) + "\n" + pt.format_report(report), file=sys.stderr)
        if report.status != 0:
            raise ServerError(f"the standalone firmware's run failed with status {report.status}",
                              f"the emulator's messages are in {log}")

    def _built_image(self, board: Board) -> Path:
        image = self.project_dir / BUILD_DIR / "zephyr" / IMAGES[board.transport]
        if not image.is_file():
            raise ServerError(f"no firmware image {image}", "build the project first (tvmc micro build)")
        return image

    def _require_project(self, method: str) -> None:
        if self.is_template:
            raise ServerError(f"{method} needs a generated project, this is the template directory",
                              "create a project first: tvmc micro create-project DIR MODEL.tar zephyr")

    # ---- transport ---------------------------------------------------------------------------------------

    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts:
        self._require_project("open_transport")
        board = self._board(options)
        if self._project_type() != pt.HOST_DRIVEN:
            raise NotImplementedInTemplateError(
                f"this project's firmware is {self._project_type()}: it serves no `tvmc run` session",
                "standalone: `tvmc micro flash DIR` runs it and shows its outputs (a board: read its UART); "
                "mlperftiny: drive its UART with scripts/mlperftiny_runner.py or the MLPerf Tiny runner")
        self.close_transport()
        if board.transport in IMAGES:
            image = self.project_dir / FLASHED_DIR / IMAGES[board.transport]
            if not image.is_file():
                raise ServerError(f"nothing flashed yet for {board.name} ({image} is missing)",
                                  "flash the project first: tvmc micro flash DIR")
            log = self.project_dir / FLASHED_DIR / f"{board.transport}.log"
            self.transport = self.tools.start_emulator(board.transport, emulator_argv(board, image), log)
        else:
            device = options.get("serial_port") or self._find_port(board, options.get("serial_number"))
            baud = options.get("baud_rate") or self._baud()
            self.transport = self.tools.open_serial(device, baud)
        return TIMEOUTS[board.transport]

    def _find_port(self, board: Board, serial_number: str | None) -> str:
        return choose_port(self.tools.list_serial_ports(), board, serial_number)

    def _baud(self) -> int:
        dts = self.project_dir / BUILD_DIR / "zephyr" / "zephyr.dts"
        if not dts.is_file():
            raise ServerError(f"no built devicetree {dts} to read the baud rate from",
                              "build the project first, or pass --project-option baud_rate=N")
        return console_baud(dts.read_text())

    def close_transport(self) -> None:
        transport, self.transport = self.transport, None
        if transport is not None:
            transport.close()

    def _open(self) -> Any:
        if self.transport is None:
            raise TransportClosedError("the transport is not open", "call open_transport first")
        return self.transport

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        return bytes(self._open().read(n, timeout_sec))

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        self._open().write(data, timeout_sec)


if __name__ == "__main__":
    main(ZephyrHandler)
