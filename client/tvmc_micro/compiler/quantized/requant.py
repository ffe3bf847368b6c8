"""Requantisation parameters: the (multiplier, shift) pairs TFLite computes in Prepare().

A `Requant` is either per-tensor (plain integers, emitted as immediates in the kernel) or per-channel
(int32 multipliers and int8 shifts, passed to the kernel as constant tensors). Channels that all share
one multiplier collapse to per-tensor, so a per-channel model with identical scales costs no tables.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tvm import te, tirx

from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized import tir_fixedpoint as tfp
from tvmc_micro.compiler.quantized.tir_fixedpoint import PrimExpr


@dataclass
class Requant:
    multipliers: np.ndarray  # int32 [C] (C == 1: per-tensor)
    shifts: np.ndarray  # int32 [C], TFLite's signed shift (positive: left)

    @classmethod
    def from_real(cls, reals: list[float]) -> Requant:
        pairs = [fp.quantize_multiplier(r) for r in reals]
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


def clamp_to_int8(value: PrimExpr, lo: int, hi: int, dtype: str = "int8") -> PrimExpr:
    clamped = tirx.max(tirx.min(value, tirx.const(hi, "int32")), tirx.const(lo, "int32"))
    return clamped.astype(dtype)
