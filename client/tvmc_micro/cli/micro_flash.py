"""`tvmc micro flash PROJECT_DIR`: put the built firmware on the device (or record it for an emulator)."""

from __future__ import annotations

import argparse

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
    print(
        f"flashed; next: tvmc run --device micro {args.project_dir} --print-time --print-top 3",
        file=sys.stderr,
    )
    return 0
