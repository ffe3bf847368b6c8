"""Shape-specialised C kernels for int8 CONV_2D and DEPTHWISE_CONV_2D on cores with the DSP extension.

Neither GCC nor LLVM emits SMLAD/SXTB16 from plain multiply-accumulates, so for targets whose `-mcpu`
has the Armv7E-M DSP instructions (cortex-m4/m7/m33/m55/m85) the two heavy kernel families are written
here as C, one function per layer with every shape, stride and padding a compile-time constant:

* CONV_2D (groups == 1) is a matrix multiply over an int16 patch: each output pixel's receptive field is
  copied once (out-of-image taps read the input zero point, as the TIR kernels do) and widened in SXTB16
  order, then 3 pixels x 2 output channels are computed together with SMLAD (per 4 taps: 2 weight loads,
  4 SXTB16, 3 LDRD of patch words, 12 SMLAD for 24 MACs). A 1x1 unpadded conv widens straight from the
  input.
* DEPTHWISE_CONV_2D (multiplier 1) stays NHWC and goes output row by output row: one pointer per kernel
  row (a zero-point row stands in for rows outside the image), then 2 pixels x 4 channels per step with
  SMLABB/SMLATT, each tap's weights widened once for both pixels; the pixels whose column taps are all
  inside run in a loop without bounds tests, the edge blocks are unrolled so their out-of-image taps
  fold into the constant zero point.
* The epilogue is TFLite's MultiplyByQuantizedMultiplier with the output zero point folded in, one SMLAL
  and one arithmetic shift (`tvmc_rqz`; `tvmc_rq` for multipliers/shifts outside its domain), then clamp
  and byte store. Per-channel constants are derived from the stored shift in the epilogue, so no kernel
  workspace holds a table.

With `--kernel-weights int16` (generate's kernel_weights) the conv and FULLY_CONNECTED kernels read weights
widened to int16 at compile time, in the order their SMLADs consume them (`widened_blocks`): one LDRD per
channel and 4-tap group and no SXTB16, for twice those weights' flash. The kernel declares the layout
(GeneratedKernel.weight_layout) and executor.apply_weight_layouts rewrites the constant.

Every intrinsic has a portable C twin selected when `__ARM_FEATURE_DSP` is absent, so the same source
built for the host computes bit for bit what the Cortex-M build computes.

The TIR builders in kernels.py attach a JSON spec (`SPEC_ATTR`) to the kernels this module can replace;
`generate` turns one spec into C, or returns None (the TIR kernel is then lowered as usual).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from typing import Any

import numpy as np

from tvmc_micro.compiler.errors import LoweringError
from tvmc_micro.compiler.quantized import ckernel_knobs

SPEC_ATTR = "tvmc_micro.ckernel_spec"
# Cores whose -mcpu implies the DSP extension (SMLAD, SXTB16).
DSP_MCPUS = frozenset({"cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "cortex-m85"})

CSRC = "csrc"  # the C sources, package data beside this module
# --kernel-weights: "int8" keeps the model's weights as they are; "int16" has the conv and fully connected
# kernels read weights widened at compile time (twice the flash for those weights, no SXTB16 per use).
KERNEL_WEIGHTS = ("int8", "int16")


@functools.cache
def _csrc(name: str) -> str:
    """The text of csrc/<name> (package data)."""
    return (resources.files(__package__) / CSRC / name).read_text(encoding="utf-8")


# The helpers every generated kernel uses (csrc/tvmc_dsp.h): emitted once before the kernels.
PRELUDE = _csrc("tvmc_dsp.h")

_INCLUDE = re.compile(r'^#include "([A-Za-z0-9_.]+)"[ \t]*$', re.M)


def _expand(name: str) -> str:
    """csrc/<name> with its local #includes pasted in (recursively; tvmc_dsp.h is left out, PRELUDE holds
    it), so the generated source stands alone."""

    def paste(m: re.Match[str]) -> str:
        return "" if m.group(1) == "tvmc_dsp.h" else _expand(m.group(1)).rstrip("\n")

    return _INCLUDE.sub(paste, _csrc(name))


def _instance(template: str, comment: str, params: dict[str, object]) -> str:
    """One kernel: a comment, the template's parameters as #defines, then the template (which #undefs
    them at its end)."""
    params = ckernel_knobs.override(template, params)
    defines = [f"#define {k} {v}" for k, v in params.items()]
    return "\n".join([f"/* {comment} */", *defines, _expand(template)])


@dataclass(frozen=True)
class GeneratedKernel:
    source: str
    param_dtypes: list[str]
    workspace: tuple[int, str] | None  # (bytes, dtype) of one trailing scratch parameter
    # (output param index, input param index, lead): the kernel is correct with its output starting `lead`
    # bytes before that input (0: at the same address), so the planner may merge the two when the input
    # dies at this call.
    inplace: tuple[tuple[int, int, int], ...] = ()
    # (param index, layout): the kernel reads that parameter (a constant) as layout(the model's array)
    # (--kernel-weights int16); the driver rewrites the constant before it is emitted.
    weight_layout: tuple[int, Callable[[np.ndarray], np.ndarray]] | None = None
    # (param index, layout): a requantisation table read precomputed (TVMC_RQ_PACKED of tvmc_epilogue.inc),
    # rewritten like weight_layout but whatever --kernel-weights says.
    rq_layout: tuple[int, Callable[[np.ndarray], np.ndarray]] | None = None


def has_dsp(target: Any) -> bool:
    """True when the target's -mcpu implies the DSP extension (the C kernels here pay off)."""
    try:
        mcpu = target.attrs.get("mcpu")
    except AttributeError:
        mcpu = target.get("mcpu") if isinstance(target, dict) else None
    return mcpu is not None and str(mcpu) in DSP_MCPUS


