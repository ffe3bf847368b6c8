"""`tvmc micro create-project PROJECT_DIR MLF PLATFORM`: generate a firmware project from a template."""

from __future__ import annotations

import argparse

from tvmc_micro.cli.common import add_project_option_arg
from tvmc_micro.platforms import PLATFORM_CHOICES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "create-project",
        aliases=["create"],
        add_help=False,
        help="generate a firmware project from a model (MLF) and a template",
        description="Generate PROJECT_DIR from the Model Library Format tar MLF and the PLATFORM's template "
        "(crt_host: a host process, no hardware; cortex_m: bare metal under QEMU; zephyr: Zephyr boards; "
        "template: your own, with --template-dir).",
    )
    # --help after a PLATFORM also lists that template's project options (its server is asked only then,
    # so plain `tvmc --help` starts nothing).
    p.add_argument(
        "-h",
        "--help",
        action=_HelpWithTemplateOptions,
        help="show this help and exit; after "
        "PLATFORM (and --template-dir), also list the template's project options",
    )
    p.add_argument("project_dir", metavar="PROJECT_DIR", help="the directory to create")
    p.add_argument("mlf", metavar="MLF", help="model library format tar from tvmc compile")
    p.add_argument("platform", metavar="PLATFORM", choices=PLATFORM_CHOICES, help=", ".join(PLATFORM_CHOICES))
    p.add_argument("--template-dir", help="template directory (with PLATFORM 'template')")
    p.add_argument("-f", "--force", action="store_true", help="replace PROJECT_DIR if it is a project")
    p.add_argument(
        "--list-options",
        action="store_true",
        help="list the template's project options and exit (nothing is created)",
    )
    add_project_option_arg(p)
    p.set_defaults(func=run)


class _HelpWithTemplateOptions(argparse.Action):
    """-h/--help: the usual help, plus the template's options when a PLATFORM was given before it."""

    def __init__(self, option_strings: list[str], dest: str, help: str | None = None) -> None:
        super().__init__(
            option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, nargs=0, help=help
        )

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.print_help()
        platform = getattr(namespace, "platform", None)
        if platform:
            import sys

            try:
                print("\n" + template_options_text(platform, getattr(namespace, "template_dir", None)))
            except Exception as err:  # help must not fail: say why the options are missing
                print(f"\n(cannot list the options of {platform!r}: {err})", file=sys.stderr)
        parser.exit()


def template_options_text(platform: str, template_dir: str | None) -> str:
    """The project options of PLATFORM's template, as its server declares them (starts the server)."""
    from microtvm_api.options import ProjectOption

    from tvmc_micro.project import launched, template_dir_for

    template = template_dir_for(platform, template_dir)
    with launched(template) as (_client, info):
        raw = info.get("project_options") or []
    lines = [f"project options of the {info.get('platform_name')} template ({template}):"]
    if not raw:
        lines.append("  (none)")
    for item in raw:
        try:
            option = ProjectOption.from_json(item)
        except ValueError as err:
            lines.append(f"  (unreadable declaration: {err})")
            continue
        kind = "|".join(map(str, option.choices)) if option.choices else f"<{option.type}>"
        facts = []
        if option.required:
            facts.append(f"required by {', '.join(option.required)}")
        if option.default is not None:
            facts.append(f"default {option.default!r}")
        tail = f" ({'; '.join(facts)})" if facts else ""
        lines.append(f"  --project-option {option.name}={kind}{tail}")
        if option.help:
            lines.append(f"      {option.help}")
    return "\n".join(lines)


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

    if args.list_options:
        print(template_options_text(args.platform, args.template_dir))
        return 0
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
