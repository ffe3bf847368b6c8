"""C text for the MLF: the interface header, the executor over one static arena, the constants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from tvmc_micro.compiler.errors import LoweringError
from tvmc_micro.compiler.executor import ExecutorGraph, Tensor
from tvmc_micro.compiler.naming import c_comment_text, is_c_identifier, is_reserved
from tvmc_micro.compiler.planner import ALIGNMENT, ArenaPlan
from tvmc_micro.compiler.tir_codegen import LoweredKernel

C_TYPES = {
    "float32": "float",
    "float64": "double",
    "int8": "int8_t",
    "uint8": "uint8_t",
    "int16": "int16_t",
    "uint16": "uint16_t",
    "int32": "int32_t",
    "uint32": "uint32_t",
    "int64": "int64_t",
    "uint64": "uint64_t",
    "bool": "bool",
}


def c_type(dtype: str) -> str:
    try:
        return C_TYPES[dtype]
    except KeyError:
        raise LoweringError(
            f"dtype {dtype} has no C type here", "convert the model to float32 or int8"
        ) from None


@dataclass
class IoName:
    tensor: Tensor
    name: str  # the model's own name
    c_name: str
    quantization: dict[str, Any] | None = None  # {"scale": float, "zero_point": int} (TFLite per-tensor)
    offset: int | None = None  # byte offset of its slot in the arena (io_buffers "arena"), else None


@dataclass
class KernelStep:
    symbol: str
    kernel: LoweredKernel
    args: list[str]  # C expressions, one per pointer parameter


def _upper(name: str) -> str:
    return name.upper()


def check_identifiers(model: str, inputs: list[IoName], outputs: list[IoName]) -> None:
    """Refuses names that would break the C interface: only naming.py's identifiers reach C, and the
    inputs' and outputs' size macros (TVMGEN_<MODEL>_<NAME>_SIZE) must not collide with each other or
    with WORKSPACE/STATE. A failure is a compiler bug (the driver names them with naming.unique_names)."""
    names = [model] + [io.c_name for io in inputs + outputs]
    bad = [n for n in names if not is_c_identifier(n) or is_reserved(n)]
    stems = [io.c_name.upper() for io in inputs + outputs]
    clashes = sorted({s for s in stems if stems.count(s) > 1 or s in ("WORKSPACE", "STATE")})
    if bad or clashes:
        what = f"names that are not safe C identifiers {bad}" if bad else f"colliding size macros {clashes}"
        raise LoweringError(
            f"the C interface of model {model!r} would have {what}", "report this model (internal error)"
        )


@dataclass
class StateSlot:
    """One state tensor in the executor's persistent state buffer."""

    offset: int
    nbytes: int
    reset_byte: int  # what TFLite Micro fills it with on reset (an int8 tensor's zero point, else 0)
    name: str


def state_size(slots: list[StateSlot]) -> int:
    return max((s.offset + s.nbytes for s in slots), default=0)


def c_float_literal(value: float) -> str:
    """A C literal that reads back as exactly `value`: a float literal (shortest decimal that round-trips
    through float32, `f` suffix) when `value` is a float32, as TFLite's scales are; a double otherwise."""
    v = float(value)
    if not np.isfinite(v):
        raise LoweringError(f"quantisation scale {v} is not finite", "check the model's quantisation")
    if float(np.float32(v)) == v:
        return np.format_float_scientific(np.float32(v), unique=True, trim="-") + "f"
    return np.format_float_scientific(v, unique=True, trim="-")


