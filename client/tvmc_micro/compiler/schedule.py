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
from collections.abc import Mapping, Sequence
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


def schedule_primfunc(func: tirx.PrimFunc, config: Mapping[str, int] | None = None) -> tirx.PrimFunc:
    """`func` scheduled (see the module's docstring). `config` sets the tuning knobs of its reductions
    (`tuning_space` lists them); None keeps the hand-set choices, byte for byte."""
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

    # Padding feeding a reduction we will tile is computed into a small workspace under the tile loops
    # (step 3) instead of being inlined as a bounds check in the innermost loop.
    kept_pads = _pads_to_keep(sch, root, config)
    # Tuning knob pad_whole: pads feeding a reduction are computed whole, once, into a workspace (the
    # arena grows by the padded tensor) so the reduction reads without a bounds check per tap.
    whole = _reduction_pads(sch, root) if config is not None and config.get("pad_whole") else set()
    sch = _inline_stages(sch, root, required, kept_pads | whole)
    # 3. Epilogue under the reduction's spatial loops; init before the first reduction loop.
    for b in list(sch.get_child_blocks(root)):
        if not _is_reduction(sch, b):
            continue
        tiled = _register_tile(sch, b, required, config)
        if tiled is not None:
            sch, placed = tiled
            kept_pads -= placed
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
        if config is not None and int(config.get("unroll_k", 1)) > 1:
            sch = _unroll_reduction(sch, b, int(config["unroll_k"]), required)
    # Pads kept for a tiling that did not happen after all: inline them as before.
    for name in sorted(kept_pads - whole):
        trial = _try_step(sch, required, "compute_inline", sch.get_sblock(name))
        if trial is not None:
            sch = trial
    result: tirx.PrimFunc = sch.mod["main"]
    if not _keeps_coverage(result, required):  # defensive: never hand back a kernel that skips elements
        log.warning("scheduling left part of a buffer unwritten; keeping the unscheduled kernel")
        return func
    return result


def _inline_stages(
    sch: s_tir.Schedule, root: SBlockRV, required: list[Any], kept_pads: set[str]
) -> s_tir.Schedule:
    """Steps 1 and 2 of schedule_primfunc: spatial stages inlined into their consumers, then the
    elementwise consumers that could not be inlined forward inlined backwards."""

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
            if sch.get(b).name_hint in kept_pads:
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
    return sch


def _k_loop(sch: s_tir.Schedule, reduction: Sequence[Any]) -> int:
    """Index in `reduction` of the loop the unroll_k knob unrolls: the innermost one longer than 1 (a
    depthwise convolution's innermost reduction loop is its channel multiplier, usually 1)."""
    for k in range(len(reduction) - 1, -1, -1):
        ext = sch.get(reduction[k]).extent
        if not isinstance(ext, tirx.IntImm) or int(ext) > 1:
            return k
    return len(reduction) - 1


def _divisors(extent: int, choices: tuple[int, ...]) -> list[int]:
    return [c for c in choices if c <= extent and extent % c == 0]


def _unroll_reduction(
    sch: s_tir.Schedule, block: SBlockRV, factor: int, required: list[Any]
) -> s_tir.Schedule:
    """Tuning knob unroll_k: the innermost reduction loop of `block` split by `factor` (which must divide
    it) and the inner part unrolled; each output still sums in the same order. `sch` when refused."""
    loops = sch.get_loops(block)
    nsp = _n_spatial(sch, block)
    if nsp >= len(loops):
        return sch
    k = _k_loop(sch, loops[nsp:])
    ext = sch.get(loops[nsp + k]).extent
    if not isinstance(ext, tirx.IntImm) or int(ext) % factor != 0 or int(ext) < factor:
        return sch
    trial = sch.copy()
    try:
        _, inner = trial.split(trial.get_loops(block)[nsp + k], [None, factor])
        trial.unroll(inner)
    except Exception as err:
        log.debug("reduction unroll refused: %s", str(err).splitlines()[0] if str(err) else err)
        return sch
    return trial if _keeps_coverage(trial.mod["main"], required) else sch


