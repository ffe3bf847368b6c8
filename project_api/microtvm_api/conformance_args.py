"""The conformance checker's command-line arguments, apart so `tvmc` can declare them without importing
the checker (keeps `tvmc --help` fast)."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "server", help="a microtvm_api_server.py, or a template/project directory holding one"
    )
    parser.add_argument("--interpreter", help="run the server with this Python (default: this one)")
    parser.add_argument(
        "--style",
        choices=("auto", "stdio", "fds"),
        default="auto",
        help="how to talk to it: stdio, or v0.18 --read-fd/--write-fd pipes (default: detect)",
    )
    parser.add_argument(
        "--timeout", type=float, default=30.0, help="deadline per call in seconds (default 30)"
    )
    parser.add_argument(
        "--mlf", help="a Model Library Format tar to generate a project from (default: a tiny synthetic one)"
    )
    parser.add_argument(
        "--project-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a value for an option generate_project requires (repeatable)",
    )
