"""PrimFuncs to plain C: `int32_t f(float* a, ..., float* out)`, no packed API, no asserts, no heap.

TVM 0.27 has no unpacked C API. We run the s_tir lowering passes ourselves, then
1. lift every remaining buffer allocation larger than a few scalars out of the kernel into an extra
   pointer parameter: the executor hands it a slice of the arena (no TVMBackendAllocWorkspace, ever);
2. build with a registered TIR pipeline whose only step replaces MakePackedAPI: buffer parameters become
   typed pointers, the body is wrapped in the device attributes later passes expect, `return 0` follows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.tirx.buffer import buffer_data, buffer_data_pointer_type, is_buffer_var

from tvmc_micro.compiler.errors import LoweringError
from tvmc_micro.compiler.naming import claim_unique, is_c_identifier, is_reserved
from tvmc_micro.compiler.schedule import REGISTER_TILES_ATTR

PIPELINE_NAME = "tvmc_micro_unpacked"
# Allocations at or below this size stay on the kernel's stack (scalar accumulators); larger ones move
# into the arena where the planner can see and reuse them.
STACK_LIMIT_BYTES = 16
# Register tiles (schedule._register_tile: an accumulator block the C compiler keeps in registers) stay on
# the stack up to this size.
TILE_LIMIT_BYTES = 128


@dataclass
class Workspace:
    nbytes: int
    dtype: str


@dataclass
class LoweredKernel:
    symbol: str
    param_dtypes: list[str]  # element dtype per pointer parameter (model tensors, then workspaces)
    workspaces: list[Workspace]
    # (output param, input param, lead bytes) a hand-written kernel declares safe: its output may start
    # `lead` bytes before that input (planner.InPlace); the TIR kernels' pairs are derived from their
    # blocks by schedule.inplace_pairs instead.
    inplace: list[tuple[int, int, int]] = field(default_factory=list)
    # (param index, layout): a hand-written kernel reads that constant parameter as layout(model's array)
    # (ckernels.GeneratedKernel.weight_layout); executor.apply_weight_layouts rewrites the constant.
    weight_layout: tuple[int, Any] | None = None
    # (param index, layout) of a requantisation table the kernel reads precomputed (GeneratedKernel.rq_layout)
    rq_layout: tuple[int, Any] | None = None


def _lowering_passes() -> list[Any]:
    # The s_tir default pipeline minus GPU-only steps, MakePackedAPI and what follows it.
    return [
        s_tir.transform.CanonicalizeLoop(),
        s_tir.transform.LowerCrossThreadReduction(),
        s_tir.transform.LowerInitBlock(),
        s_tir.transform.PlanAndUpdateBufferAllocationLocation(),
        s_tir.transform.ConvertBlocksToOpaque(),
        s_tir.transform.CompactBufferAllocation(),
        s_tir.transform.LowerMatchBuffer(),
        s_tir.transform.StmtSimplify(),
        s_tir.transform.LowerOpaqueBlock(),
        tirx.transform.FlattenBuffer(),
        tirx.transform.NarrowDataType(32),
        s_tir.transform.LoopPartition(),
        tirx.transform.VectorizeLoop(False),
        tirx.transform.StorageRewrite(),
        s_tir.transform.HoistIfThenElse(),
        tirx.transform.UnrollLoop(),
        s_tir.transform.RenormalizeSplitPattern(),
        tirx.transform.StmtSimplify(),
        tirx.transform.RemoveNoOp(),
        s_tir.transform.RewriteUnsafeSelect(),
        tirx.transform.CommonSubexprElim(),
        tirx.transform.VerifyMemory(),
    ]


def _static_nbytes(buf: Any) -> int | None:
    try:
        n = int(np.prod([int(d) for d in buf.shape], dtype=np.int64))
        bits = int(tvm.DataType(buf.dtype).bits)
    except Exception:
        return None
    return n * bits // 8


def _lift_allocations(func: tirx.PrimFunc) -> tuple[tirx.PrimFunc, list[Workspace]]:
    """Turn allocations larger than STACK_LIMIT_BYTES into trailing buffer parameters."""
    lifted: list[Any] = []
    tiles = {str(t) for t in (func.attrs or {}).get(REGISTER_TILES_ATTR, [])}

    def visit(stmt: Any) -> Any:
        if isinstance(stmt, tirx.AllocBuffer):
            buf = stmt.buffer
            nbytes = _static_nbytes(buf)
            if nbytes is None:
                raise LoweringError(
                    f"kernel allocates a buffer of non-static size {list(buf.shape)}",
                    "fix all input shapes (--input-shapes); microcontroller code must be static",
                )
            limit = TILE_LIMIT_BYTES if str(buf.name) in tiles else STACK_LIMIT_BYTES
            if nbytes > limit:
                lifted.append(buf)
                # The buffer becomes a parameter; like every parameter buffer it still needs a declaration
                # in the body, which binds its accesses to the pointer argument (without one the C backend
                # fails with "Find undefined Variable <name>").
                return tirx.DeclBuffer(buf, data=buffer_data(buf))
        return stmt

    body = tvm_ffi.structural_map(func.body, [(tirx.AllocBuffer, visit)], order="post")
    if not lifted:
        return func, []
    new = tirx.PrimFunc(list(func.params) + lifted, body, ret_type=func.ret_type, attrs=func.attrs)
    return new, [Workspace(nbytes=int(_static_nbytes(b) or 0), dtype=str(b.dtype)) for b in lifted]


# The helper behind exact float32 immediates (see _c_safe); static inline, so it costs nothing at -O1+.
F32_HELPER = "tvmc_f32_bits"
_F32_HELPER_C = f"""#include <string.h>
static inline float {F32_HELPER}(int32_t bits) {{ float f; memcpy(&f, &bits, sizeof f); return f; }}
"""


_C_FABS = {"float32": "fabsf", "float64": "fabs"}


def _c_safe(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Rewrites two things TVM's C backend prints wrongly, just before C codegen.

    - max(a, b) → select(a > b, a, b) (min likewise). The backend prints max/min by binding each operand
      to a temporary and caches those temporaries by their text for the rest of the scope, ignoring stores
      in between: an unrolled max reduction then reads `acc[0]` once and compares every later tap with
      that stale value (a 2×2 max pool returns its last tap). A select is printed inline.
    - float32 immediates print with 7 significant digits (`%e`), which does not round-trip (a scale of
      0.00390625 survives, 0.0123456789 does not): those become `tvmc_f32_bits(<bit pattern>)`.
    - tirx.fabs (float abs: ONNX Abs, Softplus, Softsign, IsInf) has no C lowering rule ("Unresolved call
      tirx.fabs"): it becomes a call of C's fabsf/fabs (math.h, which TVM's C output includes).
    """
    fabs_op = tvm.ir.Op.get("tirx.fabs")

    def minmax(e: Any) -> Any:
        cmp = tirx.GT(e.a, e.b) if isinstance(e, tirx.Max) else tirx.LT(e.a, e.b)
        return tirx.Select(cmp, e.a, e.b)

    def floatimm(e: Any) -> Any:
        if str(e.ty) != "float32":
            return e
        value = np.float32(e.value)
        if not np.isfinite(value) or np.float32(float(f"{float(value):e}")) == value:
            return e
        bits = int(np.array(value, np.float32).view(np.int32))
        return tirx.call_extern("float32", F32_HELPER, tirx.IntImm("int32", bits))

    def fabs(call: Any) -> Any:
        if not (isinstance(call.op, tvm.ir.Op) and call.op.same_as(fabs_op)):
            return call
        dtype = str(call.ty)
        if dtype not in _C_FABS:
            raise LoweringError(f"absolute value of {dtype} has no C function here", "use float32 models")
        return tirx.call_extern(dtype, _C_FABS[dtype], call.args[0])

    def shift_left(e: Any) -> Any:
        dt = tvm.DataType(str(e.ty))
        if dt.type_code != tvm.DataTypeCode.INT:
            return e
        unsigned = str(e.ty).replace("int", "uint", 1)
        return tirx.Cast(str(e.ty), tirx.Cast(unsigned, e.a) << tirx.Cast(unsigned, e.b))

    body = tvm_ffi.structural_map(
        func.body,
        [
            (tirx.Max, minmax),
            (tirx.Min, minmax),
            (tirx.FloatImm, floatimm),
            (tvm.ir.Call, fabs),
            (tirx.LShift, shift_left),
        ],
        order="post",
    )
    return _safe_var_names(func.with_body(body))