# Tuning knobs (docs/tuning.md): the register tile F x G of a float reduction (1 x 1: not tiled) and the
# unroll factor of its innermost reduction loop. Values offered to the search:
TUNE_TILE_F = (1, 2, 4, 8, 16, 32)
TUNE_TILE_G = (1, 2, 4, 8)
TUNE_MAX_TILE = 32  # accumulators: F * G at most this
TUNE_UNROLL_K = (1, 2, 4, 8, 16)


def tuning_space(func: tirx.PrimFunc) -> tuple[dict[str, list[int]], dict[str, int]]:
    """(knob -> values the search may try, the hand-set config) for the first float reduction of `func`
    (the kernels this file schedules); ({}, {}) for a kernel with nothing to tune (elementwise kernels,
    the integer path's prescheduled kernels). Every config of the space keeps each output's summation
    order, so results equal the hand-set kernel's bit for bit."""
    try:
        sch = s_tir.Schedule(func)
        root = sch.get_sblock("root")
    except Exception:
        return {}, {}
    if func.attrs is not None and any(a in func.attrs for a in PRESCHEDULED_ATTRS):
        return {}, {}
    required = _write_coverage(func)[1]
    has_pad = bool(_reduction_pads(sch, root))
    sch = _inline_stages(sch, root, required, _pads_to_keep(sch, root))
    for b in sch.get_child_blocks(root):
        if not _is_reduction(sch, b):
            continue
        loops = sch.get_loops(b)
        nsp = _n_spatial(sch, b)
        if not 0 < nsp < len(loops) or not isinstance(sch.get(loops[-1]).extent, tirx.IntImm):
            continue
        space: dict[str, list[int]] = {}
        default: dict[str, int] = {}
        geometry = _tile_geometry(sch, b, tuned=True)
        if geometry is not None:
            _, ext_c, pix, ext_p = geometry
            space["tile_f"] = _divisors(ext_c, TUNE_TILE_F)
            space["tile_g"] = _divisors(ext_p, TUNE_TILE_G) if pix >= 0 else [1]
            plan = _tile_axes(sch, b)
            default["tile_f"], default["tile_g"] = (plan[1], plan[3]) if plan is not None else (1, 1)
        if has_pad:
            space["pad_whole"], default["pad_whole"] = [0, 1], 0
        k_ext = int(sch.get(loops[nsp + _k_loop(sch, loops[nsp:])]).extent)
        space["unroll_k"] = [u for u in TUNE_UNROLL_K if u == 1 or (u < k_ext and k_ext % u == 0)]
        if 1 < k_ext <= TUNE_UNROLL_K[-1] and k_ext not in space["unroll_k"]:
            space["unroll_k"].append(k_ext)  # the whole loop (e.g. a 3-tap kernel row)
        default["unroll_k"] = 1
        space = {k: v for k, v in space.items() if len(v) > 1}
        return space, {k: v for k, v in default.items() if k in space}
    return {}, {}


def config_valid(config: Mapping[str, int], space: Mapping[str, Sequence[int]]) -> bool:
    """True when every knob of `config` is one `space` offers and the tile fits TUNE_MAX_TILE."""
    if any(k not in space or v not in space[k] for k, v in config.items()):
        return False
    return int(config.get("tile_f", 1)) * int(config.get("tile_g", 1)) <= TUNE_MAX_TILE


# ------------------------------------------------------------------------------------ register tiling
#
# A float reduction (conv2d, matmul) computed one output at a time reloads its input for every output
# channel and its weight for every pixel: about 4 loads per 2 FPU instructions. Tiled, a block of
# F output channels x G pixels keeps F*G accumulators in registers (a small array that GCC
# promotes to registers once the tile loops are unrolled), so each loaded input value serves F
# multiply-adds and each loaded weight G. Every output still sums its products in the model's order
# (kernel rows, columns, input channels) into one accumulator, then adds the bias: only the loop
# order across *different* outputs changes, so results are bit-identical to the untiled kernel.

