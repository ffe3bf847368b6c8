"""`tvmc micro ...`: the group of Project API commands; one module per subcommand."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("micro", help="create, build and flash firmware projects; talk to Project API servers")
    micro_sub = p.add_subparsers(dest="micro_command", metavar="SUBCOMMAND")
    micro_sub.required = True
    # Imported here, not at module top, only to keep the group's own parse order obvious.
    from tvmc_micro.cli import (
        micro_build,
        micro_conformance,
        micro_create_project,
        micro_flash,
        micro_rpc,
        micro_rpc_worker,
    )

    for module in (
        micro_create_project,
        micro_build,
        micro_flash,
        micro_rpc,
        micro_rpc_worker,
        micro_conformance,
    ):
        module.add_parser(micro_sub)
