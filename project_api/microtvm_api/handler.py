"""The handler contract a template server implements: `ProjectAPIHandler` and the result types of its
methods. Imported by `dispatch` (which calls a handler) and `server` (which serves one); it imports neither,
so the import graph runs one way: server -> dispatch -> handler.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from microtvm_api.options import ProjectOption
from microtvm_api.protocol import PROTOCOL_VERSION


@dataclass(frozen=True)
class ServerInfo:
    """The reply to `server_info_query`."""

    platform_name: str
    is_template: bool
    model_library_format_path: str | None
    project_options: Sequence[ProjectOption]
    protocol_version: int = PROTOCOL_VERSION
    # Additive: what this server implements beyond server_info_query (e.g. "build", "flash", "transport").
    capabilities: Sequence[str] = field(default=())

    def to_json(self) -> dict[str, Any]:
        return {
            "platform_name": self.platform_name,
            "is_template": self.is_template,
            "model_library_format_path": self.model_library_format_path,
            "project_options": [o.to_json() for o in self.project_options],
            "protocol_version": self.protocol_version,
            "capabilities": list(self.capabilities),
        }


@dataclass(frozen=True)
class TransportTimeouts:
    """How long the host session should wait on this transport (the reply to `open_transport`)."""

    session_start_retry_timeout_sec: float
    session_start_timeout_sec: float
    session_established_timeout_sec: float


class ProjectAPIHandler(abc.ABC):
    """What a template server implements. Parameters arrive typed and checked; options arrive resolved.

    Raise `microtvm_api.errors` exceptions (message + hint) for failures the user should read; anything
    else is reported as a server error with its type name and traceback.
    """

    # Declared once; server_info_query reports them and the dispatcher resolves `options` against them.
    # A handler that declares them only in the ServerInfo it returns (the v0.18 way) gets those instead.
    project_options: Sequence[ProjectOption] = ()
    # False: `options` reach the handler as the client sent them, unconverted and unchecked (what v0.18
    # handlers expect; microtvm_api.compat.v018 sets it).
    resolves_options: ClassVar[bool] = True

    def declared_options(self) -> Sequence[ProjectOption]:
        return self.project_options

    def check_request(self, method: str, params: Any) -> None:
        """Called with a request's method and raw params before they are bound to the method; raise
        InvalidParamsError to refuse them. Nothing to check by default (compat.v018 words its errors as
        v0.18 did)."""
        return None

    def saved_option_values(self) -> Mapping[str, Any]:
        """Option values stored in a generated project (defaults for this project); none by default."""
        return {}

    @abc.abstractmethod
    def server_info_query(self, tvm_version: str) -> ServerInfo: ...

    @abc.abstractmethod
    def generate_project(
        self,
        model_library_format_path: Path,
        standalone_crt_dir: Path | None,
        project_dir: Path,
        options: Mapping[str, Any],
    ) -> None: ...

    @abc.abstractmethod
    def build(self, options: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def flash(self, options: Mapping[str, Any]) -> None: ...

    @abc.abstractmethod
    def open_transport(self, options: Mapping[str, Any]) -> TransportTimeouts: ...

    @abc.abstractmethod
    def close_transport(self) -> None: ...

    @abc.abstractmethod
    def read_transport(self, n: int, timeout_sec: float | None) -> bytes:
        """Up to `n` bytes (at least 1); IoTimeoutError at the deadline, TransportClosedError at EOF."""

    @abc.abstractmethod
    def write_transport(self, data: bytes, timeout_sec: float | None) -> None: ...