# PrimFunc attribute: names of the accumulator tiles, which tir_codegen keeps on the stack (in registers).
REGISTER_TILES_ATTR = "tvmc_micro.register_tiles"
_IF_THEN_ELSE = tvm.ir.Op.get("prim.if_then_else")
# Accumulator tile sizes tried, largest first: (output-channel axis, pixel axis). Cortex-M4F has 32
# single-precision registers: 16 accumulators plus the loaded operands. The tile buffer keeps its global
# scope (TVM's C backend prints nothing else) and is named in REGISTER_TILES_ATTR.
_TILE_WITH_PIXELS = ((4, 4), (4, 2), (2, 4), (2, 2), (4, 1), (2, 1))
_TILE_CHANNELS_ONLY = (16, 8, 4, 2)
# A pad kept as a workspace is recomputed per tile; it may cost at most this fraction of the MACs.
_PAD_WORK_FRACTION = 1 / 16
# ... and its workspace may hold at most this fraction of the padded tensor (else the pad stays inlined).
_PAD_TILE_FRACTION = 4


def _is_pad(sch: s_tir.Schedule, block: SBlockRV) -> bool:
    body = sch.get(block).body
    return (
        isinstance(body, tirx.BufferStore)
        and isinstance(body.value, tvm.ir.Call)
        and body.value.op.same_as(_IF_THEN_ELSE)
    )


def _uses(expr: Any, var: Any) -> bool:
    return any(v.same_as(var) for v in tirx.analysis.undefined_vars(expr))


def _tile_geometry(
    sch: s_tir.Schedule, block: SBlockRV, tuned: bool = False
) -> tuple[int, int, int, int] | None:
    """(channel axis, its extent, pixel axis or -1, its extent or 1) for a float reduction worth tiling;
    None otherwise.

    The block must be S..S R..R over its own loops in order (as legalized TOPI reductions are). The
    channel axis is the innermost spatial axis some operand does not depend on (the input of a conv or
    matmul: reused across output channels) and another does (the weights); the pixel axis, the spatial
    axis just outside it, must likewise leave some operand (the weights) independent of it. Depthwise
    convolutions read their input per channel: no reuse, no hand-set tiling. With `tuned` (a tuning
    config asks) they qualify when their pixel axis has reuse (the weights): a tile of G pixels x F
    channels then loads each weight once for G pixels and tests the padding once per tile (the pad is
    placed per tile), a knob the search may try.
    """
    blk = sch.get(block)
    if len(blk.writes) != 1 or str(_source(blk.writes[0]).dtype) != "float32":
        return None
    iters = list(blk.iter_vars)
    kinds = [iv.iter_type for iv in iters]
    nsp = sum(1 for k in kinds if k == tirx.IterVar.DataPar)
    if nsp == 0 or nsp == len(iters) or any(k != tirx.IterVar.DataPar for k in kinds[:nsp]):
        return None
    if any(k != tirx.IterVar.CommReduce for k in kinds[nsp:]):
        return None
    loops = sch.get_loops(block)
    if len(loops) != len(iters):
        return None
    extents = []
    for loop, iv in zip(loops, iters, strict=True):
        ext = sch.get(loop).extent
        if not isinstance(ext, tirx.IntImm) or not isinstance(iv.dom.extent, tirx.IntImm):
            return None
        if int(ext) != int(iv.dom.extent):
            return None
        extents.append(int(ext))
    acc = _source(blk.writes[0])
    operands = [r for r in blk.reads if not _source(r).same_as(acc)]

    def users(axis: int) -> list[bool]:
        var = iters[axis].var
        return [any(_uses(rng.min, var) for rng in r.region) for r in operands]

    def reuse(axis: int) -> bool:
        u = users(axis)
        return any(u) and not all(u)

    chan = next((a for a in range(nsp - 1, -1, -1) if extents[a] > 1), None)
    if chan is None:
        return None
    pix = chan - 1
    if not reuse(chan):
        if tuned and pix >= 0 and extents[pix] > 1 and reuse(pix):
            return chan, extents[chan], pix, extents[pix]
        return None
    if pix >= 0 and extents[pix] > 1 and reuse(pix):
        return chan, extents[chan], pix, extents[pix]
    return chan, extents[chan], -1, 1


