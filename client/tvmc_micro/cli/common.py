"""Arguments several subcommands share, declared once."""

from __future__ import annotations

import argparse


def add_project_option_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a project option for the template's server (repeatable; the value may contain '='). "
        "List them with: tvmc micro rpc PROJECT_OR_TEMPLATE_DIR server_info_query",
    )


def add_platform_arg(parser: argparse.ArgumentParser) -> None:
    """v0.18 took the platform again on build/flash: accepted for old scripts, checked against the project."""
    parser.add_argument(
        "platform",
        metavar="PLATFORM",
        nargs="?",
        default=None,
        help="optional, for tvmc v0.18 scripts: must match the project's platform",
    )
