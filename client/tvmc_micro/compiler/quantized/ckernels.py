"""Shape-specialised C kernels for int8 CONV_2D and DEPTHWISE_CONV_2D on cores with the DSP extension.

Neither GCC nor LLVM emits SMLAD/SXTB16 from plain multiply-accumulates, so for targets whose `-mcpu`
has the Armv7E-M DSP instructions (cortex-m4/m7/m33/m55/m85) the two heavy kernel families are written
here as C, one function per layer with every shape, stride and padding a compile-time constant:

* CONV_2D (groups == 1) is a matrix multiply over an int16 patch: each output pixel's receptive field is
  copied once (out-of-image taps read the input zero point, as the TIR kernels do) and widened in SXTB16
  order, then 3 pixels x 2 output channels are computed together with SMLAD (per 4 taps: 2 weight loads,
  4 SXTB16, 6 patch loads, 12 SMLAD for 24 MACs). A 1x1 unpadded conv widens straight from the input.
* DEPTHWISE_CONV_2D (multiplier 1) stays NHWC; per output pixel the tap pointers are resolved once
  (a zero-point row stands in for out-of-image taps), then 2 pixels x 4 channels per step with
  SMLABB/SMLATT, each tap's weights widened once for both pixels.
* The epilogue is TFLite's MultiplyByQuantizedMultiplier with the output zero point folded in, one SMLAL
  and one arithmetic shift (`tvmc_rqz`; `tvmc_rq` for multipliers/shifts outside its domain), then clamp
  and byte store. Per-channel constants are derived from the stored shift in the epilogue, so no kernel
  workspace holds a table.

Every intrinsic has a portable C twin selected when `__ARM_FEATURE_DSP` is absent, so the same source
built for the host computes bit for bit what the Cortex-M build computes.

The TIR builders in kernels.py attach a JSON spec (`SPEC_ATTR`) to the kernels this module can replace;
`generate` turns one spec into C, or returns None (the TIR kernel is then lowered as usual).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SPEC_ATTR = "tvmc_micro.ckernel_spec"
# Cores whose -mcpu implies the DSP extension (SMLAD, SXTB16).
DSP_MCPUS = frozenset({"cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "cortex-m85"})

PRELUDE = r"""
/* ---- tvmc_micro int8 micro-kernel helpers (DSP intrinsics, portable twins) ---- */
#include <string.h>
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
static inline int32_t tvmc_sxtb16(uint32_t x) { return (int32_t)__sxtb16((int8x4_t)x); }
/* SXTB16 with its free ROR #8 operand (GCC would emit a separate rotate). */
static inline int32_t tvmc_sxtb16_ror8(uint32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
static inline int32_t tvmc_smlad(int32_t a, int32_t b, int32_t acc) {
  return __smlad((int16x2_t)a, (int16x2_t)b, acc);
}
static inline int32_t tvmc_smlabb(int32_t a, int32_t b, int32_t acc) { return __smlabb(a, b, acc); }
static inline int32_t tvmc_smlatt(int32_t a, int32_t b, int32_t acc) { return __smlatt(a, b, acc); }
#else
/* Portable twins: same lanes, same wrap-around int32 accumulation. */
static inline int32_t tvmc_sxtb16(uint32_t x) {
  uint32_t lo = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)(x & 0xffu);
  uint32_t hi = (uint32_t)(uint16_t)(int16_t)(int8_t)(uint8_t)((x >> 16) & 0xffu);
  return (int32_t)(lo | (hi << 16));
}
static inline int32_t tvmc_sxtb16_ror8(uint32_t x) { return tvmc_sxtb16((x >> 8) | (x << 24)); }
static inline int32_t tvmc_lo16(int32_t a) { return (int32_t)(int16_t)(uint16_t)((uint32_t)a & 0xffffu); }
static inline int32_t tvmc_hi16(int32_t a) { return (int32_t)(int16_t)(uint16_t)((uint32_t)a >> 16); }
static inline int32_t tvmc_smlad(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmc_lo16(a) * tvmc_lo16(b)) +
                   (uint32_t)(tvmc_hi16(a) * tvmc_hi16(b)));
}
static inline int32_t tvmc_smlabb(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmc_lo16(a) * tvmc_lo16(b)));
}
static inline int32_t tvmc_smlatt(int32_t a, int32_t b, int32_t acc) {
  return (int32_t)((uint32_t)acc + (uint32_t)(tvmc_hi16(a) * tvmc_hi16(b)));
}
#endif
static inline uint32_t tvmc_ld32(const void* p) { uint32_t v; memcpy(&v, p, 4); return v; }
/* TFLite's MultiplyByQuantizedMultiplier(acc, mult, left - right) for 0 <= mult < 2^31 (QuantizeMultiplier's
   output). SaturatingRoundingDoublingHighMul is h = floor((x * mult + 2^30) / 2^31): its nudge and
   truncating division agree with that floor for both signs, and its one saturating case needs
   mult == INT32_MIN. RoundingDivideByPOT(h, e >= 1) rounds half away from zero:
   floor((h + 2^(e-1) - [h < 0]) / 2^e) = ((((h + (h >> 31)) >> (e - 1)) + 1) >> 1), nothing overflows
   because |h| <= 2^31 - 2. One SMLAL and five ALU operations instead of TFLite's branchy sequence. */
static inline int32_t tvmc_rq(int32_t acc, int32_t mult, int32_t left, int32_t right) {
  int32_t x = (int32_t)((uint32_t)acc << left);
  int32_t h = (int32_t)(((int64_t)x * mult + ((int64_t)1 << 30)) >> 31);
  if (right <= 0) return h;
  return (((h + (h >> 31)) >> (right - 1)) + 1) >> 1;
}
/* tvmc_rq(acc, mult, 0, e) + zp in one SMLAL, for 2 <= e <= 22 and mult == 0 or 2^30 <= mult < 2^31.
   RoundingDivideByPOT(h, e) = floor((h + 2^(e-1) - [h < 0]) / 2^e) and h = floor((acc*mult + 2^30) / 2^31)
   nest into one floor: floor((acc*mult + 2^30 + 2^(30+e) - 2^31*[h < 0] + zp*2^(31+e)) / 2^(31+e)).
   For such a mult, [h < 0] may be replaced by [acc < 0] (they differ only for acc == -1, mult == 2^30,
   where both give 0). The addend's low word is 2^30 - 2^31*[acc < 0] (bit 31 of acc, borrow into the
   high word); its high word khi = 2^(e-2) + zp*2^(e-1) is a per-channel constant, and
   floor(q / 2^(31+e)) = (q >> 32) >> (e-1), so sh = e - 1. |q| < 2^63 for e <= 22, so nothing wraps. */
