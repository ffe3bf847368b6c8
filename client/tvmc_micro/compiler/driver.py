"""compile_model: model file -> MLF tar (contract C2). Each step lives in its own module."""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tvmc_micro.compiler.errors import CompileOptionError, InputShapeError, LoweringError
from tvmc_micro.compiler.naming import is_c_identifier, sanitize_c_identifier, unique_names

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


@dataclass
class CompileResult:
    metadata: dict[str, Any]
    output_path: Path
    timing: dict[str, float] = field(default_factory=dict)  # seconds per phase, plus "total"
    notes: list[str] = field(default_factory=list)  # things the user should know (renamed model, ...)


def _check_output_path(output_path: Path) -> None:
    if output_path.is_dir():
        raise CompileOptionError(
            f"output path {output_path} is a directory", "give a file name, e.g. model.tar"
        )
    parent = output_path.parent
    if not parent.is_dir():
        raise CompileOptionError(
            f"cannot write {output_path}: directory {parent} does not exist",
            f"create it first (mkdir -p {parent}) or choose another -o path",
        )


def _model_name(requested: str | None, path: Path, notes: list[str]) -> str:
    raw = requested if requested is not None else path.stem
    name = sanitize_c_identifier(raw, fallback="model")
    if name != raw or not is_c_identifier(name):
        what = "--model-name" if requested is not None else f"the file name {path.name!r}"
        notes.append(f"model name {raw!r} (from {what}) is not a C identifier; using {name!r}")
    return name


