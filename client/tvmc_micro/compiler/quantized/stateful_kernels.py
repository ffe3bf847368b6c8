# mypy: disable-error-code="valid-type,untyped-decorator,no-untyped-def"
# (TVMScript's `T.Buffer(shape, dtype)` parameter annotations are not Python types.)
"""TIR kernels of the stateful operators (stateful.py), written in TVMScript: loops, not tensor expressions,
because each step reads what the previous one wrote (the state window, the recurrence over time).

Each kernel takes the old state as an input and writes the new state as an output; the executor passes
the same persistent buffer for both, so every kernel reads each state element before overwriting it, and
the functions are marked may-alias (no `restrict` for the C compiler).
"""

from __future__ import annotations

from typing import Any

from tvm import tirx
from tvm.script import tirx as T

from tvmc_micro.compiler.quantized import tir_fixedpoint as tfx

_NOALIAS = "tirx.noalias"


def may_alias(func: tirx.PrimFunc) -> tirx.PrimFunc:
    # The old and new state share one buffer in the executor: no `restrict` on any pointer.
    return func.with_attr(_NOALIAS, False)


def split_shift(shift: int) -> tuple[int, int]:
    return max(shift, 0), max(-shift, 0)


# TFLite's sigmoid(i/24) in 0.16 fixed point (tensorflow/lite/kernels/internal/common.h), the table its
# int16 LOGISTIC and TANH interpolate; a plain rounding of the formula differs in a few entries.
SIGMOID_TABLE_U16 = [
    32768,
    33451,
    34133,
    34813,
    35493,
    36169,
    36843,
    37513,
    38180,
    38841,
    39498,
    40149,
    40794,
    41432,
    42064,
    42688,
    43304,
    43912,
    44511,
    45102,
    45683,
    46255,
    46817,
    47369,
    47911,
    48443,
    48964,
    49475,
    49975,
    50464,
    50942,
    51409,
    51865,
    52311,
    52745,
    53169,
    53581,
    53983,
    54374,
    54755,
    55125,
    55485,
    55834,
    56174,
    56503,
    56823,
    57133,
    57433,
    57724,
    58007,
    58280,
    58544,
    58800,
    59048,
    59288,
    59519,
    59743,
    59959,
    60168,
    60370,
    60565,
    60753,
    60935,
    61110,
    61279,
    61441,
    61599,
    61750,
    61896,
    62036,
    62172,
    62302,
    62428,
    62549,
    62666,
    62778,
    62886,
    62990,
    63090,
    63186,
    63279,
    63368,
    63454,
    63536,
    63615,
    63691,
    63765,
    63835,
    63903,
    63968,
    64030,
    64090,
    64148,
    64204,
    64257,
    64308,
    64357,
    64405,
    64450,
    64494,
    64536,
    64576,
    64614,
    64652,
    64687,
    64721,
    64754,
    64786,
    64816,
    64845,
    64873,
    64900,
    64926,
    64950,
    64974,
    64997,
    65019,
    65039,
    65060,
    65079,
    65097,
    65115,
    65132,
    65149,
    65164,
    65179,
    65194,
    65208,
    65221,
    65234,
    65246,
    65258,
    65269,
    65280,
    65291,
    65301,
    65310,
    65319,
    65328,
    65337,
    65345,
    65352,
    65360,
    65367,
    65374,
    65381,
    65387,
    65393,
    65399,
    65404,
    65410,
    65415,
    65420,
    65425,
    65429,
    65433,
    65438,
    65442,
    65445,
    65449,
    65453,
    65456,
    65459,
    65462,
    65465,
    65468,
    65471,
    65474,
    65476,
    65479,
    65481,
    65483,
    65485,
    65488,
    65489,
    65491,
    65493,
    65495,
    65497,
    65498,
    65500,
    65501,
    65503,
    65504,
    65505,
    65507,
    65508,
    65509,
    65510,
    65511,
    65512,
    65513,
    65514,
    65515,
    65516,
    65517,
    65517,
    65518,
    65519,
    65520,
    65520,
    65521,
    65522,
    65522,
    65523,
    65523,
    65524,
    65524,
    65525,
    65525,
    65526,
    65526,
    65526,
    65527,
    65527,
    65528,
    65528,
    65528,
    65529,
    65529,
    65529,
    65529,
    65530,
    65530,
    65530,
    65530,
    65531,
    65531,
    65531,
    65531,
    65531,
    65532,
    65532,
    65532,
    65532,
    65532,
    65532,
    65533,
    65533,
    65533,
    65533,
    65533,
    65533,
    65533,
    65533,
    65534,
    65534,
    65534,
    65534,
    65534,
    65534,
    65534,
    65534,
    65534,
    65534,
    65535,
]