def io_macros(model: str, io: IoName, what: str, index: int, io_in_arena: bool) -> list[str]:
    """The header's macros for one input or output (docs/model-library-format.md, "C interface")."""
    p = f"TVMGEN_{_upper(model)}_{_upper(io.c_name)}"
    t = io.tensor
    ctype = C_TYPES.get(t.dtype)
    lines = [
        f"/* {what} {index}: {c_comment_text(io.name)} {t.dtype}{list(t.shape)} */",
        f"#define {p}_SIZE {t.nbytes}",
        f'#define {p}_DTYPE "{t.dtype}"',
    ]
    if ctype is not None:
        lines.append(f"#define {p}_TYPE {ctype}")
    lines += [
        f"#define {p}_DIMS {len(t.shape)}",
        f"#define {p}_SHAPE {{{', '.join(str(int(d)) for d in t.shape) or '1'}}}",
        f"#define {p}_ELEMENTS {int(np.prod(t.shape, dtype=np.int64))}",
    ]
    q = io.quantization
    if q is not None and "scale" in q and "zero_point" in q:
        zp = int(q["zero_point"])
        lines += [
            f"#define {p}_SCALE {c_float_literal(q['scale'])}",
            f"#define {p}_ZERO_POINT {zp if zp >= 0 else f'({zp})'}",
        ]
    if io_in_arena and io.offset is not None:
        pointee = ctype or "uint8_t"
        lines += [
            f"#define {p}_OFFSET {io.offset}",
            f"#define {p}_PTR (({pointee}*)(void*)(tvmgen_{model}_arena_base() + {p}_OFFSET))",
        ]
    return lines