def compile_model(
    model_path: str | Path,
    output_path: str | Path,
    *,
    target: str = "c",
    model_name: str | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    pass_config: dict[str, Any] | None = None,
    desired_layout: str | None = None,
    model_format: str | None = None,
    allow_float_fallback: bool = False,
    integer_path: bool = True,
    progress: Progress | None = None,
) -> CompileResult:
    """Compile a TFLite/ONNX model into a Model Library Format tar at `output_path`.

    `integer_path=False` compiles int8 TFLite models through the float (QDQ) path on purpose (tests and
    comparisons); by default the integer importer is used when it is installed.
    """
    from tvmc_micro.compiler.model_file import load_model_file
    from tvmc_micro.compiler.targets import parse_target

    say = progress or (lambda msg: log.info("%s", msg))
    t_start = time.perf_counter()
    timing: dict[str, float] = {}
    notes: list[str] = []
    model_path, output_path = Path(model_path), Path(output_path)
    input_shapes = dict(input_shapes or {})
    pass_config = dict(pass_config or {})

    _check_output_path(output_path)
    parsed_target = parse_target(target)
    mf = load_model_file(model_path, model_format)
    name = _model_name(model_name, model_path, notes)
    for note in notes:
        say(f"note: {note}")

    import tvm

    from tvmc_micro import __version__ as tool_version
    from tvmc_micro.compiler import c_emit, mlf
    from tvmc_micro.compiler.executor import bind_state, build_executor_graph, parse_state_attr
    from tvmc_micro.compiler.frontend import import_model
    from tvmc_micro.compiler.graph_info import onnx_census, tflite_census
    from tvmc_micro.compiler.planner import Interval, plan_arena
    from tvmc_micro.compiler.relax_passes import lower_to_flat_main
    from tvmc_micro.compiler.schedule import inplace_pairs, schedule_primfunc
    from tvmc_micro.compiler.tir_codegen import lower_kernels

    tvm_target = tvm.target.Target(parsed_target.target)

    # 1. What the model says about itself; unsupported operators are all reported here.
    t0 = time.perf_counter()
    if mf.format == "tflite":
        info = tflite_census(mf)
        names = [t.name for t in info.inputs]
        for key in input_shapes:
            if key not in names:
                raise InputShapeError(
                    f"--input-shapes names {key!r}, which is not an input of the model",
                    "the model's inputs are: " + ", ".join(repr(n) for n in names),
                )
    else:
        info = onnx_census(mf, input_shapes)
    say(
        f"read {mf.path.name}: {mf.format}, {info.operator_count} operators, "
        f"{len(info.inputs)} input(s), {len(info.outputs)} output(s)"
    )

    # 2. Frontend and the Relax pass list.
    relax_mod, path_kind = import_model(mf, info, name, input_shapes, allow_float_fallback, integer_path)
    timing["import"] = time.perf_counter() - t0
    if path_kind == "qdq":
        notes.append("int8 model compiled through the float (QDQ) path: activations are float32 inside")
        say(f"note: {notes[-1]}")
    t0 = time.perf_counter()
    try:
        with tvm.transform.PassContext(opt_level=3, config=pass_config):
            flat = lower_to_flat_main(relax_mod, tvm_target, desired_layout)
    except (CompileOptionError, LoweringError):
        raise
    except Exception as err:
        raise _wrap("Relax lowering", err, pass_config) from err
    graph = build_executor_graph(flat)
    # Model state (TFLite variable tensors) lives in the executor's persistent buffer, not the arena.
    state_rows = parse_state_attr(relax_mod["main"])
    placed = bind_state(graph, [r["name"] for r in state_rows])
    state_slots = [
        c_emit.StateSlot(off, graph.tensors[tid].nbytes, int(row["reset_byte"]), row["name"])
        for (off, tid), row in zip(placed, state_rows, strict=True)
    ]
    timing["relax"] = time.perf_counter() - t0
    say(f"lowered to {len(graph.calls)} fused operators")

    # 3. Schedule and generate the kernels.
    t0 = time.perf_counter()
    used = list(dict.fromkeys(c.func for c in graph.calls))
    scheduled = {fn: schedule_primfunc(flat[fn]) for fn in used}
    symbols = dict(zip(used, (f"tvmgen_{name}_{s}" for s in unique_names(used)), strict=True))
    try:
        kernel_src, kernels = lower_kernels(scheduled, symbols, tvm_target, pass_config)
    except (LoweringError, CompileOptionError):
        raise
    except Exception as err:
        raise _wrap("kernel code generation", err, pass_config) from err
    timing["codegen"] = time.perf_counter() - t0

    # 4. Workspaces become arena tensors live during their call; then plan the arena.
    t0 = time.perf_counter()
    n_calls = len(graph.calls)
    workspace_ids: list[list[int]] = []
    for k, call in enumerate(graph.calls):
        ids = []
        for j, ws in enumerate(kernels[call.func].workspaces):
            elems = ws.nbytes // max(1, tvm.DataType(ws.dtype).bits // 8)
            ids.append(graph.add(shape=(elems,), dtype=ws.dtype, kind="workspace", name=f"ws{k}_{j}"))
        workspace_ids.append(ids)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for k, call in enumerate(graph.calls):
        for tid in call.args + workspace_ids[k]:
            if graph.tensors[tid].kind in ("intermediate", "workspace"):
                first.setdefault(tid, k)
                last[tid] = k
    for tid in graph.outputs:
        if graph.tensors[tid].kind == "intermediate":
            last[tid] = n_calls
            first.setdefault(tid, n_calls)
    intervals = [Interval(t, graph.tensors[t].nbytes, first[t], last[t]) for t in first]
    pairs = []
    model_outputs = set(graph.outputs)
    for call in graph.calls:
        declared = [(o, i, 0) for o, i in inplace_pairs(scheduled[call.func])] + kernels[call.func].inplace
        for out_i, in_i, lead in declared:
            out_t, in_t = call.args[out_i], call.args[in_i]
            if (
                graph.tensors[out_t].kind == "intermediate"
                and graph.tensors[in_t].kind == "intermediate"
                and in_t not in model_outputs
                and call.args.count(in_t) == 1
            ):
                pairs.append((out_t, in_t, lead))
    # Merging a pair is greedy: a shifted (lead > 0) pair can make a group that packs worse than the
    # two tensors apart, so the plan without those pairs is tried too and the smaller arena kept.
    plan = min(
        (plan_arena(intervals, c) for c in (pairs, [p for p in pairs if p[2] == 0])), key=lambda p: p.size
    )
    timing["plan"] = time.perf_counter() - t0

    # 5. C sources, header, metadata, tar.
    in_names = unique_names([t.name for t in info.inputs]) if len(info.inputs) == len(graph.inputs) else None
    if in_names is None or len(info.outputs) != len(graph.outputs):
        raise LoweringError(
            f"the compiled graph has {len(graph.inputs)} inputs/{len(graph.outputs)} outputs but the model "
            f"declares {len(info.inputs)}/{len(info.outputs)}",
            "report this model; it may have unused inputs or constant outputs",
        )
    out_names = unique_names([t.name for t in info.outputs])
    inputs = [
        c_emit.IoName(graph.tensors[t], info.inputs[i].name, in_names[i]) for i, t in enumerate(graph.inputs)
    ]
    # An output that is a reshape view of its producer keeps the shape `main` declares for it (the
    # bytes are the producer's, in the same order).
    outputs = [
        c_emit.IoName(
            dataclasses.replace(graph.tensors[t], shape=graph.output_shapes[i]),
            info.outputs[i].name,
            out_names[i],
        )
        for i, t in enumerate(graph.outputs)
    ]
    _check_io_types(inputs, info.inputs, "input")
    _check_io_types(outputs, info.outputs, "output")
    steps = []
    for k, call in enumerate(graph.calls):
        ker = kernels[call.func]
        args = [
            c_emit.tensor_expr(name, graph.tensors[t], plan, inputs, outputs)
            for t in call.args + workspace_ids[k]
        ]
        if len(args) != len(ker.param_dtypes):
            raise LoweringError(
                f"kernel {ker.symbol} takes {len(ker.param_dtypes)} pointers, the graph passes {len(args)}",
                "report this model (internal error)",
            )
        steps.append(c_emit.KernelStep(ker.symbol, ker, args))

    runtime = mlf.runtime_files()
    options = {
        "target": parsed_target.target,
        "model_name": name,
        "input_shapes": input_shapes,
        "pass_config": {k: str(v) for k, v in pass_config.items()},
        "desired_layout": desired_layout,
        "path": path_kind,
    }
    sig = mlf.signature(mf.sha256, options, tvm.__version__, tool_version, runtime)
    constants_bytes = sum(t.nbytes for t in graph.tensors if t.kind == "constant")
    io_bytes = sum(io.tensor.nbytes for io in inputs + outputs)

    def io_meta(ios: list[c_emit.IoName], infos: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                "name": io.name,
                "c_name": io.c_name,
                "shape": list(io.tensor.shape),
                "dtype": io.tensor.dtype,
                "size_bytes": io.tensor.nbytes,
                "quantization": src.quantization,
            }
            for io, src in zip(ios, infos, strict=True)
        ]

    model_meta = {
        "name": name,
        "export_datetime": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": {"file": mf.path.name, "format": mf.format, "sha256": mf.sha256},
        "target": parsed_target.target,
        "target_str": parsed_target.target_str,
        "executor": "aot",
        "signature": sig,
        "compute_path": path_kind,
        "memory": {
            "arena_bytes": plan.size,
            "constants_bytes": constants_bytes,
            "activation_lower_bound_bytes": info.activation_lower_bound_bytes,
            "io_bytes": io_bytes,
            "state_bytes": c_emit.state_size(state_slots),
        },
        "inputs": io_meta(inputs, info.inputs),
        "outputs": io_meta(outputs, info.outputs),
        "state": [
            {
                "name": row["name"],
                "shape": row["shape"],
                "dtype": row["dtype"],
                "size_bytes": slot.nbytes,
                "offset": slot.offset,
                "reset_byte": slot.reset_byte,
                "quantization": row["quantization"],
            }
            for row, slot in zip(state_rows, state_slots, strict=True)
        ],
        "operators": [
            {"index": k, "name": call.func, "function": kernels[call.func].symbol}
            for k, call in enumerate(graph.calls)
        ],
    }
    metadata = {
        "mlf_version": mlf.MLF_VERSION,
        "tool": {"name": mlf.TOOL_NAME, "version": tool_version, "tvm_version": tvm.__version__},
        "models": [model_meta],
    }
    files: dict[str, bytes] = {
        "metadata.json": (json.dumps(metadata, indent=2) + "\n").encode(),
        f"codegen/host/include/tvmgen_{name}.h": c_emit.header(
            name, plan.size, inputs, outputs, state_slots
        ).encode(),
        f"codegen/host/src/tvmgen_{name}_lib0.c": kernel_src.encode(),
        f"codegen/host/src/tvmgen_{name}_executor.c": c_emit.executor(
            name, graph, plan, steps, inputs, outputs, state_slots
        ).encode(),
        f"codegen/host/src/tvmgen_{name}_constants.c": c_emit.constants(name, graph).encode(),
        f"src/{name}.relax": relax_mod.script().encode(),
        f"parameters/{name}.params.npz": _npz(graph),
    }
    files.update({f"runtime/{k}": v for k, v in runtime.items()})
    mlf.write_tar(output_path, files)
    timing["total"] = time.perf_counter() - t_start
    say(
        f"wrote {output_path}: arena {plan.size} B "
        f"(activation lower bound {info.activation_lower_bound_bytes} B), "
        f"constants {constants_bytes} B, "
        + (f"state {c_emit.state_size(state_slots)} B, " if state_slots else "")
        + f"{len(graph.calls)} operators, {timing['total']:.1f} s"
    )
    return CompileResult(metadata=metadata, output_path=output_path, timing=timing, notes=notes)


