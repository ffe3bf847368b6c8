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
        try:
            sch.reverse_compute_inline(b)
        except Exception:
            pass
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
                try:
                    sch.reverse_compute_at(consumer, loops[nsp - 1], preserve_unit_loops=True)
                except Exception as err:
                    log.debug("reverse_compute_at skipped: %s", str(err).splitlines()[0])
        _hoist_reduction_init(sch, b)
    result: tirx.PrimFunc = sch.mod["main"]
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
