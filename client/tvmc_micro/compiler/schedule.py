"""Schedule legalized TOPI PrimFuncs so padding, epilogues and accumulators stop materialising.

Legalized kernels are unscheduled: every stage (pad, conv, bias add, requantize, clip) writes a full-size
buffer. We inline spatial producers into their consumers, fold elementwise chains together, move the
epilogue under the reduction's spatial loops (`reverse_compute_at`) so the accumulator shrinks to one
element, and hoist the reduction init out of the reduction loops. Every step is tried and skipped when the
schedule primitive refuses it: a kernel we cannot improve stays correct, just bigger.

Not used on purpose: dlight's normalize_prim_func + try_inline (miscompiles matmul with K=1 on TVM 0.27).
"""

from __future__ import annotations

import logging
from typing import Any

import tvm
import tvm_ffi
from tvm import s_tir, tirx
from tvm.s_tir.schedule import SBlockRV
from tvm.sym.iter_affine_map import detect_iter_map

log = logging.getLogger(__name__)


def _is_reduction(sch: s_tir.Schedule, block: SBlockRV) -> bool:
    return any(iv.iter_type == tirx.IterVar.CommReduce for iv in sch.get(block).iter_vars)


def _n_spatial(sch: s_tir.Schedule, block: SBlockRV) -> int:
    return sum(1 for iv in sch.get(block).iter_vars if iv.iter_type == tirx.IterVar.DataPar)


# PrimFunc attributes that mark a kernel as already scheduled by its author (e.g. the integer int8 path):
# rescheduling those is pointless and inlining their fixed-point Let chains blows up exponentially.
PRESCHEDULED_ATTRS = ("tvmc_micro.scheduled", "tvmc_micro.quantized_kernel")


def _hoist_reduction_init(sch: s_tir.Schedule, block: SBlockRV) -> None:
    """Move the reduction's init out of the reduction loops, at the tightest legal loop.

    Lowered as-is, the init stays inside the reduction loops behind `if (k == 0)`: a branch per MAC and a
    GCC `-Wmaybe-uninitialized` false positive. Trying from the innermost loop outwards, the first loop
    decompose_reduction accepts is the outermost reduction loop, so the accumulator stays one element.
    """
    for loop in reversed(sch.get_loops(block)):
        try:
            sch.decompose_reduction(block, loop)
            return
        except Exception:
            continue


def _substitute(expr: Any, mapping: dict[Any, Any]) -> Any:
    return tvm_ffi.structural_map(expr, [(tirx.Var, lambda v: mapping.get(v, v))], order="post")


def _dense_range(index: Any) -> tuple[int, int] | None:
    """(first, count) when an IterSumExpr of a bijective iter map takes each value of one contiguous
    range exactly once (its splits form a mixed radix: scales 1, e0, e0*e1, ...); else None."""
    if not isinstance(index.base, tirx.IntImm):
        return None
    splits = []
    for a in index.args:
        if not (isinstance(a.extent, tirx.IntImm) and isinstance(a.scale, tirx.IntImm)):
            return None
        splits.append((int(a.scale), int(a.extent)))
    count = 1
    for scale, extent in sorted(splits):
        if scale != count:
            return None
        count *= extent
    return int(index.base), count


def _block_writes_whole(loops: dict[Any, Any], realize: Any, write: Any) -> bool:
    """True when the block instances under `loops` write every element of the written buffer.

    The write indices, with the block iterators replaced by their bindings, must be a bijective iter map
    of the loops they use (loops they do not use, e.g. reduction loops, only repeat a write) whose image
    is the whole buffer.
    """
    block = realize.block
    buf = _source(write)
    if any(not isinstance(r.extent, tirx.IntImm) or int(r.extent) != 1 for r in write.region):
        return False
    bindings = {iv.var: v for iv, v in zip(block.iter_vars, realize.iter_values, strict=True)}
    indices = [_substitute(r.min, bindings) for r in write.region]
    used: list[Any] = []
    for e in [*indices, realize.predicate]:
        used += tirx.analysis.undefined_vars(e)
    iters = {v: rng for v, rng in loops.items() if any(v.same_as(u) for u in used)}
    try:
        result = detect_iter_map(indices, iters, realize.predicate, "bijective")
    except Exception:
        return False
    if len(result.indices) != len(indices):
        return False
    for index, extent in zip(result.indices, buf.shape, strict=True):
        if not isinstance(extent, tirx.IntImm) or _dense_range(index) != (0, int(extent)):
            return False
    return True