def _safe_var_names(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """Renames the variables whose names C cannot take as they are.

    Parameters and buffers are named after Relax variables, which the float frontend names after the
    model's tensors: `serving_default input;` or `a??/` would be printed into the C source verbatim. Such
    names (and C keywords, library names, our `tvm` prefix) become naming.sanitize_c_identifier's
    identifier, made unique among the function's names; every other name stays (readable kernels)."""
    names: list[str] = []

    def collect(v: Any, visitor: Any) -> None:
        names.append(str(v.name))
        visitor.default_visit(v)

    tvm_ffi.structural_visit(func, [(tirx.Var, collect)])
    bad = {n for n in names if not is_c_identifier(n) or is_reserved(n)}
    if not bad:
        return func
    used = {n for n in names if n not in bad}
    new_name = {n: claim_unique(n, used, fallback="v") for n in sorted(bad)}
    renamed: dict[Any, Any] = {}

    def rename(v: Any) -> Any:
        if str(v.name) not in bad:
            return v
        if v not in renamed:
            renamed[v] = tirx.Var(new_name[str(v.name)], v.ty)
        return renamed[v]

    out = tvm_ffi.structural_map(func, [(tirx.Var, rename)], order="post")
    assert isinstance(out, tirx.PrimFunc)
    return out


def _unpack(func: tirx.PrimFunc) -> tirx.PrimFunc:
    """The MakePackedAPI replacement: typed pointer parameters and `return 0`."""
    pointers = [tirx.Var(p.name, buffer_data_pointer_type(p)) if is_buffer_var(p) else p for p in func.params]
    by_buffer = {p: q for p, q in zip(func.params, pointers, strict=True) if is_buffer_var(p)}
    buffer_data_op = tvm.ir.Op.get("tirx.buffer_data")

    def replace(call: Any) -> Any:
        if isinstance(call.op, tvm.ir.Op) and call.op.same_as(buffer_data_op) and call.args[0] in by_buffer:
            return by_buffer[call.args[0]]
        return call

    body = tvm_ffi.structural_map(func.body, [(tvm.ir.Call, replace)], order="post")
    # Workspace lowering looks for the device scope; the return goes after it.
    body = tirx.AttrStmt(0, "device_id", 0, body)
    body = tirx.AttrStmt(0, "device_type", 1, body)
    body = tirx.SeqStmt([body, tirx.Return(tirx.IntImm("int32", 0))])
    return tirx.PrimFunc(pointers, body, ret_type=tvm.ir.PrimType("int32"), attrs=func.attrs)


def _unpacked_pipeline() -> tuple[Any, Any, Any]:
    from tvm.s_tir.pipeline import finalize_device_passes, finalize_host_passes

    @tvm.transform.module_pass(opt_level=0, name="TvmcMicroUnpackedAPI")  # type: ignore[untyped-decorator]
    def _pipeline(mod: tvm.IRModule, _ctx: Any) -> tvm.IRModule:
        return tvm.IRModule({gv: _unpack(f) for gv, f in mod.functions.items()}, attrs=mod.attrs)

    return _pipeline, finalize_host_passes, finalize_device_passes


tvm.tirx.compilation_pipeline.register_tir_pipeline(PIPELINE_NAME, _unpacked_pipeline)

_DROP_LINES = (
    "#define TVM_EXPORTS",
    '#include "tvm/',
    "void* __tvm_ffi__library_ctx = NULL;",
)


# Float kernels must round every multiply and every add, as the reference interpreters do: a fused
# multiply-add (GCC contracts by default in its GNU modes, e.g. -std=gnu11 with an FPU) changes results in
# the last bit. Stated in the source so any build of the MLF gets it, whatever its flags. Only around
# TVM's kernels: GCC does not inline across functions whose optimize options differ, so the hand-written
# DSP kernels and their inline helpers (integer only) stay outside.
_NO_FP_CONTRACT_BEGIN = """#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#elif defined(__GNUC__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif
"""
_NO_FP_CONTRACT_END = """#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif
"""


def _clean_source(src: str, direct_src: str = "") -> str:
    """The MLF's kernel source: TVM's kernels (`src`, float contraction off) then the hand-written ones."""
    lines = [ln for ln in src.splitlines() if not ln.startswith(_DROP_LINES)]
    body = "\n".join(lines).replace("TVM_DLL ", "")
    text = (
        "#include <stdint.h>\n"
        + _NO_FP_CONTRACT_BEGIN
        + _F32_HELPER_C
        + body
        + "\n"
        + _NO_FP_CONTRACT_END
        + direct_src
    )
    leftover = re.findall(r"TVMBackend\w+|__tvm_ffi\w*|TVMFFI\w+|TVMAPI\w+", text)
    if leftover:
        raise LoweringError(
            f"generated C still calls the TVM runtime ({', '.join(sorted(set(leftover)))})",
            "this kernel needs a TVM runtime feature the MLF does not ship; run with -v and report it",
        )
    return text


def lower_kernels(
    funcs: dict[str, tirx.PrimFunc],
    symbols: dict[str, str],
    target: tvm.target.Target,
    pass_config: dict[str, Any],
    kernel_weights: str = "int8",
) -> tuple[str, dict[str, LoweredKernel]]:
    """Lower scheduled PrimFuncs (by IRModule name) to one C source; returns (source, kernels by name).
    kernel_weights: the DSP C kernels' weight layout (ckernels.KERNEL_WEIGHTS)."""
    direct_src, direct = _direct_c_kernels(funcs, symbols, target, kernel_weights)
    funcs = {n: f for n, f in funcs.items() if n not in direct}
    if not funcs:
        return _clean_source("", direct_src), direct
    mod = tvm.IRModule({symbols[n]: f.with_attr("global_symbol", symbols[n]) for n, f in funcs.items()})
    mod = tirx.transform.BindTarget(target)(mod)
    config = {"tirx.disable_assert": True, **pass_config}
    with tvm.transform.PassContext(opt_level=3, config=config):
        mod = tvm.transform.Sequential(_lowering_passes())(mod)
        kernels: dict[str, LoweredKernel] = {}
        lifted = {}
        by_symbol = {s: n for n, s in symbols.items()}
        for gv, f in mod.functions.items():
            f2, ws = _lift_allocations(_c_safe(f))
            lifted[gv] = f2
            dtypes = [str(p.dtype) for p in f2.params]
            kernels[by_symbol[gv.name_hint]] = LoweredKernel(gv.name_hint, dtypes, ws)
        mod = tvm.IRModule(lifted, attrs=mod.attrs)
        rt = tvm.tirx.build(mod, target=target, pipeline=PIPELINE_NAME)
    kernels.update(direct)
    return _clean_source(rt.inspect_source(), direct_src), kernels


def _direct_c_kernels(
    funcs: dict[str, tirx.PrimFunc], symbols: dict[str, str], target: tvm.target.Target, kernel_weights: str
) -> tuple[str, dict[str, LoweredKernel]]:
    """Hook: kernels the int8 path writes as C itself on DSP cores (quantized/ckernels.py)."""
    from tvmc_micro.compiler.quantized import ckernels

    if not ckernels.has_dsp(target):
        return "", {}
    parts: list[str] = []
    done: dict[str, LoweredKernel] = {}
    for name, f in funcs.items():
        spec = f.attrs.get(ckernels.SPEC_ATTR) if f.attrs is not None else None
        if spec is None:
            continue
        dtypes = [str(p.dtype) for p in f.params]
        gen = ckernels.generate(str(spec), symbols[name], dtypes, kernel_weights)
        if gen is None:
            continue
        parts.append(gen.source)
        ws = [Workspace(gen.workspace[0], gen.workspace[1])] if gen.workspace else []
        done[name] = LoweredKernel(
            symbols[name], gen.param_dtypes, ws, list(gen.inplace), gen.weight_layout, gen.rq_layout
        )
    if not parts:
        return "", {}
    return "\n" + ckernels.PRELUDE + "\n" + "\n".join(parts), done
