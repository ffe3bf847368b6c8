"""Requantisation parameters: the (multiplier, shift) pairs TFLite computes in Prepare(), or the float32
scales ONNX Runtime multiplies by.

A `Requant` is either per-tensor (plain integers, emitted as immediates in the kernel) or per-channel
(int32 multipliers and int8 shifts, passed to the kernel as constant tensors). Channels that all share
one multiplier collapse to per-tensor, so a per-channel model with identical scales costs no tables.

The requantisation mode is a property of the object a kernel receives (`mode`): kernels only call
`placeholders`, `constant_tensors` and `apply`, so the same integer kernel computes TFLite's
fixed-point arithmetic (`Requant`, mode "tflite") or ONNX Runtime's float one (`FloatRequant`, mode
"ort_float"). Code that emits a mode-specific kernel (e.g. a hand-written DSP one) must check `mode`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from tvm import te, tirx

from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized import tir_fixedpoint as tfp
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


@dataclass
class Requant:
    multipliers: np.ndarray  # int32 [C] (C == 1: per-tensor)
    shifts: np.ndarray  # int32 [C], TFLite's signed shift (positive: left)
    mode: ClassVar[str] = "tflite"

    @classmethod
    def from_real(cls, reals: list[float]) -> Requant:
        pairs = [fp.quantize_multiplier(r) for r in reals]
        for real, (_, shift) in zip(reals, pairs, strict=True):
            fp.check_requant_shift(real, shift)
        mults = np.array([m for m, _ in pairs], dtype=np.int32)
        shifts = np.array([s for _, s in pairs], dtype=np.int32)
        if np.all(mults == mults[0]) and np.all(shifts == shifts[0]):
            mults, shifts = mults[:1], shifts[:1]
        return cls(mults, shifts)

    @property
    def per_channel(self) -> bool:
        return self.multipliers.size > 1

    @property
    def needs_left_shift(self) -> bool:
        return bool(np.any(self.shifts > 0))

    def constant_tensors(self) -> list[np.ndarray]:
        """The tables a per-channel kernel takes, in argument order (none for per-tensor)."""
        if not self.per_channel:
            return []
        right = np.maximum(-self.shifts, 0).astype(np.int8)
        if self.needs_left_shift:
            return [self.multipliers, np.maximum(self.shifts, 0).astype(np.int8), right]
        return [self.multipliers, right]

    def placeholders(self, prefix: str) -> list[te.Tensor]:
        c = self.multipliers.size
        tables = self.constant_tensors()
        if not tables:
            return []
        names = (
            ["multiplier", "left_shift", "right_shift"] if len(tables) == 3 else ["multiplier", "right_shift"]
        )
        return [
            te.placeholder((c,), str(t.dtype), name=f"{prefix}_{n}")
            for t, n in zip(tables, names, strict=True)
        ]

    def apply(self, acc: PrimExpr, channel: PrimExpr | None, tables: list[te.Tensor]) -> PrimExpr:
        """MultiplyByQuantizedMultiplier(acc, multiplier[channel], shift[channel]) as a TIR expression."""
        if not self.per_channel:
            shift = int(self.shifts[0])
            return tfp.multiply_by_quantized_multiplier(
                acc, int(self.multipliers[0]), max(shift, 0), max(-shift, 0)
            )
        assert channel is not None
        mult = tables[0][channel]
        if len(tables) == 3:
            left = tables[1][channel].astype("int32")
            right = tables[2][channel].astype("int32")
        else:
            left, right = 0, tables[1][channel].astype("int32")
        return tfp.multiply_by_quantized_multiplier(acc, mult, left, right)

    def reference(self, acc: np.ndarray, channel_axis: int = -1) -> np.ndarray:
        """numpy reference of `apply` (used by tests and for constant folding)."""
        out = np.empty(acc.shape, dtype=np.int64)
        mults = (
            np.broadcast_to(self.multipliers, (acc.shape[channel_axis],))
            if not self.per_channel
            else self.multipliers
        )
        shifts = np.broadcast_to(self.shifts, mults.shape) if not self.per_channel else self.shifts
        moved = np.moveaxis(acc, channel_axis, -1)
        res = np.moveaxis(out, channel_axis, -1)
        for idx in np.ndindex(moved.shape):
            c = idx[-1]
            res[idx] = fp.multiply_by_quantized_multiplier(int(moved[idx]), int(mults[c]), int(shifts[c]))
        return out


@dataclass
class FloatRequant:
    """ONNX Runtime's requantisation (MLAS MlasRequantizeOutput): the int32 accumulator (bias included)
    converted to float32, multiplied by a float32 scale, rounded half to even.

    `scales` are what ORT computes in float32, e.g. x_scale * w_scale[c] / y_scale for QLinearConv.
    There are deliberately no `multipliers`/`shifts`: code written for TFLite's fixed point fails loudly
    on this object instead of silently computing the other arithmetic.
    """

    scales: np.ndarray  # float32 [C] (C == 1: per-tensor)
    mode: ClassVar[str] = "ort_float"

    @classmethod
    def from_scales(cls, scales: list[float] | np.ndarray) -> FloatRequant:
        arr = np.asarray(scales, dtype=np.float32).reshape(-1)
        if np.all(arr == arr[0]):
            arr = arr[:1]
        return cls(arr)

    @property
    def per_channel(self) -> bool:
        return self.scales.size > 1

    @property
    def needs_left_shift(self) -> bool:
        return False

    # The scales are always a constant tensor, never an immediate: TVM's C backend prints float
    # immediates with 7 significant digits, which is not the float32 value (it needs 9).
    def constant_tensors(self) -> list[np.ndarray]:
        return [self.scales]

    def placeholders(self, prefix: str) -> list[te.Tensor]:
        return [te.placeholder((self.scales.size,), "float32", name=f"{prefix}_scale")]

    def apply(self, acc: PrimExpr, channel: PrimExpr | None, tables: list[te.Tensor]) -> PrimExpr:
        """round_half_even(float32(acc) * scale) as int32; the caller adds the zero point and clamps.

        MLAS clamps to [qmin - zp, qmax - zp] in float before rounding; rounding is monotonic and the
        bounds are integers, so rounding first and clamping the integer gives the same value. The float
        is bounded to +-2^24 first because converting a larger float to int32 is undefined in C."""
        if self.per_channel:
            assert channel is not None
            scale = tables[0][channel]
        else:
            scale = tables[0][0]
        value = tfp.i32(acc).astype("float32") * scale
        limit = tirx.const(float(1 << 24), "float32")
        value = tirx.max(tirx.min(value, limit), -limit)
        return tirx.nearbyint(value).astype("int32")

    def reference(self, acc: np.ndarray, channel_axis: int = -1) -> np.ndarray:
        """numpy twin of `apply` (float32 product, ties to even)."""
        scales = np.broadcast_to(self.scales, (acc.shape[channel_axis],)).astype(np.float32)
        shape = [1] * acc.ndim
        shape[channel_axis] = scales.size
        prod = acc.astype(np.float32) * scales.reshape(shape)
        rounded: np.ndarray = np.rint(np.clip(prod, -(2.0**24), 2.0**24)).astype(np.int64)
        return rounded


# A requantiser: TFLite's fixed point or ONNX Runtime's float (see the module docstring).
Requantizer = Requant | FloatRequant


def clamp_to_int8(value: PrimExpr, lo: int, hi: int, dtype: str = "int8") -> PrimExpr:
    clamped = tirx.max(tirx.min(value, tirx.const(hi, "int32")), tirx.const(lo, "int32"))
    return clamped.astype(dtype)
