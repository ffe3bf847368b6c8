"""A well-behaved test server: a loopback transport, plus options that make it misbehave on demand.

`build` options: `sleep_sec` (hang for that long), `crash` (exit mid-call), `chatter` (print to stdout and
run a child that prints to stdout: must not reach the protocol channel).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microtvm_api.archive import safe_extract
from microtvm_api.errors import IoTimeoutError, TransportClosedError
from microtvm_api.options import ProjectOption
from microtvm_api.server import ProjectAPIHandler, ServerInfo, TransportTimeouts, main

HERE = Path(__file__).resolve().parent


class EchoHandler(ProjectAPIHandler):
    project_options = (
        ProjectOption(
            "board",
            "str",
            None,
            "target board",
            choices=("alpha", "beta"),
            required=("build",),
            optional=("generate_project",),
        ),
        ProjectOption("verbose", "bool", False, "log more", optional=("build", "flash")),
        ProjectOption("sleep_sec", "float", 0.0, "hang this long in build", optional=("build",)),
        ProjectOption("crash", "bool", False, "exit(3) in the middle of build", optional=("build",)),
        ProjectOption("chatter", "bool", False, "print to stdout during build", optional=("build",)),
        ProjectOption("retries", "int", 2, "an integer option", optional=("flash",)),
    )

    def __init__(self) -> None:
        self.pending = bytearray()
        self.open = False

    def server_info_query(self, tvm_version: str) -> ServerInfo:
        print(f"server_info_query from TVM {tvm_version}")  # stdout is stderr here: must be harmless
        marker = HERE / "generated.marker"
        mlf = marker.read_text() if marker.exists() else None
        return ServerInfo("echo", mlf is None, mlf, self.project_options, capabilities=("transport",))

    def generate_project(
        self,
        model_library_format_path: Path,
        standalone_crt_dir: Path | None,
        project_dir: Path,
        options: Mapping[str, Any],
    ) -> None:
        project_dir.mkdir(parents=True)
        safe_extract(model_library_format_path, project_dir / "model")
        (project_dir / "options.txt").write_text(repr(sorted(options.items())))
        (project_dir / "microtvm_api_server.py").write_bytes(Path(__file__).read_bytes())
        (project_dir / "generated.marker").write_text(str(model_library_format_path))

    def build(self, options: Mapping[str, Any]) -> dict[str, Any]:
        if options["chatter"]:
            print("compiling... (print)")
            sys.stdout.flush()
            os.write(1, b"raw write to fd 1\n")
            subprocess.run(["echo", "child tool output"], check=True)
        if options["crash"]:
            sys.stderr.write("about to crash\n")
            sys.stderr.flush()
            os._exit(3)
        time.sleep(options["sleep_sec"])
        return dict(options)

    def flash(self, options: Mapping[str, Any]) -> dict[str, Any]:
        return dict(options)

    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts:
        self.open = True
        return TransportTimeouts(1.0, 5.0, 10.0)

    def close_transport(self) -> None:
        self.open = False

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        if not self.open:
            raise TransportClosedError("the transport is not open", "call open_transport first")
        if not self.pending:
            time.sleep(min(timeout_sec or 0.0, 0.05))
            raise IoTimeoutError(f"no data within {timeout_sec} s", "write something first")
        data, self.pending = bytes(self.pending[:n]), self.pending[n:]
        return data

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        if not self.open:
            raise TransportClosedError("the transport is not open", "call open_transport first")
        self.pending += data


if __name__ == "__main__":
    main(EchoHandler)
