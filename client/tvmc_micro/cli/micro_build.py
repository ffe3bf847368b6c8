"""`tvmc micro build PROJECT_DIR`: build the firmware of a generated project."""

from __future__ import annotations

import argparse

from tvmc_micro.cli.common import add_platform_arg, add_project_option_arg


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "build",
        help="build a generated project's firmware",
        description="Build the firmware of PROJECT_DIR with its template's toolchain (the command is shown). "
        "Options given at create-project time are remembered; --project-option overrides them.",
    )
    p.add_argument("project_dir", metavar="PROJECT_DIR")
    add_platform_arg(p)
    add_template_dir_arg(p)
    p.add_argument(
        "-f", "--force", action="store_true", help="remove the previous build/ first (clean build)"
    )
    add_project_option_arg(p)
    p.add_argument(
        "--json",
        metavar="FILE",
        help="write the image's sizes (`size` per section, text/data/bss, stack estimate) as JSON "
        "(docs/json-output.md)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import shutil
    import sys
    import time

    from tvmc_micro.build_sizes import build_document
    from tvmc_micro.json_output import check_writable, write_json
    from tvmc_micro.project import check_is_project, launched, option_values, require_project

    check_template_dir(args.platform, args.template_dir)
    project_dir = require_project(args.project_dir)
    if args.json is not None:
        check_writable(args.json)  # before a build of minutes, not after
    options = option_values(args.project_option)
    with launched(project_dir, verbose=args.verbose) as (client, info):
        check_is_project(info, project_dir, args.platform)
        if args.force and (project_dir / "build").is_dir():
            shutil.rmtree(project_dir / "build")
        start = time.monotonic()
        print(f"building {info['platform_name']} project {project_dir} ...", file=sys.stderr)
        client.build(options)
        platform = str(info["platform_name"])
    elapsed = time.monotonic() - start
    print(f"built in {elapsed:.1f} s; next: tvmc micro flash {args.project_dir}", file=sys.stderr)
    if args.json is not None:
        doc = build_document(project_dir, platform, elapsed)
        write_json(args.json, doc)
        for note in doc["notes"]:
            print(f"note: {note}", file=sys.stderr)
    return 0


def add_template_dir_arg(parser: argparse.ArgumentParser) -> None:
    """v0.18's `build DIR template --template-dir D` (and flash): accepted; the project's server is used."""
    parser.add_argument(
        "--template-dir",
        help="for tvmc v0.18 scripts (with PLATFORM 'template'): accepted; the project's own server is used",
    )


def check_template_dir(platform: str | None, template_dir: str | None) -> None:
    """--template-dir goes with PLATFORM `template` (as in v0.18) and must exist; it is otherwise unused."""
    if template_dir is None:
        return
    import sys
    from pathlib import Path

    from tvmc_micro.errors import TvmcError

    if platform != "template":
        raise TvmcError(
            "--template-dir goes with PLATFORM 'template'",
            f"write: ... template --template-dir {template_dir}, or drop --template-dir",
        )
    if not Path(template_dir).is_dir():
        raise TvmcError(
            f"--template-dir {template_dir} is not a directory", "drop it: the project knows its server"
        )
    print("note: --template-dir is not needed here: the project's own server is used", file=sys.stderr)
