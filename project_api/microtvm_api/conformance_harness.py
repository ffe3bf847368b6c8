"""What a conformance check works with: the server under test (launched, shared, relaunched), the
exceptions a check raises to say how it ended, and the request/expect-an-error helpers checks share.

A check is a function of a `Harness` returning a detail for the table; it raises `CheckFailed`,
`CheckSkipped` or `V018Difference` (or lets a `ProjectAPIError` through, which is a failure) to end
otherwise. The table of checks is `microtvm_api.conformance_checks`; running it is
`microtvm_api.conformance`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microtvm_api.client import ProjectAPIClient, Style
from microtvm_api.errors import ProjectAPIError
from microtvm_api.options import ProjectOption
from microtvm_api.rpc_connection import STDERR_TAIL_MARKER

# server_info_query's parameters where a check needs any proper call.
INFO_PARAMS = {"tvm_version": "0.27.0"}


class CheckFailed(Exception):
    """Raised inside a check with the reason it failed."""


class CheckSkipped(Exception):
    """Raised inside a check that does not apply to this server, or that could not run."""


class V018Difference(Exception):
    """Raised inside a check when a v0.18-style server behaves as v0.18's server.py did."""


@dataclass
class Settings:
    server: Path
    interpreter: str | None
    style: Style
    timeout_sec: float
    mlf: Path | None
    workdir: Path
    options: dict[str, Any] = field(default_factory=dict)  # values for options generate_project requires


