# mypy: disable-error-code="valid-type,untyped-decorator,no-untyped-def"
# (TVMScript's `T.Buffer(shape, dtype)` parameter annotations are not Python types.)
"""The float32 UNIDIRECTIONAL_SEQUENCE_LSTM kernel (float_lstm.py), in TVMScript: a loop over the time
steps, because each step reads the hidden and cell state the previous one wrote.

The arithmetic is TFLite Micro's float LSTM step (lstm_eval.h) in the same order, one float32 operation
at a time (the generated C is compiled with fp-contract off):

    gate = act((sum_d x[d] * W[n, d] + bias[n]) + sum_d h[d] * R[n, d])    sums from 0.0f, in d order
    i, f, o: reference Logistic; g: std::tanh; CIFG: i = 1.0f - f
    c = f * c + i * g, then clipped to [-cell_clip, cell_clip] when cell_clip > 0
    h = tanh(c) * o

Every FC and Mul result passes ActivationFunctionWithMinMax with the float bounds (lowest, max), as in
TFLM. The old state is an input and the new state an output; the executor binds both to one persistent
buffer, so the kernel copies the old state to the new one first and then only reads and writes the new
one (a no-op copy when they alias); no `restrict` pointers (may-alias).
"""

from __future__ import annotations

from tvm import tirx
from tvm.script import tirx as T

from tvmc_micro.compiler.quantized.kernels_float import FLT_MAX, _logistic, f32, libm, std_max, std_min

_OPAQUE = 8  # relax OpPatternKind kOpaque: never fused with its neighbours


def _minmax(x: tirx.PrimExpr) -> tirx.PrimExpr:
    """ActivationFunctionWithMinMax(x, lowest, max): std::min(std::max(x, lo), hi)."""
    return std_min(std_max(x, f32(-FLT_MAX)), f32(FLT_MAX))


def _clip(x: tirx.PrimExpr, clip: float) -> tirx.PrimExpr:
    """TFLM's Clipping: std::max(std::min(clip, x), -clip)."""
    lo = tirx.Select(x < f32(clip), x, f32(clip))  # std::min(clip, x) = (x < clip) ? x : clip
    return std_max(lo, f32(-clip))


def lstm_float_kernel(
    batches: int, steps: int, n_input: int, n_cell: int, time_major: bool, cifg: bool, cell_clip: float
) -> tirx.PrimFunc:
    """x and out are [steps, batches, .] when time_major, else [batches, steps, .]. Gate order of the
    stacked weights and biases: input, forget, cell, output (TFLite's operand order); with `cifg` the
    input-gate rows are unused."""
    x_shape = (steps, batches, n_input) if time_major else (batches, steps, n_input)
    out_shape = (steps, batches, n_cell) if time_major else (batches, steps, n_cell)
    # Element strides of (batch, time) in the flattened input and output.
    xs_b, xs_t = (n_input, batches * n_input) if time_major else (steps * n_input, n_input)
    os_b, os_t = (n_cell, batches * n_cell) if time_major else (steps * n_cell, n_cell)
    first_gate = 1 if cifg else 0
    clip = float(cell_clip) if cell_clip > 0.0 else 0.0
    n_x, n_out = batches * steps * n_input, batches * steps * n_cell

    @T.prim_func(private=True)
    def lstm(
        x: T.Buffer(x_shape, "float32"),
        w_in: T.Buffer((4, n_cell, n_input), "float32"),
        w_rec: T.Buffer((4, n_cell, n_cell), "float32"),
        bias: T.Buffer((4, n_cell), "float32"),
        h_in: T.Buffer((batches, n_cell), "float32"),
        c_in: T.Buffer((batches, n_cell), "float32"),
        out: T.Buffer(out_shape, "float32"),
        h_out: T.Buffer((batches, n_cell), "float32"),
        c_out: T.Buffer((batches, n_cell), "float32"),
    ):
        xf = T.decl_buffer((n_x,), "float32", data=x.data)
        of = T.decl_buffer((n_out,), "float32", data=out.data)
        gates = T.alloc_buffer((4, n_cell), "float32")
        acc = T.alloc_buffer((3,), "float32")
        for b, n in T.grid(batches, n_cell):
            h_out[b, n] = h_in[b, n]
            c_out[b, n] = c_in[b, n]
        for b, t in T.grid(batches, steps):
            for g, n in T.grid(4 - first_gate, n_cell):
                acc[0] = T.float32(0)
                for d in T.serial(n_input):
                    acc[0] = acc[0] + xf[b * xs_b + t * xs_t + d] * w_in[g + first_gate, n, d]
                acc[0] = acc[0] + bias[g + first_gate, n]
                acc[0] = _minmax(acc[0])
                acc[1] = T.float32(0)
                for d in T.serial(n_cell):
                    acc[1] = acc[1] + h_out[b, d] * w_rec[g + first_gate, n, d]
                acc[1] = _minmax(acc[1])
                acc[2] = acc[0] + acc[1]
                if g + first_gate == 2:
                    gates[g + first_gate, n] = libm("tanhf", acc[2])
                else:
                    gates[g + first_gate, n] = _logistic(acc[2])
            for n in T.serial(n_cell):
                if cifg:
                    gates[0, n] = f32(1.0) - gates[1, n]
                acc[0] = gates[1, n] * c_out[b, n]
                acc[0] = _minmax(acc[0])
                acc[1] = gates[0, n] * gates[2, n]
                acc[1] = _minmax(acc[1])
                acc[0] = acc[0] + acc[1]
                if clip > 0.0:
                    acc[0] = _clip(acc[0], clip)
                c_out[b, n] = acc[0]
                acc[1] = libm("tanhf", acc[0]) * gates[3, n]
                acc[1] = _minmax(acc[1])
                h_out[b, n] = acc[1]
                of[b * os_b + t * os_t + n] = acc[1]

    return (
        lstm.with_attr("tirx.noalias", False)
        .with_attr("op_pattern", _OPAQUE)
        .with_attr("tvmc_micro.scheduled", "float_lstm")
    )