def _write_coverage(func: tirx.PrimFunc) -> tuple[list[Any], list[Any]]:
    """(buffers some block writes, buffers some single block writes whole)."""
    written: list[Any] = []
    whole: list[Any] = []

    def add(bufs: list[Any], buf: Any) -> None:
        if not any(b.same_as(buf) for b in bufs):
            bufs.append(buf)

    def walk(stmt: Any, loops: dict[Any, Any]) -> None:
        if isinstance(stmt, tirx.For):
            walk(stmt.body, {**loops, stmt.loop_var: tvm.ir.Range.from_min_extent(stmt.min, stmt.extent)})
        elif isinstance(stmt, tirx.SeqStmt):
            for s in stmt.seq:
                walk(s, loops)
        elif isinstance(stmt, s_tir.SBlockRealize):
            if len(stmt.block.iter_vars) > 0:
                for w in stmt.block.writes:
                    add(written, _source(w))
                    if _block_writes_whole(loops, stmt, w):
                        add(whole, _source(w))
            walk(stmt.block.body, loops)
        elif getattr(stmt, "body", None) is not None:
            walk(stmt.body, loops)

    walk(func.body, {})
    return written, whole


def _keeps_coverage(func: tirx.PrimFunc, required: list[Any]) -> bool:
    """Every buffer in `required` that `func` still writes is still written whole.

    Guards schedule primitives that shrink a block's iteration domain to what its producer provides:
    TVM 0.27's reverse_compute_at (and reverse_compute_inline) derive the consumer's domain from the
    elements it *reads* from the producer, so the elements a padding consumer fills without reading the
    producer (a PAD along channels after a pool/conv, a concatenation) would never be written.
    """
    written, whole = _write_coverage(func)
    for buf in required:
        if any(b.same_as(buf) for b in written) and not any(b.same_as(buf) for b in whole):
            return False
    return True


def _try_step(sch: s_tir.Schedule, required: list[Any], primitive: str, *args: Any) -> s_tir.Schedule | None:
    """Schedule primitive `primitive(*args)` applied to a copy of `sch` (random variables stay valid in a
    copy); None when the primitive refuses or the result loses coverage."""
    trial = sch.copy()
    try:
        getattr(trial, primitive)(*args)
    except Exception as err:
        log.debug("schedule step refused: %s", str(err).splitlines()[0] if str(err) else type(err).__name__)
        return None
    if not _keeps_coverage(trial.mod["main"], required):
        log.debug("schedule step dropped: it would leave part of a buffer unwritten")
        return None
    return trial