def _check_io_types(ios: list[Any], infos: list[Any], what: str) -> None:
    for io, src in zip(ios, infos, strict=True):
        # A model output made by a reshape that only drops or adds unit dims (MEAN without keep_dims, a
        # squeeze) is an alias of its producer's buffer: same bytes in the same order, so the model's shape
        # stands. Anything else (a transposed layout) must match exactly.
        same_data = [d for d in io.tensor.shape if d != 1] == [d for d in src.shape if d != 1]
        if src.shape and (not same_data or io.tensor.dtype != src.dtype):
            raise LoweringError(
                f"model {what} {src.name!r} is {src.dtype}{src.shape} but the compiled graph has "
                f"{io.tensor.dtype}{list(io.tensor.shape)}",
                "check --input-shapes; if it is right, report this model",
            )


def _npz(graph: Any) -> bytes:
    import io

    import numpy as np

    buf = io.BytesIO()
    np.savez(buf, **{t.name: t.constant for t in graph.tensors if t.kind == "constant"})
    return buf.getvalue()


def _wrap(stage: str, err: Exception, pass_config: dict[str, Any]) -> Exception:
    from tvmc_micro.compiler.frontend import _first_line

    text = _first_line(err)
    if pass_config and ("config" in text.lower() or "option" in text.lower()):
        return CompileOptionError(
            f"--pass-config rejected by TVM: {text[:240]}{'...' if len(text) > 240 else ''}",
            "check the key names (e.g. tirx.disable_vectorize=1); run with -v for the full list",
        )
    return LoweringError(f"{stage} failed: {text}", "run with -v for the TVM traceback and report the model")