def _tile_axes(
    sch: s_tir.Schedule, block: SBlockRV, config: Mapping[str, int] | None = None
) -> tuple[int, int, int, int] | None:
    """(channel axis, F, pixel axis or -1, G) for the reduction `block`: the hand-set choice (the
    largest tile of _TILE_WITH_PIXELS or _TILE_CHANNELS_ONLY that divides the extents), or the tile
    `config` names (tile_f x tile_g; 1 x 1 means no register tiling). None: no tiling."""
    geometry = _tile_geometry(sch, block, tuned=config is not None and "tile_f" in config)
    if geometry is None:
        return None
    chan, ext_c, pix, ext_p = geometry
    if config is not None and _tile_geometry(sch, block) is None:  # tiled only as a config asks (depthwise)
        f, g = int(config["tile_f"]), int(config.get("tile_g", 1))
        if f < 1 or g < 1 or f * g == 1 or ext_c % f or ext_p % g:
            return None
        return chan, f, (pix if g > 1 else -1), g
    if config is not None and "tile_f" in config:
        f, g = int(config["tile_f"]), int(config.get("tile_g", 1))
        if f * g == 1:
            return None
        if f >= 1 and g >= 1 and ext_c % f == 0 and (g == 1 or (pix >= 0 and ext_p % g == 0)):
            return chan, f, (pix if g > 1 else -1), g
        log.warning("tuning config tile %dx%d does not fit this kernel; using the hand-set tile", f, g)
    if pix >= 0:
        for f, g in _TILE_WITH_PIXELS:
            if ext_c % f == 0 and ext_p % g == 0:
                return chan, f, (pix if g > 1 else -1), g
        return None
    for f in _TILE_CHANNELS_ONLY:
        if ext_c % f == 0:
            return chan, f, -1, 1
    return None


def _loop_work(sch: s_tir.Schedule, block: SBlockRV) -> int:
    work = 1
    for loop in sch.get_loops(block):
        work *= int(sch.get(loop).extent)
    return work


def _place_pad(
    sch: s_tir.Schedule, required: list[Any], pad: SBlockRV, candidates: list[Any], macs: int
) -> s_tir.Schedule | None:
    """The pad computed under the innermost of `candidates` whose recomputation stays cheap and whose
    workspace is a small part of the padded tensor; None when no loop qualifies (the caller inlines the
    pad then: a bounds check per MAC, but no workspace).

    compute_at sizes the pad's region from what the consumer reads under the loop, so the pad buffer is
    no longer written whole, by design: it is left out of the coverage check.
    """
    pad_buf = _source(sch.get(pad).writes[0])
    full = _static_elems(pad_buf)
    others = [b for b in required if not b.same_as(pad_buf)]
    # `candidates` are the consumer's outermost loops, in order: under candidates[i], i + 1 loops.
    for depth in range(len(candidates), 0, -1):
        trial = _try_step(sch, others, "compute_at", pad, candidates[depth - 1], True)
        if trial is None or _loop_work(trial, pad) > macs * _PAD_WORK_FRACTION:
            continue
        inner = trial.get_loops(pad)[depth:]
        tile = 1
        for lp in inner:
            tile *= int(trial.get(lp).extent)
        if full is not None and tile * _PAD_TILE_FRACTION <= full:
            return trial
    return None


def _static_elems(buf: Any) -> int | None:
    try:
        n = 1
        for d in buf.shape:
            n *= int(d)
        return n
    except Exception:
        return None