def sigmoid16(v: Any, table: Any) -> Any:
    """reference_integer_ops::Logistic on an already scaled int32 input (x * 3 for the Q3.12 gates)."""
    a = T.if_then_else(v < 0, -v, v)
    uh = a >> 9
    ua = table[T.min(uh, 254)]
    ub = table[T.min(uh, 254) + 1]
    r = T.if_then_else(uh >= 255, 0x7FFF << 10, (ua << 9) + (a & 0x1FF) * (ub - ua))
    r = T.if_then_else(v >= 0, r + (1 << 9), (1 << 25) - r + (1 << 9) - 1)
    return T.Cast("int16", r >> 10)


def tanh16(v: Any, table: Any) -> Any:
    """reference_integer_ops::Tanh (int16) on an already scaled int32 input."""
    a = T.if_then_else(v < 0, -v, v)
    uh = a >> 8
    ua = table[T.min(uh, 254)]
    ub = table[T.min(uh, 254) + 1]
    r = T.if_then_else(uh >= 255, 0xFFFF << 8, (ua << 8) + (a & 0xFF) * (ub - ua))
    r = T.if_then_else(v >= 0, r - (1 << 23) + (1 << 7), (1 << 23) - r + (1 << 7) - 1)
    return T.Cast("int16", r >> 8)


def _mbqm(x: Any, mult_shift: tuple[int, int]) -> Any:
    left, right = split_shift(mult_shift[1])
    return tfx.multiply_by_quantized_multiplier(x, mult_shift[0], left, right)


def lstm_kernel(
    batches: int,
    steps: int,
    n_input: int,
    n_cell: int,
    cell_tanh: bool,
    tanh_scale: tuple[int, int],
    forget_cell: tuple[int, int],
    input_cell: tuple[int, int],
    hidden: tuple[int, int],
    hidden_zp: int,
    cell_clip: int,
) -> tirx.PrimFunc:
    """TFLM's integer LSTM step (lstm_eval.h) over every time step: four gate FCs (input and recurrent,
    each requantised to int16 Q3.12 and saturated, then a saturating add), sigmoid/tanh to Q0.15, the cell
    update f*c + i*g (two int16 MulElementwise, saturating add, clip), h = tanh(c) * o requantised to
    int8. `rq[g, k]` holds (multiplier, left, right) of gate g's input (k=0) and recurrent (k=1) FC."""
    tanh_mult, tanh_shift = tanh_scale
    tanh_round = (1 << (tanh_shift - 1)) if tanh_shift > 0 else 0
    clip = cell_clip if cell_clip > 0 else 32767

    @T.prim_func(private=True)
    def lstm(
        x: T.Buffer((batches, steps, n_input), "int8"),
        w_in: T.Buffer((4, n_cell, n_input), "int8"),
        w_rec: T.Buffer((4, n_cell, n_cell), "int8"),
        bias: T.Buffer((2, 4, n_cell), "int32"),
        rq: T.Buffer((4, 2, 3), "int32"),
        table: T.Buffer((256,), "int32"),
        h_in: T.Buffer((batches, n_cell), "int8"),
        c_in: T.Buffer((batches, n_cell), "int16"),
        out: T.Buffer((batches, steps, n_cell), "int8"),
        h_out: T.Buffer((batches, n_cell), "int8"),
        c_out: T.Buffer((batches, n_cell), "int16"),
    ):
        gates = T.alloc_buffer((4, n_cell), "int16")
        acc = T.alloc_buffer((2,), "int32")
        # Work on the new state only (a no-op copy when the executor binds old and new to one buffer).
        for b, n in T.grid(batches, n_cell):
            h_out[b, n] = h_in[b, n]
            c_out[b, n] = c_in[b, n]
        for b, t in T.grid(batches, steps):
            for g, n in T.grid(4, n_cell):
                acc[0] = bias[0, g, n]
                for d in T.serial(n_input):
                    acc[0] = acc[0] + T.Cast("int32", w_in[g, n, d]) * T.Cast("int32", x[b, t, d])
                acc[0] = tfx.multiply_by_quantized_multiplier(acc[0], rq[g, 0, 0], rq[g, 0, 1], rq[g, 0, 2])
                acc[0] = T.max(T.min(acc[0], 32767), -32768)
                acc[1] = bias[1, g, n]
                for d in T.serial(n_cell):
                    acc[1] = acc[1] + T.Cast("int32", w_rec[g, n, d]) * T.Cast("int32", h_out[b, d])
                acc[1] = tfx.multiply_by_quantized_multiplier(acc[1], rq[g, 1, 0], rq[g, 1, 1], rq[g, 1, 2])
                acc[1] = T.max(T.min(acc[1], 32767), -32768)
                acc[0] = T.max(T.min(acc[0] + acc[1], 32767), -32768) * 3
                if cell_tanh and g == 2:
                    gates[g, n] = tanh16(acc[0], table)
                else:
                    gates[g, n] = sigmoid16(acc[0], table)
            for n in T.serial(n_cell):
                acc[0] = _mbqm(T.Cast("int32", gates[1, n]) * T.Cast("int32", c_out[b, n]), forget_cell)
                acc[0] = T.max(T.min(acc[0], 32767), -32768)
                acc[1] = _mbqm(T.Cast("int32", gates[0, n]) * T.Cast("int32", gates[2, n]), input_cell)
                acc[1] = T.max(T.min(acc[1], 32767), -32768)
                acc[0] = T.max(T.min(acc[0] + acc[1], 32767), -32768)
                c_out[b, n] = T.Cast("int16", T.max(T.min(acc[0], clip), 0 - clip))
                acc[0] = (T.Cast("int32", c_out[b, n]) * tanh_mult + tanh_round) >> tanh_shift
                acc[1] = T.Cast("int32", tanh16(acc[0], table))
                acc[0] = _mbqm(acc[1] * T.Cast("int32", gates[3, n]), hidden) + hidden_zp
                h_out[b, n] = T.Cast("int8", T.max(T.min(acc[0], 127), -128))
                out[b, t, n] = h_out[b, n]

    return may_alias(lstm)