def generate(
    spec_json: str, symbol: str, param_dtypes: list[str], kernel_weights: str = "int8"
) -> GeneratedKernel | None:
    """One kernel as C (None: not one of ours). kernel_weights (KERNEL_WEIGHTS): "int16" lays the weights
    of the conv and fully connected kernels out widened at compile time where the layer allows it."""
    if kernel_weights not in KERNEL_WEIGHTS:
        raise ValueError(f"kernel_weights must be one of {KERNEL_WEIGHTS}, not {kernel_weights!r}")
    spec = json.loads(spec_json)
    spec["_wide_weights"] = kernel_weights == "int16"
    knobs = spec.pop(ckernel_knobs.KNOBS_KEY, None)  # tuning knobs (ckernel_knobs.py), applied by _instance
    if knobs is not None:
        with ckernel_knobs.active(knobs):
            return _generate(spec, symbol, param_dtypes)
    return _generate(spec, symbol, param_dtypes)


def _generate(spec: dict[str, Any], symbol: str, param_dtypes: list[str]) -> GeneratedKernel | None:
    kind = spec["kind"]
    if kind == "conv2d":
        return _conv2d(spec, symbol, param_dtypes)
    if kind == "depthwise":
        return _depthwise(spec, symbol, param_dtypes)
    if kind == "fully_connected":
        return _fully_connected(spec, symbol, param_dtypes)
    if kind == "add":
        return _add(spec, symbol, param_dtypes)
    if kind == "avg_pool":
        return _avg_pool(spec, symbol, param_dtypes)
    return None