def header(
    model: str,
    arena_size: int,
    inputs: list[IoName],
    outputs: list[IoName],
    state: list[StateSlot] | None = None,
    io_in_arena: bool = False,
) -> str:
    check_identifiers(model, inputs, outputs)
    up = _upper(model)
    guard = f"TVMGEN_{up}_H_"
    holds = "intermediates, kernel workspaces" + (", inputs and outputs" if io_in_arena else "")
    lines = [
        f"/* C interface of model {c_comment_text(model)} (generated by tvmc-micro; do not edit). */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        "#ifdef __cplusplus",
        'extern "C" {',
        "#endif",
        "",
        f"/* Exact bytes of the arena ({holds}). */",
        f"#define TVMGEN_{up}_WORKSPACE_SIZE {arena_size}",
        f"/* Alignment of the arena (also of a buffer given to tvmgen_{model}_set_arena()). */",
        f"#define TVMGEN_{up}_ARENA_ALIGNMENT {ALIGNMENT}",
        f"#define TVMGEN_{up}_NUM_INPUTS {len(inputs)}",
        f"#define TVMGEN_{up}_NUM_OUTPUTS {len(outputs)}",
    ]
    if io_in_arena:
        lines += [
            "/* Inputs and outputs live in the arena: write inputs at their _PTR, run, read outputs at",
            "   theirs. */",
            f"#define TVMGEN_{up}_IO_IN_ARENA 1",
        ]
    lines.append("")
    if state:
        lines += [
            "/* Bytes of model state (e.g. SVDF/LSTM memory) the executor keeps in its own static buffer. */",
            f"#define TVMGEN_{up}_STATE_SIZE {state_size(state)}",
            "",
        ]
    for i, io in enumerate(inputs):
        lines += [*io_macros(model, io, "input", i, io_in_arena), ""]
    for i, io in enumerate(outputs):
        lines += [*io_macros(model, io, "output", i, io_in_arena), ""]
    lines += [f"struct tvmgen_{model}_inputs {{"]
    lines += [
        f"  void* {io.c_name};  /* {c_comment_text(io.name)} {io.tensor.dtype}{list(io.tensor.shape)} */"
        for io in inputs
    ]
    lines += ["};", "", f"struct tvmgen_{model}_outputs {{"]
    lines += [
        f"  void* {io.c_name};  /* {c_comment_text(io.name)} {io.tensor.dtype}{list(io.tensor.shape)} */"
        for io in outputs
    ]
    lines += [
        "};",
        "",
        "/* Profiling: the executor calls TVMGEN_OP_HOOK(k) before operator k and TVMGEN_OP_HOOK(n) after",
        "   the last one. Define TVMGEN_PROFILE and provide tvmgen_op_hook() to time each operator. */",
        "#ifndef TVMGEN_OP_HOOK",
        "#if defined(TVMGEN_PROFILE)",
        "extern void tvmgen_op_hook(uint32_t index);",
        "#define TVMGEN_OP_HOOK(index) tvmgen_op_hook(index)",
        "#else",
        "#define TVMGEN_OP_HOOK(index) ((void)0)",
        "#endif",
        "#endif",
        "",
        "/* Test and debug builds only (define TVMGEN_MEMORY_ACCESS): where the executor's static arena and",
        "   state buffer are and how many bytes they have (state: NULL and 0 without state), e.g. for a",
        "   harness that fills them with a poison pattern before each run. */",
        "#if defined(TVMGEN_MEMORY_ACCESS)",
        f"void tvmgen_{model}_memory(uint8_t** arena, uint32_t* arena_bytes, uint8_t** state, "
        "uint32_t* state_bytes);",
        "#endif",
        "",
        f"/* The arena: by default a static, {ALIGNMENT}-byte aligned array inside the executor. Compile",
        f"   the executor (and your code) with -DTVMGEN_{up}_EXTERNAL_ARENA to give your own buffer",
        "   instead (e.g. in DTCM, or shared with other work between runs), with",
        f"   tvmgen_{model}_set_arena() before the first run. It returns 0, or 1 for a NULL buffer, 2 for",
        f"   one not aligned to TVMGEN_{up}_ARENA_ALIGNMENT, 3 for one smaller than",
        f"   TVMGEN_{up}_WORKSPACE_SIZE (the arena is then unchanged). */",
        f"#if defined(TVMGEN_{up}_EXTERNAL_ARENA)",
        f"int32_t tvmgen_{model}_set_arena(void* buffer, size_t bytes);",
        "#endif",
        "",
        "/* The arena's first byte (NULL while an external arena is not set). */",
        f"uint8_t* tvmgen_{model}_arena_base(void);",
        "",
    ]
    if io_in_arena:
        lines += [
            "/* Where input/output `index` lives in the arena (metadata order; NULL for an index out of",
            "   range or while an external arena is not set). A run consumes its inputs (their bytes are",
            "   reused once read): write them before each run. */",
            f"void* tvmgen_{model}_input_ptr(unsigned index);",
            f"void* tvmgen_{model}_output_ptr(unsigned index);",
            "",
            "/* Runs the model once; returns 0 on success (-2: no external arena set). A struct member",
            "   that is the tensor's arena slot (its _PTR), or a NULL member or struct, means the data is",
            "   already there; any other buffer is copied in before the run (inputs) or out after it",
            "   (outputs). */",
        ]
    else:
        lines += [
            "/* Runs the model once; returns 0 on success (-2: no external arena set). Input and output",
            "   buffers belong to the caller. */",
        ]
    lines += [
        f"int32_t tvmgen_{model}_run(struct tvmgen_{model}_inputs* inputs, "
        f"struct tvmgen_{model}_outputs* outputs);",
        "",
    ]
    if state:
        lines += [
            "/* The model keeps state across runs: each run continues from the previous one. This puts the",
            "   state back to where it starts (as TFLite Micro's Reset()), e.g. before a new stream. */",
            f"void tvmgen_{model}_reset_state(void);",
            "",
        ]
    lines += [
        "#ifdef __cplusplus",
        "}",
        "#endif",
        "",
        f"#endif  /* {guard} */",
        "",
    ]
    return "\n".join(lines)


def tensor_expr(model: str, t: Tensor, plan: ArenaPlan, inputs: list[IoName], outputs: list[IoName]) -> str:
    """The C expression (as `uint8_t*`-compatible pointer) where tensor `t` lives."""
    if t.id in plan.offsets:  # an arena tensor (inputs and outputs too, with io_buffers "arena")
        return f"(arena + {plan.offsets[t.id]})"
    if t.kind == "input":
        return f"inputs->{inputs[t.io_index].c_name}"
    if t.kind == "output":
        return f"outputs->{outputs[t.io_index].c_name}"
    if t.kind == "constant":
        return f"tvmgen_{model}_{t.name}"
    if t.kind == "state":
        return f"(tvmgen_{model}_state + {t.state_offset})"
    return f"(arena + {plan.offsets[t.id]})"


