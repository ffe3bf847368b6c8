"""compile_model: model file -> MLF tar (contract C2), as a pipeline of named stages.

Each stage is a function of one `Compilation`, the record every stage reads and extends, in the order of
`PIPELINE` (as TVM's pass lists read): what a stage needs was set by the ones before it. The heavy work
lives in its own module per stage (graph_info, frontend, relax_passes, schedule, tir_codegen, planner,
c_emit, mlf); this file only wires them and owns the timing and progress lines.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from tvmc_micro.compiler.errors import CompileOptionError, InputShapeError, LoweringError
from tvmc_micro.compiler.naming import is_c_identifier, kernel_symbols, sanitize_c_identifier, unique_names

if TYPE_CHECKING:
    from tvmc_micro.compiler import c_emit
    from tvmc_micro.compiler.executor import ExecutorGraph
    from tvmc_micro.compiler.graph_info import GraphInfo
    from tvmc_micro.compiler.model_file import ModelFile
    from tvmc_micro.compiler.planner import ArenaPlan
    from tvmc_micro.compiler.targets import ParsedTarget

log = logging.getLogger(__name__)
T = TypeVar("T")
Progress = Callable[[str], None]


@dataclass
class CompileResult:
    metadata: dict[str, Any]
    output_path: Path
    timing: dict[str, float] = field(default_factory=dict)  # seconds per stage, plus "total"
    notes: list[str] = field(default_factory=list)  # things the user should know (renamed model, ...)


@dataclass(frozen=True)
class CompileOptions:
    """What the user asked for; recorded in the signature, never changed by a stage."""

    target: str = "c"
    model_name: str | None = None
    input_shapes: dict[str, list[int]] = field(default_factory=dict)
    pass_config: dict[str, Any] = field(default_factory=dict)
    disabled_passes: tuple[str, ...] = ()
    desired_layout: str | None = None
    model_format: str | None = None
    allow_float_fallback: bool = False
    integer_path: bool = True
    output_format: str = "mlf"  # or "so": a host shared library instead of the tar
    emit_library: bool = False  # add lib/lib<name>.a, built with the target's compiler, to the MLF
    # Tuning (docs/tuning.md): schedule knobs per task key (tvmc_micro.tune.tasks.workload_key); a kernel
    # whose task has no entry keeps the hand-set schedule. `tuning_source` ({"file", "sha256"}) names the
    # records they came from, for metadata.json.
    kernel_configs: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    tuning_source: Mapping[str, str] | None = None
    io_buffers: str = "arena"  # "arena": inputs and outputs are planned arena tensors; "separate": caller's
    # The DSP C kernels' weights (ckernels.KERNEL_WEIGHTS): "int16" widens conv/FC weights at compile time.
    kernel_weights: str = "int8"


OUTPUT_FORMATS = ("mlf", "so")
IO_BUFFERS = ("arena", "separate")
KERNEL_WEIGHTS = ("int8", "int16")  # = quantized.ckernels.KERNEL_WEIGHTS (not imported: keeps TVM out)


@dataclass
class Compilation:
    """The state one compile carries from stage to stage. Fields are filled in pipeline order; a stage
    reads only what earlier stages set (`_need` says which stage forgot when one does not)."""

    model_path: Path
    output_path: Path
    options: CompileOptions
    say: Progress
    notes: list[str] = field(default_factory=list)
    # read_model
    target: ParsedTarget | None = None
    model: ModelFile | None = None
    name: str = ""
    info: GraphInfo | None = None
    # import_frontend
    relax_mod: Any = None
    path_kind: str = ""
    float_operators: list[dict[str, Any]] = field(default_factory=list)  # a float island's operators
    # lower_relax
    flat: Any = None
    graph: ExecutorGraph | None = None
    state_rows: list[dict[str, Any]] = field(default_factory=list)
    state_slots: list[c_emit.StateSlot] = field(default_factory=list)
    # generate_kernels
    scheduled: dict[str, Any] = field(default_factory=dict)
    applied_configs: dict[str, dict[str, Any]] = field(default_factory=dict)  # func -> {task, config}
    kernel_src: str = ""
    kernels: dict[str, Any] = field(default_factory=dict)
    # plan_memory
    workspace_ids: list[list[int]] = field(default_factory=list)
    plan: ArenaPlan | None = None
    output_slots: list[int] = field(default_factory=list)  # arena tensor of each output (io_buffers=arena)
    # bind_interface
    inputs: list[c_emit.IoName] = field(default_factory=list)
    outputs: list[c_emit.IoName] = field(default_factory=list)
    steps: list[c_emit.KernelStep] = field(default_factory=list)
    # render_files, build_library
    metadata: dict[str, Any] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)

    def need(self, value: T | None, what: str) -> T:
        if value is None:  # pragma: no cover - a pipeline ordering bug, not a user error
            raise LoweringError(f"internal error: {what} used before the stage that makes it", "report this")
        return value


# --------------------------------------------------------------------------------------------- stages


def read_model(c: Compilation) -> None:
    """Load and check the model file, pick the model's C name, and take its census: inputs, outputs,
    operators (every unsupported operator is reported here, all at once)."""
    from tvmc_micro.compiler.graph_info import onnx_census, tflite_census
    from tvmc_micro.compiler.model_file import load_model_file
    from tvmc_micro.compiler.targets import parse_target

    _check_output_path(c.output_path)
    c.target = parse_target(c.options.target)
    c.model = mf = load_model_file(c.model_path, c.options.model_format)
    c.name = _model_name(c.options.model_name, c.model_path, c.notes)
    for note in c.notes:
        c.say(f"note: {note}")
    if mf.format == "tflite":
        c.info = info = tflite_census(mf)
        names = [t.name for t in info.inputs]
        for key in c.options.input_shapes:
            if key not in names:
                raise InputShapeError(
                    f"--input-shapes names {key!r}, which is not an input of the model",
                    "the model's inputs are: " + ", ".join(repr(n) for n in names),
                )
    else:
        c.info = info = onnx_census(mf, c.options.input_shapes)
    c.say(
        f"read {mf.path.name}: {mf.format}, {info.operator_count} operators, "
        f"{len(info.inputs)} input(s), {len(info.outputs)} output(s)"
    )


def import_frontend(c: Compilation) -> None:
    """The model as a Relax module: our integer importer for quantized models, TVM's frontend otherwise."""
    from tvmc_micro.compiler.frontend import import_model

    o = c.options
    c.relax_mod, c.path_kind = import_model(
        c.need(c.model, "model"),
        c.need(c.info, "census"),
        c.name,
        o.input_shapes,
        o.allow_float_fallback,
        o.integer_path,
    )
    if c.path_kind == "qdq":
        c.notes.append("int8 model compiled through the float (QDQ) path: activations are float32 inside")
        c.say(f"note: {c.notes[-1]}")
    if c.path_kind == "integer":
        # Float operators inside an integer model (DEQUANTIZE -> float ops -> QUANTIZE) run in float32
        # on the integer path, as in TFLite Micro; never silently: the user is told which.
        from tvmc_micro.compiler.quantized.float_island import FLOAT_OPERATORS_ATTR, note

        attrs = c.relax_mod["main"].attrs
        if attrs is not None and FLOAT_OPERATORS_ATTR in attrs:
            c.float_operators = json.loads(str(attrs[FLOAT_OPERATORS_ATTR]))
            c.notes.append(note(c.float_operators))
            c.say(f"note: {c.notes[-1]}")