static inline int32_t tvmc_rqz(int32_t acc, int32_t mult, int32_t khi, int32_t sh) {
  uint32_t lo = ((uint32_t)acc & 0x80000000u) | 0x40000000u;
  int32_t hi = khi + (acc >> 31);
  int64_t q = (int64_t)(((uint64_t)(uint32_t)hi << 32) | lo) + (int64_t)acc * mult;
  return (int32_t)(q >> 32) >> sh;
}
/* (m, e) inside tvmc_rqz's domain: 2 <= e <= 22 and m == 0 or 2^30 <= m < 2^31. */
#define TVMC_RQZ_OK(m, e) ((uint32_t)((e) - 2) <= 20u && ((m) == 0 || (m) >= 0x40000000))
/* Requantise with any per-channel (m, right shift e) and add zp: tvmc_rqz inside its domain, else tvmc_rq. */
/* tvmc_rq(acc, m, 0, e) + zp out of line: the rare branch of a per-channel block, kept from crowding the
   hot loop's registers. */
__attribute__((noinline, cold, unused)) static int32_t tvmc_rq_cold(int32_t acc, int32_t m, int32_t e,
                                                                   int32_t zp) {
  return tvmc_rq(acc, m, 0, e) + zp;
}
static inline int32_t tvmc_rqe(int32_t acc, int32_t m, int32_t e, int32_t zp) {
  if (TVMC_RQZ_OK(m, e)) return tvmc_rqz(acc, m, (int32_t)((uint32_t)(2 * zp + 1) << (e - 2)), e - 1);
  return tvmc_rq(acc, m, 0, e) + zp;
}
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
/* SXTAB16: acc's two 16-bit lanes plus bytes 0 and 2 of x, sign-extended (no carry between lanes). */
static inline int32_t tvmc_sxtab16(int32_t acc, uint32_t x) {
  return (int32_t)__sxtab16((int16x2_t)acc, (int8x4_t)x);
}
static inline int32_t tvmc_sxtab16_ror8(int32_t acc, uint32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(acc), "r"(x));
  return r;
}
#else
static inline int32_t tvmc_sxtab16(int32_t acc, uint32_t x) {
  uint32_t lo = ((uint32_t)acc + (uint32_t)(int32_t)(int8_t)(uint8_t)(x & 0xffu)) & 0xffffu;
  uint32_t hi = (((uint32_t)acc >> 16) + (uint32_t)(int32_t)(int8_t)(uint8_t)((x >> 16) & 0xffu)) & 0xffffu;
  return (int32_t)(lo | (hi << 16));
}
static inline int32_t tvmc_sxtab16_ror8(int32_t acc, uint32_t x) {
  return tvmc_sxtab16(acc, (x >> 8) | (x << 24));
}
#endif
static inline int8_t tvmc_sat8(int32_t v) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  return (int8_t)__ssat(v, 8);
#else
  return (int8_t)(v < -128 ? -128 : (v > 127 ? 127 : v));
#endif
}
/* TFLite's average: the sum divided by the tap count, rounding half away from zero. */
static inline int32_t tvmc_avg(int32_t s, int32_t cnt) {
  return s > 0 ? (s + cnt / 2) / cnt : (s - cnt / 2) / cnt;
}
static inline int8_t tvmc_clamp8(int32_t v, int32_t lo, int32_t hi) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  v = __ssat(v, 8);
#endif
  return (int8_t)(v < lo ? lo : (v > hi ? hi : v));
}
/* ---- end of helpers ---- */
"""


@dataclass(frozen=True)
class GeneratedKernel:
    source: str
    param_dtypes: list[str]
    workspace: tuple[int, str] | None  # (bytes, dtype) of one trailing scratch parameter
    # (output param index, input param index, lead): the kernel is correct with its output starting `lead`
    # bytes before that input (0: at the same address), so the planner may merge the two when the input
    # dies at this call.
    inplace: tuple[tuple[int, int, int], ...] = ()


def has_dsp(target: Any) -> bool:
    """True when the target's -mcpu implies the DSP extension (the C kernels here pay off)."""
    try:
        mcpu = target.attrs.get("mcpu")
    except AttributeError:
        mcpu = target.get("mcpu") if isinstance(target, dict) else None
    return mcpu is not None and str(mcpu) in DSP_MCPUS


def generate(spec_json: str, symbol: str, param_dtypes: list[str]) -> GeneratedKernel | None:
    spec = json.loads(spec_json)
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


def _requant_expr(spec: dict[str, Any], acc: str, ch: str, mode: str | None = None) -> str:
    """C expression: the requantised, zero-pointed, clamped int8 of accumulator `acc` for channel `ch`
    (blocks of one channel in "table" mode use _table_channel instead: one branch per channel)."""
    rq = spec["requant"]
    mode = mode or _rq_mode(spec)
    zp = int(spec["out_zp"])
    if mode == "fixed":
        e = int(rq["right"])
        khi = (1 << (e - 2)) + zp * (1 << (e - 1))
        value = f"tvmc_rqz({acc}, {rq['mult']}, {khi}, {e - 1})"
    elif mode == "table":
        value = f"tvmc_rqe({acc}, rq_mult[{ch}], rq_right[{ch}], {zp})"
    elif rq["per_channel"]:
        left = f"(int32_t){'rq_left[' + ch + ']' if rq['has_left'] else '0'}"
        value = f"tvmc_rq({acc}, rq_mult[{ch}], {left}, (int32_t)rq_right[{ch}]) + ({zp})"
    else:
        value = f"tvmc_rq({acc}, {rq['mult']}, {rq['left']}, {rq['right']}) + ({zp})"
    lo, hi = spec["act_range"]
    if (lo, hi) == (-128, 127):
        return f"tvmc_sat8({value})"
    return f"tvmc_clamp8({value}, {lo}, {hi})"


