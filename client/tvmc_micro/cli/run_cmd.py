"""`tvmc run --device micro PROJECT_DIR`: run the flashed model on the device."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run a model on a device through its project")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tvmc_micro.errors import TvmcError

    raise TvmcError("tvmc run is not implemented yet")