def executor(
    model: str,
    graph: ExecutorGraph,
    plan: ArenaPlan,
    steps: list[KernelStep],
    inputs: list[IoName],
    outputs: list[IoName],
    state: list[StateSlot] | None = None,
    output_slots: list[int] | None = None,
) -> str:
    """The executor. `output_slots` (io_buffers "arena"): the arena tensor of each output; inputs and
    outputs then live in the arena (their IoName.offset) and the run's structs are copied only when they
    point elsewhere."""
    up = _upper(model)
    io_in_arena = output_slots is not None
    arena_size = max(plan.size, 1)
    lines = [
        f"/* Executor of model {c_comment_text(model)}: calls the fused operators in order over one "
        "arena. */",
        "#include <stdbool.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <string.h>",
        "",
        f'#include "tvmgen_{model}.h"',
        "",
    ]
    seen: set[str] = set()
    for s in steps:
        if s.symbol in seen:
            continue
        seen.add(s.symbol)
        params = ", ".join(f"{c_type(d)}* p{i}" for i, d in enumerate(s.kernel.param_dtypes))
        lines.append(f"int32_t {s.symbol}({params});")
    lines.append("")
    for t in graph.tensors:
        if t.kind == "constant":
            size = max(t.constant.size if t.constant is not None else 0, 1)
            lines.append(f"extern const {c_type(t.dtype)} tvmgen_{model}_{t.name}[{size}];")
    lines += [
        "",
        "#if defined(__GNUC__) || defined(__clang__)",
        f"#define TVMGEN_ALIGNED __attribute__((aligned({ALIGNMENT})))",
        "#else",
        "#define TVMGEN_ALIGNED",
        "#endif",
        "",
        f"#if defined(TVMGEN_{up}_EXTERNAL_ARENA)",
        "/* The caller's arena (tvmgen_set_arena): NULL until one is given. */",
        f"static uint8_t* tvmgen_{model}_arena = NULL;",
        "",
        f"int32_t tvmgen_{model}_set_arena(void* buffer, size_t bytes) {{",
        "  if (buffer == NULL) return 1;",
        f"  if ((uintptr_t)buffer % {ALIGNMENT}u != 0u) return 2;",
        *([f"  if (bytes < (size_t){plan.size}u) return 3;"] if plan.size else ["  (void)bytes;"]),
        f"  tvmgen_{model}_arena = (uint8_t*)buffer;",
        "  return 0;",
        "}",
        "#else",
        f"static uint8_t tvmgen_{model}_arena[{arena_size}] TVMGEN_ALIGNED;",
        "#endif",
        "",
        f"uint8_t* tvmgen_{model}_arena_base(void) {{ return tvmgen_{model}_arena; }}",
        "",
    ]
    if io_in_arena:
        for what, ios in (("input", inputs), ("output", outputs)):
            lines.append(f"void* tvmgen_{model}_{what}_ptr(unsigned index) {{")
            if ios:
                offsets = ", ".join(f"{io.offset}u" for io in ios)
                lines += [
                    f"  static const uint32_t offsets[{len(ios)}] = {{{offsets}}};",
                    f"  if (index >= {len(ios)}u) return NULL;",
                    f"#if defined(TVMGEN_{up}_EXTERNAL_ARENA)",
                    f"  if (tvmgen_{model}_arena == NULL) return NULL;",
                    "#endif",
                    f"  return tvmgen_{model}_arena + offsets[index];",
                ]
            else:
                lines += ["  (void)index;", "  return NULL;"]
            lines += ["}", ""]
    input_slots = [(io.offset, io.tensor.nbytes) for io in inputs if io.offset is not None]
    lines += _arena_check_macros(arena_size, input_slots if io_in_arena else [])
    # A zero reset value is the static buffer's own initial value; any other needs one reset before the
    # first run (a flag, so the reset image costs no flash).
    lazy = bool(state) and any(slot.reset_byte for slot in state or [])
    if state:
        lines += [
            "/* Model state: persists across runs, outside the arena (which every run reuses). */",
            f"static uint8_t tvmgen_{model}_state[{state_size(state)}] TVMGEN_ALIGNED;",
        ]
        if lazy:
            lines.append(f"static bool tvmgen_{model}_state_ready = false;")
        lines += ["", f"void tvmgen_{model}_reset_state(void) {{"]
        for slot in state:
            lines.append(
                f"  memset(tvmgen_{model}_state + {slot.offset}, {slot.reset_byte}, {slot.nbytes});"
                f"  /* {c_comment_text(slot.name)} */"
            )
        if lazy:
            lines.append(f"  tvmgen_{model}_state_ready = true;")
        lines += ["}", ""]
    state_ref = (f"tvmgen_{model}_state", f"sizeof tvmgen_{model}_state") if state else ("NULL", "0")
    lines += [
        "#if defined(TVMGEN_MEMORY_ACCESS)",
        f"void tvmgen_{model}_memory(uint8_t** arena, uint32_t* arena_bytes, uint8_t** state, "
        "uint32_t* state_bytes) {",
        f"  *arena = tvmgen_{model}_arena;",
        f"  *arena_bytes = (uint32_t){plan.size}u;",
        f"  *state = {state_ref[0]};",
        f"  *state_bytes = (uint32_t){state_ref[1]};",
        "}",
        "#endif",
        "",
    ]
    lines += [
        f"int32_t tvmgen_{model}_run(struct tvmgen_{model}_inputs* inputs, "
        f"struct tvmgen_{model}_outputs* outputs) {{",
        f"  uint8_t* const arena = tvmgen_{model}_arena;",
        "  (void)arena; (void)inputs; (void)outputs;",
        f"#if defined(TVMGEN_{up}_EXTERNAL_ARENA)",
        "  if (arena == NULL) return -2;",
        "#endif",
    ]
    if lazy:
        lines.append(f"  if (!tvmgen_{model}_state_ready) tvmgen_{model}_reset_state();")
    if io_in_arena:
        # Copy in what the caller keeps elsewhere (memmove: the caller's buffer may be in the arena too).
        for io in inputs:
            in_slot, in_member = f"(arena + {io.offset})", f"inputs->{io.c_name}"
            lines.append(
                f"  if (inputs != NULL && {in_member} != NULL && (uint8_t*){in_member} != {in_slot}) "
                f"memmove({in_slot}, {in_member}, {io.tensor.nbytes});"
            )
    lines.append("  TVMGEN_ARENA_START();")
    regions = _arena_regions(graph, plan, len(steps))
    for k, s in enumerate(steps):
        args = ", ".join(f"({c_type(d)}*){a}" for d, a in zip(s.kernel.param_dtypes, s.args, strict=True))
        lines.append(f"  TVMGEN_OP_HOOK({k});")
        lines += [f"  TVMGEN_ARENA_OPEN({off}, {n});" for off, n in regions[k]]
        lines.append(f"  if ({s.symbol}({args}) != 0) {{ TVMGEN_ARENA_END(); return -1; }}")
        if regions[k]:
            lines.append("  TVMGEN_ARENA_CLOSE();")
    lines.append(f"  TVMGEN_OP_HOOK({len(steps)});")
    # Between runs the arena is the caller's again (outputs read and next inputs written there, a test
    # harness poisoning it, other work in an external arena): all of it addressable.
    lines.append("  TVMGEN_ARENA_END();")
    if io_in_arena and output_slots is not None:
        for k, (io, slot_id) in enumerate(zip(outputs, output_slots, strict=True)):
            produced = graph.tensors[graph.outputs[k]]
            out_slot, out_member = f"(arena + {io.offset})", f"outputs->{io.c_name}"
            if slot_id != produced.id:  # a constant output: into its slot first
                expr = tensor_expr(model, produced, plan, inputs, outputs)
                lines.append(f"  memcpy({out_slot}, (const void*){expr}, {produced.nbytes});")
            lines.append(
                f"  if (outputs != NULL && {out_member} != NULL && (uint8_t*){out_member} != {out_slot}) "
                f"memmove({out_member}, {out_slot}, {io.tensor.nbytes});"
            )
        lines += ["  return 0;", "}", ""]
        return "\n".join(lines)
    for k, tid in enumerate(graph.outputs):
        t = graph.tensors[tid]
        if t.kind == "output" and t.io_index == k:
            continue
        src = tensor_expr(model, t, plan, inputs, outputs)
        lines.append(f"  memcpy(outputs->{outputs[k].c_name}, (const void*){src}, {t.nbytes});")
    lines += ["  return 0;", "}", ""]
    return "\n".join(lines)


