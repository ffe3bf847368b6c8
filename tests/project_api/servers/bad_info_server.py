"""Broken on purpose: built on microtvm_api, but its server_info_query reply is wrong.

It claims protocol version 2, calls `is_template` a string and declares an option of an unknown type
whose default is not among its choices (it bypasses ProjectOption, which would refuse that).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from microtvm_api.server import ProjectAPIHandler, TransportTimeouts, main


class BadInfoHandler(ProjectAPIHandler):
    def server_info_query(self, tvm_version: str) -> Any:
        return {
            "platform_name": "bad_info",
            "is_template": "yes",
            "model_library_format_path": None,
            "protocol_version": 2,
            "project_options": [
                {
                    "name": "board",
                    "type": "enum",
                    "default": "x",
                    "choices": ["a", "b"],
                    "help": "",
                    "required": ["build"],
                    "optional": None,
                },
                {
                    "name": "board",
                    "type": "str",
                    "default": None,
                    "help": "declared twice",
                    "required": None,
                    "optional": ["deploy"],
                },
            ],
        }

    def generate_project(
        self,
        model_library_format_path: Path,
        standalone_crt_dir: Path | None,
        project_dir: Path,
        options: Mapping[str, Any],
    ) -> None:
        raise NotImplementedError

    def build(self, options: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def flash(self, options: Mapping[str, Any]) -> None:
        raise NotImplementedError

    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts:
        raise NotImplementedError

    def close_transport(self) -> None:
        raise NotImplementedError

    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        raise NotImplementedError

    def write_transport(self, data: bytes, timeout_sec: float | None) -> None:
        raise NotImplementedError


if __name__ == "__main__":
    main(BadInfoHandler)
