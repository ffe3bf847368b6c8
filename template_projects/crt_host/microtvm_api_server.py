"""Project API server of the `crt_host` template: the model as a host executable, talking over its pipes.

In the template directory it generates projects; in a generated project it builds, flashes and opens the
transport. The generated project holds: this server, the template's `src/` (the firmware main loop),
`model.tar` (the MLF as given), `model/` (the MLF extracted) and `project_options.json` (the options the
project was created with, used as defaults by later calls). `build` compiles src/ + the generated model
glue + the MLF's runtime/ and codegen/ into `build/firmware` with the system C compiler; `flash` copies it
to `flashed/firmware` (the "device"); `open_transport` starts that image with its stdin/stdout as the
transport.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microtvm_api.commands import run_command
from microtvm_api.errors import NotImplementedInTemplateError, ServerError, TransportClosedError
from microtvm_api.image_sizes import write_sizes
from microtvm_api.new_project import MODEL_DIR, TemplateHandler, new_project
from microtvm_api.options import ProjectOption, save_options
from microtvm_api.server import TransportTimeouts, main
from microtvm_api.transport import deadline_after, fd_read, fd_write

HERE = Path(__file__).resolve().parent
# What generate_project copies from the template into a new project (when present).
TEMPLATE_FILES = ("microtvm_api_server.py", "src")

_BUILD_METHODS = ("generate_project", "build")
PROJECT_OPTIONS = (
    ProjectOption("verbose", "bool", False, "show every command and its output", optional=_BUILD_METHODS),
    ProjectOption("cc", "str", "gcc", "the host C compiler to build with", optional=_BUILD_METHODS),
    ProjectOption(
        "opt_level",
        "str",
        "O2",
        "optimisation level",
        choices=("O0", "O1", "O2", "O3", "Os"),
        optional=_BUILD_METHODS,
    ),
    ProjectOption(
        "cflags",
        "str",
        "",
        "extra compiler flags, split like a shell would",
        optional=_BUILD_METHODS,
        words=True,
    ),
    # v0.18's crt options, accepted so its command lines run.
    ProjectOption(
        "workspace_size_bytes",
        "int",
        None,
        "v0.18's CRT workspace size: accepted and not needed (tvmc compile sizes the arena exactly)",
        optional=("generate_project",),
        minimum=0,
    ),
    ProjectOption(
        "project_type",
        "str",
        "host_driven",
        "v0.18's project type: crt_host projects are host-driven",
        choices=("host_driven",),
        optional=("generate_project",),
    ),
)


class CrtHostHandler(TemplateHandler):
    platform_name = "crt_host"
    project_options = PROJECT_OPTIONS

    def __init__(self, project_dir: Path = HERE) -> None:
        super().__init__(project_dir)
        self.firmware: subprocess.Popen[bytes] | None = None

    def generate_project(
        self,
        model_library_format_path: Path,
        standalone_crt_dir: Path | None,
        project_dir: Path,
        options: Mapping[str, Any],
    ) -> None:
        # The C runtime comes inside the MLF (runtime/), so standalone_crt_dir is not needed.
        self.require_template()
        if options.get("workspace_size_bytes") is not None:
            print(
                f"note: workspace_size_bytes={options['workspace_size_bytes']} is not needed: the model's "
                "arena is sized exactly by tvmc compile (the MLF's metadata.json, memory.arena_bytes)",
                file=sys.stderr,
            )
        copies = [(HERE / name, name) for name in TEMPLATE_FILES if (HERE / name).exists()]
        with new_project(
            model_library_format_path, project_dir, copies, platform="crt_host", template_dir=HERE
        ):
            save_options(project_dir, options)

    def build(self, options: Mapping[str, Any]) -> None:
        from microtvm_api.model_glue import runtime_sources, write_model_glue

        model = self._project_path(MODEL_DIR, "build")
        out = self.project_dir / "build"
        out.mkdir(exist_ok=True)
        glue = write_model_glue(model / "metadata.json", out / "model_glue.c")
        argv = [
            options["cc"],
            "-std=c99",
            f"-{options['opt_level']}",
            "-Wall",
            "-DTVMGEN_PROFILE",
            f"-I{model / 'runtime' / 'include'}",
            f"-I{model / 'codegen' / 'host' / 'include'}",
            *shlex.split(options["cflags"]),  # declared words=True: checked to split; never run by a shell
            *sorted(map(str, (self.project_dir / "src").glob("*.c"))),
            *map(str, runtime_sources(model / "runtime", "host")),
            str(glue),
            *sorted(map(str, (model / "codegen" / "host" / "src").glob("*.c"))),
            "-lm",
            "-o",
            str(out / "firmware"),
        ]
        package = {"gcc": "gcc", "clang": "clang", "cc": "gcc"}.get(Path(options["cc"]).name)
        run_command(argv, cwd=self.project_dir, package=package, echo_output=True)
        self._write_sizes()

    def _write_sizes(self) -> None:
        """build/sizes.json from binutils' `size` (a host program: sections only, no board, no stack
        estimate); without `size` on PATH the build still succeeds and says why there are no sizes."""
        write_sizes("size", Path("build") / "firmware", project_dir=self.project_dir, package="binutils")

    def flash(self, options: Mapping[str, Any]) -> None:
        image = self._project_path(
            "build/firmware", "flash", hint="run build first: tvmc micro build PROJECT"
        )
        target = self.project_dir / "flashed"
        target.mkdir(exist_ok=True)
        shutil.copy2(image, target / "firmware")
        print(f"flashed {image} -> {target / 'firmware'}", file=sys.stderr)

    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts:
        image = self._project_path(
            "flashed/firmware", "open_transport", hint="flash the project first: tvmc micro flash PROJECT"
        )
        self.close_transport()
        # stderr is inherited: the firmware's diagnostics reach the client's log, never the channel.
        self.firmware = subprocess.Popen(
            [str(image)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=self.project_dir, bufsize=0
        )
        return TransportTimeouts(
            session_start_retry_timeout_sec=1.0,
            session_start_timeout_sec=10.0,
            session_established_timeout_sec=60.0,
        )

    def close_transport(self) -> None:
        firmware, self.firmware = self.firmware, None
        if firmware is None:
            return
        for stream in (firmware.stdin, firmware.stdout):
            if stream is not None:
                stream.close()
        try:
            firmware.wait(timeout=5)
        except subprocess.TimeoutExpired:
            firmware.kill()
            firmware.wait()

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        stdout = self._running().stdout
        assert stdout is not None
        try:
            return fd_read(stdout.fileno(), n, deadline_after(timeout_sec))
        except TransportClosedError:
            raise self._exited() from None

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        stdin = self._running().stdin
        assert stdin is not None
        try:
            fd_write(stdin.fileno(), data, deadline_after(timeout_sec))
        except TransportClosedError:
            raise self._exited() from None

    def _running(self) -> subprocess.Popen[bytes]:
        if self.firmware is None:
            raise TransportClosedError("the crt_host transport is not open", "call open_transport first")
        return self.firmware

    def _exited(self) -> TransportClosedError:
        assert self.firmware is not None
        code = self.firmware.poll()
        return TransportClosedError(
            f"the crt_host firmware closed its output (exit code {code})",
            "its stderr is shown above; open the transport again to restart it",
        )

    def _project_path(self, relative: str, method: str, hint: str | None = None) -> Path:
        if self.is_template:
            raise NotImplementedInTemplateError(
                f"{method} runs in a generated project, not in the crt_host template",
                "create a project first: tvmc micro create-project DIR model.tar crt_host",
            )
        path = self.project_dir / relative
        if not path.exists():
            raise ServerError(f"{path} does not exist", hint or "regenerate the project")
        return path


if __name__ == "__main__":
    main(CrtHostHandler)