def svdf_kernel(
    batches: int,
    n_input: int,
    n_filter: int,
    n_memory: int,
    rank: int,
    state_dtype: str,
    in_zp: int,
    state_zp: int,
    out_zp: int,
    scale1: tuple[int, int],
    scale2: tuple[int, int],
) -> tirx.PrimFunc:
    """TFLM's EvalIntegerSvdfReference: shift the state window, append the feature projection
    (requantised to the state type), then the time-weighted sum per unit, bias, second requantisation."""
    n_unit = n_filter // rank
    size = n_filter * n_memory
    m1, (l1, r1) = scale1[0], split_shift(scale1[1])
    m2, (l2, r2) = scale2[0], split_shift(scale2[1])
    lo, hi = (-32768, 32767) if state_dtype == "int16" else (-128, 127)

    @T.prim_func(private=True)
    def svdf(
        inp: T.Buffer((batches, n_input), "int8"),
        w_feature: T.Buffer((n_filter, n_input), "int8"),
        w_time: T.Buffer((n_filter, n_memory), state_dtype),
        bias: T.Buffer((n_unit,), "int32"),
        state_in: T.Buffer((batches, size), state_dtype),
        out: T.Buffer((batches, n_unit), "int8"),
        state_out: T.Buffer((batches, size), state_dtype),
    ):
        acc = T.alloc_buffer((1,), "int32")
        # TFLM moves the whole buffer one element left (ascending: each read precedes its overwrite).
        for k in T.serial(batches * size - 1):
            state_out[k // size, k % size] = state_in[(k + 1) // size, (k + 1) % size]
        for b, f in T.grid(batches, n_filter):
            acc[0] = 0
            for c in T.serial(n_input):
                acc[0] = acc[0] + T.Cast("int32", w_feature[f, c]) * (T.Cast("int32", inp[b, c]) - in_zp)
            acc[0] = tfx.multiply_by_quantized_multiplier(acc[0], m1, l1, r1)
            acc[0] = T.max(T.min(acc[0], hi), lo)
            state_out[b, f * n_memory + n_memory - 1] = T.Cast(state_dtype, acc[0] + state_zp)
        for b, u in T.grid(batches, n_unit):
            acc[0] = bias[u]
            for r, m in T.grid(rank, n_memory):
                acc[0] = acc[0] + T.Cast("int32", w_time[u * rank + r, m]) * (
                    T.Cast("int32", state_out[b, (u * rank + r) * n_memory + m]) - state_zp
                )
            acc[0] = tfx.multiply_by_quantized_multiplier(acc[0], m2, l2, r2) + out_zp
            out[b, u] = T.Cast("int8", T.max(T.min(acc[0], 127), -128))

    return may_alias(svdf)