def widened_blocks(w: np.ndarray, block: int) -> np.ndarray:
    """The int16 weights TVMC_CONV_WIDE_W / TVMC_FC_WIDE_W read: rows `w` [n, k] (k a multiple of 4) in
    blocks of `block` rows (the last block shorter); per block and 4-element group, each row's elements
    0, 2, 1, 3 (its two SXTB16-order words) side by side. Flat, n * k elements."""
    n, k = w.shape
    groups = w.reshape(n, k // 4, 4)[:, :, [0, 2, 1, 3]].astype(np.int16)
    parts = [groups[r : r + block].transpose(1, 0, 2).reshape(-1) for r in range(0, n, block)]
    return np.concatenate(parts) if parts else np.zeros(0, np.int16)


_REPORT = "report this model (internal error)"


def _conv_weight_layout(spec: dict[str, Any], k: int, kb: int) -> Callable[[np.ndarray], np.ndarray]:
    """The model's conv weights ([OC, KH, KW, IC], or [KH, KW, OC] for weight_hwo) as conv.h's
    TVMC_CONV_WIDE_W layout: [OC, K] rows zero-padded to kb, in channel pairs."""
    oc = int(spec["weight_shape"][0])
    hwo = bool(spec.get("weight_hwo"))

    def layout(w: np.ndarray) -> np.ndarray:
        if w.size != oc * k:
            raise LoweringError(f"conv weights of {w.size} elements, the kernel expects {oc} x {k}", _REPORT)
        rows = w.reshape(k, oc).T if hwo else w.reshape(oc, k)
        rows = np.pad(rows, ((0, 0), (0, kb - k)))
        return widened_blocks(rows, 2)

    return layout


def _fc_weight_layout(units: int, depth: int, block: int) -> Callable[[np.ndarray], np.ndarray]:
    def layout(w: np.ndarray) -> np.ndarray:
        if w.size != units * depth:
            raise LoweringError(
                f"FC weights of {w.size} elements, the kernel expects {units} x {depth}", _REPORT
            )
        return widened_blocks(w.reshape(units, depth), block)

    return layout


def _signature(symbol: str, param_dtypes: list[str], names: list[str]) -> str:
    ctype = {"int8": "int8_t", "int32": "int32_t", "int16": "int16_t"}
    params = ", ".join(f"{ctype[d]}* {n}" for d, n in zip(param_dtypes, names, strict=True))
    return f"int32_t {symbol}({params})"


def _param_names(spec: dict[str, Any], extra: list[str]) -> list[str]:
    rq = spec["requant"]
    tables = []
    if rq["per_channel"]:
        tables = ["rq_mult", "rq_left", "rq_right"] if rq["has_left"] else ["rq_mult", "rq_right"]
    return ["data", "weight", "bias", *tables, "out", *extra]


# GCC's pre-allocation scheduler hoists every load and SXTB16 of an unrolled tap/K loop to the top and
# then spills them (the 3x3 depthwise ran 40% slower), so depthwise asks it to keep source order (the conv
# kernels are 1% faster without it).
_KEEP_ORDER = '__attribute__((optimize("no-schedule-insns"))) '

# tvmc_rqz's domain (see PRELUDE): right shifts it handles without wrapping, multipliers in canonical form.
_RQZ_MIN_RIGHT, _RQZ_MAX_RIGHT = 2, 22


def _rq_mode(spec: dict[str, Any]) -> str:
    """How a kernel requantises: "fixed" (per-tensor constants in tvmc_rqz's domain), "table" (per-channel,
    tvmc_rqz with each channel's high word derived from its shift, tvmc_rq for a channel out of its domain)
    or "exact" (tvmc_rq, any TFLite multiplier/shift)."""
    rq = spec["requant"]
    if rq["per_channel"]:
        return "exact" if rq["has_left"] else "table"
    m = int(rq["mult"])
    canonical = m == 0 or (1 << 30) <= m < (1 << 31)
    ok = rq["left"] == 0 and _RQZ_MIN_RIGHT <= rq["right"] <= _RQZ_MAX_RIGHT and canonical
    return "fixed" if ok else "exact"


# Output pixels computed together by the conv kernels: 3 pixels x 2 channels keeps 6 accumulators, 4 widened
# weights and one pixel's two patch words in registers, so each 4-tap step costs 2 weight loads, 4 SXTB16,
# 3 LDRD (each pixel's two patch words at an immediate offset) and 12 SMLAD for 24 MACs (2 pixels: 16
# instructions for 16 MACs). 4 pixels would need 16 registers.
_CONV_PIX = 3
# Full blocks unroll K completely up to this many 4-tap groups (KWS: -177K instructions per inference for
# +1.8 KB of .text over its two conv kernels); the once-per-call tail block keeps the short unroll. A longer
# K is walked in chunks of the short unroll (csrc/conv_channels.inc).
_FULL_UNROLL_GROUPS = 16


def _params(symbol: str, dtypes: list[str], names: list[str]) -> str:
    """TVMC_PARAMS: the C parameter list (TVM emits its own prototype from the same dtypes)."""
    return _signature(symbol, dtypes, names).split("(", 1)[1][:-1]


def _rq_packed(spec: dict[str, Any]) -> bool:
    """Per-channel tables all inside tvmc_rqz's domain: rq_right is read precomputed (TVMC_RQ_PACKED)."""
    return _rq_mode(spec) == "table" and bool(spec["requant"].get("in_domain"))


def _rq_pack(
    spec: dict[str, Any], names: list[str], dtypes: list[str], channels: int
) -> tuple[list[str], tuple[int, Callable[[np.ndarray], np.ndarray]] | None]:
    """(param dtypes, GeneratedKernel.rq_layout) of a kernel whose tables _rq_packed reads precomputed:
    rq_right becomes int32 (khi, e - 1) pairs, the high word and shift tvmc_rqz takes, so a channel's
    epilogue constants cost two loads instead of a load and three instructions per pixel block."""
    if not _rq_packed(spec):
        return dtypes, None
    i = names.index("rq_right")
    return [*dtypes[:i], "int32", *dtypes[i + 1 :]], (i, _rq_right_layout(channels, int(spec["out_zp"])))


def _rq_right_layout(channels: int, out_zp: int) -> Callable[[np.ndarray], np.ndarray]:
    def layout(r: np.ndarray) -> np.ndarray:
        e = np.asarray(r, dtype=np.int64).reshape(-1)
        if e.size != channels:
            raise LoweringError(
                f"a requantisation table of {e.size} shifts, the kernel expects {channels}", _REPORT
            )
        out = (e < _RQZ_MIN_RIGHT) | (e > _RQZ_MAX_RIGHT)
        if np.any(out):
            bad = sorted(set(e[out].tolist()))
            raise LoweringError(f"right shifts {bad} outside tvmc_rqz's domain", _REPORT)
        # TVMC_KHI(e) of tvmc_epilogue.inc: |2 zp + 1| < 2^8 and e <= 22, so no int32 wrap
        khi = (2 * out_zp + 1) * (np.int64(1) << (e - 2))
        return np.stack([khi, e - 1], axis=1).astype(np.int32)

    return layout


def _rq_params(spec: dict[str, Any]) -> dict[str, object]:
    """The requantisation parameters of csrc/tvmc_epilogue.inc."""
    rq = spec["requant"]
    mode = _rq_mode(spec)
    lo, hi = spec["act_range"]
    params: dict[str, object] = {
        "TVMC_RQ_MODE": {"fixed": "TVMC_RQ_FIXED", "table": "TVMC_RQ_TABLE", "exact": "TVMC_RQ_EXACT"}[mode],
        "TVMC_RQ_IN_DOMAIN": int(bool(rq.get("in_domain"))),
        "TVMC_RQ_PACKED": int(_rq_packed(spec)),
        "TVMC_RQ_PER_CHANNEL": int(bool(rq["per_channel"])),
        "TVMC_RQ_HAS_LEFT": int(bool(rq["has_left"])),
        "TVMC_RQ_MULT": int(rq["mult"]),
        "TVMC_RQ_LEFT": int(rq["left"]),
        "TVMC_RQ_RIGHT": int(rq["right"]),
        "TVMC_OUT_ZP": f"({int(spec['out_zp'])})",
        "TVMC_ACT_MIN": f"({int(lo)})",
        "TVMC_ACT_MAX": f"({int(hi)})",
    }
    return params


def _k_unroll(k4: int, npix: int) -> int:
    """Unroll factor of a conv block's 4-tap loop: the whole loop in the hot full blocks (every tap at an
    immediate offset, no loop counter) up to _FULL_UNROLL_GROUPS groups, else chunks of 8 groups in the
    full blocks when they divide it (against 4: ResNet-8 -1.4% instructions, person_detect -0.3%, each
    +1 KB of .text), else 4 or 2 when they divide it."""
    groups = k4 // 4
    if npix == _CONV_PIX and groups <= _FULL_UNROLL_GROUPS:
        return groups
    if npix == _CONV_PIX and groups % 8 == 0:
        return 8
    return 4 if groups % 4 == 0 else (2 if groups % 2 == 0 else 1)


def _conv2d(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
    """csrc/conv.h specialised for one layer."""
    _, ih, iw, ic = spec["data_shape"]
    oc, kh, kw, _ = spec["weight_shape"]
    _, oh, ow, _ = spec["out_shape"]
    sh, sw = spec["stride"]
    dh, dw = spec["dilation"]
    pt, pl = spec["pad"]
    k = kh * kw * ic
    direct = kh == 1 and kw == 1 and pt == 0 and pl == 0  # 1x1 taps never leave the image
    # K not a multiple of 4 (VWW's 3x3x3 first layer: 27) would leave a scalar tail in every channel block;
    # an assembled patch is padded instead with zero taps against zero weights (a padded copy of the
    # weights made per call in the workspace, oc * kp bytes, when that is small).
    kp = (k + 3) // 4 * 4
    # (Only when the zero taps add at most 1/8 more MACs: for K = 9 the scalar tail is cheaper.)
    # (Widened weights are padded at compile time, so no workspace limit applies to them.)
    wide_w = bool(spec.get("_wide_weights"))
    small = oc * kp <= _PAD_K_WEIGHT_BYTES or wide_w
    pad_k = not direct and kp != k and 8 * (kp - k) <= k and small
    kb = kp if pad_k else k  # the K the blocks run
    # --kernel-weights int16: weights widened and laid out at compile time (needs whole 4-tap groups).
    wide_w = wide_w and kb % 4 == 0
    if wide_w:
        dtypes = [dtypes[0], "int16", *dtypes[2:]]
    # Patch rows for _CONV_PIX pixels: int16, the first k4 in SXTB16 order, the tail in natural order.
    row = kb + (kb % 2)
    # Output pixel p of a stride-1 1x1 conv reads input pixel p only, and each block widens its pixels into
    # ws before writing them; with oc <= ic, out[p] never reaches an input pixel a later block reads. So the
    # output may sit over the input (the arena then holds one of the two: KWS's pointwise layers).
    inplace = direct and (sh, sw) == (1, 1) and oc <= ic
    names = _param_names(spec, ["ws"])
    dtypes, rq_layout = _rq_pack(spec, names, dtypes, oc)
    ws_bytes = (_CONV_PIX * row) * 2 + (0 if direct else kp)
    wk_offset = ws_bytes
    if (spec.get("weight_hwo") or pad_k) and not wide_w:
        # A DEPTHWISE_CONV_2D of one input channel (kernels.py hands it over as this conv) has [kh, kw, oc]
        # weights: each call first lays them out as the [oc, kh, kw] rows the blocks read (oc * K bytes of
        # workspace, a few hundred instructions per call); a padded K gets its rows zero-padded there too.
        ws_bytes += (oc * kb + 3) // 4 * 4
    if direct:
        patch = "TVMC_CONV_DIRECT"
    elif dw == 1 and (kw * ic) % 4 == 0:
        patch = "TVMC_CONV_ROWS"
    else:
        patch = "TVMC_CONV_BYTES"
    full, rest = divmod(oh * ow, _CONV_PIX)
    k4 = kb - kb % 4
    params: dict[str, object] = {
        "TVMC_NAME": symbol,
        "TVMC_PARAMS": _params(symbol, [*dtypes, "int16"], names),
        **_geometry(spec),
        "TVMC_OC": oc,
        "TVMC_IN_ZP": f"({int(spec['in_zp'])})",
        "TVMC_CONV_K": k,
        "TVMC_CONV_KB": kb,
        "TVMC_CONV_ROW": row,
        "TVMC_CONV_PATCH": patch,
        "TVMC_CONV_PAD_K": int(pad_k),
        "TVMC_CONV_WEIGHT_HWO": int(bool(spec.get("weight_hwo"))),
        "TVMC_CONV_WK_OFFSET": wk_offset,
        "TVMC_CONV_PIX": _CONV_PIX,
        "TVMC_CONV_FULL": full * _CONV_PIX,
        "TVMC_CONV_REST": rest,
        "TVMC_CONV_UNROLL_FULL": _k_unroll(k4, _CONV_PIX),
        "TVMC_CONV_UNROLL_TAIL": _k_unroll(k4, rest),
        "TVMC_CONV_WIDE_W": int(wide_w),
        **_rq_params(spec),
    }
    comment = (
        f"CONV_2D {ih}x{iw}x{ic} -> {oh}x{ow}x{oc}, kernel {kh}x{kw}, stride {sh}x{sw}, "
        f"dilation {dh}x{dw}, pad {pt},{pl}: K = {k}"
    )
    pairs = ((names.index("out"), names.index("data"), 0),) if inplace else ()
    layout = (names.index("weight"), _conv_weight_layout(spec, k, kb)) if wide_w else None
    return GeneratedKernel(
        _instance("conv.h", comment, params) + "\n",
        [*dtypes, "int16"],
        (ws_bytes, "int16"),
        inplace=pairs,
        weight_layout=layout,
        rq_layout=rq_layout,
    )


def _geometry(spec: dict[str, Any]) -> dict[str, object]:
    """Shape, stride, dilation and padding parameters shared by the conv and depthwise templates."""
    _, ih, iw, ic = spec["data_shape"]
    _, kh, kw, _ = spec["weight_shape"] if spec["kind"] != "conv2d" else [0, *spec["weight_shape"][1:]]
    _, oh, ow, _ = spec["out_shape"]
    sh, sw = spec["stride"]
    dh, dw = spec["dilation"]
    pt, pl = spec["pad"]
    return {
        "TVMC_IH": ih, "TVMC_IW": iw, "TVMC_IC": ic, "TVMC_OH": oh, "TVMC_OW": ow, "TVMC_KH": kh,
        "TVMC_KW": kw, "TVMC_SH": sh, "TVMC_SW": sw, "TVMC_DH": dh, "TVMC_DW": dw, "TVMC_PT": pt,
        "TVMC_PL": pl,
    }  # fmt: skip


# Largest padded weight copy (oc * K rounded up to 4, bytes of workspace) a conv with K % 4 != 0 makes.
_PAD_K_WEIGHT_BYTES = 4096

# Output pixels computed together by the depthwise kernel: each tap's weight word is loaded and widened once
# for both pixels (per tap and 4 channels: 17 instructions for 8 MACs instead of 2 x 10).
_DW_PIX = 2


# Depthwise weights widened once per call on the stack (int16 in SXTB16 order, 2 bytes per tap and channel):
# per tap of every 4-channel block one LDRD instead of a load and two SXTB16. Only up to this many bytes of
# stack (a 3x3 layer of at most 128 channels); wider layers widen per tap as before.
_DW_WIDE_MAX_BYTES = 2304


# Stack the depthwise kernel may take for its widened weights and its copy of an output row's kernel rows
# (made for the rows whose window reaches above or below the image; then every row reads its taps at
# constant offsets from one pointer: KWS's depthwise layers -6% instructions, VWW's first -4%). 3,072 B is
# what the widened weights plus the zero-point row took before the copy (Zephyr's default main stack is
# 4 KB); a layer whose copy does not fit, a strided one or one without widened weights (measured 1-3%
# slower with the copy: VWW's 12x12x32 stride-2 and 3x3x256 layers) keeps one pointer per kernel row and
# the zero-point row.
_DW_STACK_BYTES = 3072


def _dw_plan(spec: dict[str, Any]) -> tuple[int, int, bool]:
    """(XL, XR, zrow) of csrc/depthwise.h: each output row runs its blocks of _DW_PIX pixels starting at
    0, _DW_PIX, ... below XL unrolled (left edge), XL .. XR in a loop with no bounds test (every column tap
    of those pixels in the image), XR, XR + _DW_PIX, ... unrolled (right edge, the last block may be short);
    zrow: whether some kernel row of some output row lies outside the image."""
    _, ih, iw, _ = spec["data_shape"]
    _, kh, kw, _ = spec["weight_shape"]
    _, oh, ow, _ = spec["out_shape"]
    (sh, sw), (dh, dw), (pt, pl) = spec["stride"], spec["dilation"], spec["pad"]
    inside = [0 <= x * sw - pl and x * sw - pl + (kw - 1) * dw < iw for x in range(ow)]
    x0 = next((x for x in range(ow) if inside[x]), ow)
    x1 = max((x + 1 for x in range(ow) if inside[x]), default=x0)
    xl = min(-(-x0 // _DW_PIX) * _DW_PIX, ow)  # first block start at or after the first inside column
    xr = xl + max(0, x1 - xl) // _DW_PIX * _DW_PIX
    zrow = any(not 0 <= y * sh - pt + k * dh < ih for y in range(oh) for k in range(kh))
    return xl, xr, zrow


def _dw_blocks(ow: int) -> list[tuple[int, int]]:
    """(first column, pixels) of the blocks of one output row, in execution order (see _dw_plan)."""
    return [(x, min(_DW_PIX, ow - x)) for x in range(0, ow, _DW_PIX)]


def _depthwise_lead(spec: dict[str, Any]) -> int:
    """The smallest lead (a multiple of 16) with which the depthwise kernel below (and a plain pixel-by-pixel,
    channel-by-channel loop, kept in the bound so either order stays safe) may write their output starting
    that many bytes before their input (planner.InPlace).

    Both walk output pixels in NHWC order and read input rows at most `pad` rows/columns behind the pixel
    they write, so writes trail reads. Over each kernel's steps in execution order (a step reads, then
    writes), a write at out + W lands on input byte W - lead; it is safe when that is below every byte a
    later step reads: lead = max over steps (W - min later read + 1). Computed here from the same loop
    structure the C code has, for the exact shape, padding, stride and dilation. The copy of an edge output
    row's kernel rows (TVMC_DW_ROWBUF) reads the bytes that row's blocks read, before the row writes
    anything: the bound holds for it too."""
    import numpy as np

    _, ih, iw, ch = spec["data_shape"]
    _, kh, kw, _ = spec["weight_shape"]
    _, oh, ow, _ = spec["out_shape"]
    sh, sw = spec["stride"]
    dh, dw = spec["dilation"]
    pt, pl = spec["pad"]
    none = np.int64(1) << 60
    pix = np.arange(oh * ow, dtype=np.int64)
    iy = (pix // ow)[:, None] * sh - pt + np.arange(kh)[None, :] * dh
    ix = (pix % ow)[:, None] * sw - pl + np.arange(kw)[None, :] * dw
    miny = np.where((iy >= 0) & (iy < ih), iy, none).min(axis=1)
    minx = np.where((ix >= 0) & (ix < iw), ix, none).min(axis=1)
    # Lowest input pixel any tap of each output pixel reads (taps are rows x columns: minimise each).
    low = np.where((miny < none) & (minx < none), miny * iw + minx, none)
    c4 = ch - ch % 4
    chans = np.arange(ch, dtype=np.int64)

    def lead(reads: np.ndarray, writes: np.ndarray) -> int:
        later = np.minimum.accumulate(reads[::-1])[::-1]  # min read of steps t .. end
        later = np.append(later[1:], none)  # ... of steps after t
        return int(max(0, (writes - later + 1).max()))

    # A plain loop: pixel by pixel, channel by channel, each reading its own channel of the taps.
    need = lead((low[:, None] * ch + chans[None, :]).ravel(), (pix[:, None] * ch + chans[None, :]).ravel())
    # The blocked kernel: row by row, blocks of _DW_PIX pixels of one row; 4-channel groups over all of
    # them, then the tail channels pixel by pixel.
    reads, writes = [], []
    for p0, n in ((y * ow + x, n) for y in range(oh) for x, n in _dw_blocks(ow)):
        block = pix[p0 : p0 + n]
        groups = np.arange(0, c4, 4, dtype=np.int64)
        reads.append(low[block].min() * ch + groups)
        writes.append(block[-1] * ch + groups + 3)
        tail = chans[c4:]
        for q in block:
            reads.append(low[q] * ch + tail)
            writes.append(q * ch + tail)
    need = max(need, lead(np.concatenate(reads), np.concatenate(writes)))
    return (need + 15) // 16 * 16


def _depthwise(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
    """csrc/depthwise.h specialised for one layer."""
    _, ih, iw, ch = spec["data_shape"]
    _, kh, kw, _ = spec["weight_shape"]
    _, oh, ow, _ = spec["out_shape"]
    sh, sw = spec["stride"]
    dh, dw = spec["dilation"]
    pt, pl = spec["pad"]
    names = _param_names(spec, [])
    dtypes, rq_layout = _rq_pack(spec, names, dtypes, ch)
    xl, xr, zrow = _dw_plan(spec)
    wide_bytes = 2 * kh * kw * (ch - ch % 4)
    if ch < 4 or wide_bytes > _DW_WIDE_MAX_BYTES:
        wide_bytes = 0
    params: dict[str, object] = {
        "TVMC_NAME": symbol,
        "TVMC_PARAMS": _params(symbol, dtypes, names),
        **_geometry(spec),
        "TVMC_CH": ch,
        "TVMC_IN_ZP": f"({int(spec['in_zp'])})",
        "TVMC_DW_PIX": _DW_PIX,
        "TVMC_DW_XL": xl,
        "TVMC_DW_XR": xr,
        "TVMC_DW_ZROW": int(zrow),
        "TVMC_DW_ROWBUF": int(
            zrow
            and (sh, sw) == (1, 1)
            and 0 < wide_bytes
            and wide_bytes + ((kh - 1) * dh + 1) * iw * ch <= _DW_STACK_BYTES
        ),
        "TVMC_DW_WIDE": int(wide_bytes > 0),
        **_rq_params(spec),
    }
    comment = (
        f"DEPTHWISE_CONV_2D {ih}x{iw}x{ch} -> {oh}x{ow}, kernel {kh}x{kw}, stride {sh}x{sw}, "
        f"dilation {dh}x{dw}, pad {pt},{pl}"
    )
    pairs = ((names.index("out"), names.index("data"), _depthwise_lead(spec)),)
    return GeneratedKernel(
        _instance("depthwise.h", comment, params) + "\n", dtypes, None, inplace=pairs, rq_layout=rq_layout
    )


# Units computed together by the FULLY_CONNECTED kernel: each 4-element input word is loaded and widened
# once for all of them (per 4 k and 4 units: 1 input load, 2 SXTB16, 4 weight loads, 8 SXTB16, 8 SMLAD = 23
# instructions for 16 MACs). Needs no workspace (the arena stays at the activations).
_FC_UNITS = 4
# With a depth that is a multiple of 4, each input row is first widened into a stack copy (2 * depth bytes,
# at most _FC_WIDE_MAX_BYTES) that the blocks read with one LDRD per group (per 4 k and 4 units: 1 LDRD, 4
# weight loads, 8 SXTB16, 8 SMLAD = 21 instructions for 16 MACs; GCC 12's loop runs at 1.39 instructions
# per MAC against 1.50 for the narrow block). 6 units would reach 1.34 but double each kernel's code (ad01:
# +5.5 KB of .text for 3% fewer instructions); 8 units spill.
_FC_WIDE_UNITS = 4
# With weights widened at compile time too (--kernel-weights int16) a group costs 1 + 3 * units instructions
# for 4 * units MACs, no SXTB16 temporaries: 6 units (ad01: 254,280 -> 242,240 instructions, +3.7 KB of
# .text, against +264 KB of widened weights) fit the registers; 8 spill (254,240).
_FC_WIDE_W_UNITS = 6
_FC_WIDE_MAX_BYTES = 2048


def _fully_connected(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
    """csrc/fully_connected.h specialised for one layer (no workspace, at most _FC_WIDE_MAX_BYTES of stack;
    no in-place pair: every unit block reads the whole input row)."""
    batches, k, nunits = int(spec["batches"]), int(spec["depth"]), int(spec["units"])
    names = _param_names(spec, [])
    wide = k % 4 == 0 and 2 * k <= _FC_WIDE_MAX_BYTES
    wide_w = wide and bool(spec.get("_wide_weights"))  # --kernel-weights int16
    if wide_w:
        dtypes = [dtypes[0], "int16", *dtypes[2:]]
    dtypes, rq_layout = _rq_pack(spec, names, dtypes, nunits)
    params: dict[str, object] = {
        "TVMC_NAME": symbol,
        "TVMC_PARAMS": _params(symbol, dtypes, names),
        "TVMC_FC_BATCHES": batches,
        "TVMC_FC_DEPTH": k,
        "TVMC_FC_UNITS": nunits,
        "TVMC_FC_BLOCK": _FC_WIDE_W_UNITS if wide_w else (_FC_WIDE_UNITS if wide else _FC_UNITS),
        "TVMC_FC_WIDE": int(wide),
        "TVMC_FC_WIDE_W": int(wide_w),
        **_rq_params(spec),
    }
    comment = f"FULLY_CONNECTED {batches}x{k} -> {batches}x{nunits}"
    layout = None
    if wide_w:
        # the layout follows the block size a tuning knob may have changed
        block = int(str(ckernel_knobs.override("fully_connected.h", params, record=False)["TVMC_FC_BLOCK"]))
        layout = (names.index("weight"), _fc_weight_layout(nunits, k, block))
    return GeneratedKernel(
        _instance("fully_connected.h", comment, params) + "\n",
        dtypes,
        None,
        weight_layout=layout,
        rq_layout=rq_layout,
    )


def _add(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
    """csrc/add.h specialised for one ADD/SUB: a 2 KB workspace of two 256-entry rescale tables; the output
    may sit over either input."""
    n = int(spec["elements"])
    params: dict[str, object] = {
        "TVMC_NAME": symbol,
        "TVMC_PARAMS": _params(symbol, [*dtypes, "int32"], ["a", "b", "out", "ws"]),
        "TVMC_ADD_N": n,
        "TVMC_ADD_OP": "-" if spec["subtract"] else "+",
        "TVMC_ADD_SHIFT": int(spec["left_shift"]),
    }
    for side in ("a", "b"):
        rq = spec[f"rq_{side}"]
        m, s = int(rq["mult"]), int(rq["shift"])
        params[f"TVMC_ADD_ZP_{side.upper()}"] = f"({int(spec[f'zp_{side}'])})"
        params[f"TVMC_ADD_MULT_{side.upper()}"] = m
        params[f"TVMC_ADD_LEFT_{side.upper()}"] = max(s, 0)
        params[f"TVMC_ADD_RIGHT_{side.upper()}"] = max(-s, 0)
    params.update(_rq_params(spec))
    comment = f"{'SUB' if spec['subtract'] else 'ADD'} of {n} elements"
    return GeneratedKernel(
        _instance("add.h", comment, params) + "\n",
        [*dtypes, "int32"],
        (2048, "int32"),
        inplace=((2, 0, 0), (2, 1, 0)),
    )


def _avg_pool(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
    """csrc/avg_pool.h specialised for one AVERAGE_POOL_2D (windows of at most 255 taps)."""
    n, ih, iw, ch = spec["data_shape"]
    _, oh, ow, _ = spec["out_shape"]
    fh, fw = spec["filter"]
    sh, sw = spec["stride"]
    pt, pl = spec["pad"]
    lo, hi = spec["act_range"]
    full_windows = pt == 0 and pl == 0 and (oh - 1) * sh + fh <= ih and (ow - 1) * sw + fw <= iw
    unroll = full_windows and fh * fw <= 16  # small constant windows: every tap at a constant offset
    params: dict[str, object] = {
        "TVMC_NAME": symbol,
        "TVMC_PARAMS": _params(symbol, dtypes, ["data", "out"]),
        "TVMC_POOL_N": n,
        "TVMC_IH": ih,
        "TVMC_IW": iw,
        "TVMC_CH": ch,
        "TVMC_OH": oh,
        "TVMC_OW": ow,
        "TVMC_POOL_FH": fh,
        "TVMC_POOL_FW": fw,
        "TVMC_SH": sh,
        "TVMC_SW": sw,
        "TVMC_PT": pt,
        "TVMC_PL": pl,
        "TVMC_ACT_MIN": f"({int(lo)})",
        "TVMC_ACT_MAX": f"({int(hi)})",
        "TVMC_POOL_FULL_WINDOWS": int(full_windows),
        "TVMC_POOL_UNROLL": int(unroll),
    }
    comment = (
        f"AVERAGE_POOL_2D {ih}x{iw}x{ch} -> {oh}x{ow}, filter {fh}x{fw}, stride {sh}x{sw}, pad {pt},{pl}"
    )
    return GeneratedKernel(_instance("avg_pool.h", comment, params) + "\n", dtypes, None)