def lower_relax(c: Compilation) -> None:
    """The Relax pass list down to a flat `main` of kernel calls, then the executor's graph of it, with
    the model's state (TFLite variable tensors) bound to the executor's persistent buffer."""
    import tvm

    from tvmc_micro.compiler import c_emit
    from tvmc_micro.compiler.executor import bind_state, build_executor_graph, parse_state_attr
    from tvmc_micro.compiler.relax_passes import lower_to_flat_main

    target = c.need(c.target, "target")
    try:
        with tvm.transform.PassContext(
            opt_level=3, config=c.options.pass_config, disabled_pass=list(c.options.disabled_passes)
        ):
            c.flat = lower_to_flat_main(
                c.relax_mod, tvm.target.Target(target.target), c.options.desired_layout
            )
    except (CompileOptionError, LoweringError):
        raise
    except Exception as err:
        raise _wrap("Relax lowering", err, c.options.pass_config) from err
    c.graph = graph = build_executor_graph(c.flat)
    c.state_rows = parse_state_attr(c.relax_mod["main"])
    placed = bind_state(graph, [r["name"] for r in c.state_rows])
    c.state_slots = [
        c_emit.StateSlot(off, graph.tensors[tid].nbytes, int(row["reset_byte"]), row["name"])
        for (off, tid), row in zip(placed, c.state_rows, strict=True)
    ]
    c.say(f"lowered to {len(graph.calls)} fused operators")