def _khi(spec: dict[str, Any], e: str) -> str:
    """C expression: tvmc_rqz's high word for right shift `e`, 2^(e-2) + zp * 2^(e-1) = (2 zp + 1) << (e-2);
    derived in the epilogue (a shift) instead of a per-call table, so no workspace holds it."""
    return f"(int32_t)((uint32_t)({2 * int(spec['out_zp']) + 1}) << ({e} - 2))"


def _table_channel(spec: dict[str, Any], ch: str, stores: list[tuple[str, str]], indent: str) -> list[str]:
    """C lines storing the requantised accumulators `stores` ((lvalue, accumulator) pairs) of channel `ch`
    in "table" mode: the channel's constants are read once (the int8 stores may alias the tables, char
    aliases anything), then one branch per channel picks tvmc_rqz when the channel is in its domain and
    the exact tvmc_rq otherwise (real models have dead channels with right shifts up to 31 and layers with
    a shift of 1: per channel, so one such channel no longer sends the whole layer to a slow kernel)."""
    lo, hi = spec["act_range"]
    zp = int(spec["out_zp"])

    def clamp(value: str) -> str:
        return f"tvmc_sat8({value})" if (lo, hi) == (-128, 127) else f"tvmc_clamp8({value}, {lo}, {hi})"

    fast = [f"{dst} = {clamp(f'tvmc_rqz({acc}, m, kh, e - 1)')};" for dst, acc in stores]
    if spec["requant"].get("in_domain"):
        # kernels.py checked every channel at compile time (a kernel is shared only by layers whose specs
        # are equal, so by layers that are in the domain too): no branch.
        return [
            f"{indent}{{ int32_t m = rq_mult[{ch}], e = rq_right[{ch}], kh = {_khi(spec, 'e')};",
            *(f"{indent}  {line}" for line in fast),
            f"{indent}}}",
        ]
    slow = [f"{dst} = {clamp(f'tvmc_rq_cold({acc}, m, e, {zp})')};" for dst, acc in stores]
    return [
        f"{indent}{{ int32_t m = rq_mult[{ch}], e = rq_right[{ch}];",
        f"{indent}  if (TVMC_RQZ_OK(m, e)) {{",
        f"{indent}    int32_t kh = {_khi(spec, 'e')};",
        *(f"{indent}    {line}" for line in fast),
        f"{indent}  }} else {{",
        *(f"{indent}    {line}" for line in slow),
        f"{indent}  }}",
        f"{indent}}}",
    ]


# Output pixels computed together by the conv kernels: 3 pixels x 2 channels keeps 6 accumulators, 4 widened
# weights and one pixel's two patch words in registers, so each 4-tap step costs 2 weight loads, 4 SXTB16,
# 6 patch loads and 12 SMLAD for 24 MACs (2 pixels: 18 instructions for 16 MACs).
_CONV_PIX = 3
# Full blocks unroll K completely up to this many 4-tap groups (KWS: -177K instructions per inference for
# +1.8 KB of .text over its two conv kernels); the once-per-call tail block keeps the short unroll.
_FULL_UNROLL_GROUPS = 16


