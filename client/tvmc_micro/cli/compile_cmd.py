"""`tvmc compile MODEL -o model.tar`: TFLite/ONNX to Model Library Format."""

from __future__ import annotations

import argparse
import sys


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "compile",
        help="compile a TFLite or ONNX model into Model Library Format (MLF)",
        description="Compile a TFLite or ONNX model into a Model Library Format tar: plain C kernels, an "
        "executor over one static arena, the C interface header, metadata and the device runtime.",
    )
    p.add_argument("model", help="the model file (.tflite or .onnx; the format is read from the content)")
    p.add_argument(
        "-o", "--output", default="module.tar", help="the MLF tar (or .so) to write (default: module.tar)"
    )
    p.add_argument(
        "-f",
        "--output-format",
        choices=("mlf", "so"),
        default="mlf",
        help="mlf: Model Library Format tar (default); so: a host shared library of the model for "
        "ctypes/dlopen (exports tvmgen_<name>_run and tvmgen_<name>_metadata_json)",
    )
    p.add_argument(
        "--emit-library",
        action="store_true",
        help="also build lib/lib<name>.a into the MLF with the target's compiler "
        "(arm-none-eabi-gcc for -mcpu=cortex-*, the host cc for c)",
    )
    p.add_argument(
        "--io-buffers",
        choices=("arena", "separate"),
        default="arena",
        help="arena: the model's inputs and outputs live in the arena, shared with what is not live at "
        "the same time (the header gives pointers to them; default); separate: in buffers the caller "
        "owns, outside the arena",
    )
    p.add_argument(
        "--kernel-weights",
        choices=("int8", "int16"),
        default="int8",
        help="int8: weights as in the model (default); int16: on DSP Cortex-M targets (-mcpu=cortex-m4, "
        "m7, m33, ...) the int8 conv and fully connected kernels read weights widened to int16 at compile "
        "time (no SXTB16 per use: fewer instructions, those weights take twice the flash)",
    )
    p.add_argument(
        "--target",
        default="c",
        help='"c" (host C, default) or "c -mcpu=cortex-m4" (also cortex-m0, -m3, -m7, -m33, -m55, ...)',
    )
    p.add_argument("--model-name", help="C name of the model (prefix tvmgen_<name>); default: the file name")
    p.add_argument(
        "--model-format",
        choices=("tflite", "onnx"),
        help="assert the model's format (default: from the file)",
    )
    p.add_argument(
        "--input-shapes",
        action="append",
        metavar="NAME:[D0,D1,...]",
        help="fix an input's shape (needed for ONNX symbolic dimensions); repeat for several inputs",
    )
    p.add_argument(
        "--pass-config",
        action="append",
        metavar="KEY=VALUE",
        help="TVM PassContext option, e.g. tirx.disable_vectorize=1 (repeatable)",
    )
    p.add_argument("--desired-layout", choices=("NCHW", "NHWC"), help="convert convolutions to this layout")
    p.add_argument(
        "--allow-float-fallback",
        action="store_true",
        help="compile int8 models the integer path cannot handle through float32 (dequantize/quantize)",
    )
    p.add_argument(
        "--tuning-records",
        metavar="FILE",
        help="records of tvmc tune: the best measured config of each task is applied (docs/tuning.md)",
    )
    p.add_argument("--json", metavar="FILE", help="also write a summary as JSON (docs/json-output.md)")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="no progress lines")
    from tvmc_micro.cli.v018_flags import add_compile_flags

    add_compile_flags(p)
    p.set_defaults(func=run)


def parse_pass_config(items: list[str] | None) -> dict[str, object]:
    from tvmc_micro.compiler.errors import CompileOptionError

    config: dict[str, object] = {}
    for item in items or []:
        if "=" not in item:
            raise CompileOptionError(
                f"--pass-config {item!r} is not KEY=VALUE", "e.g. --pass-config tirx.disable_vectorize=1"
            )
        key, value = item.split("=", 1)
        lowered = value.strip().lower()
        parsed: object = value
        if lowered in ("true", "false"):
            parsed = lowered == "true"
        else:
            try:
                parsed = int(value)
            except ValueError:
                parsed = value
        config[key.strip()] = parsed
    return config


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from tvmc_micro.cli.v018_flags import apply_compile_flags, translate_pass_config
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import CompileOptionError
    from tvmc_micro.compiler.graph_info import parse_input_shapes

    quiet = bool(getattr(args, "quiet", False))

    def progress(msg: str) -> None:
        if not quiet or msg.startswith("note:"):
            print(f"tvmc compile: {msg}", file=sys.stderr, flush=True)

    if args.json is not None:
        from tvmc_micro.json_output import check_writable

        check_writable(args.json)

    v018 = apply_compile_flags(args)
    pass_config = translate_pass_config(parse_pass_config(args.pass_config), v018.notes)
    if v018.model_name is not None and args.model_name is not None and v018.model_name != args.model_name:
        raise CompileOptionError(
            f"--module-name {v018.model_name!r} and --model-name {args.model_name!r} disagree",
            "give one of them (--module-name is tvmc v0.18's spelling of --model-name)",
        )
    for note in dict.fromkeys(v018.notes):
        progress(f"note: {note}")
    target = " ".join([args.target, *v018.target_words])
    kernel_configs, tuning_source = None, None
    if args.tuning_records is not None:
        from tvmc_micro.tune.apply import configs_for_compile

        kernel_configs, tuning_source = configs_for_compile(Path(args.tuning_records), target, progress)
    result = compile_model(
        Path(args.model),
        Path(args.output),
        target=target,
        model_name=args.model_name if args.model_name is not None else v018.model_name,
        input_shapes=parse_input_shapes(args.input_shapes),
        pass_config=pass_config,
        disabled_passes=v018.disabled_passes,
        desired_layout=args.desired_layout,
        model_format=args.model_format,
        allow_float_fallback=args.allow_float_fallback,
        output_format=args.output_format,
        emit_library=args.emit_library,
        kernel_configs=kernel_configs,
        tuning_source=tuning_source,
        io_buffers=args.io_buffers,
        kernel_weights=args.kernel_weights,
        progress=progress,
    )
    if args.tuning_records is not None:
        from tvmc_micro.tune.apply import applied_note

        progress(applied_note(result.metadata, kernel_configs or {}))
    if args.json is not None:
        from tvmc_micro.json_output import write_json

        model = result.metadata["models"][0]
        memory = dict(model["memory"])
        write_json(
            args.json,
            {
                "schema": "tvmc-micro/compile/1",
                "output": str(result.output_path),
                "output_format": args.output_format,
                "model": {
                    k: model[k]
                    for k in ("name", "source", "target", "signature", "compute_path", "inputs", "outputs")
                },
                "memory": memory,
                "operators": len(model["operators"]),
                "macs": sum(int(op.get("macs") or 0) for op in model["operators"]),
                "timing_sec": result.timing,
                "notes": list(result.notes),
            },
        )
    return 0
