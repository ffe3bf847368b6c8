"""`tvmc run --device micro PROJECT_DIR`: run the flashed model on the device, print outputs and time."""

from __future__ import annotations

import argparse

from tvmc_micro.cli.common import add_project_option_arg


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the model flashed on a device (through its project) and show outputs and time",
        description="Open a session with the firmware of PROJECT_DIR through its Project API server, check "
        "that the device runs this project's model (signature), set the inputs, run, and read the outputs. "
        "Never re-flashes: run `tvmc micro flash PROJECT_DIR` after a build.",
    )
    p.add_argument("project_dir", metavar="PROJECT_DIR", help="a project made by tvmc micro create-project")
    p.add_argument("--device", choices=("micro",), default="micro", help="only 'micro' (default)")
    p.add_argument("-i", "--inputs", metavar="FILE.npz", help="inputs by name (default: --fill-mode)")
    p.add_argument("-o", "--outputs", metavar="FILE.npz", help="write the outputs here, by name")
    p.add_argument(
        "--fill-mode",
        choices=("zeros", "ones", "random"),
        default="random",
        help="inputs to use without -i (default: random)",
    )
    p.add_argument("--seed", type=int, default=None, help="seed for --fill-mode random")
    p.add_argument("--print-top", type=int, metavar="N", help="print the N largest values of each output")
    p.add_argument("--print-time", action="store_true", help="time the model with the device's own timer")
    p.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="timed runs for --print-time (default 1)"
    )
    p.add_argument("--profile", action="store_true", help="per-operator time on the device")
    p.add_argument(
        "--validate",
        metavar="MODEL",
        help="also run the inputs through MODEL (the .tflite/.onnx the project was compiled from) in its "
        "reference interpreter (tflite-micro for the integer path, LiteRT for other TFLite, onnxruntime "
        "for ONNX) and compare; exit status 1 when an output is outside the tolerance",
    )
    p.add_argument(
        "--validate-tolerance",
        type=float,
        metavar="X",
        help="largest accepted |device - reference| (LSB for integer outputs, relative to the largest "
        "|value| for float ones); default: 0 for TFLite on the integer path, 1 for ONNX integer, 3 for "
        "int8 through float, 1e-5 for float outputs",
    )
    p.add_argument("--list-options", action="store_true", help="list the project's options and exit")
    p.add_argument("--platform", default=None, help=argparse.SUPPRESS)
    add_project_option_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    import numpy as np

    from tvmc_micro.errors import TvmcError
    from tvmc_micro.project import launched, option_values, require_project
    from tvmc_micro.runner import (
        format_profile,
        format_timing,
        format_top,
        make_inputs,
        run_on_device,
        save_outputs,
    )

    project_dir = require_project(args.project_dir)
    if args.repeat < 1:
        raise TvmcError(f"--repeat must be at least 1, got {args.repeat}")
    if args.print_top is not None and args.print_top < 1:
        raise TvmcError(f"--print-top must be at least 1, got {args.print_top}")
    if args.validate_tolerance is not None and not args.validate_tolerance >= 0:
        raise TvmcError(f"--validate-tolerance must be >= 0, got {args.validate_tolerance}")
    if args.validate_tolerance is not None and args.validate is None:
        raise TvmcError("--validate-tolerance needs --validate MODEL")
    if args.validate is not None:
        from pathlib import Path

        from tvmc_micro.validate import model_format_of

        model_format_of(Path(args.validate))  # a missing or wrong file fails before the device is touched
    options = option_values(args.project_option)
    if args.list_options:
        with launched(project_dir, verbose=args.verbose) as (_client, info):
            for o in info.get("project_options", []):
                choices = f" {{{', '.join(map(str, o['choices']))}}}" if o.get("choices") else ""
                print(
                    f"{o['name']} ({o['type']}{choices}, default {o.get('default')!r}): {o.get('help', '')}"
                )
        return 0
    result = run_on_device(
        project_dir,
        options,
        lambda model: make_inputs(model["inputs"], args.inputs, args.fill_mode, args.seed),
        repeat=args.repeat,
        print_time=args.print_time,
        profile=args.profile,
        verbose=args.verbose,
        platform=args.platform,
    )
    if args.outputs:
        save_outputs(args.outputs, result.outputs)
        print(f"outputs written to {args.outputs}", file=sys.stderr)
    if args.print_top:
        print(format_top(result.outputs, result.model["outputs"], args.print_top))
    if result.timing is not None:
        print(format_timing(result.timing))
    if result.profile is not None:
        print(format_profile(result.profile))
    if not (args.outputs or args.print_top or args.print_time or args.profile or args.validate):
        with np.printoptions(threshold=64, edgeitems=8):
            for name, value in result.outputs.items():
                print(f"{name}: {value}")
    if args.validate is not None:
        from tvmc_micro.validate import format_validation, validate

        assert result.inputs is not None
        tolerance = args.validate_tolerance
        checked = validate(args.validate, result.inputs, result.outputs, result.model, tolerance)
        print(format_validation(checked))
        return 0 if checked.ok else 1
    return 0
