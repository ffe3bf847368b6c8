"""The int64 requantisation of TFLite's 16x8 kernels, in Python (reference) and as TIR expressions.

int16 CONV_2D / TRANSPOSE_CONV with an int64 bias accumulate in int64 and call the int64 overload of
MultiplyByQuantizedMultiplier (`tensorflow/lite/kernels/internal/common.cc`). That overload does not
use gemmlowp's two roundings: it first reduces the 31-bit multiplier to 15 bits (rounding half up,
saturating at 0x7FFF), then multiplies, adds half of 2^(15 - shift) and shifts right arithmetically
once; the int64 result is truncated to int32 (`int32_t result = x >> total_shift`). Both double- and
single-rounding TFLite builds compute exactly this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import te, tirx

from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr

INT16_MIN = -(1 << 15)
INT16_MAX = (1 << 15) - 1


def reduce_multiplier(multiplier: int) -> int:
    """The 15-bit multiplier the int64 overload actually multiplies by."""
    return (multiplier + (1 << 15)) >> 16 if multiplier < 0x7FFF0000 else 0x7FFF


def multiply_by_quantized_multiplier_int64(x: int, multiplier: int, shift: int) -> int:
    """MultiplyByQuantizedMultiplier(int64_t x, int32_t multiplier, int shift), exactly."""
    total_shift = 15 - shift
    result = (x * reduce_multiplier(multiplier) + (1 << (total_shift - 1))) >> total_shift
    return fp.wrap_int32(result)


@dataclass
class Requant64:
    """Per-channel (or per-tensor when all channels agree) int64 requantisation.

    Stored as what the kernel needs: the reduced multiplier and the total right shift (15 - shift)."""

    reduced: np.ndarray  # int32 [C]
    total_shift: np.ndarray  # int32 [C], in [8, 46]

    @classmethod
    def from_real(cls, reals: list[float]) -> Requant64:
        pairs = [fp.quantize_multiplier(r) for r in reals]
        reduced = np.array([reduce_multiplier(m) for m, _ in pairs], np.int32)
        total = np.array([15 - s for _, s in pairs], np.int32)
        if np.all(reduced == reduced[0]) and np.all(total == total[0]):
            reduced, total = reduced[:1], total[:1]
        return cls(reduced, total)

    @staticmethod
    def check_shifts(reals: list[float]) -> str | None:
        """TFLite asserts -31 <= shift < 8 for the int64 overload; outside it the arithmetic differs."""
        for r in reals:
            m, s = fp.quantize_multiplier(r)
            if m and not -31 <= s < 8:
                return f"requantisation scale {r:.6g} is outside TFLite's int64 range (shift {s})"
        return None

    @property
    def per_channel(self) -> bool:
        return self.reduced.size > 1

    def constant_tensors(self) -> list[np.ndarray]:
        return [self.reduced, self.total_shift] if self.per_channel else []

    def placeholders(self, prefix: str) -> list[te.Tensor]:
        if not self.per_channel:
            return []
        c = self.reduced.size
        return [
            te.placeholder((c,), "int32", name=f"{prefix}_multiplier"),
            te.placeholder((c,), "int32", name=f"{prefix}_shift"),
        ]

    def apply(self, acc: PrimExpr, channel: PrimExpr, tables: list[te.Tensor]) -> PrimExpr:
        """int32(acc * reduced + 2^(total-1) >> total) on an int64 accumulator."""
        if not self.per_channel:
            total = int(self.total_shift[0])
            prod = acc * tirx.const(int(self.reduced[0]), "int64")
            rounded = prod + tirx.const(1 << (total - 1), "int64")
            return (rounded >> tirx.const(total, "int64")).astype("int32")
        mult = tables[0][channel].astype("int64")
        total = tables[1][channel].astype("int64")
        one = tirx.const(1, "int64")
        return ((acc * mult + (one << (total - one))) >> total).astype("int32")

    def reference(self, acc: np.ndarray, channel_axis: int = -1) -> np.ndarray:
        reduced = np.broadcast_to(self.reduced, (acc.shape[channel_axis],)).astype(object)
        total = np.broadcast_to(self.total_shift, reduced.shape)
        moved = np.moveaxis(acc.astype(object), channel_axis, -1)
        out = np.empty(moved.shape, np.int64)
        for idx in np.ndindex(moved.shape):
            c = idx[-1]
            t = int(total[c])
            out[idx] = fp.wrap_int32((int(moved[idx]) * int(reduced[c]) + (1 << (t - 1))) >> t)
        return np.moveaxis(out, -1, channel_axis)


def activation_range16(activation: str, scale: float, zero_point: int) -> tuple[int, int]:
    """CalculateActivationRangeQuantized for an int16 output."""
    return fp.activation_range(activation, scale, zero_point, INT16_MIN, INT16_MAX)