def _fill_ranges(arena_size: int, keep: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(offset, bytes) of the arena outside the `keep` ranges (the input slots a run must not poison)."""
    out, pos = [], 0
    for off, n in sorted(keep):
        if off > pos:
            out.append((pos, off - pos))
        pos = max(pos, off + n)
    if pos < arena_size:
        out.append((pos, arena_size - pos))
    return out


def _arena_check_macros(arena_size: int, input_slots: list[tuple[int, int]] | None = None) -> list[str]:
    """Arena checks for test builds (-DTVMGEN_ARENA_CHECKS): each run starts from an arena filled with
    0xA5 (a kernel reading what it never wrote gets garbage, not last run's value or the zeros of a fresh
    static array), but for the inputs' slots when inputs live in the arena; and under AddressSanitizer
    only the tensors of the running kernel are addressable, so an overrun into a neighbouring tensor of
    the same arena is reported. Nothing without the macro."""
    keep = input_slots or []
    fills = " ".join(f"memset(arena + {off}, 0xA5, {n});" for off, n in _fill_ranges(arena_size, keep))
    return [
        "#if defined(TVMGEN_ARENA_CHECKS)",
        "#if defined(__SANITIZE_ADDRESS__)",
        "#define TVMGEN_ASAN 1",
        "#elif defined(__has_feature)",
        "#if __has_feature(address_sanitizer)",
        "#define TVMGEN_ASAN 1",
        "#endif",
        "#endif",
        "#if defined(TVMGEN_ASAN)",
        "#include <sanitizer/asan_interface.h>",
        "#define TVMGEN_ARENA_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))",
        "#define TVMGEN_ARENA_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))",
        "#else",
        "#define TVMGEN_ARENA_POISON(p, n) ((void)0)",
        "#define TVMGEN_ARENA_UNPOISON(p, n) ((void)0)",
        "#endif",
        f"#define TVMGEN_ARENA_CLOSE() TVMGEN_ARENA_POISON(arena, {arena_size})",
        "#define TVMGEN_ARENA_OPEN(offset, n) TVMGEN_ARENA_UNPOISON(arena + (offset), (n))",
        # Between runs the arena is the caller's to look at (tvmgen_<m>_memory, a test's poison fill).
        f"#define TVMGEN_ARENA_END() TVMGEN_ARENA_UNPOISON(arena, {arena_size})",
        "#define TVMGEN_ARENA_START() \\",
        f"  do {{ TVMGEN_ARENA_UNPOISON(arena, {arena_size}); {fills} TVMGEN_ARENA_CLOSE(); }} while (0)",
        "#else",
        "#define TVMGEN_ARENA_START() ((void)0)",
        "#define TVMGEN_ARENA_OPEN(offset, n) ((void)0)",
        "#define TVMGEN_ARENA_CLOSE() ((void)0)",
        "#define TVMGEN_ARENA_END() ((void)0)",
        "#endif",
        "",
    ]


def _arena_regions(graph: ExecutorGraph, plan: ArenaPlan, n_steps: int) -> list[list[tuple[int, int]]]:
    """(offset, bytes) of the arena tensors each step uses: its arguments and its workspaces (the tensors
    the driver adds as `ws<step>_<j>`). No regions (no checks) if the steps do not match the calls."""
    if n_steps != len(graph.calls):
        return [[] for _ in range(n_steps)]
    workspaces: dict[int, list[int]] = {}
    for t in graph.tensors:
        if t.kind == "workspace" and t.name.startswith("ws") and "_" in t.name:
            step = t.name[2:].split("_", 1)[0]
            if step.isdigit():
                workspaces.setdefault(int(step), []).append(t.id)
    regions = []
    for k, call in enumerate(graph.calls):
        ids = dict.fromkeys(call.args + workspaces.get(k, []))
        regions.append(
            [
                (plan.offsets[t], graph.tensors[t].nbytes)
                for t in ids
                if t in plan.offsets and graph.tensors[t].nbytes
            ]
        )
    return regions


def _format_values(arr: np.ndarray) -> list[str]:
    flat = arr.reshape(-1)
    if flat.dtype.kind == "f":
        digits = "%.9g" if flat.dtype.itemsize <= 4 else "%.17g"
        suffix = "f" if flat.dtype.itemsize <= 4 else ""
        out = []
        for s, v in zip(np.char.mod(digits, flat).tolist(), flat.tolist(), strict=True):
            if np.isnan(v):
                out.append("NAN")
            elif np.isinf(v):
                out.append("INFINITY" if v > 0 else "-INFINITY")
            else:
                if "." not in s and "e" not in s:
                    s += ".0"
                out.append(s + suffix)
        return out
    if flat.dtype == np.bool_:
        return ["1" if v else "0" for v in flat.tolist()]
    if flat.dtype == np.int64:
        return [f"INT64_C({v})" if v != -(2**63) else "(-INT64_MAX - 1)" for v in flat.tolist()]
    if flat.dtype == np.int32:
        return [str(v) if v != -(2**31) else "(-2147483647 - 1)" for v in flat.tolist()]
    if flat.dtype == np.uint64:
        return [f"UINT64_C({v})" for v in flat.tolist()]
    if flat.dtype == np.uint32:
        return [f"{v}u" for v in flat.tolist()]
    return [str(v) for v in flat.tolist()]


def constants(model: str, graph: ExecutorGraph) -> str:
    lines = [
        f"/* Constants (weights) of model {c_comment_text(model)}: const, so they stay in flash. */",
        "#include <math.h>",
        "#include <stdbool.h>",
        "#include <stdint.h>",
        "",
        "/* int16 weights are read two words at a time (LDRD, which needs 4-byte alignment on Cortex-M). */",
        "#if defined(__GNUC__) || defined(__clang__)",
        "#define TVMGEN_CONST_ALIGN4 __attribute__((aligned(4)))",
        "#else",
        "#define TVMGEN_CONST_ALIGN4",
        "#endif",
        "",
    ]
    for t in graph.tensors:
        if t.kind != "constant" or t.constant is None:
            continue
        values = _format_values(t.constant) or ["0"]
        body = ",\n".join("  " + ", ".join(values[i : i + 12]) for i in range(0, len(values), 12))
        align = " TVMGEN_CONST_ALIGN4" if t.dtype == "int16" else ""
        lines.append(f"/* {t.dtype}{list(t.shape)} */")
        lines.append(
            f"const {c_type(t.dtype)} tvmgen_{model}_{t.name}[{len(values)}]{align} = {{\n{body}\n}};"
        )
        lines.append("")
    return "\n".join(lines)
