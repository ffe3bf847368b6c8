"""`tvmc micro conformance SERVER`: check a Project API server against what tvmc relies on."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # The checker declares its own arguments (stdlib-only, cheap to import) so both entry points agree.
    from microtvm_api.conformance_args import add_arguments

    p = sub.add_parser(
        "conformance",
        help="check a Project API server (server_info, error codes, stdout hygiene, options, templates)",
        description="Run a Project API server through the checks tvmc relies on and print a pass/fail "
        "table; exits 1 when a check fails. Same as: python -m microtvm_api.conformance SERVER",
    )
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from microtvm_api.conformance import FAIL, format_table, run_from_args
    from microtvm_api.errors import ProjectAPIError

    from tvmc_micro.errors import TvmcError

    try:
        results = run_from_args(args)
    except ProjectAPIError as err:
        raise TvmcError(err.message, err.hint) from err
    print(format_table(results))
    return 1 if any(r.status == FAIL for r in results) else 0
