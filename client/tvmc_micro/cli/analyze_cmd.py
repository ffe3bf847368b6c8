"""`tvmc analyze MODEL_OR_MLF`: MACs, flash, RAM and the arena timeline of a compiled model (no device)."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "analyze",
        help="MACs per layer, flash, RAM and the arena timeline of a model or MLF (no device needed)",
        description="Report what a compiled model costs: MACs per operator and in total, weights per "
        "operator (flash), arena / I/O / state (RAM) beside the activation lower bound, and which tensor "
        "occupies which arena bytes at each step. A .tflite/.onnx model is compiled first (--target).",
    )
    p.add_argument(
        "model",
        metavar="MODEL_OR_MLF",
        help="an MLF tar from tvmc compile, a .tflite/.onnx model, or a generated project directory",
    )
    p.add_argument(
        "--build",
        metavar="DIR_OR_JSON",
        help="a built project directory or the file of `tvmc micro build --json`: adds the image's code "
        "size (binutils size) and stack estimate (default: the project's own build when MODEL_OR_MLF is "
        "a project directory)",
    )
    p.add_argument("--target", default="c", help="target to compile a model file for (default: c)")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML page (inline SVG)")
    p.add_argument("--json", metavar="FILE", help="write the analysis as JSON (docs/json-output.md)")
    p.add_argument(
        "--png", metavar="FILE", help="write the arena timeline and MACs as a PNG (needs matplotlib)"
    )
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from tvmc_micro.analyze import format_report, load_model_entry, render_html, report
    from tvmc_micro.analyze_plot import require_matplotlib, write_png
    from tvmc_micro.build_sizes import load_build_sizes, read_project_sizes
    from tvmc_micro.errors import TvmcError
    from tvmc_micro.json_output import check_writable, write_json

    quiet = bool(getattr(args, "quiet", False))

    def progress(msg: str) -> None:
        if not quiet:
            print(f"tvmc analyze: {msg}", file=sys.stderr, flush=True)

    for out in (args.html, args.json, args.png):
        if out is not None:
            check_writable(out)
    if args.png is not None:
        require_matplotlib()  # before a model is compiled: fail in a second, not after a minute
    sizes, built_model = None, None
    if args.build is not None:
        sizes, built_model = load_build_sizes(args.build)
    model, what = load_model_entry(args.model, args.target, progress)
    if built_model is not None and built_model != model["name"]:
        raise TvmcError(
            f"--build {args.build} is a build of model {built_model!r}, not of {model['name']!r}",
            "give the build of a project made from this model (tvmc micro create-project DIR MLF ...)",
        )
    if args.build is None and Path(args.model).is_dir():
        sizes = read_project_sizes(Path(args.model))  # None until the project is built
    r = report(model, what, sizes)
    print(format_report(r))
    if args.json is not None:
        write_json(args.json, r)
        progress(f"wrote {args.json}")
    if args.html is not None:
        Path(args.html).write_text(render_html(r), encoding="utf-8")
        progress(f"wrote {args.html}")
    if args.png is not None:
        write_png(r, args.png)
        progress(f"wrote {args.png}")
    return 0