def generate_kernels(c: Compilation) -> None:
    """Schedule each distinct PrimFunc and generate its C (one `lib0.c`), named `tvmgen_<model>_<op>`."""
    import tvm

    from tvmc_micro.compiler.executor import apply_weight_layouts
    from tvmc_micro.compiler.quantized.ckernel_knobs import with_knobs
    from tvmc_micro.compiler.schedule import schedule_primfunc
    from tvmc_micro.compiler.tir_codegen import lower_kernels

    graph = c.need(c.graph, "executor graph")
    used = list(dict.fromkeys(call.func for call in graph.calls))
    configs = c.options.kernel_configs
    if configs or c.options.tuning_source is not None:
        from tvmc_micro.tune.tasks import workload_key

        target_json = c.need(c.target, "target").target
        for fn in used:
            key = workload_key(c.flat[fn], target_json, fn)
            c.applied_configs[fn] = {"task": key, "config": dict(configs[key]) if key in configs else None}
    # A config carries schedule knobs (TIR kernels) or C-kernel knobs (the int8 DSP kernels' spec).
    cfg = {fn: c.applied_configs.get(fn, {}).get("config") for fn in used}
    c.scheduled = {fn: schedule_primfunc(with_knobs(c.flat[fn], cfg[fn]), cfg[fn]) for fn in used}
    symbols = kernel_symbols(c.name, used)  # never an executor symbol (tvmgen_<model>_run, ...)
    target = tvm.target.Target(c.need(c.target, "target").target)
    try:
        c.kernel_src, c.kernels = lower_kernels(
            c.scheduled, symbols, target, c.options.pass_config, c.options.kernel_weights
        )
    except (LoweringError, CompileOptionError):
        raise
    except Exception as err:
        raise _wrap("kernel code generation", err, c.options.pass_config) from err
    apply_weight_layouts(graph, c.kernels)  # --kernel-weights int16: constants in the kernels' layout