def _register_tile(
    sch: s_tir.Schedule, block: SBlockRV, required: list[Any], config: Mapping[str, int] | None = None
) -> tuple[s_tir.Schedule, set[str]] | None:
    """The reduction `block` tiled (see above), with its epilogue, init and pad placed; None (and `sch`
    untouched) when the block does not qualify or a step is refused. Also returns the names of the
    pads it placed, whose buffers it drops from `required` (computed per tile, never whole)."""
    plan = _tile_axes(sch, block, config)
    if plan is None:
        return None
    chan, f, pix, g = plan
    unroll_k = int(config.get("unroll_k", 1)) if config is not None else 1
    name = sch.get(block).name_hint
    pads = [p for p in sch.get_producers(block) if _is_pad(sch, p)]
    pad_names = [] if config is not None and config.get("pad_whole") else [sch.get(p).name_hint for p in pads]
    consumers = [sch.get(c).name_hint for c in sch.get_consumers(block)]
    sch = sch.copy()
    try:
        b = sch.get_sblock(name)
        loops = sch.get_loops(b)
        nsp = _n_spatial(sch, b)
        macs = _loop_work(sch, b)
        spatial, reduction = list(loops[:nsp]), list(loops[nsp:])
        c_out, c_in = sch.split(spatial[chan], [None, f])
        inner = [c_in]
        outer = [*spatial[:chan], c_out, *spatial[chan + 1 :]]
        if pix >= 0:
            p_out, p_in = sch.split(spatial[pix], [None, g])
            inner = [p_in, c_in]
            outer[pix] = p_out
        sch.reorder(*outer, *reduction, *inner)
        anchor = outer[-1]
        acc = _source(sch.get(b).writes[0])
        if any(acc.same_as(p) for p in sch.mod["main"].params):
            writer = sch.cache_write(b, 0, "global")
            sch.reverse_compute_at(writer, anchor, True)
            consumers = [sch.get(writer).name_hint]
        else:
            for cname in consumers:
                sch.reverse_compute_at(sch.get_sblock(cname), anchor, True)
        tile_buf = str(_source(sch.get(b).writes[0]).name)
        init = sch.decompose_reduction(b, reduction[0])
        for loop in inner:
            sch.unroll(loop)
        for blk in [init, *(sch.get_sblock(c) for c in consumers)]:
            for loop in sch.get_loops(blk)[len(outer) :]:
                sch.unroll(loop)
        k_loop = reduction[_k_loop(sch, reduction)]
        k_ext = sch.get(k_loop).extent
        if unroll_k > 1 and isinstance(k_ext, tirx.IntImm) and int(k_ext) % unroll_k == 0:
            # tuning knob: the innermost reduction loop split and its inner part unrolled
            _, k_in = sch.split(k_loop, [None, unroll_k])
            sch.unroll(k_in)
    except Exception as err:
        log.debug("register tiling of %s refused: %s", name, str(err).splitlines()[0] if str(err) else err)
        return None
    if not _keeps_coverage(sch.mod["main"], required):
        return None
    tiles = [str(t) for t in (sch.mod["main"].attrs or {}).get(REGISTER_TILES_ATTR, [])]
    sch.mod["main"] = sch.mod["main"].with_attr(REGISTER_TILES_ATTR, [*tiles, tile_buf])
    placed: set[str] = set()
    for pname in pad_names:
        pad = sch.get_sblock(pname)
        pad_buf = _source(sch.get(pad).writes[0])
        trial = _place_pad(sch, required, pad, outer, macs)
        if trial is not None:
            sch = trial
            placed.add(pname)
            required[:] = [buf for buf in required if not buf.same_as(pad_buf)]
    return sch, placed


def _pads_to_keep(sch: s_tir.Schedule, root: SBlockRV, config: Mapping[str, int] | None = None) -> set[str]:
    """Names of pad blocks that feed only a reduction register tiling will take (see _register_tile)."""
    keep: set[str] = set()
    for b in sch.get_child_blocks(root):
        if not _is_pad(sch, b):
            continue
        consumers = sch.get_consumers(b)
        if len(consumers) == 1 and _is_reduction(sch, consumers[0]) and _tile_axes(sch, consumers[0], config):
            keep.add(sch.get(b).name_hint)
    return keep


def _reduction_pads(sch: s_tir.Schedule, root: SBlockRV) -> set[str]:
    """Names of pad blocks whose consumers are all reductions (the pad_whole knob keeps them whole)."""
    keep: set[str] = set()
    for b in sch.get_child_blocks(root):
        if not _is_pad(sch, b):
            continue
        consumers = sch.get_consumers(b)
        if consumers and all(_is_reduction(sch, c) for c in consumers):
            keep.add(sch.get(b).name_hint)
    return keep


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
