"""A server on this library that declares its options only in the ServerInfo it returns (the v0.18 way),
not in `project_options`: the dispatcher must check options against those. build returns what it got."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microtvm_api.handler import ProjectAPIHandler, ServerInfo, TransportTimeouts
from microtvm_api.options import ProjectOption
from microtvm_api.server import main

OPTIONS = (
    ProjectOption("board", "str", "alpha", "target board", choices=("alpha", "beta"), optional=("build",)),
    ProjectOption("jobs", "int", 1, "parallel jobs", optional=("build",)),
)


class InfoOptionsHandler(ProjectAPIHandler):
    def server_info_query(self, tvm_version: str) -> ServerInfo:
        return ServerInfo("info_options", False, None, OPTIONS, capabilities=("build",))

    def generate_project(
        self,
        model_library_format_path: Path,
        standalone_crt_dir: Path | None,
        project_dir: Path,
        options: Mapping[str, Any],
    ) -> None:
        raise NotImplementedError

    def build(self, options: Mapping[str, Any]) -> dict[str, Any]:  # type: ignore[override]
        return dict(options)

    def flash(self, options: Mapping[str, Any]) -> None:
        return None

    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts:
        return TransportTimeouts(0, 0, 0)

    def close_transport(self) -> None:
        return None

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        return b"x"

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        return None


if __name__ == "__main__":
    main(InfoOptionsHandler)