def plan_memory(c: Compilation) -> None:
    """Kernel workspaces become arena tensors live during their call; then one arena for everything
    (liveness over call order, across dtypes, in-place pairs the kernels declare merged). With
    `--io-buffers arena` (the default) the model's inputs and outputs are arena tensors too: an input
    is live from step 0 to its last reader, an output from its producer to the end (step = number of
    calls), so their bytes are shared with what is not live at the same time."""
    import tvm

    from tvmc_micro.compiler.planner import Interval, plan_arena
    from tvmc_micro.compiler.schedule import inplace_pairs

    graph = c.need(c.graph, "executor graph")
    n_calls = len(graph.calls)
    in_arena = c.options.io_buffers == "arena"
    placed_kinds = ("intermediate", "workspace") + (("input", "output") if in_arena else ())
    c.workspace_ids = []
    for k, call in enumerate(graph.calls):
        ids = []
        for j, ws in enumerate(c.kernels[call.func].workspaces):
            elems = ws.nbytes // max(1, tvm.DataType(ws.dtype).bits // 8)
            ids.append(graph.add(shape=(elems,), dtype=ws.dtype, kind="workspace", name=f"ws{k}_{j}"))
        c.workspace_ids.append(ids)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    if in_arena:
        for tid in graph.inputs:  # written by the caller (or copied in) before the first call
            first[tid] = last[tid] = 0
    for k, call in enumerate(graph.calls):
        for tid in call.args + c.workspace_ids[k]:
            if graph.tensors[tid].kind in placed_kinds:
                first.setdefault(tid, k)
                last[tid] = k
    c.output_slots = []
    for i, tid in enumerate(graph.outputs):
        if in_arena and graph.tensors[tid].kind not in placed_kinds:
            # An output that is no arena tensor (a constant) gets an arena slot it is copied into.
            t = graph.tensors[tid]
            tid = graph.add(shape=t.shape, dtype=t.dtype, kind="output", name=f"out{i}", io_index=i)
        c.output_slots.append(tid)
        if graph.tensors[tid].kind in placed_kinds:
            last[tid] = n_calls
            first.setdefault(tid, n_calls)
    intervals = [Interval(t, graph.tensors[t].nbytes, first[t], last[t]) for t in first]
    pairs = []
    model_outputs = set(graph.outputs)
    shareable = ("intermediate", "input", "output") if in_arena else ("intermediate",)
    for call in graph.calls:
        declared = [(o, i, 0) for o, i in inplace_pairs(c.scheduled[call.func])]
        declared += c.kernels[call.func].inplace
        for out_i, in_i, lead in declared:
            out_t, in_t = call.args[out_i], call.args[in_i]
            if (
                graph.tensors[out_t].kind in shareable
                and graph.tensors[in_t].kind in shareable
                and in_t not in model_outputs
                and call.args.count(in_t) == 1
            ):
                pairs.append((out_t, in_t, lead))
    # Merging a pair is greedy: a shifted (lead > 0) pair can make a group that packs worse than the
    # two tensors apart, so the plan without those pairs is tried too and the smaller arena kept.
    c.plan = min(
        (plan_arena(intervals, p) for p in (pairs, [p for p in pairs if p[2] == 0])), key=lambda p: p.size
    )


def bind_interface(c: Compilation) -> None:
    """The C interface: the model's inputs and outputs under unique C names, checked against what the
    model declares, and each kernel call with the C expression of every argument."""
    from tvmc_micro.compiler import c_emit

    graph, info, plan = c.need(c.graph, "graph"), c.need(c.info, "census"), c.need(c.plan, "arena plan")
    if len(info.inputs) != len(graph.inputs) or len(info.outputs) != len(graph.outputs):
        raise LoweringError(
            f"the compiled graph has {len(graph.inputs)} inputs/{len(graph.outputs)} outputs but the model "
            f"declares {len(info.inputs)}/{len(info.outputs)}",
            "report this model; it may have unused inputs or constant outputs",
        )
    # Inputs and outputs share one namespace: their size macros (TVMGEN_<M>_<NAME>_SIZE).
    io_names: set[str] = set()
    in_names = unique_names([t.name for t in info.inputs], io_names)
    out_names = unique_names([t.name for t in info.outputs], io_names)
    # With inputs and outputs in the arena, each has its arena offset (an output: its slot's).
    in_arena = c.options.io_buffers == "arena"
    c.inputs = [
        c_emit.IoName(
            graph.tensors[t],
            info.inputs[i].name,
            in_names[i],
            info.inputs[i].quantization,
            plan.offsets[t] if in_arena else None,
        )
        for i, t in enumerate(graph.inputs)
    ]
    # An output that is a reshape view of its producer keeps the shape `main` declares for it (the
    # bytes are the producer's, in the same order).
    c.outputs = [
        c_emit.IoName(
            dataclasses.replace(graph.tensors[t], shape=graph.output_shapes[i]),
            info.outputs[i].name,
            out_names[i],
            info.outputs[i].quantization,
            plan.offsets[c.output_slots[i]] if in_arena else None,
        )
        for i, t in enumerate(graph.outputs)
    ]
    _check_io_types(c.inputs, info.inputs, "input")
    _check_io_types(c.outputs, info.outputs, "output")
    c.steps = []
    for k, call in enumerate(graph.calls):
        ker = c.kernels[call.func]
        args = [
            c_emit.tensor_expr(c.name, graph.tensors[t], plan, c.inputs, c.outputs)
            for t in call.args + c.workspace_ids[k]
        ]
        if len(args) != len(ker.param_dtypes):
            raise LoweringError(
                f"kernel {ker.symbol} takes {len(ker.param_dtypes)} pointers, the graph passes {len(args)}",
                "report this model (internal error)",
            )
        c.steps.append(c_emit.KernelStep(ker.symbol, ker, args))


