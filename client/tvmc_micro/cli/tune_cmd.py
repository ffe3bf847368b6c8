"""`tvmc tune MODEL [PLATFORM] -o RECORDS`: tune the model's kernels on a device (docs/tuning.md)."""

from __future__ import annotations

import argparse

from tvmc_micro.cli.common import add_project_option_arg
from tvmc_micro.platforms import PLATFORM_CHOICES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "tune",
        help="tune the model's kernels, measured on a device, into a records file for tvmc compile",
        description="Measure candidate schedules of the model's kernels on a device (PLATFORM, as in "
        "create-project, or the workers of an RPC tracker) and append one record per candidate to RECORDS; "
        "then: tvmc compile MODEL --tuning-records RECORDS.",
    )
    p.add_argument("model", help="the model file (.tflite or .onnx)")
    p.add_argument(
        "platform",
        metavar="PLATFORM",
        nargs="?",
        choices=PLATFORM_CHOICES,
        help=f"where to measure: {', '.join(PLATFORM_CHOICES)} (not with --rpc-tracker)",
    )
    p.add_argument("-o", "--output", metavar="RECORDS", help="records file (JSON lines), appended to")
    p.add_argument("--target", default="c", help='as for tvmc compile, e.g. "c -mcpu=cortex-m4"')
    p.add_argument("--tuning-records", metavar="PRIOR", help="records of an earlier run to start from")
    p.add_argument("--trials", type=int, default=8, help="candidates measured per task (default 8)")
    p.add_argument(
        "--early-stopping", type=int, metavar="N", help="stop a task after N trials without improvement"
    )
    p.add_argument(
        "--timeout", type=float, default=120.0, help="seconds a candidate may take to build and run"
    )
    p.add_argument("--number", type=int, default=1, help="profiled runs averaged per measurement")
    p.add_argument("--repeat", type=int, default=1, help="measurements per candidate (the best is kept)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search and of the inputs")
    p.add_argument("--rpc-tracker", metavar="HOST:PORT", help="measure on the workers of this RPC tracker")
    p.add_argument("--rpc-key", metavar="KEY", help="the workers' key, e.g. cortex_m.mps2_an386")
    p.add_argument("--template-dir", help="template directory (with PLATFORM 'template')")
    p.add_argument("--input-shapes", action="append", metavar="NAME:[D0,D1,...]", help="as for tvmc compile")
    p.add_argument("--list-tasks", action="store_true", help="list the model's tasks and knobs, then exit")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines")
    add_project_option_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from tvmc_micro import __version__ as tool_version
    from tvmc_micro.compiler.graph_info import parse_input_shapes
    from tvmc_micro.errors import TvmcError
    from tvmc_micro.project import option_values
    from tvmc_micro.tune.records import load_records, select
    from tvmc_micro.tune.tasks import extract_tasks, format_tasks, target_json

    quiet = bool(getattr(args, "quiet", False))

    def say(msg: str) -> None:
        if not quiet or msg.startswith("note:"):
            print(f"tvmc tune: {msg}", file=sys.stderr, flush=True)

    model = Path(args.model)
    if not model.is_file():
        raise TvmcError(f"model file {model} does not exist", "pass a .tflite or .onnx file")
    for name in ("trials", "number", "repeat"):
        if getattr(args, name) < 1:
            raise TvmcError(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.early_stopping is not None and args.early_stopping < 1:
        raise TvmcError(f"--early-stopping must be at least 1, got {args.early_stopping}")
    if not args.timeout > 0:
        raise TvmcError(f"--timeout must be positive, got {args.timeout}")
    if (args.rpc_tracker is None) != (args.rpc_key is None):
        raise TvmcError(
            "--rpc-tracker and --rpc-key go together", "e.g. --rpc-tracker 127.0.0.1:9190 --rpc-key crt_host"
        )
    if not args.list_tasks:
        if args.rpc_tracker is None and args.platform is None:
            raise TvmcError(
                "say where to measure: a PLATFORM or --rpc-tracker/--rpc-key",
                "e.g. tvmc tune M.tflite crt_host -o r.jsonl",
            )
        if args.rpc_tracker is not None and (args.platform is not None or args.project_option):
            raise TvmcError(
                "with --rpc-tracker the workers own the device: drop PLATFORM and --project-option",
                "give them to the workers: tvmc micro rpc-worker ... PLATFORM --project-option ...",
            )
        if args.output is None:
            raise TvmcError("-o/--output RECORDS is required", "e.g. -o records.jsonl")
        out = Path(args.output)
        if out.is_dir() or not out.absolute().parent.is_dir():
            raise TvmcError(f"cannot write records to {out}", "give a file in an existing directory")
    options = option_values(args.project_option)
    mt = extract_tasks(model, args.target, input_shapes=parse_input_shapes(args.input_shapes), progress=say)
    if args.list_tasks:
        print(format_tasks(mt))
        return 0

    from tvmc_micro.tune.measure import DeviceSpec, LocalMeasurer
    from tvmc_micro.tune.search import Measurer, TuneSettings, summary_lines, tune

    measurer: Measurer
    platform: str | None = None
    board: str | None = None
    if args.rpc_tracker is not None:
        from tvmc_micro.tune.farm import FarmMeasurer, parse_address

        measurer = FarmMeasurer(
            parse_address(args.rpc_tracker), args.rpc_key, args.number, args.repeat, args.timeout, say
        )
    else:
        from tvmc_micro.platforms import canonical_platform
        from tvmc_micro.project import template_dir_for

        template_dir_for(args.platform, args.template_dir)  # a wrong --template-dir fails before any work
        platform = canonical_platform(args.platform)
        board = options.get("board")
        measurer = LocalMeasurer(
            DeviceSpec(platform, args.template_dir, options),
            args.number,
            args.repeat,
            args.timeout,
            args.verbose,
        )
    prior = []
    for path in [p for p in (args.tuning_records, args.output) if p is not None]:
        if path == args.output and not Path(path).exists():
            continue
        records, notes = load_records(Path(path))
        kept, why = select(
            records, target=target_json(mt.target), tool_version=tool_version, platform=platform, board=board
        )
        for note in notes + why:
            say(f"note: {note}")
        prior += kept
    if prior:
        say(f"resuming from {len(prior)} record(s): configs measured before are not measured again")
    summary = tune(
        TuneSettings(
            model,
            args.target,
            Path(args.output),
            args.trials,
            args.early_stopping,
            args.seed,
            parse_input_shapes(args.input_shapes),
        ),
        mt,
        measurer,
        prior,
        say,
    )
    print(
        f"tuned {len(summary.best)} task(s) in {summary.rounds} firmware build(s); "
        f"{summary.records_written} record(s) appended to {args.output}"
    )
    print("\n".join(summary_lines(summary, mt)))
    print(f"next: tvmc compile {args.model} --target {args.target!r} --tuning-records {args.output}")
    return 0
