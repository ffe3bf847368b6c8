"""Float32 UNIDIRECTIONAL_SEQUENCE_LSTM on the float path, with its state carried across runs.

TVM 0.27's TFLite frontend converts only the CIFG variant (coupled input and forget gates) and treats the
hidden and cell state as constants reset on every run. Keras' LSTM converts to the full four-gate op with
the state in TFLite *variable* tensors, which TFLite Micro keeps across Invoke() calls (reset to 0 at
start and by Reset()). For a float model containing the op we build `main` ourselves around TVM's
operator converter (every other operator is still TVM's), converting the LSTM to one call of our TIR
kernel (float_lstm_kernel.py: TFLM's float arithmetic, in its order) and giving `main` one extra
parameter (state before the run) and one extra result (after it) per variable tensor, described by the
`STATE_ATTR` attribute: the executor binds both to its persistent state buffer (executor.bind_state),
exactly as the integer path does for its int8 LSTM and SVDF.

Supported: four-gate and CIFG LSTMs, batch- and time-major, any batch, cell clipping, the TANH cell
activation converters emit. Refused, naming the operator and the operand: peephole connections,
projection, layer normalisation, hybrid (int8 weights) models, other activations, state operands that are
not variable tensors or that another operator (or the model's interface) also uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from tvmc_micro.compiler.errors import LoweringError

LSTM_OP = "UNIDIRECTIONAL_SEQUENCE_LSTM"

# Operand positions (TFLite's lstm_shared.h).
_INPUT, _HIDDEN, _CELL = 0, 18, 19
_W_IN = (1, 2, 3, 4)  # input-to-{input, forget, cell, output} weights [n_cell, n_input]
_W_REC = (5, 6, 7, 8)  # recurrent-to-... weights [n_cell, n_cell]
_BIAS = (12, 13, 14, 15)
_UNSUPPORTED = {
    "peephole connections": (9, 10, 11),
    "a projection layer": (16, 17),
    "layer normalisation": (20, 21, 22, 23),
}
_TANH = 4  # ActivationFunctionType.TANH

_HINT = (
    "the float LSTM supports the four-gate and CIFG variants without peephole, projection or layer "
    "normalisation (what Keras' LSTM layer converts to), with the TANH cell activation; re-export the "
    "model with such a layer"
)


@dataclass
class _LstmOp:
    index: int
    inputs: list[int]
    output: int
    cifg: bool
    time_major: bool
    cell_clip: float


def _builtin(model: Any, op: Any) -> int:
    code = model.OperatorCodes(op.OpcodeIndex())
    return int(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()))


def _lstm_code() -> int:
    import tflite

    return int(tflite.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM)


def has_float_lstm(model: Any) -> bool:
    """True when the main subgraph has an UNIDIRECTIONAL_SEQUENCE_LSTM whose input is float32."""
    import tflite

    sub = model.Subgraphs(0)
    code = _lstm_code()
    for k in range(sub.OperatorsLength()):
        op = sub.Operators(k)
        if _builtin(model, op) != code or op.InputsLength() < 1 or op.Inputs(0) < 0:
            continue
        if sub.Tensors(op.Inputs(0)).Type() == tflite.TensorType.FLOAT32:
            return True
    return False


def _name(sub: Any, i: int) -> str:
    return str(sub.Tensors(i).Name().decode("utf-8", "replace"))


def _shape(sub: Any, i: int) -> tuple[int, ...]:
    return tuple(int(d) for d in sub.Tensors(i).ShapeAsNumpy()) if sub.Tensors(i).ShapeLength() else ()


def _has_data(model: Any, sub: Any, i: int) -> bool:
    buf = model.Buffers(sub.Tensors(i).Buffer())
    return buf is not None and buf.DataLength() > 0


def _options(op: Any) -> tuple[int, float, bool]:
    from tflite.UnidirectionalSequenceLSTMOptions import UnidirectionalSequenceLSTMOptions

    table = op.BuiltinOptions()
    if table is None:
        return _TANH, 0.0, False  # the schema defaults are NONE; converters always write options
    opts = UnidirectionalSequenceLSTMOptions()
    opts.Init(table.Bytes, table.Pos)
    return int(opts.FusedActivationFunction()), float(opts.CellClip()), bool(opts.TimeMajor())


def check_lstm_ops(model: Any, file_name: str) -> list[_LstmOp]:
    """Every float LSTM of the main subgraph, checked; a LoweringError naming the first problem."""
    import tflite

    sub = model.Subgraphs(0)
    code = _lstm_code()
    found: list[_LstmOp] = []
    readers: dict[int, int] = {}
    for k in range(sub.OperatorsLength()):
        for i in sub.Operators(k).InputsAsNumpy() if sub.Operators(k).InputsLength() else []:
            readers[int(i)] = readers.get(int(i), 0) + 1
    edges = {int(i) for i in sub.InputsAsNumpy()} | {int(i) for i in sub.OutputsAsNumpy()}
    for k in range(sub.OperatorsLength()):
        op = sub.Operators(k)
        if _builtin(model, op) != code:
            continue
        ins = [int(i) for i in op.InputsAsNumpy()] if op.InputsLength() else []

        def refuse(what: str, k: int = k) -> LoweringError:
            return LoweringError(f"{file_name}: operator {k} ({LSTM_OP}): {what}", _HINT)

        if len(ins) not in (20, 24) or op.OutputsLength() != 1:
            raise refuse(f"needs 20 or 24 inputs and 1 output (got {len(ins)}/{op.OutputsLength()})")
        ins += [-1] * (24 - len(ins))
        for what, positions in _UNSUPPORTED.items():
            present = [p for p in positions if ins[p] >= 0]
            if present:
                raise refuse(f"{what} (inputs {present}) is not supported by the float LSTM")
        input_gate = [p for p in (1, 5, 12) if ins[p] >= 0]
        if input_gate and len(input_gate) != 3:
            raise refuse(
                "the input gate's weights and bias (inputs 1, 5, 12) must all be present or all absent"
            )
        cifg = not input_gate
        required = [p for p in (0, 2, 3, 4, 6, 7, 8, 13, 14, 15, _HIDDEN, _CELL) if ins[p] < 0]
        if required:
            raise refuse(f"required inputs {required} are missing")
        for p in [q for q in (*_W_IN, *_W_REC, *_BIAS, _INPUT, _HIDDEN, _CELL) if ins[q] >= 0]:
            t = sub.Tensors(ins[p])
            if t.Type() != tflite.TensorType.FLOAT32:
                kind = "hybrid (int8 weights, float activations) LSTMs are not supported" if p else ""
                raise refuse(f"input {p} {_name(sub, ins[p])!r} is not float32 {kind}".rstrip())
            if p in (*_W_IN, *_W_REC, *_BIAS) and not _has_data(model, sub, ins[p]):
                raise refuse(f"weights/bias input {p} {_name(sub, ins[p])!r} is not a constant")
        activation, cell_clip, time_major = _options(op)
        if activation != _TANH:
            names = {v: n for n, v in vars(tflite.ActivationFunctionType).items() if not n.startswith("_")}
            raise refuse(f"cell activation {names.get(activation, activation)} is not supported (only TANH)")
        x_shape = _shape(sub, ins[_INPUT])
        if len(x_shape) != 3:
            raise refuse(f"input shape {list(x_shape)} is not 3-D")
        steps, batches = (x_shape[0], x_shape[1]) if time_major else (x_shape[1], x_shape[0])
        n_input = x_shape[2]
        n_cell = _shape(sub, ins[4])[0] if len(_shape(sub, ins[4])) == 2 else -1
        expected: dict[int, tuple[int, ...]] = {p: (n_cell, n_input) for p in _W_IN}
        expected |= {p: (n_cell, n_cell) for p in _W_REC}
        expected |= {p: (n_cell,) for p in _BIAS} | {_HIDDEN: (batches, n_cell), _CELL: (batches, n_cell)}
        for p, shape in expected.items():
            if ins[p] >= 0 and _shape(sub, ins[p]) != shape:
                raise refuse(f"input {p} has shape {list(_shape(sub, ins[p]))}, expected {list(shape)}")
        out = int(op.Outputs(0))
        out_shape = (steps, batches, n_cell) if time_major else (batches, steps, n_cell)
        if _shape(sub, out) != out_shape:
            raise refuse(f"output shape {list(_shape(sub, out))} is not {list(out_shape)}")
        for p in (_HIDDEN, _CELL):
            t = sub.Tensors(ins[p])
            if t.IsVariable():
                if readers.get(ins[p], 0) != 1 or ins[p] in edges:
                    raise refuse(
                        f"state input {p} {_name(sub, ins[p])!r} is shared with another operator or is a "
                        "model input/output; each state must have one owner"
                    )
            else:
                # TFLite writes the new state into this tensor: without the variable flag its lifetime
                # (a constant overwritten, or a plain activation) is not something TFLM runs either.
                raise refuse(f"state input {p} {_name(sub, ins[p])!r} is not a variable tensor")
        found.append(_LstmOp(k, ins, out, cifg, time_major, cell_clip))
    return found


def _state_rows(model: Any, states: list[int]) -> str:
    sub = model.Subgraphs(0)
    rows = [
        {
            "name": _name(sub, i),
            "dtype": "float32",
            "shape": list(_shape(sub, i)),
            "quantization": None,
            "reset_byte": 0,  # TFLM resets float variable tensors to 0.0f
        }
        for i in states
    ]
    return json.dumps(rows)


def from_tflite_with_lstm(model: Any, file_name: str, shape_dict: dict[str, list[int]] | None) -> Any:
    """The Relax module of a float TFLite model containing UNIDIRECTIONAL_SEQUENCE_LSTM: TVM's frontend
    for every other operator, our kernel for the LSTM, the variable tensors as executor state."""
    from tvm import relax
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    from tvmc_micro.compiler.executor import STATE_ATTR
    from tvmc_micro.compiler.float_lstm_kernel import lstm_float_kernel
    from tvmc_micro.compiler.tflite_converter import operator_converter

    ops = {op.index: op for op in check_lstm_ops(model, file_name)}
    sub = model.Subgraphs(0)
    states = sorted(op.inputs[p] for op in ops.values() for p in (_HIDDEN, _CELL))

    class _Converter(operator_converter()):  # type: ignore[misc]
        def __init__(self, *args: Any, **kw: Any) -> None:
            super().__init__(*args, **kw)
            self.convert_map[LSTM_OP] = self._convert_lstm
            self.state_updates: dict[int, Any] = {}

        def _convert_lstm(self, op: Any) -> Any:
            spec = next(o for o in ops.values() if o.output == int(op.Outputs(0)))
            ins = spec.inputs
            x_shape = _shape(sub, ins[_INPUT])
            steps, batches = (x_shape[0], x_shape[1]) if spec.time_major else (x_shape[1], x_shape[0])
            n_input, n_cell = x_shape[2], _shape(sub, ins[4])[0]
            wrappers = self.get_input_tensors(op)

            def value(p: int, shape: tuple[int, ...]) -> np.ndarray:
                if ins[p] < 0:
                    return np.zeros(shape, np.float32)  # the unused input gate of a CIFG LSTM
                return np.asarray(self.get_tensor_value(wrappers[p]), np.float32).reshape(shape)

            w_in = np.stack([value(p, (n_cell, n_input)) for p in _W_IN])
            w_rec = np.stack([value(p, (n_cell, n_cell)) for p in _W_REC])
            bias = np.stack([value(p, (n_cell,)) for p in _BIAS])
            func = lstm_float_kernel(
                batches, steps, n_input, n_cell, spec.time_major, spec.cifg, spec.cell_clip
            )
            gv = self.bb.add_func(func, "float_lstm")
            args = [
                self.get_tensor_expr(wrappers[_INPUT]),
                relax.const(w_in),
                relax.const(w_rec),
                relax.const(bias),
                self.get_tensor_expr(wrappers[_HIDDEN]),
                self.get_tensor_expr(wrappers[_CELL]),
            ]
            out_shape = [steps, batches, n_cell] if spec.time_major else [batches, steps, n_cell]
            types = [
                relax.TensorType(out_shape, "float32"),
                relax.TensorType([batches, n_cell], "float32"),
                relax.TensorType([batches, n_cell], "float32"),
            ]
            res = self.bb.emit(relax.call_tir(gv, args, types), name_hint="float_lstm")
            for p, k in ((_HIDDEN, 1), (_CELL, 2)):
                self.state_updates[ins[p]] = self.bb.emit(relax.TupleGetItem(res, k))
            return relax.TupleGetItem(res, 0)

    shapes, dtypes = tf._input_type(model)
    shapes.update(shape_dict or {})
    bb = relax.BlockBuilder()
    params: list[Any] = []
    with bb.function("main"):
        with bb.dataflow():
            exp_tab = tf.ExprTable()
            for i in [int(v) for v in sub.InputsAsNumpy()] + states:
                name = tf.get_tensor_name(sub, i)
                if i in states:
                    shape, dtype = list(_shape(sub, i)), "float32"
                else:
                    shape, dtype = shapes.get(name), dtypes.get(name, "float32")
                var = relax.Var(name, relax.TensorType(shape=shape, dtype=dtype))
                exp_tab.set_expr(name, var)
                params.append(var)
            conv = _Converter(model, sub, exp_tab, bb)
            conv.check_unsupported_ops()
            conv.convert_op_to_relax()
            outputs = [conv.get_tensor_expr(t) for t in conv.get_tensors(sub.OutputsAsNumpy())]
            outputs += [conv.state_updates[i] for i in states]
            result = bb.emit_output(outputs[0] if len(outputs) == 1 else relax.Tuple(outputs))
        bb.emit_func_output(result, params)
    mod = bb.get()
    main = mod["main"].with_attr("num_input", len(params) - len(states))
    if states:
        main = main.with_attr(STATE_ATTR, _state_rows(model, states))
    mod["main"] = main
    return mod