class Harness:
    """The server under test and what the checks learnt about it (`info`, from the first check)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.info: dict[str, Any] | None = None
        self._shared: ProjectAPIClient | None = None

    # ---- the server under test ---------------------------------------------------------------------

    def launch(self, path: Path | None = None) -> ProjectAPIClient:
        return ProjectAPIClient.launch(
            path or self.settings.server,
            interpreter=self.settings.interpreter,
            style=self.settings.style,
            stderr_sink=None,
            cwd=tempfile.gettempdir(),  # a server must find its files from its own path, not the cwd
        )

    @contextmanager
    def server(self, path: Path | None = None) -> Iterator[ProjectAPIClient]:
        """The server under test, shared between checks while it stays healthy (a check that kills or
        desynchronises it makes the client stop it, and the next check gets a fresh one); another
        path (a generated project) gets its own server."""
        if path is not None:
            client = self.launch(path)
            try:
                yield client
            finally:
                client.close(timeout_sec=5)
            return
        if self._shared is None or not self._shared.usable:
            if self._shared is not None:
                self._shared.close(timeout_sec=5)
            self._shared = self.launch()
        yield self._shared

    def close(self) -> None:
        if self._shared is not None:
            self._shared.close(timeout_sec=5)
            self._shared = None

    def server_info_query(self, client: ProjectAPIClient) -> Any:
        """A plain server_info_query call, its reply unchecked (the checks judge it)."""
        return client.call("server_info_query", INFO_PARAMS, timeout_sec=self.settings.timeout_sec)

    # ---- judging -----------------------------------------------------------------------------------

    @property
    def v018(self) -> bool:
        """The server looks written for v0.18: its server_info has no `capabilities`."""
        return isinstance(self.info, dict) and "capabilities" not in self.info

    def v018_or_fail(self, v018_text: str, failure: str) -> CheckFailed:
        """For a v0.18-style server a known v0.18 behaviour is a difference, not a failure."""
        if self.v018:
            raise V018Difference(f"v0.18 difference: {v018_text}")
        return CheckFailed(failure)

    def declared(self) -> list[ProjectOption]:
        """The server's option declarations that parse (malformed ones are the declarations check's)."""
        result = []
        for raw in (self.info or {}).get("project_options") or []:
            try:
                result.append(ProjectOption.from_json(raw))
            except ValueError:
                continue
        return result

    # ---- requests expecting an error ---------------------------------------------------------------

    def expect_error(self, client: ProjectAPIClient, line: bytes, code: int, what: str) -> dict[str, Any]:
        client.send_line(line, self.settings.timeout_sec)
        reply = client.read_reply(self.settings.timeout_sec, what)
        error = reply.get("error")
        if not isinstance(error, dict):
            raise CheckFailed(f"{what}: expected error {code}, got a result: {json.dumps(reply)[:120]}")
        if error.get("code") != code:
            raise CheckFailed(
                f"{what}: expected error code {code}, got {error.get('code')} ({error.get('message')})"
            )
        return error

    def call_error(
        self, method: str, params: dict[str, Any], code: int, what: str, must_name: str | None = None
    ) -> str:
        with self.server() as client:
            request = {"jsonrpc": "2.0", "id": 7, "method": method, "params": params}
            error = self.expect_error(client, json.dumps(request).encode(), code, what)
        message = str(error.get("message", ""))
        if must_name and must_name not in message + json.dumps(error.get("data")):
            raise CheckFailed(f"{what}: the error does not name {must_name!r}: {message[:100]}")
        return message[:100]

    def call_raw_error(self, line: bytes, code: int, what: str) -> str:
        """`line` must get error `code`, and the server must go on serving."""
        with self.server() as client:
            error = self.expect_error(client, line, code, what)
            try:
                self.server_info_query(client)
            except ProjectAPIError as err:
                if client.process.poll() == 0:
                    raise self.v018_or_fail(
                        f"the server answered {what} with {code} and then stopped serving (exit code 0), "
                        "as v0.18's server.py did; tvmc-micro servers go on",
                        summary(err.message),
                    ) from None
                raise
        return str(error.get("message", ""))[:80]

    def option_error(self, options: dict[str, Any], what: str, must_name: str) -> str:
        """`build` with bad options must be refused with -32602 before the handler runs. The server under
        test is a temporary copy, so a server that does not check options builds only the copy."""
        with self.server() as client:
            request = {"jsonrpc": "2.0", "id": 7, "method": "build", "params": {"options": options}}
            client.send_line(json.dumps(request).encode(), self.settings.timeout_sec)
            reply = client.read_reply(self.settings.timeout_sec, what)
        error = reply.get("error")
        if isinstance(error, dict) and error.get("code") == -32602:
            message = str(error.get("message", ""))
            if must_name not in message + json.dumps(error.get("data")):
                raise CheckFailed(f"{what}: the error does not name {must_name!r}: {message[:100]}")
            return message[:100]
        got = (
            "a result"
            if "result" in reply
            else f"error {error.get('code') if isinstance(error, dict) else None}"
        )
        raise self.v018_or_fail(
            f"build ran with {what} ({got}): v0.18 servers leave option checks to the client (tvmc checks "
            "them against the declarations before calling)",
            f"{what}: expected error -32602, got {got} (build ran with it)",
        )

    # ---- generating a project ----------------------------------------------------------------------

    def generate_options(self) -> dict[str, Any]:
        options: dict[str, Any] = dict(self.settings.options)
        for option in self.declared():
            if (
                "generate_project" in option.required
                and option.default is None
                and option.name not in options
            ):
                if not option.choices:
                    raise CheckSkipped(
                        f"option {option.name!r} is required by generate_project: "
                        f"pass --project-option {option.name}=VALUE"
                    )
                options[option.name] = option.choices[0]
        return options

    def generate(self, client: ProjectAPIClient, mlf: Path, project: Path, timeout_sec: float) -> None:
        client.server_info = self.info  # so the client drives a v0.18-style server as tvmc does
        client.generate_project(mlf, None, project, self.generate_options(), timeout_sec=timeout_sec)


def summary(text: str) -> str:
    """One line for the table: the message, and the last line the server printed on stderr, if any."""
    head, _, tail = text.partition(STDERR_TAIL_MARKER)
    last = [line.strip() for line in tail.splitlines() if line.strip()][-1:]
    return one_paragraph(head) + (f" | stderr: {last[0]}" if last else "")


def one_paragraph(text: str) -> str:
    return " ".join(text.split())
