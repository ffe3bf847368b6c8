"""Conformance checker for Project API servers: ``python -m microtvm_api.conformance SERVER.py``.

Runs a server as `tvmc` would and checks what `tvmc` relies on: the server_info_query reply and its
protocol version, the error codes for malformed JSON / bad requests / unknown methods / bad params, that
the server keeps serving after a parse error, stdout hygiene (nothing but replies on the protocol channel,
fd 1 not being that channel), option declarations and their enforcement, and template-versus-generated
project behaviour (a template generates a project whose server reports itself generated; an MLF with
members escaping the project is refused). Prints a table; exits 1 if any check fails. Each group of checks
gets a fresh server, so one failure does not hide the others.

No side effects: the server's directory is copied to a temporary directory and every check runs on the
copy (calls such as `build` with a bad option reach the handler of a server that does not check options;
a template is never built in place). A check that could not run says SKIP with the reason, never PASS.
Servers written for v0.18 (no `capabilities` in server_info) are recognised: where they behave as
v0.18's server.py did (it stopped serving after unparseable JSON, left option checks to the client, ...)
the row says V0.18 with the difference, which does not fail the run.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microtvm_api.client import MLF_LAYOUT_DIFFERENCE, ProjectAPIClient, Style, find_server
from microtvm_api.conformance_args import add_arguments
from microtvm_api.errors import ProjectAPIError, ServerNotFoundError
from microtvm_api.options import ProjectOption, parse_key_values
from microtvm_api.protocol import PROTOCOL_VERSION, protocol_major

PASS, FAIL, SKIP, V018 = "PASS", "FAIL", "SKIP", "V0.18"
# Copying the server's directory (to run the checks on the copy) is refused beyond these.
MAX_COPY_FILES = 20_000
MAX_COPY_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    detail: str = ""


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


class Checker:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.results: list[CheckResult] = []
        self.info: dict[str, Any] | None = None
        self._shared: ProjectAPIClient | None = None
        self.generate_failure: str | None = None

    # ---- plumbing ----------------------------------------------------------------------------------

    def launch(self, path: Path | None = None) -> ProjectAPIClient:
        return ProjectAPIClient.launch(
            path or self.s.server,
            interpreter=self.s.interpreter,
            style=self.s.style,
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

    @property
    def v018(self) -> bool:
        """The server looks written for v0.18: its server_info has no `capabilities`."""
        return isinstance(self.info, dict) and "capabilities" not in self.info

    def v018_or_fail(self, v018_text: str, failure: str) -> CheckFailed:
        """For a v0.18-style server a known v0.18 behaviour is a difference, not a failure."""
        if self.v018:
            raise V018Difference(f"v0.18 difference: {v018_text}")
        return CheckFailed(failure)

    def check(self, name: str, body: Callable[[], str | None]) -> bool:
        try:
            detail = body() or ""
        except CheckSkipped as skip:
            self.results.append(CheckResult(name, SKIP, str(skip)))
            return True
        except V018Difference as diff:
            self.results.append(CheckResult(name, V018, str(diff)))
            return True
        except CheckFailed as fail:
            self.results.append(CheckResult(name, FAIL, str(fail)))
            return False
        except ProjectAPIError as err:
            self.results.append(CheckResult(name, FAIL, _summary(err.message)))
            return False
        self.results.append(CheckResult(name, PASS, detail))
        return True

    def expect_error(self, client: ProjectAPIClient, line: bytes, code: int, what: str) -> dict[str, Any]:
        client.send_line(line, self.s.timeout_sec)
        reply = client.read_reply(self.s.timeout_sec, what)
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

    # ---- the checks --------------------------------------------------------------------------------

    def run(self) -> list[CheckResult]:
        try:
            return self._run()
        finally:
            self.close()

    def _run(self) -> list[CheckResult]:
        if not self.check("starts and answers server_info_query", self.check_starts):
            return self.results
        if self.v018:
            self.results.append(
                CheckResult(
                    "v0.18-style server",
                    V018,
                    "server_info has no capabilities: tvmc drives it as v0.18's tvmc did (every declared "
                    "option sent, an empty standalone_crt_dir, 0 timeouts read as no limit)",
                )
            )
        self.check("server_info_query reply shape", self.check_info_shape)
        self.check("protocol version", self.check_protocol_version)
        self.check("project option declarations", self.check_option_declarations)
        self.check("stdout hygiene: fd 1 is not the protocol channel", self.check_fd1)
        self.check("stdout hygiene: nothing but replies on the channel", self.check_only_replies)
        self.check("malformed JSON → -32700, then keeps serving", self.check_parse_error)
        self.check("non-object request → -32600", lambda: self.call_raw_error(b"42", -32600, "a bare number"))
        batch = json.dumps(
            [{"jsonrpc": "2.0", "id": 1, "method": "server_info_query", "params": {"tvm_version": "0.27"}}]
        ).encode()
        self.check("batch request → -32600", lambda: self.call_raw_error(batch, -32600, "a batch"))
        self.check(
            "unknown method → -32601",
            lambda: self.call_error("no_such_method_xyz", {}, -32601, "an unknown method"),
        )
        self.check(
            "missing param → -32602",
            lambda: self.call_error("server_info_query", {}, -32602, "server_info_query without tvm_version"),
        )
        self.check(
            "extra param → -32602",
            lambda: self.call_error(
                "server_info_query", {"tvm_version": "0.27", "bogus": 1}, -32602, "an extra parameter"
            ),
        )
        self.check("mistyped param → -32602", self.check_mistyped_param)
        self.check("unknown project option → -32602", self.check_unknown_option)
        self.check("mistyped project option → -32602", self.check_mistyped_option)
        if self.info and self.info.get("is_template") is True:
            self.check("template: generate_project makes a generated project", self.check_generate)
            self.check("template: refuses an MLF with '..' members", self.check_unsafe_mlf)
        else:
            self.check("generated project: model_library_format_path exists", self.check_generated_mlf)
        self.check("exits when its input closes", self.check_exits_on_eof)
        return self.results

    def check_starts(self) -> str:
        with self.server() as client:
            info = client.call("server_info_query", {"tvm_version": "0.27.0"}, timeout_sec=self.s.timeout_sec)
        if not isinstance(info, dict):
            raise CheckFailed(f"server_info_query returned {json.dumps(info)[:100]}, not an object")
        self.info = info
        return f"platform {info.get('platform_name')!r}"

    def check_info_shape(self) -> str:
        info = self.info or {}
        problems = []
        types = {"platform_name": str, "is_template": bool, "project_options": list}
        for key, kind in types.items():
            if key not in info:
                problems.append(f"missing {key}")
            elif not isinstance(info[key], kind):
                problems.append(f"{key} is {type(info[key]).__name__}, should be {kind.__name__}")
        if "model_library_format_path" not in info:
            problems.append("missing model_library_format_path")
        elif not isinstance(info["model_library_format_path"], str | None):
            problems.append("model_library_format_path is not a string or null")
        elif info.get("is_template") is True and info["model_library_format_path"] == "" and self.v018:
            raise V018Difference(
                'v0.18 difference: the template reports model_library_format_path "" (null now)'
            )
        elif info.get("is_template") is True and info["model_library_format_path"] is not None:
            problems.append("a template must report model_library_format_path null")
        elif info.get("is_template") is False and not info["model_library_format_path"]:
            problems.append("a generated project must report its model_library_format_path")
        if isinstance(info.get("platform_name"), str) and not info["platform_name"]:
            problems.append("platform_name is empty")
        if problems:
            raise CheckFailed("; ".join(problems))
        return ""

    def check_protocol_version(self) -> str:
        version = (self.info or {}).get("protocol_version")
        if protocol_major(version) != PROTOCOL_VERSION:
            raise CheckFailed(f"server speaks protocol version {version!r}; tvmc speaks {PROTOCOL_VERSION}")
        return f"version {version}"

    def declared(self) -> list[ProjectOption]:
        result = []
        for raw in (self.info or {}).get("project_options") or []:
            try:
                result.append(ProjectOption.from_json(raw))
            except ValueError:
                continue
        return result

    def check_option_declarations(self) -> str:
        raw = (self.info or {}).get("project_options")
        if not isinstance(raw, list):
            raise CheckFailed("project_options is not a list")
        problems, names = [], set()
        for item in raw:
            try:
                option = ProjectOption.from_json(item)
            except ValueError as err:
                problems.append(str(err))
                continue
            if option.name in names:
                problems.append(f"option {option.name!r} is declared twice")
            names.add(option.name)
            if not option.help:
                problems.append(f"option {option.name!r} has no help text")
        if problems:
            raise CheckFailed("; ".join(problems))
        return f"{len(names)} options"

    def check_fd1(self) -> str:
        with self.server() as client:
            client.call("server_info_query", {"tvm_version": "0.27.0"}, timeout_sec=self.s.timeout_sec)
            proc = Path(f"/proc/{client.process.pid}/fd")
            if not proc.is_dir():
                raise CheckSkipped("needs Linux /proc")
            # The reply pipe as the server holds it: its inode matches the pipe we read replies from.
            ours = os.fstat(client.reply_fd)
            try:
                theirs = os.stat(proc / "1")
            except OSError as err:
                raise CheckSkipped(f"cannot inspect the server's fd 1: {err}") from None
            if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
                raise CheckFailed(
                    "the server's fd 1 is the protocol channel, so print() or any child tool can corrupt "
                    "replies: end the server with microtvm_api.server.main() (points fd 1 at stderr)"
                )
        return ""

    def check_only_replies(self) -> str:
        with self.server() as client:
            for _ in range(2):
                client.call("server_info_query", {"tvm_version": "0.27.0"}, timeout_sec=self.s.timeout_sec)
            self.expect_error(
                client,
                b'{"jsonrpc": "2.0", "id": 3, "method": "no_such_method_xyz", "params": {}}',
                -32601,
                "an unknown method",
            )
        return "3 calls, 3 replies, nothing else"

    def check_parse_error(self) -> str:
        with self.server() as client:
            try:
                error = self.expect_error(
                    client, b'{"jsonrpc": "2.0", "id": 1, "method": ', -32700, "malformed JSON"
                )
            except ProjectAPIError as err:
                if client.process.poll() == 0:
                    raise self.v018_or_fail(
                        "the server stops serving (exit code 0, no reply) after a line that is not JSON, "
                        "as v0.18's server.py did; tvmc-micro servers reply -32700 and go on",
                        _summary(err.message),
                    ) from None
                raise
            info = client.call("server_info_query", {"tvm_version": "0.27.0"}, timeout_sec=self.s.timeout_sec)
            if not isinstance(info, dict):
                raise CheckFailed("no proper reply after the parse error")
        return str(error.get("message", ""))[:80]

    def call_raw_error(self, line: bytes, code: int, what: str) -> str:
        with self.server() as client:
            error = self.expect_error(client, line, code, what)
            try:
                client.call("server_info_query", {"tvm_version": "0.27.0"}, timeout_sec=self.s.timeout_sec)
            except ProjectAPIError as err:
                if client.process.poll() == 0:
                    raise self.v018_or_fail(
                        f"the server answered {what} with {code} and then stopped serving (exit code 0), "
                        "as v0.18's server.py did; tvmc-micro servers go on",
                        _summary(err.message),
                    ) from None
                raise
        return str(error.get("message", ""))[:80]

    def check_mistyped_param(self) -> str:
        with self.server() as client:
            request = {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "server_info_query",
                "params": {"tvm_version": 27},
            }
            client.send_line(json.dumps(request).encode(), self.s.timeout_sec)
            reply = client.read_reply(self.s.timeout_sec, "tvm_version as a number")
        error = reply.get("error")
        if isinstance(error, dict) and error.get("code") == -32602:
            return str(error.get("message", ""))[:100]
        if "result" in reply:
            raise self.v018_or_fail(
                "server_info_query accepts tvm_version 27 (v0.18's server.py checked parameter types only "
                "for build, flash and close_transport)",
                "tvm_version as a number: expected error -32602, got a result",
            )
        code = error.get("code") if isinstance(error, dict) else None
        raise CheckFailed(f"tvm_version as a number: expected error code -32602, got {code}")

    def option_error(self, options: dict[str, Any], what: str, must_name: str) -> str:
        """`build` with bad options must be refused with -32602 before the handler runs. The server under
        test is a temporary copy, so a server that does not check options builds only the copy."""
        with self.server() as client:
            request = {"jsonrpc": "2.0", "id": 7, "method": "build", "params": {"options": options}}
            client.send_line(json.dumps(request).encode(), self.s.timeout_sec)
            reply = client.read_reply(self.s.timeout_sec, what)
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

    def check_unknown_option(self) -> str:
        return self.option_error({"no_such_option_xyz": "1"}, "an unknown option", "no_such_option_xyz")

    def check_mistyped_option(self) -> str:
        typed = [o for o in self.declared() if o.type in ("bool", "int", "float")]
        if not typed:
            raise CheckSkipped("no bool/int/float option declared")
        option = typed[0]
        # Any method rejects a mistyped option, even one it does not use (a typo must never pass silently).
        return self.option_error({option.name: "not-a-value"}, f"{option.name}=not-a-value", option.name)

    def generate_options(self) -> dict[str, Any]:
        options: dict[str, Any] = dict(self.s.options)
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

    def check_generate(self) -> str:
        mlf = self.s.mlf or _minimal_mlf(self.s.workdir / "conformance_model.tar")
        project = self.s.workdir / "generated_project"
        with self.server() as client:
            try:
                self.generate(client, mlf, project, self.s.timeout_sec * 4)
            except ProjectAPIError as err:
                self.generate_failure = _one_paragraph(err.message)
                if MLF_LAYOUT_DIFFERENCE in err.message:
                    raise self.v018_or_fail(_one_paragraph(err.message)[:300], err.message) from None
                raise
        try:
            server = find_server(project)
        except ProjectAPIError as err:
            raise CheckFailed(f"the generated project has no server: {err.message}") from None
        with self.server(server) as client:
            info = client.call("server_info_query", {"tvm_version": "0.27.0"}, timeout_sec=self.s.timeout_sec)
        if not isinstance(info, dict) or info.get("is_template") is not False:
            raise CheckFailed(
                f"the generated project's server reports is_template={info.get('is_template')!r}"
            )
        if info.get("platform_name") != (self.info or {}).get("platform_name"):
            raise CheckFailed("the generated project's server reports another platform_name")
        path = info.get("model_library_format_path")
        if not isinstance(path, str) or not Path(path).exists():
            raise CheckFailed(
                f"the generated project reports model_library_format_path {path!r}, which is missing"
            )
        return f"project at {project}"

    def check_unsafe_mlf(self) -> str:
        """A well-formed MLF plus members whose names climb out of the project ('../', '../../', ...):
        generate_project must refuse it and write nothing outside the project. The project sits deep in a
        sandbox directory, so whatever escapes lands in the sandbox, where it is found."""
        sandbox = self.s.workdir / "escape_sandbox"
        project = sandbox / "a" / "b" / "c" / "project"
        evil = self.s.workdir / "evil.tar"
        _minimal_mlf(evil)
        with tarfile.open(evil, "a") as tar:
            for depth in (1, 2, 3):
                _add_bytes(tar, "../" * depth + f"conformance_escaped_{depth}.txt", b"escaped")
        project.parent.mkdir(parents=True, exist_ok=True)
        error: ProjectAPIError | None = None
        with self.server() as client:
            try:
                self.generate(client, evil, project, self.s.timeout_sec)
            except ProjectAPIError as err:
                error = err
        escaped = sorted(
            str(p.relative_to(sandbox))
            for p in sandbox.rglob("conformance_escaped_*")
            if project not in p.parents
        )
        if escaped:
            raise CheckFailed(f"generate_project wrote {', '.join(escaped)} outside the project directory")
        if error is None:
            raise CheckFailed(
                "generate_project accepted an MLF with members escaping the project (it must refuse it)"
            )
        text = _one_paragraph(error.message)
        if (
            error.remote_type in ("UnsafeArchiveError", "ArchiveError")
            or "conformance_escaped" in text
            or ".." in text
        ):
            return text[:100]
        raise CheckSkipped(
            f"generate_project failed for another reason before judging the escaping members: {text[:160]}"
        )

    def check_generated_mlf(self) -> str:
        path = (self.info or {}).get("model_library_format_path")
        if not isinstance(path, str) or not Path(path).is_file():
            raise CheckFailed(f"model_library_format_path {path!r} does not exist")
        return path

    def check_exits_on_eof(self) -> str:
        client = ProjectAPIClient.launch(
            self.s.server, interpreter=self.s.interpreter, style=self.s.style, stderr_sink=None
        )
        client.call("server_info_query", {"tvm_version": "0.27.0"}, timeout_sec=self.s.timeout_sec)
        client.close_input()
        try:
            code = client.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            raise CheckFailed("the server was still running 10 s after its input closed") from None
        finally:
            client.close(timeout_sec=1)
        if code != 0:
            raise CheckFailed(f"the server exited with code {code} at end of input (expected 0)")
        return "exit code 0"


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _minimal_mlf(path: Path) -> Path:
    """A tiny but well-formed MLF (one copy-through model), enough for generate_project."""
    name = "conformance"
    metadata = {
        "mlf_version": 1,
        "tool": {"name": "microtvm_api.conformance", "version": "0", "tvm_version": "0.27.0"},
        "models": [
            {
                "name": name,
                "export_datetime": "2026-01-01T00:00:00Z",
                "source": {"file": "none", "format": "none", "sha256": "0" * 64},
                "target": {"kind": "c", "keys": ["cpu"]},
                "target_str": "c",
                "executor": "aot",
                "signature": "0123456789abcdef",
                "memory": {
                    "arena_bytes": 16,
                    "constants_bytes": 0,
                    "activation_lower_bound_bytes": 16,
                    "io_bytes": 8,
                },
                "inputs": [
                    {
                        "name": "x",
                        "c_name": "x",
                        "shape": [4],
                        "dtype": "int8",
                        "size_bytes": 4,
                        "quantization": None,
                    }
                ],
                "outputs": [
                    {
                        "name": "y",
                        "c_name": "y",
                        "shape": [4],
                        "dtype": "int8",
                        "size_bytes": 4,
                        "quantization": None,
                    }
                ],
                "operators": [{"index": 0, "name": "copy", "function": f"tvmgen_{name}_copy"}],
            }
        ],
    }
    header = (
        f"#ifndef TVMGEN_{name.upper()}_H_\n#define TVMGEN_{name.upper()}_H_\n#include <stdint.h>\n"
        f"#define TVMGEN_{name.upper()}_WORKSPACE_SIZE 16\n#define TVMGEN_{name.upper()}_X_SIZE 4\n"
        f"#define TVMGEN_{name.upper()}_Y_SIZE 4\n"
        f"struct tvmgen_{name}_inputs {{ void* x; }};\nstruct tvmgen_{name}_outputs {{ void* y; }};\n"
        f"int32_t tvmgen_{name}_run(struct tvmgen_{name}_inputs* inputs,\n"
        f"                          struct tvmgen_{name}_outputs* outputs);\n#endif\n"
    )
    source = (
        f'#include "tvmgen_{name}.h"\n'
        f"int32_t tvmgen_{name}_run(struct tvmgen_{name}_inputs* inputs,\n"
        f"                          struct tvmgen_{name}_outputs* outputs) {{\n"
        "  for (int i = 0; i < 4; ++i) ((int8_t*)outputs->y)[i] = ((int8_t*)inputs->x)[i];\n  return 0;\n}\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        _add_bytes(tar, "metadata.json", json.dumps(metadata, indent=2).encode())
        _add_bytes(tar, f"codegen/host/include/tvmgen_{name}.h", header.encode())
        _add_bytes(tar, f"codegen/host/src/{name}_lib0.c", source.encode())
        _add_bytes(tar, f"src/{name}.relax", b"# no IR: synthetic conformance model\n")
    return path


def _summary(text: str) -> str:
    """One line for the table: the message, and the last line the server printed on stderr, if any."""
    head, _, tail = text.partition("\n--- last lines of the server's stderr ---\n")
    last = [line.strip() for line in tail.splitlines() if line.strip()][-1:]
    return _one_paragraph(head) + (f" | stderr: {last[0]}" if last else "")


def _one_paragraph(text: str) -> str:
    return " ".join(text.split())


def run_checks(
    server: str | Path,
    *,
    interpreter: str | None = None,
    style: Style = "auto",
    timeout_sec: float = 30.0,
    mlf: str | Path | None = None,
    options: dict[str, Any] | None = None,
) -> list[CheckResult]:
    """Run every check against the server at `server` (file or directory).

    `options` gives values for project options the template requires for generate_project.
    """
    path = find_server(server).absolute()
    with tempfile.TemporaryDirectory(prefix="microtvm_conformance_") as tmp:
        # Every check runs on a copy of the server's directory: the original is never changed.
        copy = _copy_server_dir(path.parent, Path(tmp) / "server") / path.name
        # The server runs in its own directory: paths it gets are absolute (it refuses relative ones).
        mlf_path = Path(mlf).absolute() if mlf else None
        settings = Settings(copy, interpreter, style, timeout_sec, mlf_path, Path(tmp), dict(options or {}))
        return Checker(settings).run()


def _copy_server_dir(source: Path, target: Path) -> Path:
    """Copy `source` (links kept as links, no __pycache__) to `target`; refuse a very large directory."""
    files = 0
    size = 0
    for root, dirs, names in os.walk(source):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        files += len(names)
        for name in names:
            try:
                size += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                continue
        if files > MAX_COPY_FILES or size > MAX_COPY_BYTES:
            raise ServerNotFoundError(
                f"{source} is too large to check ({files:,}+ files, {size:,}+ bytes): the checks run on a "
                "temporary copy of the server's directory",
                "check the template or project directory itself, not a directory holding other things",
            )
    shutil.copytree(source, target, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def format_table(results: Sequence[CheckResult]) -> str:
    width = max((len(r.name) for r in results), default=10)
    lines = [f"{'result':6}  {'check':{width}}  detail", f"{'-' * 6}  {'-' * width}  ------"]
    lines += [f"{r.status:6}  {r.name:{width}}  {r.detail}".rstrip() for r in results]
    failed = sum(r.status == FAIL for r in results)
    passed = sum(r.status == PASS for r in results)
    skipped = sum(r.status == SKIP for r in results)
    differences = sum(r.status == V018 for r in results)
    summary = f"{passed} passed, {failed} failed, {skipped} skipped"
    lines.append(summary + (f", {differences} v0.18 differences" if differences else ""))
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace) -> list[CheckResult]:
    """Run the checks as `add_arguments` options ask (shared by this module's main and `tvmc micro`)."""
    return run_checks(
        args.server,
        interpreter=args.interpreter,
        style=args.style,
        timeout_sec=args.timeout,
        mlf=args.mlf,
        options=parse_key_values(args.project_option),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m microtvm_api.conformance", description=__doc__.split("\n")[0]
    )
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        results = run_from_args(args)
    except ProjectAPIError as err:
        print(f"conformance: error: {err}", file=sys.stderr)
        return 2
    print(format_table(results))
    return 1 if any(r.status == FAIL for r in results) else 0


if __name__ == "__main__":
    sys.exit(main())
