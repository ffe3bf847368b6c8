"""`tvmc run --device micro PROJECT_DIR`: run the flashed model on the device, print outputs and time."""

from __future__ import annotations

import argparse
from typing import Any

from tvmc_micro.cli.common import add_project_option_arg


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run the model flashed on a device (through its project) and show outputs and time",
        description="Open a session with the firmware of PROJECT_DIR through its Project API server, check "
        "that the device runs this project's model (signature), set the inputs, run, and read the outputs. "
        "Never re-flashes: run `tvmc micro flash PROJECT_DIR` after a build. With --rpc-tracker and "
        "--rpc-key the model runs on a board-farm worker instead (docs/tuning.md): the worker builds and "
        "flashes the project's model.tar with the project's options on its own device, then runs as here.",
    )
    p.add_argument("project_dir", metavar="PROJECT_DIR", help="a project made by tvmc micro create-project")
    p.add_argument("--device", choices=("micro",), default="micro", help="only 'micro' (default)")
    p.add_argument(
        "-i",
        "--inputs",
        metavar="FILE.npz|DIR",
        help="inputs by name (default: --fill-mode); a batch of N samples when every array has a leading "
        "dimension N, or a directory of such .npz files (each sample is run and, with --validate, checked)",
    )
    p.add_argument(
        "--samples",
        type=int,
        metavar="N",
        help="run N inputs made by --fill-mode (with --seed) instead of -i",
    )
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
    p.add_argument(
        "--profile",
        action="store_true",
        help="per operator: source operators, output shape, MACs, instructions/cycles/time, share, per MAC, "
        "weight bytes and arena bytes live during it, with totals",
    )
    p.add_argument(
        "--cpu-freq",
        type=float,
        metavar="HZ",
        help="core clock (e.g. 80e6) to turn instruction or cycle counts into estimated milliseconds "
        "(default: the board's clock_hz in its boards.yaml); printed as an estimate",
    )
    p.add_argument("--json", metavar="FILE", help="also write the results as JSON (docs/json-output.md)")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines")
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
    p.add_argument(
        "--rpc-tracker",
        metavar="HOST:PORT",
        help="run on a worker of this RPC tracker (tvmc micro rpc-worker) instead of this machine's device",
    )
    p.add_argument("--rpc-key", metavar="KEY", help="the workers' key, e.g. cortex_m.mps2_an386")
    p.add_argument(
        "--rpc-timeout",
        type=float,
        default=30.0,
        metavar="SEC",
        help="how long to wait for a free worker of --rpc-key (default 30)",
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
        load_samples,
        profile_rows,
        run_on_device,
        save_outputs,
        timing_summary,
    )

    # Farm flags first: a usage error is reported before the project is read.
    if (args.rpc_tracker is None) != (args.rpc_key is None):
        raise TvmcError(
            "--rpc-tracker and --rpc-key go together",
            "e.g. --rpc-tracker 127.0.0.1:9190 --rpc-key cortex_m.mps2_an386",
        )
    tracker = None
    if args.rpc_tracker is not None:
        from tvmc_micro.tune.farm import parse_address

        tracker = parse_address(args.rpc_tracker)
        if not args.rpc_key.strip():
            raise TvmcError("--rpc-key must not be empty", "e.g. --rpc-key cortex_m.mps2_an386")
        if not 0 < args.rpc_timeout <= 86400:
            raise TvmcError(
                f"--rpc-timeout must be a number of seconds in (0, 86400], got {args.rpc_timeout:g}"
            )
    project_dir = require_project(args.project_dir)
    if args.repeat < 1:
        raise TvmcError(f"--repeat must be at least 1, got {args.repeat}")
    if args.print_top is not None and args.print_top < 1:
        raise TvmcError(f"--print-top must be at least 1, got {args.print_top}")
    if args.samples is not None and args.samples < 1:
        raise TvmcError(f"--samples must be at least 1, got {args.samples}")
    if args.samples is not None and args.inputs is not None:
        raise TvmcError("--samples and -i cannot be combined", "-i FILE.npz or -i DIR, or --samples N alone")
    if args.cpu_freq is not None and not (args.cpu_freq > 0 and args.cpu_freq < 1e11):
        raise TvmcError(f"--cpu-freq must be a clock in Hz (e.g. 80e6), got {args.cpu_freq:g}")
    if args.validate_tolerance is not None and not args.validate_tolerance >= 0:
        raise TvmcError(f"--validate-tolerance must be >= 0, got {args.validate_tolerance}")
    if args.validate_tolerance is not None and args.validate is None:
        raise TvmcError("--validate-tolerance needs --validate MODEL")
    if args.json is not None:
        from tvmc_micro.json_output import check_writable

        check_writable(args.json)
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
    quiet = bool(getattr(args, "quiet", False))

    def progress(msg: str) -> None:
        if not quiet:
            print(f"tvmc run: {msg}", file=sys.stderr, flush=True)

    def samples(model: dict[str, Any]) -> Any:
        return load_samples(model["inputs"], args.inputs, args.samples, args.fill_mode, args.seed)

    worker = None
    if tracker is not None:
        from tvmc_micro.tune.farm_run import run_on_farm

        result, worker = run_on_farm(
            project_dir,
            tracker,
            args.rpc_key,
            options,
            samples,
            repeat=args.repeat,
            print_time=args.print_time,
            profile=args.profile,
            wait_sec=args.rpc_timeout,
            verbose=args.verbose,
            progress=progress,
        )
    else:
        result = run_on_device(
            project_dir,
            options,
            samples,
            repeat=args.repeat,
            print_time=args.print_time,
            profile=args.profile,
            verbose=args.verbose,
            platform=args.platform,
            progress=progress,
        )
    samples_out = result.samples_outputs or [result.outputs]
    samples_in = result.samples_inputs or [result.inputs or []]
    if args.outputs:
        if len(samples_out) > 1:  # a batch: each output stacked over samples (leading dimension N)
            save_outputs(args.outputs, {k: np.stack([o[k] for o in samples_out]) for k in result.outputs})
        else:
            save_outputs(args.outputs, result.outputs)
        print(f"outputs written to {args.outputs}", file=sys.stderr)
    if args.print_top:
        print(format_top(result.outputs, result.model["outputs"], args.print_top))
    if result.timing is not None:
        print(format_timing(result.timing, result.counter, args.cpu_freq))
    if result.profile is not None:
        print(format_profile(result.profile, result.model, result.counter))
    if not (args.outputs or args.print_top or args.print_time or args.profile or args.validate or args.json):
        with np.printoptions(threshold=64, edgeitems=8):
            for name, value in result.outputs.items():
                print(f"{name}: {value}")
    status = 0
    aggregate = None
    if args.validate is not None:
        from tvmc_micro.validate import Aggregate, format_aggregate, validate

        checked = []
        for n, (inputs, outputs) in enumerate(zip(samples_in, samples_out, strict=True)):
            checked.append(validate(args.validate, inputs, outputs, result.model, args.validate_tolerance))
            if len(samples_in) > 1 and ((n + 1) % 10 == 0 or n + 1 == len(samples_in)):
                progress(f"validated {n + 1}/{len(samples_in)} samples")
        aggregate = Aggregate(checked[0].reference, len(checked), checked)
        print(format_aggregate(aggregate))
        status = 0 if aggregate.ok else 1
    if args.json is not None:
        from tvmc_micro.json_output import output_summary, write_json

        doc = {
            "schema": "tvmc-micro/run/1",
            "project_dir": str(project_dir),
            "model": {"name": result.model["name"], "signature": result.model["signature"]},
            "device": None
            if result.device is None
            else {
                "model_name": result.device.model_name,
                "protocol_version": list(result.device.protocol_version),
                "timer_hz": result.device.timer_hz,
            },
            "counter": None if result.counter is None else result.counter.as_json(),
            "samples": len(samples_out),
            "outputs": [output_summary(o, result.model["outputs"]) for o in samples_out],
            "timing": None
            if result.timing is None
            else timing_summary(result.timing, result.counter, args.cpu_freq),
            "profile": None
            if result.profile is None
            else profile_rows(result.profile, result.model, result.counter),
            "validation": None if aggregate is None else aggregate.as_json(),
            "worker": worker,
            "exit_status": status,
        }
        write_json(args.json, doc)
    return status
