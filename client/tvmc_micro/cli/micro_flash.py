"""`tvmc micro flash PROJECT_DIR`: put the built firmware on the device (or record it for an emulator)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tvmc_micro.cli.common import add_platform_arg, add_project_option_arg
from tvmc_micro.cli.micro_build import add_template_dir_arg, check_template_dir


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "flash",
        help="flash a built project onto its device",
        description="Flash the firmware built in PROJECT_DIR (emulated platforms record the image to boot).",
    )
    p.add_argument("project_dir", metavar="PROJECT_DIR")
    add_platform_arg(p)
    add_template_dir_arg(p)
    add_project_option_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from tvmc_micro.project import check_is_project, launched, option_values, require_project

    check_template_dir(args.platform, args.template_dir)
    project_dir = require_project(args.project_dir)
    options = option_values(args.project_option)
    with launched(project_dir, verbose=args.verbose) as (client, info):
        check_is_project(info, project_dir, args.platform)
        print(f"flashing {info['platform_name']} project {project_dir} ...", file=sys.stderr)
        client.flash(options)
    print(f"flashed; {next_step(project_dir, args.project_dir)}", file=sys.stderr)
    return 0


def next_step(project_dir: Path, shown: str) -> str:
    """What to do after flashing, by the project type saved in the project (project_options.json):
    host_driven firmware serves `tvmc run`; standalone firmware already ran (under an emulator, flash ran
    it) or runs at the board's reset; mlperftiny firmware answers the MLPerf Tiny runner."""
    from microtvm_api import project_types as pt
    from microtvm_api.options import load_options

    try:
        kind = load_options(project_dir).get("project_type") or pt.HOST_DRIVEN
    except (OSError, ValueError):  # an unreadable file: the server said what it thinks of it
        kind = pt.HOST_DRIVEN
    if kind == pt.STANDALONE:
        for where in ("build", "flashed"):  # cortex_m keeps it in build/, zephyr in flashed/
            saved = project_dir / where / pt.STANDALONE_OUTPUT_JSON
            if saved.is_file():
                return f"the standalone firmware ran: its outputs are printed above and saved in {saved}"
        return (
            "the standalone firmware prints its outputs over the UART when it boots: open the board's "
            "serial port (115200 8N1) and reset the board"
        )
    if kind == pt.MLPERFTINY:
        return (
            f"next: python3 scripts/mlperftiny_runner.py {shown} -i in.npz (the MLPerf Tiny runner's "
            "commands over the UART; docs/project-types.md)"
        )
    return f"next: tvmc run --device micro {shown} --print-time --print-top 3"