def render_files(c: Compilation) -> None:
    """Every file of the MLF: metadata.json (with the signature), the C sources and header, the README and
    build fragments for hand integration, parameters, IR text and the runtime."""
    import tvm

    from tvmc_micro import __version__ as tool_version
    from tvmc_micro.compiler import c_emit, integration, mlf

    graph, plan = c.need(c.graph, "graph"), c.need(c.plan, "arena plan")
    runtime = mlf.runtime_files()
    model_meta = _model_metadata(c, runtime)
    c.metadata = {
        "mlf_version": mlf.MLF_VERSION,
        "tool": {"name": mlf.TOOL_NAME, "version": tool_version, "tvm_version": tvm.__version__},
        "models": [model_meta],
    }
    name = c.name
    sources = {
        f"{integration.SOURCE_DIR}/tvmgen_{name}_lib0.c": c.kernel_src.encode(),
        f"{integration.SOURCE_DIR}/tvmgen_{name}_executor.c": c_emit.executor(
            name,
            graph,
            plan,
            c.steps,
            c.inputs,
            c.outputs,
            c.state_slots,
            c.output_slots if c.options.io_buffers == "arena" else None,
        ).encode(),
        f"{integration.SOURCE_DIR}/tvmgen_{name}_constants.c": c_emit.constants(name, graph).encode(),
    }
    toolchain = integration.toolchain_for(c.need(c.target, "target").target)
    c.files = {
        "metadata.json": (json.dumps(c.metadata, indent=2) + "\n").encode(),
        f"{integration.INCLUDE_DIR}/tvmgen_{name}.h": c_emit.header(
            name, plan.size, c.inputs, c.outputs, c.state_slots, c.options.io_buffers == "arena"
        ).encode(),
        **sources,
        "README.md": integration.readme(model_meta, toolchain, c.options.emit_library).encode(),
        f"tvmgen_{name}.cmake": integration.cmake_fragment(name, sorted(sources)).encode(),
        f"tvmgen_{name}.mk": integration.make_fragment(name, sorted(sources)).encode(),
        f"src/{name}.relax": c.relax_mod.script().encode(),
        f"parameters/{name}.params.npz": _npz(graph),
    }
    c.files.update({f"runtime/{k}": v for k, v in runtime.items()})


def build_library(c: Compilation) -> None:
    """With --emit-library: lib/lib<name>.a, built with the target's compiler, added to the MLF."""
    from tvmc_micro.compiler import integration

    if not c.options.emit_library:
        return
    toolchain = integration.toolchain_for(c.need(c.target, "target").target)
    c.say(f"building lib/lib{c.name}.a with {toolchain.cc} {' '.join(toolchain.flags)}")
    c.files[f"lib/lib{c.name}.a"] = integration.build_static_library(c.files, c.name, toolchain)


def write_output(c: Compilation) -> None:
    """The MLF tar, or with --output-format so a host shared library of the model (both atomic)."""
    from tvmc_micro.compiler import integration, mlf

    if c.options.output_format == "so":
        c.say(f"building the host shared library {c.output_path}")
        integration.build_shared_library(c.files, c.name, c.output_path)
    else:
        mlf.write_tar(c.output_path, c.files)


