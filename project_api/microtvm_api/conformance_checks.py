"""The conformance checks: one function per check, and `CHECKS`, the table naming them in running order.

Each function takes the `Harness` and returns a detail for the table (see `conformance_harness` for how
a check ends otherwise). `STARTS` runs first and alone: it records the server_info every later check
reads, and nothing else can be judged without it.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from microtvm_api.client import MLF_LAYOUT_DIFFERENCE, ProjectAPIClient, find_server
from microtvm_api.conformance_harness import (
    CheckFailed,
    CheckSkipped,
    Harness,
    V018Difference,
    one_paragraph,
    summary,
)
from microtvm_api.conformance_sandbox import ESCAPED_MEMBER_PREFIX, escaping_mlf, minimal_mlf
from microtvm_api.errors import ProjectAPIError
from microtvm_api.options import ProjectOption
from microtvm_api.protocol import PROTOCOL_VERSION, protocol_major


@dataclass(frozen=True)
class Check:
    name: str  # the row's name in the table (tests and users match on it: keep it stable)
    run: Callable[[Harness], str | None]
    applies: Callable[[Harness], bool] = lambda h: True  # whether it runs, asked when its turn comes


def is_template(h: Harness) -> bool:
    return bool(h.info and h.info.get("is_template") is True)


def is_generated_project(h: Harness) -> bool:
    return not is_template(h)


# ---- server_info -----------------------------------------------------------------------------------


def check_starts(h: Harness) -> str:
    with h.server() as client:
        info = h.server_info_query(client)
    if not isinstance(info, dict):
        raise CheckFailed(f"server_info_query returned {json.dumps(info)[:100]}, not an object")
    h.info = info
    return f"platform {info.get('platform_name')!r}"


def check_info_shape(h: Harness) -> str:
    info = h.info or {}
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
    elif info.get("is_template") is True and info["model_library_format_path"] == "" and h.v018:
        raise V018Difference('v0.18 difference: the template reports model_library_format_path "" (null now)')
    elif info.get("is_template") is True and info["model_library_format_path"] is not None:
        problems.append("a template must report model_library_format_path null")
    elif info.get("is_template") is False and not info["model_library_format_path"]:
        problems.append("a generated project must report its model_library_format_path")
    if isinstance(info.get("platform_name"), str) and not info["platform_name"]:
        problems.append("platform_name is empty")
    if problems:
        raise CheckFailed("; ".join(problems))
    return ""


def check_protocol_version(h: Harness) -> str:
    version = (h.info or {}).get("protocol_version")
    if protocol_major(version) != PROTOCOL_VERSION:
        raise CheckFailed(f"server speaks protocol version {version!r}; tvmc speaks {PROTOCOL_VERSION}")
    return f"version {version}"


def check_option_declarations(h: Harness) -> str:
    raw = (h.info or {}).get("project_options")
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


# ---- stdout hygiene --------------------------------------------------------------------------------


def check_fd1(h: Harness) -> str:
    with h.server() as client:
        h.server_info_query(client)
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


def check_only_replies(h: Harness) -> str:
    with h.server() as client:
        for _ in range(2):
            h.server_info_query(client)
        h.expect_error(
            client,
            b'{"jsonrpc": "2.0", "id": 3, "method": "no_such_method_xyz", "params": {}}',
            -32601,
            "an unknown method",
        )
    return "3 calls, 3 replies, nothing else"


# ---- JSON-RPC errors -------------------------------------------------------------------------------


def check_parse_error(h: Harness) -> str:
    with h.server() as client:
        try:
            error = h.expect_error(
                client, b'{"jsonrpc": "2.0", "id": 1, "method": ', -32700, "malformed JSON"
            )
        except ProjectAPIError as err:
            if client.process.poll() == 0:
                raise h.v018_or_fail(
                    "the server stops serving (exit code 0, no reply) after a line that is not JSON, "
                    "as v0.18's server.py did; tvmc-micro servers reply -32700 and go on",
                    summary(err.message),
                ) from None
            raise
        info = h.server_info_query(client)
        if not isinstance(info, dict):
            raise CheckFailed("no proper reply after the parse error")
    return str(error.get("message", ""))[:80]


def check_non_object_request(h: Harness) -> str:
    return h.call_raw_error(b"42", -32600, "a bare number")


def check_batch_request(h: Harness) -> str:
    batch = json.dumps(
        [{"jsonrpc": "2.0", "id": 1, "method": "server_info_query", "params": {"tvm_version": "0.27"}}]
    ).encode()
    return h.call_raw_error(batch, -32600, "a batch")


def check_unknown_method(h: Harness) -> str:
    return h.call_error("no_such_method_xyz", {}, -32601, "an unknown method")


def check_missing_param(h: Harness) -> str:
    return h.call_error("server_info_query", {}, -32602, "server_info_query without tvm_version")


def check_extra_param(h: Harness) -> str:
    return h.call_error(
        "server_info_query", {"tvm_version": "0.27", "bogus": 1}, -32602, "an extra parameter"
    )


def check_mistyped_param(h: Harness) -> str:
    with h.server() as client:
        request = {"jsonrpc": "2.0", "id": 7, "method": "server_info_query", "params": {"tvm_version": 27}}
        client.send_line(json.dumps(request).encode(), h.settings.timeout_sec)
        reply = client.read_reply(h.settings.timeout_sec, "tvm_version as a number")
    error = reply.get("error")
    if isinstance(error, dict) and error.get("code") == -32602:
        return str(error.get("message", ""))[:100]
    if "result" in reply:
        raise h.v018_or_fail(
            "server_info_query accepts tvm_version 27 (v0.18's server.py checked parameter types only "
            "for build, flash and close_transport)",
            "tvm_version as a number: expected error -32602, got a result",
        )
    code = error.get("code") if isinstance(error, dict) else None
    raise CheckFailed(f"tvm_version as a number: expected error code -32602, got {code}")


# ---- project options -------------------------------------------------------------------------------


def check_unknown_option(h: Harness) -> str:
    return h.option_error({"no_such_option_xyz": "1"}, "an unknown option", "no_such_option_xyz")


def check_mistyped_option(h: Harness) -> str:
    typed = [o for o in h.declared() if o.type in ("bool", "int", "float")]
    if not typed:
        raise CheckSkipped("no bool/int/float option declared")
    option = typed[0]
    # Any method rejects a mistyped option, even one it does not use (a typo must never pass silently).
    return h.option_error({option.name: "not-a-value"}, f"{option.name}=not-a-value", option.name)


# ---- templates and generated projects --------------------------------------------------------------


def check_generate(h: Harness) -> str:
    mlf = h.settings.mlf or minimal_mlf(h.settings.workdir / "conformance_model.tar")
    project = h.settings.workdir / "generated_project"
    with h.server() as client:
        try:
            h.generate(client, mlf, project, h.settings.timeout_sec * 4)
        except ProjectAPIError as err:
            if MLF_LAYOUT_DIFFERENCE in err.message:
                raise h.v018_or_fail(one_paragraph(err.message)[:300], err.message) from None
            raise
    try:
        server = find_server(project)
    except ProjectAPIError as err:
        raise CheckFailed(f"the generated project has no server: {err.message}") from None
    with h.server(server) as client:
        info = h.server_info_query(client)
    if not isinstance(info, dict) or info.get("is_template") is not False:
        raise CheckFailed(f"the generated project's server reports is_template={info.get('is_template')!r}")
    if info.get("platform_name") != (h.info or {}).get("platform_name"):
        raise CheckFailed("the generated project's server reports another platform_name")
    path = info.get("model_library_format_path")
    if not isinstance(path, str) or not Path(path).exists():
        raise CheckFailed(
            f"the generated project reports model_library_format_path {path!r}, which is missing"
        )
    return f"project at {project}"


def check_unsafe_mlf(h: Harness) -> str:
    """A well-formed MLF plus members whose names climb out of the project ('../', '../../', ...):
    generate_project must refuse it and write nothing outside the project. The project sits deep in a
    sandbox directory, so whatever escapes lands in the sandbox, where it is found."""
    sandbox = h.settings.workdir / "escape_sandbox"
    project = sandbox / "a" / "b" / "c" / "project"
    evil = escaping_mlf(h.settings.workdir / "evil.tar")
    project.parent.mkdir(parents=True, exist_ok=True)
    error: ProjectAPIError | None = None
    with h.server() as client:
        try:
            h.generate(client, evil, project, h.settings.timeout_sec)
        except ProjectAPIError as err:
            error = err
    escaped = sorted(
        str(p.relative_to(sandbox))
        for p in sandbox.rglob(f"{ESCAPED_MEMBER_PREFIX}*")
        if project not in p.parents
    )
    if escaped:
        raise CheckFailed(f"generate_project wrote {', '.join(escaped)} outside the project directory")
    if error is None:
        raise CheckFailed(
            "generate_project accepted an MLF with members escaping the project (it must refuse it)"
        )
    text = one_paragraph(error.message)
    if (
        error.remote_type in ("UnsafeArchiveError", "ArchiveError")
        or ESCAPED_MEMBER_PREFIX in text
        or ".." in text
    ):
        return text[:100]
    raise CheckSkipped(
        f"generate_project failed for another reason before judging the escaping members: {text[:160]}"
    )


def check_generated_mlf(h: Harness) -> str:
    path = (h.info or {}).get("model_library_format_path")
    if not isinstance(path, str) or not Path(path).is_file():
        raise CheckFailed(f"model_library_format_path {path!r} does not exist")
    return path


# ---- shutting down ---------------------------------------------------------------------------------


def check_exits_on_eof(h: Harness) -> str:
    # A server of its own, launched as tvmc launches it (cwd: its directory), and not shared: it is meant
    # to end here.
    client = ProjectAPIClient.launch(
        h.settings.server, interpreter=h.settings.interpreter, style=h.settings.style, stderr_sink=None
    )
    h.server_info_query(client)
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


STARTS = Check("starts and answers server_info_query", check_starts)

CHECKS: tuple[Check, ...] = (
    Check("server_info_query reply shape", check_info_shape),
    Check("protocol version", check_protocol_version),
    Check("project option declarations", check_option_declarations),
    Check("stdout hygiene: fd 1 is not the protocol channel", check_fd1),
    Check("stdout hygiene: nothing but replies on the channel", check_only_replies),
    Check("malformed JSON → -32700, then keeps serving", check_parse_error),
    Check("non-object request → -32600", check_non_object_request),
    Check("batch request → -32600", check_batch_request),
    Check("unknown method → -32601", check_unknown_method),
    Check("missing param → -32602", check_missing_param),
    Check("extra param → -32602", check_extra_param),
    Check("mistyped param → -32602", check_mistyped_param),
    Check("unknown project option → -32602", check_unknown_option),
    Check("mistyped project option → -32602", check_mistyped_option),
    Check("template: generate_project makes a generated project", check_generate, is_template),
    Check("template: refuses an MLF with '..' members", check_unsafe_mlf, is_template),
    Check("generated project: model_library_format_path exists", check_generated_mlf, is_generated_project),
    Check("exits when its input closes", check_exits_on_eof),
)
