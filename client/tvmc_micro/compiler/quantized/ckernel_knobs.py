"""Tuning knobs of the int8 DSP C kernels (ckernels.py): parameters ckernels chooses in Python when it
specialises a csrc/ template for one layer, offered to `tvmc tune` (docs/tuning.md).

Each knob overrides one #define of the template instance and changes how the C computes, never what: every
value keeps each output's accumulation (integer, so any order is exact) and epilogue, so results are bit
for bit those of the hand-set kernel. A config rides in the kernel's JSON spec under KNOBS_KEY (so the
generated C follows from the PrimFunc alone); ckernels.generate hands it to `override` for every template
instance it writes.

Knobs (template: #define overridden; values):
* k_unroll (conv.h: TVMC_CONV_UNROLL_FULL): 4-tap groups per chunk of K in full pixel blocks (the chunk's
  loop is unrolled, every tap at an immediate offset): the divisors 1, 2, 4, 8, 16 of the group count below
  it, and the full count (up to K_UNROLL_MAX_GROUPS). The kernel walks K in whole chunks, so a value that
  does not divide the group count would read past the row: never offered.
* dw_wide (depthwise.h: TVMC_DW_WIDE): weights pre-widened to int16 once per call on the stack, 0 or 1.
* dw_rowbuf (depthwise.h: TVMC_DW_ROWBUF): an output row whose window reaches above or below the image
  copies its kernel rows to the stack (1) or reads them through per-row pointers (0); offered on stride-1
  layers with such rows whose copy and widened weights fit DW_WIDE_TUNE_MAX_BYTES.
* fc_block (fully_connected.h: TVMC_FC_BLOCK): units computed together, 1, 2, 3, 4, 6, 8 up to the units.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

log = logging.getLogger(__name__)

KNOBS_KEY = "tune"
# Largest stack (bytes) a pre-widened depthwise weight copy may take when tuning turns it on (the hand-set
# limit is ckernels._DW_WIDE_MAX_BYTES; a candidate that overflows the stack fails on the device and is
# recorded as failed).
DW_WIDE_TUNE_MAX_BYTES = 4608
# Full unroll of the conv 4-tap loop is offered up to this many groups (code size grows with it).
K_UNROLL_MAX_GROUPS = 64
_FC_BLOCKS = (1, 2, 3, 4, 6, 8)

# (knobs to apply, params seen) of the generate call running in this context.
_ACTIVE: contextvars.ContextVar[tuple[Mapping[str, int], list[tuple[str, dict[str, object]]]] | None] = (
    contextvars.ContextVar("tvmc_ckernel_knobs", default=None)
)


@contextlib.contextmanager
def active(knobs: Mapping[str, int] | None) -> Iterator[list[tuple[str, dict[str, object]]]]:
    """Within: `override` applies `knobs` to every template instance and records (template, params)."""
    seen: list[tuple[str, dict[str, object]]] = []
    token = _ACTIVE.set((dict(knobs or {}), seen))
    try:
        yield seen
    finally:
        _ACTIVE.reset(token)


def override(template: str, params: dict[str, object], record: bool = True) -> dict[str, object]:
    """`params` of one template instance with the active knobs applied (unchanged outside `active`);
    record=False: a look ahead (a weight layout that follows a knob), not the instance itself."""
    state = _ACTIVE.get()
    if state is None:
        return params
    knobs, seen = state
    out = dict(params)
    if template == "conv.h" and "k_unroll" in knobs:
        out["TVMC_CONV_UNROLL_FULL"] = int(knobs["k_unroll"])
    elif template == "depthwise.h":
        if "dw_wide" in knobs:
            out["TVMC_DW_WIDE"] = int(knobs["dw_wide"])
        if "dw_rowbuf" in knobs:
            out["TVMC_DW_ROWBUF"] = int(knobs["dw_rowbuf"])
    elif template == "fully_connected.h" and "fc_block" in knobs:
        out["TVMC_FC_BLOCK"] = int(knobs["fc_block"])
    if record:
        seen.append((template, dict(params)))
    return out


def _space_of(template: str, p: Mapping[str, Any]) -> tuple[dict[str, list[int]], dict[str, int]]:
    space: dict[str, list[int]] = {}
    default: dict[str, int] = {}
    if template == "conv.h" and int(p["TVMC_CONV_FULL"]) > 0:
        k4 = int(p["TVMC_CONV_KB"]) - int(p["TVMC_CONV_KB"]) % 4
        groups = k4 // 4
        hand = int(p["TVMC_CONV_UNROLL_FULL"])
        values = {u for u in (1, 2, 4, 8, 16) if u < groups and groups % u == 0} | {hand}
        if groups <= K_UNROLL_MAX_GROUPS:
            values.add(groups)
        space["k_unroll"], default["k_unroll"] = sorted(v for v in values if v >= 1), hand
    elif template == "depthwise.h":
        ch, taps = int(p["TVMC_CH"]), int(p["TVMC_KH"]) * int(p["TVMC_KW"])
        hand_wide = int(p["TVMC_DW_WIDE"])
        if ch >= 4 and (hand_wide or 2 * taps * (ch - ch % 4) <= DW_WIDE_TUNE_MAX_BYTES):
            space["dw_wide"], default["dw_wide"] = [0, 1], hand_wide
        rows = ((int(p["TVMC_KH"]) - 1) * int(p["TVMC_DH"]) + 1) * int(p["TVMC_IW"]) * ch
        wide_max = 2 * taps * (ch - ch % 4) if ch >= 4 else 0
        stride_1 = (int(p["TVMC_SH"]), int(p["TVMC_SW"])) == (1, 1)
        if int(p["TVMC_DW_ZROW"]) and stride_1 and rows + wide_max <= DW_WIDE_TUNE_MAX_BYTES:
            space["dw_rowbuf"], default["dw_rowbuf"] = [0, 1], int(p["TVMC_DW_ROWBUF"])
    elif template == "fully_connected.h":
        units, hand = int(p["TVMC_FC_UNITS"]), int(p["TVMC_FC_BLOCK"])
        blocks = sorted({b for b in _FC_BLOCKS if b <= units} | {hand})
        if len(blocks) > 1:
            space["fc_block"], default["fc_block"] = blocks, hand
    space = {k: v for k, v in space.items() if len(v) > 1}
    return space, {k: v for k, v in default.items() if k in space}


def kernel_space(func: Any, target: Any) -> tuple[dict[str, list[int]], dict[str, int]] | None:
    """(space, hand-set config) of a PrimFunc the DSP C kernels replace on `target`; None for any other
    PrimFunc (the TIR schedule's knobs apply to those)."""
    from tvmc_micro.compiler.quantized import ckernels

    if not ckernels.has_dsp(target):
        return None
    return _probe(func)


def _probe(func: Any) -> tuple[dict[str, list[int]], dict[str, int]] | None:
    from tvmc_micro.compiler.quantized import ckernels

    spec = func.attrs.get(ckernels.SPEC_ATTR) if func.attrs is not None else None
    if spec is None:
        return None
    dtypes = [str(p.dtype) for p in func.params]
    with active({}) as seen:
        if ckernels.generate(str(spec), "tvmc_tune_probe", dtypes) is None or not seen:
            return None
    return _space_of(*seen[0])


def with_knobs(func: Any, config: Mapping[str, int] | None) -> Any:
    """`func` whose C-kernel spec carries `config` (unchanged without a config or a spec)."""
    from tvmc_micro.compiler.quantized import ckernels

    spec = func.attrs.get(ckernels.SPEC_ATTR) if func.attrs is not None else None
    if spec is None or not config:
        return func
    probed = _probe(func)
    space = probed[0] if probed is not None else {}
    # Records are data from a file: a knob this kernel does not offer, or a value outside its space, keeps
    # the hand-set choice (as a schedule tile that does not fit does).
    knobs = {k: int(v) for k, v in sorted(config.items()) if k in space and int(v) in space[k]}
    if len(knobs) != len(config):
        log.warning(
            "tuning config %s does not fit this C kernel; using the hand-set %s",
            dict(config),
            "choice for the rest" if knobs else "choices",
        )
    if not knobs:
        return func
    data = json.loads(str(spec))
    data[KNOBS_KEY] = knobs
    return func.with_attr(ckernels.SPEC_ATTR, json.dumps(data, sort_keys=True))
