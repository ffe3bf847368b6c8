"""Model state (TFLite variable tensors) and the operators that keep it: SVDF (int8).

TFLite marks an operator's memory (SVDF's activation state, an LSTM's hidden and cell state) as a
*variable* tensor: it persists across Invoke() calls and TFLite Micro resets it to its zero point (int8)
or to 0 (other types) at start and on Reset(). The importer gives `main` one extra input (the state
before the run) and one extra output (after it) per variable tensor; the converters here read the first
and produce the second, and the driver binds both to one persistent buffer in the executor. The kernels
(stateful_kernels.py) read each state element before overwriting it, so the executor may pass one buffer
as both.

Only the operand positions listed in STATE_INPUTS may hold state; anything else is refused by
`state_problems`, naming the operator and the tensor.
"""

from __future__ import annotations

import json
import math

import numpy as np
from tvm import relax

from tvmc_micro.compiler.quantized import fixedpoint as fp
from tvmc_micro.compiler.quantized.errors import UnsupportedOp
from tvmc_micro.compiler.quantized.graph import QGraph, QOperator, QTensor
from tvmc_micro.compiler.quantized.lowering_base import _NUMPY_DTYPE, Converter, Lowerer, _describe
from tvmc_micro.compiler.quantized.stateful_kernels import SIGMOID_TABLE_U16, lstm_kernel, svdf_kernel

# Operator -> the input positions that are variable tensors TFLite Micro updates in place.
STATE_INPUTS: dict[str, tuple[int, ...]] = {"SVDF": (4,), "UNIDIRECTIONAL_SEQUENCE_LSTM": (18, 19)}


# --- the state mechanism ---------------------------------------------------------------------------


def state_tensors(g: QGraph) -> list[int]:
    """Indices of the variable tensors some operator keeps as state, in tensor order."""
    used = {i for op in g.operators for i in op.inputs if i >= 0 and g.tensors[i].is_variable}
    return sorted(used)


def reset_value(t: QTensor) -> int:
    """The byte TFLite Micro fills a variable tensor with on reset: the zero point for int8, else 0."""
    return t.zero_point & 0xFF if t.dtype == "INT8" and t.is_quantized else 0


def state_description(g: QGraph, states: list[int]) -> str:
    rows = []
    for i in states:
        t = g.tensors[i]
        quant = {"scale": float(t.scales[0]), "zero_point": t.zero_point} if t.is_quantized else None
        rows.append(
            {
                "name": t.name,
                "dtype": _NUMPY_DTYPE.get(t.dtype, t.dtype.lower()),
                "shape": list(t.shape),
                "quantization": quant,
                "reset_byte": reset_value(t),
            }
        )
    return json.dumps(rows)


def state_problems(g: QGraph) -> list[UnsupportedOp]:
    """Variable tensors anywhere but an operator's state operand, shared between operators, or at the edge."""
    problems = []
    edges = {i: "input" for i in g.inputs} | {i: "output" for i in g.outputs}
    readers: dict[int, list[QOperator]] = {}
    for op in g.operators:
        for pos, i in enumerate(op.inputs):
            if i < 0 or not g.tensors[i].is_variable:
                continue
            readers.setdefault(i, []).append(op)
            if pos not in STATE_INPUTS.get(op.name, ()):
                problems.append(
                    UnsupportedOp(
                        op.index,
                        op.name,
                        _describe(g, op),
                        f"input {pos} {g.tensors[i].name!r} is a variable (state) tensor; only the state "
                        "operands of SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM may be",
                    )
                )
        for i in op.outputs:
            if i >= 0 and g.tensors[i].is_variable:
                problems.append(
                    UnsupportedOp(
                        op.index,
                        op.name,
                        _describe(g, op),
                        f"writes the variable (state) tensor {g.tensors[i].name!r} as an output",
                    )
                )
    for i, ops in readers.items():
        t = g.tensors[i]
        if len(ops) > 1:
            where = ", ".join(f"#{op.index} {op.name}" for op in ops)
            problems.append(
                UnsupportedOp(
                    ops[1].index,
                    ops[1].name,
                    t.describe_quantization(),
                    f"state tensor {t.name!r} is shared by operators {where}; each state must have one owner",
                )
            )
        if i in edges:
            problems.append(
                UnsupportedOp(
                    -1,
                    f"model {edges[i]} {t.name!r}",
                    t.describe_quantization(),
                    "a variable (state) tensor cannot be a model input or output",
                )
            )
    return problems


# --- SVDF --------------------------------------------------------------------------------------------


