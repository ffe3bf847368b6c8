"""`tvmc micro rpc SERVER_OR_PROJECT METHOD [JSON_PARAMS]`: call one Project API method, print the result.

For debugging a server by hand: the result is printed as JSON on stdout; an error reply is reported with
its type, message and hint (and the server-side traceback with -v). Options given with --project-option
are merged into params.options; methods that take options get `{}` when none are given, and
server_info_query gets this tvmc's TVM version when no params are given.
"""

from __future__ import annotations

import argparse

OPTION_TAKING = ("generate_project", "build", "flash", "open_transport")


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "rpc",
        help="call one Project API method on a server and print the result as JSON",
        description="Launch the Project API server of a project or template directory (or a server file), "
        "call METHOD with JSON_PARAMS, print the result as JSON, and stop the server.",
    )
    p.add_argument(
        "server", metavar="SERVER_OR_PROJECT_DIR", help="project/template dir or microtvm_api_server.py"
    )
    p.add_argument("method", metavar="METHOD", help="e.g. server_info_query, build, flash")
    p.add_argument(
        "params",
        metavar="JSON_PARAMS",
        nargs="?",
        default=None,
        help='parameters as a JSON object, e.g. \'{"tvm_version": "0.27"}\'',
    )
    p.add_argument(
        "--project-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a project option to put into params.options (repeatable)",
    )
    p.add_argument("--interpreter", help="run a Python server with this interpreter (default: tvmc's own)")
    p.add_argument(
        "--style",
        choices=("auto", "stdio", "fds"),
        default="auto",
        help="stdio, or v0.18 --read-fd/--write-fd pipes (default: detect)",
    )
    p.add_argument("--timeout", type=float, default=None, help="deadline for the call in seconds")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys

    from microtvm_api.client import ProjectAPIClient
    from microtvm_api.errors import ProjectAPIError
    from microtvm_api.options import parse_key_values

    from tvmc_micro.errors import TvmcError

    params = _parse_params(args.params, TvmcError)
    if args.project_option:
        options = params.setdefault("options", {})
        if not isinstance(options, dict):
            raise TvmcError('"options" in JSON_PARAMS must be an object', 'write {"options": {...}}')
        try:
            options.update(parse_key_values(args.project_option))
        except ProjectAPIError as err:
            raise TvmcError(err.message, err.hint) from None
    if args.method in OPTION_TAKING:
        params.setdefault("options", {})
    try:
        with ProjectAPIClient.launch(
            args.server, interpreter=args.interpreter, style=args.style, debug=args.verbose >= 2
        ) as client:
            if args.method == "server_info_query" and not params:
                from microtvm_api.client import _tvm_version

                params = {"tvm_version": _tvm_version()}
            kwargs = {} if args.timeout is None else {"timeout_sec": args.timeout}
            result = client.call(args.method, params, **kwargs)
    except ProjectAPIError as err:
        if args.verbose and err.remote_traceback:
            print("--- server-side traceback ---\n" + err.remote_traceback.rstrip(), file=sys.stderr)
        kind = err.remote_type or type(err).__name__
        raise TvmcError(f"{kind}: {err.message}", err.hint) from err
    json.dump(result, sys.stdout, indent=2, sort_keys=True)
    sys.stdout.write("\n")
    return 0


def _parse_params(text: str | None, error: type[Exception]) -> dict[str, object]:
    import json

    if text is None or not text.strip():
        return {}
    try:
        params = json.loads(text)
    except ValueError as err:
        raise error(
            f"JSON_PARAMS is not valid JSON: {err}", 'quote it for the shell: \'{"key": "value"}\''
        ) from None
    if not isinstance(params, dict):
        raise error(
            f"JSON_PARAMS must be a JSON object, got {type(params).__name__}",
            'write the parameters by name: \'{"n": 10, "timeout_sec": 1.0}\'',
        )
    return params