def _conv_block(spec: dict[str, Any], npix: int, k: int, row: int, direct: bool) -> list[str]:
    """C lines computing output pixels pix .. pix + npix - 1 (npix a constant, so the full blocks carry no
    test and the tail block is its own copy): widen their patches into ws, then 2 channels at a time."""
    _, ih, iw, ic = spec["data_shape"]
    oc, kh, kw, _ = spec["weight_shape"]
    ow = spec["out_shape"][2]
    sh, sw = spec["stride"]
    dh, dw = spec["dilation"]
    pt, pl = spec["pad"]
    zp = spec["in_zp"]
    k4 = k - k % 4
    lines = [
        "    int32_t q;",
        f"    for (q = 0; q < {npix}; ++q) {{",
        "      int32_t p = pix + q;",
        f"      int16_t* dst = ws + q * {row};",
        "      const int8_t* src;",
    ]
    span = kw * ic
    if not direct and dw == 1 and span % 4 == 0:
        # Kernel rows are span contiguous bytes and whole 4-tap groups: each row is widened straight from
        # the input when it lies inside the image, stored as the widened zero-point pattern when it lies
        # outside, and only a row cut by the left/right edge is assembled in `bytes` first (ResNet's 3x3
        # convs copied every row once before widening it).
        zpair = (zp & 0xFFFF) * 0x10001
        lines += [
            f"      int8_t* bytes = (int8_t*)(ws + {_CONV_PIX * row});",
            f"      int32_t iy0 = (p / {ow}) * {sh} - {pt}, ix0 = (p % {ow}) * {sw} - {pl};",
            "      int32_t ky, kx, g;",
            f"      for (ky = 0; ky < {kh}; ++ky) {{",
            f"        int32_t iy = iy0 + ky * {dh};",
            f"        int16_t* d = dst + ky * {span};",
            f"        if (iy < 0 || iy >= {ih}) {{",
            f"          const int32_t z = (int32_t){zpair}u;",
            f"          for (g = 0; g < {span}; g += 2) memcpy(d + g, &z, 4);",
            "          continue;",
            "        }",
            f"        if (ix0 >= 0 && ix0 + {kw - 1} < {iw}) {{",
            f"          src = data + (iy * {iw} + ix0) * {ic};",
            "        } else {",
            f"          for (kx = 0; kx < {kw}; ++kx) {{",
            "            int32_t ix = ix0 + kx;",
            f"            int8_t* seg = bytes + kx * {ic};",
            f"            if (ix < 0 || ix >= {iw}) memset(seg, ({zp}) & 0xff, {ic});",
            f"            else memcpy(seg, data + (iy * {iw} + ix) * {ic}, {ic});",
            "          }",
            "          src = bytes;",
            "        }",
            '        _Pragma("GCC unroll 4")',
            f"        for (g = 0; g < {span}; g += 4) {{",
            "          uint32_t v = tvmc_ld32(src + g);",
            "          int32_t e = tvmc_sxtb16(v), o = tvmc_sxtb16_ror8(v);",
            "          memcpy(d + g, &e, 4);",
            "          memcpy(d + g + 2, &o, 4);",
            "        }",
            "      }",
            "    }",
            f"    int8_t* o0 = out + pix * {oc};",
            "    int32_t c;",
        ]
    elif direct:
        lines += [f"      src = data + ((p / {ow}) * {sh} * {iw} + (p % {ow}) * {sw}) * {ic};"]
    else:
        lines += [
            f"      int8_t* bytes = (int8_t*)(ws + {_CONV_PIX * row});",
            f"      int32_t iy0 = (p / {ow}) * {sh} - {pt}, ix0 = (p % {ow}) * {sw} - {pl};",
            "      int32_t ky, kx;",
            f"      for (ky = 0; ky < {kh}; ++ky) {{",
            f"        int32_t iy = iy0 + ky * {dh};",
        ]
        if dw == 1:
            # A kernel row is kw * ic contiguous input bytes: one fixed-size copy (or fill) when the row is
            # wholly inside or outside the image.
            lines += [
                f"        if (iy < 0 || iy >= {ih}) {{",
                f"          memset(bytes + ky * {span}, ({zp}) & 0xff, {span});",
                "          continue;",
                "        }",
                f"        if (ix0 >= 0 && ix0 + {kw - 1} < {iw}) {{",
                f"          memcpy(bytes + ky * {span}, data + (iy * {iw} + ix0) * {ic}, {span});",
                "          continue;",
                "        }",
            ]
        lines += [
            f"        for (kx = 0; kx < {kw}; ++kx) {{",
            f"          int32_t ix = ix0 + kx * {dw};",
            f"          int8_t* seg = bytes + (ky * {kw} + kx) * {ic};",
            f"          if (iy < 0 || iy >= {ih} || ix < 0 || ix >= {iw}) memset(seg, ({zp}) & 0xff, {ic});",
            f"          else memcpy(seg, data + (iy * {iw} + ix) * {ic}, {ic});",
            "        }",
            "      }",
            "      src = bytes;",
        ]
    if direct or dw != 1 or span % 4:
        lines += [
            "      int32_t g;",
            '      _Pragma("GCC unroll 4")',
            f"      for (g = 0; g < {k4}; g += 4) {{",
            "        uint32_t v = tvmc_ld32(src + g);",
            "        int32_t e = tvmc_sxtb16(v), o = tvmc_sxtb16_ror8(v);",
            "        memcpy(dst + g, &e, 4);",
            "        memcpy(dst + g + 2, &o, 4);",
            "      }",
            f"      for (g = {k4}; g < {k}; ++g) dst[g] = src[g];",
            "    }",
            f"    int8_t* o0 = out + pix * {oc};",
            "    int32_t c;",
        ]
    pixels = range(npix)

    def channel_step(nch: int, wexpr: str, ch: list[str]) -> list[str]:
        # nch (1 or 2) channels x npix pixels; ch are the C expressions of the channel indices.
        acc = [[f"s{a}{q}" for q in pixels] for a in range(nch)]
        body = [f"      const int8_t* w = {wexpr};"]
        body += [f"      int32_t {', '.join(f'{n} = bias[{ch[a]}]' for n in acc[a])};" for a in range(nch)]
        body.append("      int32_t j;")
        if k4:
            groups = k4 // 4
            unroll = 4 if groups % 4 == 0 else (2 if groups % 2 == 0 else 1)
            if npix == _CONV_PIX and groups <= _FULL_UNROLL_GROUPS:
                unroll = groups  # the hot blocks: every tap at an immediate offset, no loop counter
            if unroll > 1:
                body.append(f'      _Pragma("GCC unroll {unroll}")')
            body.append(f"      for (j = 0; j < {k4}; j += 4) {{")
            for a in range(nch):
                body += [
                    f"        uint32_t w{a} = tvmc_ld32(w + j + {a * k});",
                    f"        int32_t w{a}e = tvmc_sxtb16(w{a}), w{a}o = tvmc_sxtb16_ror8(w{a});",
                ]
            for q in pixels:
                body.append(
                    f"        {{ int32_t xe = (int32_t)tvmc_ld32(ws + j + {q * row}), "
                    f"xo = (int32_t)tvmc_ld32(ws + j + {q * row + 2});"
                )
                for a in range(nch):
                    n = acc[a][q]
                    body.append(f"          {n} = tvmc_smlad(xo, w{a}o, tvmc_smlad(xe, w{a}e, {n}));")
                body.append("        }")
            body.append("      }")
        if k4 < k:
            body.append(f"      for (j = {k4}; j < {k}; ++j) {{")
            for a in range(nch):
                for q in pixels:
                    body.append(f"        {acc[a][q]} += ws[j + {q * row}] * w[j + {a * k}];")
            body.append("      }")
        # Channel by channel: only one channel's constants are live at a time, which keeps the epilogue
        # out of the stack.
        table = _rq_mode(spec) == "table"
        for a in range(nch):
            stores = [(f"o0[{ch[a]} + {q * oc}]", acc[a][q]) for q in pixels]
            if table:
                body += _table_channel(spec, ch[a], stores, "      ")
            else:
                body += [f"      {dst} = {_requant_expr(spec, s, ch[a])};" for dst, s in stores]
        return body

    if oc >= 2:
        lines.append(f"    for (c = 0; c < {oc - oc % 2}; c += 2) {{")
        lines += channel_step(2, f"wk + c * {k}", ["c", "(c + 1)"])
        lines.append("    }")
    if oc % 2:
        lines.append("    {")
        lines += channel_step(1, f"wk + {(oc - 1) * k}", [str(oc - 1)])
        lines.append("    }")
    return lines