def _check_svdf(g: QGraph, op: QOperator) -> str | None:
    if len(op.inputs) != 5 or len(op.outputs) != 1:
        return f"needs 5 inputs and 1 output (got {len(op.inputs)}/{len(op.outputs)})"
    if min(*op.inputs[:3], op.inputs[4], op.outputs[0]) < 0:
        return "input, weights and state are required operands"
    inp, wf, wt, state = (g.tensors[i] for i in (*op.inputs[:3], op.inputs[4]))
    out = g.tensors[op.outputs[0]]
    bias = g.tensors[op.inputs[3]] if op.inputs[3] >= 0 else None
    for role, t, dtypes in (
        ("input", inp, ("INT8",)),
        ("output", out, ("INT8",)),
        ("weights_feature", wf, ("INT8",)),
        ("weights_time", wt, ("INT8", "INT16")),
        ("activation state", state, ("INT8", "INT16")),
    ):
        if t.dtype not in dtypes or not t.is_quantized or t.per_channel:
            want = " or ".join(d.lower() for d in dtypes)
            return f"{role} {t.name!r} is {t.describe_quantization()}, needs {want} per-tensor"
    if wt.dtype != state.dtype:
        return f"weights_time is {wt.dtype.lower()} but the state is {state.dtype.lower()}; TFLM needs one"
    if wf.data is None or wt.data is None:
        return "weights_feature and weights_time must be constant"
    if not state.is_variable:
        return f"activation state {state.name!r} is not a variable tensor"
    if bias is not None and (bias.dtype != "INT32" or bias.data is None):
        return f"bias {bias.name!r} is {bias.dtype.lower()}; needs a constant int32 bias"
    if (
        bias is not None
        and bias.is_quantized
        and abs(
            float(np.float32(bias.scales[0])) - float(np.float32(state.scales[0]) * np.float32(wt.scales[0]))
        )
        >= 1e-5
    ):
        return "bias scale differs from state scale x weights_time scale (TFLM requires them equal)"
    rank = int(op.options.get("Rank", 0))
    if len(inp.shape) != 2 or len(wf.shape) != 2 or len(wt.shape) != 2 or len(out.shape) != 2:
        return "input, weights and output must be 2-D"
    n_filter, n_memory = wf.shape[0], wt.shape[1]
    if rank < 1 or n_filter % rank or wt.shape[0] != n_filter or wf.shape[1] != inp.shape[1]:
        return f"rank {rank} and weights {list(wf.shape)}/{list(wt.shape)} do not fit input {list(inp.shape)}"
    if tuple(out.shape) != (inp.shape[0], n_filter // rank):
        return f"output shape {list(out.shape)} is not [batches, filters / rank]"
    if tuple(state.shape) != (inp.shape[0], n_filter * n_memory):
        return f"state shape {list(state.shape)} is not [batches, filters x memory]"
    if bias is not None and tuple(bias.shape) != (n_filter // rank,):
        return f"bias shape {list(bias.shape)} is not [units]"
    return None


def _lower_svdf(lw: Lowerer, op: QOperator) -> None:
    inp, wf, wt = (lw.t(i) for i in op.inputs[:3])
    state, out = lw.t(op.inputs[4]), lw.t(op.outputs[0])
    rank = int(op.options.get("Rank", 1))
    n_filter, n_memory = wf.shape[0], wt.shape[1]
    f32 = np.float32
    # TFLM's Prepare computes both effective scales in float, then promotes to double.
    scale1 = float(f32(f32(inp.scales[0]) * f32(wf.scales[0])) / f32(state.scales[0]))
    scale2 = float(f32(f32(state.scales[0]) * f32(wt.scales[0])) / f32(out.scales[0]))
    state_dtype = _NUMPY_DTYPE[state.dtype]
    func = svdf_kernel(
        inp.shape[0],
        inp.shape[1],
        n_filter,
        n_memory,
        rank,
        state_dtype,
        inp.zero_point,
        state.zero_point,
        out.zero_point,
        fp.quantize_multiplier(scale1),
        fp.quantize_multiplier(scale2),
    )
    bias = lw.value(op.inputs[3]) if op.inputs[3] >= 0 else relax.const(np.zeros(n_filter // rank, np.int32))
    args = [*(lw.value(i) for i in op.inputs[:3]), bias, lw.value(op.inputs[4])]
    gv = lw.bb.add_func(func, "svdf")
    types = [
        relax.TensorType(list(out.shape), "int8"),
        relax.TensorType(list(state.shape), state_dtype),
    ]
    both = lw.bb.emit(relax.call_tir(gv, args, types), name_hint="svdf")
    lw.define(op.outputs[0], lw.bb.emit(relax.TupleGetItem(both, 0)))
    lw.state_updates[op.inputs[4]] = lw.bb.emit(relax.TupleGetItem(both, 1))


# --- UNIDIRECTIONAL_SEQUENCE_LSTM (int8 activations and weights, int16 gates and cell state) ------------

_GATE_SCALE = 2.0**-12  # gate pre-activations: int16 Q3.12
_GATE_OUT_SCALE = 2.0**-15  # sigmoid/tanh outputs: int16 Q0.15


# Operand positions (TFLite's lstm_shared.h): 0 input, 1-4 input weights, 5-8 recurrent weights,
# 9-11 peepholes, 12-15 gate biases, 16-17 projection, 18 hidden (output) state, 19 cell state,
# 20-23 layer-norm coefficients.
_LSTM_UNSUPPORTED = {
    9: "peephole",
    10: "peephole",
    11: "peephole",
    16: "projection",
    17: "projection",
    20: "layer normalisation",
    21: "layer normalisation",
    22: "layer normalisation",
    23: "layer normalisation",
}


def _check_lstm(g: QGraph, op: QOperator) -> str | None:
    if len(op.inputs) != 24 or len(op.outputs) != 1:
        return f"needs 24 inputs and 1 output (got {len(op.inputs)}/{len(op.outputs)})"
    for pos, what in _LSTM_UNSUPPORTED.items():
        if op.inputs[pos] >= 0:
            return f"{what} tensors (input {pos}) are not supported by the integer LSTM"
    for pos in (*range(0, 9), *range(12, 16), 18, 19):
        if op.inputs[pos] < 0:
            return f"input {pos} is missing (CIFG LSTMs without an input gate are not supported)"
    inp, hid, cell, out = (g.tensors[i] for i in (op.inputs[0], op.inputs[18], op.inputs[19], op.outputs[0]))
    for role, t, dtype in (
        ("input", inp, "INT8"),
        ("output", out, "INT8"),
        ("hidden state", hid, "INT8"),
        ("cell state", cell, "INT16"),
    ):
        if t.dtype != dtype or not t.is_quantized or t.per_channel:
            return f"{role} {t.name!r} is {t.describe_quantization()}, needs {dtype.lower()} per-tensor"
    if cell.zero_point != 0:
        return f"cell state {cell.name!r} is {cell.describe_quantization()}; needs zero point 0"
    if not (hid.is_variable and cell.is_variable):
        return "the hidden and cell states must be variable tensors"
    for pos in (*range(1, 9), *range(12, 16)):
        t = g.tensors[op.inputs[pos]]
        want = "INT32" if pos >= 12 else "INT8"
        if t.dtype != want or t.data is None or (pos < 12 and (not t.is_quantized or t.per_channel)):
            kind = f"constant {want.lower()}" + (" per-tensor" if pos < 12 else "")
            return f"input {pos} {t.name!r} is {t.describe_quantization()}; needs {kind}"
        if pos < 12 and t.zero_point != 0:
            return f"weights {t.name!r} are {t.describe_quantization()}; needs zero point 0"
    if op.options.get("TimeMajor"):
        return "time-major input is not supported (batch-major only)"
    if int(op.options.get("FusedActivationFunction", 0)) != 4:
        return "cell gate activation must be TANH"
    if len(inp.shape) != 3 or len(hid.shape) != 2:
        return f"input must be 3-D [batch, time, features] and states 2-D (got {list(inp.shape)})"
    batches, steps, n_input = inp.shape
    n_cell = hid.shape[1]
    if tuple(hid.shape) != (batches, n_cell) or tuple(cell.shape) != (batches, n_cell):
        return f"state shapes {list(hid.shape)}/{list(cell.shape)} do not match batch {batches}"
    if tuple(out.shape) != (batches, steps, n_cell):
        return f"output shape {list(out.shape)} is not [batch, time, cells]"
    for pos in range(1, 9):
        shape = (n_cell, n_input) if pos <= 4 else (n_cell, n_cell)
        if tuple(g.tensors[op.inputs[pos]].shape) != shape:
            return f"weights {pos} have shape {list(g.tensors[op.inputs[pos]].shape)}, expected {list(shape)}"
    return None


def _fc_multiplier(inp: QTensor, w: QTensor) -> tuple[int, int]:
    # CalculateOpDataFullyConnected -> GetQuantizedConvolutionMultipler: the float32 scales promoted to
    # double, multiplied in double, divided by the Q3.12 scale. (A float32 product leaves the low bits of
    # the multiplier zero, so some accumulators land exactly on a rounding tie that TFLite Micro's
    # multiplier misses: 1-LSB gate differences that showed once enough steps had run, issue 18.)
    product = float(np.float32(inp.scales[0])) * float(np.float32(w.scales[0]))
    return fp.quantize_multiplier(product / float(np.float32(_GATE_SCALE)))


def _mul_multiplier(scale_a: float, scale_b: float, out_scale: float) -> tuple[int, int]:
    # CreateInterGateMulParams: double(a) * double(b) / double(out).
    product = float(np.float32(scale_a)) * float(np.float32(scale_b))
    return fp.quantize_multiplier(product / float(np.float32(out_scale)))


def _lower_lstm(lw: Lowerer, op: QOperator) -> None:
    inp, hid, cell = lw.t(op.inputs[0]), lw.t(op.inputs[18]), lw.t(op.inputs[19])
    batches, steps, n_input = inp.shape
    n_cell = hid.shape[1]
    w_in = [lw.t(op.inputs[1 + k]) for k in range(4)]
    w_rec = [lw.t(op.inputs[5 + k]) for k in range(4)]
    biases = [lw.t(op.inputs[12 + k]) for k in range(4)]
    rq = np.zeros((4, 2, 3), np.int32)
    bias = np.zeros((2, 4, n_cell), np.int64)
    for k in range(4):
        for j, (w, src) in enumerate(((w_in[k], inp), (w_rec[k], hid))):
            mult, shift = _fc_multiplier(src, w)
            rq[k, j] = (mult, max(shift, 0), max(-shift, 0))
            assert w.data is not None
            # The input offset folded into the bias: sum_d w * (x - zp) = sum_d w * x - zp * sum_d w.
            bias[j, k] = -src.zero_point * w.data.astype(np.int64).sum(axis=1)
        gate_bias = biases[k].data
        assert gate_bias is not None
        bias[0, k] += gate_bias.astype(np.int64)
    cell_scale = float(np.float32(cell.scales[0]))
    power = fp.tflite_round(math.log2(cell_scale))  # CheckedLog2: std::round(log2(scale))
    shift = 15 + power - 3
    tanh_scale = (3 << shift, 0) if shift >= 0 else (3, -shift)
    clip_opt = float(np.float32(op.options.get("CellClip", 0.0)))
    cell_clip = int(min(max(clip_opt / cell_scale, -32768.0), 32767.0)) if clip_opt > 0 else 0
    func = lstm_kernel(
        batches,
        steps,
        n_input,
        n_cell,
        True,
        tanh_scale,
        _mul_multiplier(_GATE_OUT_SCALE, cell_scale, cell_scale),
        _mul_multiplier(_GATE_OUT_SCALE, _GATE_OUT_SCALE, cell_scale),
        _mul_multiplier(_GATE_OUT_SCALE, _GATE_OUT_SCALE, float(hid.scales[0])),
        hid.zero_point,
        cell_clip,
    )
    weights_in = np.stack([np.asarray(w.data) for w in w_in]).astype(np.int8)
    weights_rec = np.stack([np.asarray(w.data) for w in w_rec]).astype(np.int8)
    table = np.asarray(SIGMOID_TABLE_U16, np.int32)
    args = [
        lw.value(op.inputs[0]),
        relax.const(weights_in),
        relax.const(weights_rec),
        relax.const(bias.astype(np.int32)),
        relax.const(rq),
        relax.const(table),
        lw.value(op.inputs[18]),
        lw.value(op.inputs[19]),
    ]
    gv = lw.bb.add_func(func, "lstm")
    types = [
        relax.TensorType([batches, steps, n_cell], "int8"),
        relax.TensorType([batches, n_cell], "int8"),
        relax.TensorType([batches, n_cell], "int16"),
    ]
    res = lw.bb.emit(relax.call_tir(gv, args, types), name_hint="lstm")
    lw.define(op.outputs[0], lw.bb.emit(relax.TupleGetItem(res, 0)))
    lw.state_updates[op.inputs[18]] = lw.bb.emit(relax.TupleGetItem(res, 1))
    lw.state_updates[op.inputs[19]] = lw.bb.emit(relax.TupleGetItem(res, 2))


STATEFUL_CONVERTERS: dict[str, Converter] = {
    "SVDF": Converter(_check_svdf, _lower_svdf),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": Converter(_check_lstm, _lower_lstm),
}
