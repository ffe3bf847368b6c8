"""`tvmc micro conformance` (owned by the Project API work)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("conformance", help="(not implemented yet)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tvmc_micro.errors import TvmcError

    raise TvmcError("tvmc micro conformance is not implemented yet")