Stage = Callable[[Compilation], None]

# The order every compile runs; the name is the key of `CompileResult.timing` for that stage.
PIPELINE: tuple[tuple[str, Stage], ...] = (
    ("read", read_model),
    ("import", import_frontend),
    ("relax", lower_relax),
    ("codegen", generate_kernels),
    ("plan", plan_memory),
    ("interface", bind_interface),
    ("render", render_files),
    ("library", build_library),
    ("write", write_output),
)


def compile_model(
    model_path: str | Path,
    output_path: str | Path,
    *,
    target: str = "c",
    model_name: str | None = None,
    input_shapes: dict[str, list[int]] | None = None,
    pass_config: dict[str, Any] | None = None,
    disabled_passes: Sequence[str] = (),
    desired_layout: str | None = None,
    model_format: str | None = None,
    allow_float_fallback: bool = False,
    integer_path: bool = True,
    output_format: str = "mlf",
    emit_library: bool = False,
    kernel_configs: Mapping[str, Mapping[str, int]] | None = None,
    tuning_source: Mapping[str, str] | None = None,
    io_buffers: str = "arena",
    kernel_weights: str = "int8",
    progress: Progress | None = None,
) -> CompileResult:
    """Compile a TFLite/ONNX model into a Model Library Format tar at `output_path`.

    `integer_path=False` compiles int8 TFLite models through the float (QDQ) path on purpose (tests and
    comparisons); by default the integer importer is used when it is installed. `output_format="so"`
    writes a host shared library of the model instead of the tar; `emit_library=True` adds
    `lib/lib<name>.a`, built with the target's compiler, to the tar. `io_buffers="arena"` (the default)
    places the model's inputs and outputs in the arena (the header gives pointers to them);
    `"separate"` keeps them in buffers the caller owns. `kernel_weights="int16"` has the Cortex-M DSP conv
    and fully connected kernels read weights widened to int16 at compile time (twice their flash, fewer
    instructions; docs/model-library-format.md).
    """
    options = CompileOptions(
        target=target,
        model_name=model_name,
        input_shapes=dict(input_shapes or {}),
        pass_config=dict(pass_config or {}),
        disabled_passes=tuple(disabled_passes),
        desired_layout=desired_layout,
        model_format=model_format,
        allow_float_fallback=allow_float_fallback,
        integer_path=integer_path,
        output_format=output_format,
        emit_library=emit_library,
        kernel_configs=dict(kernel_configs or {}),
        tuning_source=dict(tuning_source) if tuning_source is not None else None,
        io_buffers=io_buffers,
        kernel_weights=kernel_weights,
    )
    if kernel_weights not in KERNEL_WEIGHTS:
        raise CompileOptionError(
            f"--kernel-weights {kernel_weights!r} is not one of {', '.join(KERNEL_WEIGHTS)}",
            "int8: the model's weights as they are (default); int16: conv/FC weights widened at compile time",
        )
    if io_buffers not in IO_BUFFERS:
        raise CompileOptionError(
            f"--io-buffers {io_buffers!r} is not one of {', '.join(IO_BUFFERS)}",
            "arena: inputs and outputs inside the arena (default); separate: buffers the caller owns",
        )
    if output_format not in OUTPUT_FORMATS:
        raise CompileOptionError(
            f"output format {output_format!r} is not one of {', '.join(OUTPUT_FORMATS)}",
            "mlf: the Model Library Format tar; so: a host shared library",
        )
    say = progress or (lambda msg: log.info("%s", msg))
    c = Compilation(Path(model_path), Path(output_path), options, say)
    timing: dict[str, float] = {}
    t_start = time.perf_counter()
    for stage_name, stage in PIPELINE:
        t0 = time.perf_counter()
        stage(c)
        timing[stage_name] = time.perf_counter() - t0
    timing["total"] = time.perf_counter() - t_start
    memory = c.metadata["models"][0]["memory"]
    n_ops = len(c.need(c.graph, "graph").calls)
    say(
        f"wrote {c.output_path}: arena {memory['arena_bytes']} B "
        f"(activation lower bound {memory['activation_lower_bound_bytes']} B), "
        f"constants {memory['constants_bytes']} B, "
        + (f"state {memory['state_bytes']} B, " if c.state_slots else "")
        + f"{n_ops} operators, {timing['total']:.1f} s"
    )
    return CompileResult(metadata=c.metadata, output_path=c.output_path, timing=timing, notes=c.notes)


