"""`tvmc micro create-project PROJECT_DIR MLF PLATFORM`: generate a firmware project from a template."""

from __future__ import annotations

import argparse

from tvmc_micro.cli.common import add_project_option_arg
from tvmc_micro.platforms import PLATFORM_CHOICES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "create-project",
        aliases=["create"],
        help="generate a firmware project from a model (MLF) and a template",
        description="Generate PROJECT_DIR from the Model Library Format tar MLF and the PLATFORM's template "
        "(crt_host: a host process, no hardware; cortex_m: bare metal under QEMU; zephyr: Zephyr boards; "
        "template: your own, with --template-dir).",
    )
    p.add_argument("project_dir", metavar="PROJECT_DIR", help="the directory to create")
    p.add_argument("mlf", metavar="MLF", help="model library format tar from tvmc compile")
    p.add_argument("platform", metavar="PLATFORM", choices=PLATFORM_CHOICES, help=", ".join(PLATFORM_CHOICES))
    p.add_argument("--template-dir", help="template directory (with PLATFORM 'template')")
    p.add_argument("-f", "--force", action="store_true", help="replace PROJECT_DIR if it is a project")
    add_project_option_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from tvmc_micro.errors import TvmcError
    from tvmc_micro.project import (
        check_options,
        check_outside_template,
        launched,
        option_values,
        read_mlf_metadata,
        remove_existing_project,
        template_dir_for,
    )

    template = template_dir_for(args.platform, args.template_dir)
    options = option_values(args.project_option)
    mlf = Path(args.mlf)
    if not mlf.is_file():
        raise TvmcError(
            f"model library format file {mlf} does not exist", "create it: tvmc compile MODEL -o model.tar"
        )
    model = read_mlf_metadata(mlf)["models"][0]
    # The server runs in the template directory: it gets absolute paths, resolved here against our cwd.
    project_dir = Path(args.project_dir).absolute()
    check_outside_template(project_dir, template)
    if project_dir.is_symlink() and not args.force:
        raise TvmcError(
            f"{project_dir} is a symbolic link; a project is never generated through a link",
            "choose a new directory",
        )
    if project_dir.exists() and not args.force and (not project_dir.is_dir() or any(project_dir.iterdir())):
        raise TvmcError(
            f"{project_dir} already exists",
            "choose a new directory, or pass -f to replace a project created earlier",
        )
    with launched(template, verbose=args.verbose) as (client, info):
        if not info.get("is_template"):
            raise TvmcError(f"{template} is a generated project, not a template", "pass a template directory")
        # Check the options against the template's declarations before -f removes anything.
        check_options(info, options)
        if args.force:
            remove_existing_project(project_dir)
        client.generate_project(mlf.absolute(), None, project_dir, options)
    print(
        f"created {info['platform_name']} project {project_dir} for model {model['name']!r}; "
        f"next: tvmc micro build {args.project_dir}",
        file=sys.stderr,
    )
    return 0
