"""`tvmc micro conformance SERVER`: check a Project API server against what tvmc relies on."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "conformance",
        help="check a Project API server (server_info, error codes, stdout hygiene, options, templates)",
        description="Run a Project API server through the checks tvmc relies on and print a pass/fail "
        "table; exits 1 when a check fails. Same as: python -m microtvm_api.conformance SERVER",
    )
    # The argument list lives with the checker so both entry points accept the same options.
    p.add_argument("server", help="a microtvm_api_server.py, or a template/project directory holding one")
    p.add_argument("--interpreter", help="run the server with this Python (default: tvmc's own)")
    p.add_argument(
        "--style",
        choices=("auto", "stdio", "fds"),
        default="auto",
        help="stdio, or v0.18 --read-fd/--write-fd pipes (default: detect)",
    )
    p.add_argument("--timeout", type=float, default=30.0, help="deadline per call in seconds (default 30)")
    p.add_argument("--mlf", help="a Model Library Format tar to generate a project from (default: synthetic)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from microtvm_api.conformance import FAIL, format_table, run_checks
    from microtvm_api.errors import ProjectAPIError

    from tvmc_micro.errors import TvmcError

    try:
        results = run_checks(
            args.server,
            interpreter=args.interpreter,
            style=args.style,
            timeout_sec=args.timeout,
            mlf=args.mlf,
        )
    except ProjectAPIError as err:
        raise TvmcError(err.message, err.hint) from err
    print(format_table(results))
    return 1 if any(r.status == FAIL for r in results) else 0
