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
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from microtvm_api.client import Style, find_server
from microtvm_api.conformance_args import add_arguments
from microtvm_api.conformance_checks import CHECKS, STARTS, Check
from microtvm_api.conformance_harness import (
    CheckFailed,
    CheckSkipped,
    Harness,
    Settings,
    V018Difference,
    summary,
)
from microtvm_api.conformance_sandbox import copy_server_dir, minimal_mlf
from microtvm_api.errors import ProjectAPIError
from microtvm_api.options import parse_key_values

PASS, FAIL, SKIP, V018 = "PASS", "FAIL", "SKIP", "V0.18"
# Copying the server's directory (to run the checks on the copy) is refused beyond these.
MAX_COPY_FILES = 20_000
MAX_COPY_BYTES = 512 * 1024 * 1024

__all__ = [
    "FAIL",
    "PASS",
    "SKIP",
    "V018",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "Settings",
    "V018Difference",
    "format_table",
    "main",
    "run_checks",
    "run_from_args",
]

# Its name from when it was defined here (tests import it to make an MLF).
_minimal_mlf = minimal_mlf


@dataclass(frozen=True)
class CheckResult:
    name: str
    status: str
    detail: str = ""


def run_check(harness: Harness, check: Check) -> CheckResult:
    """Run one check and say how it ended; a ProjectAPIError escaping the check is a failure."""
    try:
        detail = check.run(harness) or ""
    except CheckSkipped as skip:
        return CheckResult(check.name, SKIP, str(skip))
    except V018Difference as diff:
        return CheckResult(check.name, V018, str(diff))
    except CheckFailed as fail:
        return CheckResult(check.name, FAIL, str(fail))
    except ProjectAPIError as err:
        return CheckResult(check.name, FAIL, summary(err.message))
    return CheckResult(check.name, PASS, detail)


def run_table(harness: Harness) -> list[CheckResult]:
    """`STARTS`, then (if the server started) every check in `CHECKS` that applies to it, in order."""
    results = [run_check(harness, STARTS)]
    if results[0].status == FAIL:
        return results
    if harness.v018:
        results.append(
            CheckResult(
                "v0.18-style server",
                V018,
                "server_info has no capabilities: tvmc drives it as v0.18's tvmc did (every declared "
                "option sent, an empty standalone_crt_dir, 0 timeouts read as no limit)",
            )
        )
    results += [run_check(harness, check) for check in CHECKS if check.applies(harness)]
    return results


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
        # Every check runs on a copy of the server's directory: the original is never changed. The limits
        # are read here, at call time, so they stay settable on this module.
        server_dir = Path(tmp) / "server"
        copy = copy_server_dir(path.parent, server_dir, max_files=MAX_COPY_FILES, max_bytes=MAX_COPY_BYTES)
        # The server runs in its own directory: paths it gets are absolute (it refuses relative ones).
        mlf_path = Path(mlf).absolute() if mlf else None
        settings = Settings(
            copy / path.name, interpreter, style, timeout_sec, mlf_path, Path(tmp), dict(options or {})
        )
        harness = Harness(settings)
        try:
            return run_table(harness)
        finally:
            harness.close()


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