def _conv2d(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
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
    pad_k = not direct and kp != k and 8 * (kp - k) <= k and oc * kp <= _PAD_K_WEIGHT_BYTES
    kb = kp if pad_k else k  # the K the blocks run
    # Patch rows for _CONV_PIX pixels: int16, the first k4 in SXTB16 order, the tail in natural order.
    row = kb + (kb % 2)
    # Output pixel p of a stride-1 1x1 conv reads input pixel p only, and each block widens its pixels into
    # ws before writing them; with oc <= ic, out[p] never reaches an input pixel a later block reads. So the
    # output may sit over the input (the arena then holds one of the two: KWS's pointwise layers).
    inplace = direct and (sh, sw) == (1, 1) and oc <= ic
    names = _param_names(spec, ["ws"])
    lines = [
        _KEEP_ORDER + _signature(symbol, [*dtypes, "int16"], names) + " {",
        f"  /* CONV_2D {ih}x{iw}x{ic} -> {oh}x{ow}x{oc}, kernel {kh}x{kw}, stride {sh}x{sw}, "
        f"dilation {dh}x{dw}, pad {pt},{pl}: K = {k} */",
    ]
    ws_bytes = (_CONV_PIX * row) * 2 + (0 if direct else kp)
    if pad_k:
        # the patch's pad taps (the blocks assemble only the first k bytes)
        lines.append(f"  memset((int8_t*)(ws + {_CONV_PIX * row}) + {k}, 0, {kp - k});")
    if spec.get("weight_hwo") or pad_k:
        # A DEPTHWISE_CONV_2D of one input channel (kernels.py hands it over as this conv) has [kh, kw, oc]
        # weights: each call first lays them out as the [oc, kh, kw] rows the blocks read (oc * K bytes of
        # workspace, a few hundred instructions per call); a padded K gets its rows zero-padded there too.
        source = f"weight[t * {oc} + c]" if spec.get("weight_hwo") else f"weight[c * {k} + t]"
        lines += [
            f"  int8_t* wk = (int8_t*)ws + {ws_bytes};",
            "  {",
            "    int32_t c, t;",
            f"    for (c = 0; c < {oc}; ++c)",
            f"      for (t = 0; t < {kb}; ++t) wk[c * {kb} + t] = t < {k} ? {source} : 0;",
            "  }",
        ]
        ws_bytes += (oc * kb + 3) // 4 * 4
    else:
        lines.append("  const int8_t* wk = weight;")
    npx = oh * ow
    full, rest = divmod(npx, _CONV_PIX)
    lines.append("  int32_t pix = 0;")
    if full:
        lines += [f"  for (; pix < {full * _CONV_PIX}; pix += {_CONV_PIX}) {{"]
        lines += _conv_block(spec, _CONV_PIX, kb, row, direct)
        lines.append("  }")
    if rest:
        lines.append("  {")
        lines += _conv_block(spec, rest, kb, row, direct)
        lines.append("  }")
    lines += ["  return 0;", "}"]
    pairs = ((names.index("out"), names.index("data"), 0),) if inplace else ()
    return GeneratedKernel(
        "\n".join(lines) + "\n", [*dtypes, "int16"], (ws_bytes, "int16"), inplace=pairs
    )


# Largest padded weight copy (oc * K rounded up to 4, bytes of workspace) a conv with K % 4 != 0 makes.
_PAD_K_WEIGHT_BYTES = 4096

# Output pixels computed together by the depthwise kernel: each tap's weight word is loaded and widened once
# for both pixels (per tap and 4 channels: 17 instructions for 8 MACs instead of 2 x 10).
_DW_PIX = 2


def _dw_interior(spec: dict[str, Any]) -> tuple[bool, bool]:
    """(some, all): whether the interior variant of the depthwise blocks pays (at least a quarter of the
    blocks of _DW_PIX pixels read only in-image taps; below that the extra test and code cost more than
    they save) / whether every block does (no tap table needed)."""
    _, ih, iw, _ = spec["data_shape"]
    _, kh, kw, _ = spec["weight_shape"]
    _, oh, ow, _ = spec["out_shape"]
    (sh, sw), (dh, dw), (pt, pl) = spec["stride"], spec["dilation"], spec["pad"]
    ys = [0 <= y * sh - pt and y * sh - pt + (kh - 1) * dh < ih for y in range(oh)]
    xs = [0 <= x * sw - pl and x * sw - pl + (kw - 1) * dw < iw for x in range(ow)]
    inside = [ys[p // ow] and xs[p % ow] for p in range(oh * ow)]
    blocks = [all(inside[p : p + _DW_PIX]) for p in range(0, oh * ow, _DW_PIX)]
    return 4 * sum(blocks) >= len(blocks), all(blocks)


def _dw_channels(
    spec: dict[str, Any], npix: int, tap: Callable[[int, int], str], bases: list[str] | None = None
) -> list[str]:
    """C lines computing every channel of pixels p .. p + npix - 1; `tap(q, t)` is the C pointer to pixel q's
    tap t (channel 0). Taps are unrolled: each weight word is widened once for all pixels."""
    _, _, _, ch = spec["data_shape"]
    _, kh, kw, _ = spec["weight_shape"]
    taps = kh * kw
    c4 = ch - ch % 4
    pixels = range(npix)
    lines: list[str] = []
    table = _rq_mode(spec) == "table"
    if c4:
        acc = [[f"s{q}{i}" for i in range(4)] for q in pixels]
        lines.append(f"    for (c = 0; c < {c4}; c += 4) {{")
        for q in pixels:
            lines.append(f"      int32_t {', '.join(f'{acc[q][i]} = bias[c + {i}]' for i in range(4))};")
        if bases:
            # Interior blocks: one pointer per pixel and one for the weights per channel group, taps at
            # constant offsets (written as `base + offset + c`, GCC kept an induction variable per tap on
            # the stack; the tap-table blocks are faster as they are).
            lines += [f"      const int8_t* r{q} = {bases[q]} + c;" for q in pixels]
            lines.append("      const int8_t* wc = weight + c;")
        for t in range(taps):
            wsrc = f"wc + {t * ch}" if bases else f"weight + {t * ch} + c"
            lines += [
                f"      {{ uint32_t w = tvmc_ld32({wsrc});",
                "        int32_t we = tvmc_sxtb16(w), wo = tvmc_sxtb16_ror8(w);",
            ]
            for q in pixels:
                s0, s1, s2, s3 = acc[q]
                xsrc = f"r{q} + {tap(q, t).split(' + ', 1)[1]}" if bases else f"{tap(q, t)} + c"
                lines += [
                    f"        {{ uint32_t x = tvmc_ld32({xsrc});",
                    "          int32_t xe = tvmc_sxtb16(x), xo = tvmc_sxtb16_ror8(x);",
                    f"          {s0} = tvmc_smlabb(xe, we, {s0}); {s2} = tvmc_smlatt(xe, we, {s2});",
                    f"          {s1} = tvmc_smlabb(xo, wo, {s1}); {s3} = tvmc_smlatt(xo, wo, {s3}); }}",
                ]
            lines.append("      }")
        for i in range(4):
            cexpr = f"(c + {i})"
            stores = [(f"dst[c + {i + q * ch}]", acc[q][i]) for q in pixels]
            if table:
                lines += _table_channel(spec, cexpr, stores, "      ")
            else:
                lines += [f"      {d} = {_requant_expr(spec, s, cexpr)};" for d, s in stores]
        lines.append("    }")
    if c4 < ch:
        for q in pixels:
            lines += [
                f"    for (c = {c4}; c < {ch}; ++c) {{",
                "      int32_t s = bias[c];",
                *(f"      s += ({tap(q, t)})[c] * weight[{t * ch} + c];" for t in range(taps)),
                f"      dst[{q * ch} + c] = {_requant_expr(spec, 's', 'c')};",
                "    }",
            ]
    return lines


def _depthwise_block(spec: dict[str, Any], npix: int) -> list[str]:
    """C lines computing output pixels p .. p + npix - 1 of a depthwise layer (npix a constant).

    A block whose pixels read only in-image taps addresses them from one base pointer per pixel with
    constant offsets (the layer's shape is fixed), so the tap loop has no pointer loads; other blocks
    resolve each tap once into `tap` (a zero-point row standing in for out-of-image taps)."""
    _, ih, iw, ch = spec["data_shape"]
    _, kh, kw, _ = spec["weight_shape"]
    ow = spec["out_shape"][2]
    sh, sw = spec["stride"]
    dh, dw = spec["dilation"]
    pt, pl = spec["pad"]
    taps = kh * kw
    pixels = range(npix)
    some, every = _dw_interior(spec)
    lines = [f"    int8_t* dst = out + p * {ch};"]
    for q in pixels:
        lines.append(
            f"    int32_t iy{q} = ((p + {q}) / {ow}) * {sh} - {pt}, ix{q} = ((p + {q}) % {ow}) * {sw} - {pl};"
        )
    inside = " && ".join(
        f"iy{q} >= 0 && iy{q} + {(kh - 1) * dh} < {ih} && ix{q} >= 0 && ix{q} + {(kw - 1) * dw} < {iw}"
        for q in pixels
    )

    def offset(t: int) -> int:
        return int(((t // kw) * dh * iw + (t % kw) * dw) * ch)

    interior = [f"    const int8_t* b{q} = data + (iy{q} * {iw} + ix{q}) * {ch};" for q in pixels]
    interior += _dw_channels(spec, npix, lambda q, t: f"b{q} + {offset(t)}", [f"b{q}" for q in pixels])
    border: list[str] = []
    for q in pixels:
        border += [
            f"    for (t = 0; t < {taps}; ++t) {{",
            f"      int32_t iy = iy{q} + (t / {kw}) * {dh}, ix = ix{q} + (t % {kw}) * {dw};",
            f"      tap[{q}][t] = (iy < 0 || iy >= {ih} || ix < 0 || ix >= {iw}) ? zrow"
            f" : data + (iy * {iw} + ix) * {ch};",
            "    }",
        ]
    border += _dw_channels(spec, npix, lambda q, t: f"tap[{q}][{t}]")
    if every:
        return lines + interior
    if not some:
        return lines + border
    return [*lines, f"    if ({inside}) {{", *interior, "    } else {", *border, "    }"]


def _depthwise_lead(spec: dict[str, Any]) -> int:
    """The smallest lead (a multiple of 16) with which the depthwise kernel below (and a plain pixel-by-pixel,
    channel-by-channel loop, kept in the bound so either order stays safe) may write their output starting
    that many bytes before their input (planner.InPlace).

    Both walk output pixels in NHWC order and read input rows at most `pad` rows/columns behind the pixel
    they write, so writes trail reads. Over each kernel's steps in execution order (a step reads, then
    writes), a write at out + W lands on input byte W - lead; it is safe when that is below every byte a
    later step reads: lead = max over steps (W - min later read + 1). Computed here from the same loop
    structure the C code has, for the exact shape, padding, stride and dilation."""
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
    # The blocked kernel: _DW_PIX pixels; 4-channel groups over all of them, then the tail channels pixel
    # by pixel.
    reads, writes = [], []
    for p0 in range(0, oh * ow, _DW_PIX):
        block = pix[p0 : p0 + _DW_PIX]
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
    _, ih, iw, ch = spec["data_shape"]
    _, kh, kw, _ = spec["weight_shape"]
    _, oh, ow, _ = spec["out_shape"]
    sh, sw = spec["stride"]
    dh, dw = spec["dilation"]
    pt, pl = spec["pad"]
    zp = spec["in_zp"]
    taps = kh * kw
    names = _param_names(spec, [])
    lines = [
        _KEEP_ORDER + _signature(symbol, dtypes, names) + " {",
        f"  /* DEPTHWISE_CONV_2D {ih}x{iw}x{ch} -> {oh}x{ow}, kernel {kh}x{kw}, stride {sh}x{sw}, "
        f"dilation {dh}x{dw}, pad {pt},{pl} */",
    ]
    npx = oh * ow
    full, rest = divmod(npx, _DW_PIX)
    lines.append("  int32_t p = 0, c;")
    if not _dw_interior(spec)[1]:  # some block reads outside the image
        lines += [
            f"  int8_t zrow[{(ch + 3) // 4 * 4}] __attribute__((aligned(4)));",
            f"  const int8_t* tap[{_DW_PIX}][{taps}];",
            "  int32_t t;",
            f"  memset(zrow, ({zp}) & 0xff, sizeof(zrow));",
        ]
    if full:
        lines.append(f"  for (; p < {full * _DW_PIX}; p += {_DW_PIX}) {{")
        lines += _depthwise_block(spec, _DW_PIX)
        lines.append("  }")
    if rest:
        lines.append("  {")
        lines += _depthwise_block(spec, rest)
        lines.append("  }")
    lines += ["  return 0;", "}"]
    pairs = ((names.index("out"), names.index("data"), _depthwise_lead(spec)),)
    return GeneratedKernel("\n".join(lines) + "\n", dtypes, None, inplace=pairs)


# Units computed together by the FULLY_CONNECTED kernel: each 4-element input word is loaded and widened
# once for all of them (per 4 k and 4 units: 1 input load, 2 SXTB16, 4 weight loads, 8 SXTB16, 8 SMLAD = 23
# instructions for 16 MACs). Widening the input on the fly costs one instruction per 16 MACs more than a
# pre-widened copy and needs no workspace (the arena stays at the activations).
_FC_UNITS = 4


def _fc_block(spec: dict[str, Any], nunits: int, first: str) -> list[str]:
    """C lines computing units first .. first + nunits - 1 of batch row x."""
    k = int(spec["depth"])
    k4 = k - k % 4
    units = range(nunits)
    acc = [f"s{a}" for a in units]
    lines = [
        f"      const int8_t* w = weight + ({first}) * {k};",
        "      const int8_t* xp = x;",
        f"      int32_t {', '.join(f'{acc[a]} = bias[{first} + {a}]' for a in units)};",
        "      int32_t j;",
        "      (void)j;",
    ]

    def group(off: int, indent: str) -> list[str]:
        body = [
            f"{indent}{{ uint32_t xv = tvmc_ld32(xp + {off});",
            f"{indent}  int32_t xe = tvmc_sxtb16(xv), xo = tvmc_sxtb16_ror8(xv);",
        ]
        for a in units:
            body += [
                f"{indent}  {{ uint32_t v = tvmc_ld32(w + {off + a * k});",
                f"{indent}    int32_t we = tvmc_sxtb16(v), wo = tvmc_sxtb16_ror8(v);",
                f"{indent}    {acc[a]} = tvmc_smlad(xo, wo, tvmc_smlad(xe, we, {acc[a]})); }}",
            ]
        return [*body, f"{indent}}}"]

    # Unrolled by hand, 4 groups per iteration at immediate offsets from two walking pointers: GCC's own
    # unroll (with a computed remainder) ran out of registers and kept the input pointer on the stack.
    k16 = k - k % 16
    if k16:
        lines.append(f"      for (j = 0; j < {k16}; j += 16, xp += 16, w += 16) {{")
        for g in range(4):
            lines += group(4 * g, "        ")
        lines.append("      }")
    for g in range(0, k4 - k16, 4):
        lines += group(g, "      ")
    if k4 < k:
        lines.append(f"      for (j = {k4 - k16}; j < {k - k16}; ++j) {{")
        lines += [f"        {acc[a]} += xp[j] * w[j + {a * k}];" for a in units]
        lines.append("      }")
    for a in units:
        ch = f"({first} + {a})"
        store = (f"o[{first} + {a}]", acc[a])
        if _rq_mode(spec) == "table":
            lines += _table_channel(spec, ch, [store], "      ")
        else:
            lines.append(f"      {store[0]} = {_requant_expr(spec, acc[a], ch)};")
    return lines


def _fully_connected(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
    """FULLY_CONNECTED [batches, depth] x [units, depth]^T, _FC_UNITS units at a time with SMLAD over
    SXTB16-widened input and weight words. The bias carries the input zero point (Σw·zp folded at import).
    No workspace and no in-place pair (every unit block reads the whole input row)."""
    batches, k, nunits = int(spec["batches"]), int(spec["depth"]), int(spec["units"])
    names = _param_names(spec, [])
    lines = [
        _KEEP_ORDER + _signature(symbol, dtypes, names) + " {",
        f"  /* FULLY_CONNECTED {batches}x{k} -> {batches}x{nunits} */",
        "  int32_t b, u;",
        "  (void)u;",
        f"  for (b = 0; b < {batches}; ++b) {{",
        f"    const int8_t* x = data + b * {k};",
        f"    int8_t* o = out + b * {nunits};",
    ]
    full = nunits - nunits % _FC_UNITS
    if full:
        lines.append(f"    for (u = 0; u < {full}; u += {_FC_UNITS}) {{")
        lines += _fc_block(spec, _FC_UNITS, "u")
        lines.append("    }")
    if full < nunits:
        lines.append("    {")
        lines += _fc_block(spec, nunits - full, str(full))
        lines.append("    }")
    lines += ["  }", "  return 0;", "}"]
    return GeneratedKernel("\n".join(lines) + "\n", dtypes, None)


def _add(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
    """ADD/SUB of two same-shape int8 tensors with TFLite's arithmetic: each input rescaled as
    MultiplyByQuantizedMultiplier((x - zp) << left_shift, m, shift), the two summed (or subtracted), then
    requantised to the output. The rescaled value depends only on the input byte, so each call first fills
    a 256-entry int32 table per input in the workspace (2 KB); an element then costs two byte loads, two
    table loads, an add, the output epilogue and a store (the TIR kernel computed both rescales per
    element). Reads of element i precede its write, so the output may sit over either input."""
    n = int(spec["elements"])
    shift = int(spec["left_shift"])
    op = "-" if spec["subtract"] else "+"

    def table(name: str, zp: int, rq: dict[str, int]) -> str:
        m, s = int(rq["mult"]), int(rq["shift"])
        return (
            f"  for (v = 0; v < 256; ++v)\n    {name}[v] = tvmc_rq("
            f"(int32_t)((uint32_t)((int32_t)(int8_t)(uint8_t)v - ({zp})) << {shift}),"
            f" {m}, {max(s, 0)}, {max(-s, 0)});"
        )

    def element(i: str) -> list[str]:
        return [
            f"    {{ int32_t s = ta[(uint8_t)a[{i}]] {op} tb[(uint8_t)b[{i}]];",
            f"      out[{i}] = {_requant_expr(spec, 's', '0')}; }}",
        ]

    lines = [
        _signature(symbol, [*dtypes, "int32"], ["a", "b", "out", "ws"]) + " {",
        f"  /* {'SUB' if spec['subtract'] else 'ADD'} of {n} elements */",
        "  int32_t* ta = ws;",
        "  int32_t* tb = ws + 256;",
        "  int32_t v, i;",
        table("ta", int(spec["zp_a"]), spec["rq_a"]),
        table("tb", int(spec["zp_b"]), spec["rq_b"]),
        f"  for (i = 0; i < {n - n % 4}; i += 4) {{",
        *element("i"),
        *element("i + 1"),
        *element("i + 2"),
        *element("i + 3"),
        "  }",
        f"  for (; i < {n}; ++i) {{",
        *element("i"),
        "  }",
        "  return 0;",
        "}",
    ]
    return GeneratedKernel(
        "\n".join(lines) + "\n", [*dtypes, "int32"], (2048, "int32"), inplace=((2, 0, 0), (2, 1, 0))
    )


def _avg_pool(spec: dict[str, Any], symbol: str, dtypes: list[str]) -> GeneratedKernel:
    """AVERAGE_POOL_2D: per output pixel the in-image window is resolved once, then 4 channels per word
    are summed in two pairs of 16-bit lanes with SXTAB16 (3 instructions per 4 taps, no widening pass; the
    spec only exists for windows of at most 255 taps, so no lane overflows), and each sum is divided by the
    tap count rounding half away from zero, as TFLite does."""
    n, ih, iw, ch = spec["data_shape"]
    _, oh, ow, _ = spec["out_shape"]
    fh, fw = spec["filter"]
    sh, sw = spec["stride"]
    pt, pl = spec["pad"]
    lo, hi = spec["act_range"]
    c4 = ch - ch % 4
    full_windows = pt == 0 and pl == 0 and (oh - 1) * sh + fh <= ih and (ow - 1) * sw + fw <= iw
    unroll = full_windows and fh * fw <= 16  # small constant windows: every tap at a constant offset

    def average(total: str) -> str:
        return f"tvmc_clamp8(tvmc_avg({total}, cnt), {lo}, {hi})"

    lines = [
        _signature(symbol, dtypes, ["data", "out"]) + " {",
        f"  /* AVERAGE_POOL_2D {ih}x{iw}x{ch} -> {oh}x{ow}, filter {fh}x{fw}, stride {sh}x{sw}, "
        f"pad {pt},{pl} */",
        "  int32_t b, oy, ox, y, x, c;",
        "  (void)c;",
        f"  for (b = 0; b < {n}; ++b)",
        f"  for (oy = 0; oy < {oh}; ++oy)",
        f"  for (ox = 0; ox < {ow}; ++ox) {{",
        f"    int32_t y0 = oy * {sh} - {pt}, x0 = ox * {sw} - {pl};",
    ]
    if full_windows:
        # Windows that never leave the image: constant trip counts and a constant divisor (a multiply).
        lines += [
            f"    int32_t ya = y0, yb = y0 + {fh}, xa = x0, xb = x0 + {fw};",
            f"    const int32_t cnt = {fh * fw};",
        ]
    else:
        lines += [
            f"    int32_t ya = y0 < 0 ? 0 : y0, yb = y0 + {fh} > {ih} ? {ih} : y0 + {fh};",
            f"    int32_t xa = x0 < 0 ? 0 : x0, xb = x0 + {fw} > {iw} ? {iw} : x0 + {fw};",
            "    int32_t cnt = (yb - ya) * (xb - xa);",
        ]
    lines += [
        f"    const int8_t* src = data + b * {ih * iw * ch};",
        f"    int8_t* dst = out + ((b * {oh} + oy) * {ow} + ox) * {ch};",
    ]
    if c4:
        lines += [
            f"    for (c = 0; c < {c4}; c += 4) {{",
            "      int32_t ev = 0, od = 0;",
            *([f'      _Pragma("GCC unroll {fh}")'] if unroll else []),
            "      for (y = ya; y < yb; ++y)",
            *([f'        _Pragma("GCC unroll {fw}")'] if unroll else []),
            "        for (x = xa; x < xb; ++x) {",
            f"          uint32_t v = tvmc_ld32(src + (y * {iw} + x) * {ch} + c);",
            "          ev = tvmc_sxtab16(ev, v);",
            "          od = tvmc_sxtab16_ror8(od, v);",
            "        }",
            f"      dst[c] = {average('(int32_t)(int16_t)(uint16_t)((uint32_t)ev & 0xffffu)')};",
            f"      dst[c + 1] = {average('(int32_t)(int16_t)(uint16_t)((uint32_t)od & 0xffffu)')};",
            f"      dst[c + 2] = {average('(int32_t)(int16_t)(uint16_t)((uint32_t)ev >> 16)')};",
            f"      dst[c + 3] = {average('(int32_t)(int16_t)(uint16_t)((uint32_t)od >> 16)')};",
            "    }",
        ]
    if c4 < ch:
        lines += [
            f"    for (c = {c4}; c < {ch}; ++c) {{",
            "      int32_t s = 0;",
            "      for (y = ya; y < yb; ++y)",
            f"        for (x = xa; x < xb; ++x) s += src[(y * {iw} + x) * {ch} + c];",
            f"      dst[c] = {average('s')};",
            "    }",
        ]
    lines += ["  }", "  return 0;", "}"]
    return GeneratedKernel("\n".join(lines) + "\n", dtypes, None)