# ------------------------------------------------------------------------------------------- helpers


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


def _model_metadata(c: Compilation, runtime: dict[str, bytes]) -> dict[str, Any]:
    """The model's entry of metadata.json (format in docs/model-library-format.md)."""
    import tvm

    from tvmc_micro import __version__ as tool_version
    from tvmc_micro.compiler import c_emit, mlf, op_report

    graph, plan, info = c.need(c.graph, "graph"), c.need(c.plan, "plan"), c.need(c.info, "census")
    mf, target = c.need(c.model, "model"), c.need(c.target, "target")
    o = c.options
    signed_options = {
        "target": target.target,
        "model_name": c.name,
        "input_shapes": o.input_shapes,
        "pass_config": {k: str(v) for k, v in o.pass_config.items()},
        # Only when given, so signatures of compiles without it stay what they were.
        **({"disabled_passes": list(o.disabled_passes)} if o.disabled_passes else {}),
        "desired_layout": o.desired_layout,
        "path": c.path_kind,
        # Only when tuned, so signatures of untuned compiles stay what they were.
        **({"tuning_records_sha256": o.tuning_source["sha256"]} if o.tuning_source else {}),
        "io_buffers": o.io_buffers,
        # Only when given, so signatures of default compiles stay what they were.
        **({"kernel_weights": o.kernel_weights} if o.kernel_weights != "int8" else {}),
    }

    def io_meta(ios: list[c_emit.IoName], infos: list[Any]) -> list[dict[str, Any]]:
        return [
            {
                "name": io.name,
                "c_name": io.c_name,
                "shape": list(io.tensor.shape),
                "dtype": io.tensor.dtype,
                "size_bytes": io.tensor.nbytes,
                "quantization": src.quantization,
                **({"arena_offset": io.offset} if io.offset is not None else {}),
            }
            for io, src in zip(ios, infos, strict=True)
        ]

    # Per operator: source operators, output shape, MACs, weights, live arena (docs/model-library-format.md).
    operators, timeline = op_report.operator_records(c)
    return {
        "name": c.name,
        "export_datetime": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "source": {"file": mf.path.name, "format": mf.format, "sha256": mf.sha256},
        "target": target.target,
        "target_str": target.target_str,
        "executor": "aot",
        "signature": mlf.signature(mf.sha256, signed_options, tvm.__version__, tool_version, runtime),
        "compute_path": c.path_kind,
        "float_operators": c.float_operators,
        "io_buffers": o.io_buffers,
        "kernel_weights": o.kernel_weights,
        "memory": {
            "arena_bytes": plan.size,
            "constants_bytes": sum(t.nbytes for t in graph.tensors if t.kind == "constant"),
            "activation_lower_bound_bytes": info.activation_lower_bound_bytes,
            # Bytes of inputs and outputs outside the arena: 0 when they live in it.
            "io_bytes": 0
            if o.io_buffers == "arena"
            else sum(io.tensor.nbytes for io in [*c.inputs, *c.outputs]),
            "state_bytes": c_emit.state_size(c.state_slots),
        },
        "arena_timeline": timeline,
        "inputs": io_meta(c.inputs, info.inputs),
        "outputs": io_meta(c.outputs, info.outputs),
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
            for row, slot in zip(c.state_rows, c.state_slots, strict=True)
        ],
        "operators": operators,
        **(
            {"tuning": {**dict(o.tuning_source), "applied": c.applied_configs}}
            if o.tuning_source is not None
            else {}
        ),
    }


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