def schedule_primfunc(func: tirx.PrimFunc) -> tirx.PrimFunc:
    try:
        sch = s_tir.Schedule(func)
        root = sch.get_sblock("root")
    except Exception:  # no root block (hand-written or already-lowered PrimFunc): leave it alone
        return func
    if func.attrs is not None and any(a in func.attrs for a in PRESCHEDULED_ATTRS):
        # Keep the author's schedule; only hoisting the init (semantics-preserving) is applied.
        for b in list(sch.get_child_blocks(root)):
            if _is_reduction(sch, b):
                _hoist_reduction_init(sch, b)
        prescheduled: tirx.PrimFunc = sch.mod["main"]
        return prescheduled
    # Buffers written whole before scheduling must stay so (see _keeps_coverage).
    required = _write_coverage(func)[1]

    def outputs() -> list[s_tir.SBlock]:
        return [sch.get(b) for b in sch.get_output_blocks(root)]

    # 1. Inline every spatial stage into its consumers (pad into conv, bias/requantize chains together).
    changed = True
    while changed:
        changed = False
        outs = outputs()
        for b in sch.get_child_blocks(root):
            if _is_reduction(sch, b) or any(sch.get(b).same_as(o) for o in outs):
                continue
            try:
                sch.compute_inline(b)
                changed = True
                break
            except Exception:
                continue
    # 2. Elementwise consumers that could not be inlined forward: inline them backwards.
    for b in reversed(list(sch.get_child_blocks(root))):
        if _is_reduction(sch, b):
            continue
        trial = _try_step(sch, required, "reverse_compute_inline", b)
        if trial is not None:
            sch = trial
    # 3. Epilogue under the reduction's spatial loops; init before the first reduction loop.
    for b in list(sch.get_child_blocks(root)):
        if not _is_reduction(sch, b):
            continue
        nsp = _n_spatial(sch, b)
        loops = sch.get_loops(b)
        if 0 < nsp < len(loops):
            for consumer in sch.get_consumers(b):
                if _is_reduction(sch, consumer):
                    continue
                trial = _try_step(sch, required, "reverse_compute_at", consumer, loops[nsp - 1], True)
                if trial is not None:
                    sch = trial
        _hoist_reduction_init(sch, b)
    result: tirx.PrimFunc = sch.mod["main"]
    if not _keeps_coverage(result, required):  # defensive: never hand back a kernel that skips elements
        log.warning("scheduling left part of a buffer unwritten; keeping the unscheduled kernel")
        return func
    return result


def _source(region: Any) -> Any:
    # TVM 0.27 calls a block's access region a TensorRegion whose buffer is `.source`.
    src = getattr(region, "source", None)
    return src if src is not None else getattr(region, "buffer")  # noqa: B009


def inplace_pairs(func: tirx.PrimFunc) -> list[tuple[int, int]]:
    """(output param index, input param index) pairs where the output may overwrite the input.

    Allowed only for a single spatial block that reads the input exactly at the element it writes, with
    equal shapes and element sizes: each element is read before it is overwritten and never read again.
    """
    try:
        sch = s_tir.Schedule(func)
        blocks = sch.get_child_blocks(sch.get_sblock("root"))
    except Exception:
        return []
    if len(blocks) != 1 or _is_reduction(sch, blocks[0]):
        return []
    block = sch.get(blocks[0])
    # The block must be the whole body under its loops (no second statement touching the buffers).
    if len(block.writes) != 1:
        return []
    write = block.writes[0]
    params = list(func.params)
    try:
        out_idx = next(i for i, p in enumerate(params) if p.same_as(_source(write)))
    except StopIteration:
        return []
    if any(not isinstance(r.extent, tirx.IntImm) or int(r.extent) != 1 for r in write.region):
        return []
    out_buf = _source(write)
    pairs = []
    for i, p in enumerate(params):
        if i == out_idx:
            continue
        reads = [r for r in block.reads if _source(r).same_as(p)]
        if len(reads) != 1:
            continue
        r = reads[0]
        same_shape = len(p.shape) == len(out_buf.shape) and all(
            int(a) == int(b) for a, b in zip(p.shape, out_buf.shape, strict=True)
        )
        same_elem = tvm.DataType(p.dtype).bits == tvm.DataType(out_buf.dtype).bits
        same_index = len(r.region) == len(write.region) and all(
            tvm_ffi.structural_equal(a.min, b.min)
            and isinstance(a.extent, tirx.IntImm)
            and int(a.extent) == 1
            for a, b in zip(r.region, write.region, strict=True)
        )
        if same_shape and same_elem and same_index:
            pairs.append((out_idx, i))
    return pairs
