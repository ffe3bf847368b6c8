"""Quantized ONNX (QDQ and QLinear* operators) to a Relax module of integer kernels, ORT's arithmetic.

Entry points: `is_quantized_onnx(model)` and `import_onnx_quantized(model, model_name)`. The reference is
onnxruntime's CPU kernels (MLAS): requantisation in float32 (`FloatRequant`), rounding half to even. A QDQ
model is compared with ORT at its default optimisation level, where ORT fuses each DequantizeLinear -> op ->
QuantizeLinear group into the QLinear kernel this importer also emits; a QLinear model is the same at every
level (tests run it at ORT_DISABLE_ALL). Groups ORT does not fuse run in float32 there, and are reproduced
as ORT computes them: elementwise ones (HardSwish as its function body x * HardSigmoid(x), HardSigmoid,
Tanh, LeakyRelu, Exp, Erf, Elu, Abs, ..., requantisation) as tables; ReduceMean, Sub, Div and
BatchNormalization as float32 kernels; ops that only move values (Pad, Resize nearest, Slice, Split, Gather,
Squeeze, ...) copy the stored integers; a Q -> DQ -> Q -> DQ chain is first merged the way ORT's
DoubleQDQPairsRemover does (`onnx_rewrite`). Known inexact cases, measured against ORT 1.32 on x86-64: its
MLAS QLinearSoftmax rounds about 1 value in 10^5 the other way (1 LSB); groups ORT leaves in float and
computes with float sums (ConvTranspose; in int8 QDQ models a Conv/MatMul whose output feeds several
DequantizeLinear nodes) round rare values 1 LSB away from the exact integer sum. Every pattern the importer
cannot map is listed in one `UnsupportedQuantizedModel` (node, op, quantisation), never computed in float
behind the user's back.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmc_micro.compiler.naming import claim_unique
from tvmc_micro.compiler.quantized import kernels, onnx_kernels, onnx_moves, onnx_ops_more
from tvmc_micro.compiler.quantized.errors import QuantizedModelError, UnsupportedOp, UnsupportedQuantizedModel
from tvmc_micro.compiler.quantized.onnx_rewrite import remove_double_qdq
from tvmc_micro.compiler.quantized.onnx_tables import LUT_FUNCS, sigmoid, softmax_table
from tvmc_micro.compiler.quantized.onnx_values import (
    QDQ_OPS,
    QLINEAR_OPS,
    Deq,
    FloatIn,
    IndexOut,
    Pending,
    QAct,
    QParams,
    Unmappable,
    attr_text,
    f32,
    node_attrs,
)
from tvmc_micro.compiler.quantized.requant import FloatRequant

# Float ops that may sit between DequantizeLinear and QuantizeLinear.
_FLOAT_OPS = (
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "Add",
    "AveragePool",
    "MaxPool",
    "GlobalAveragePool",
    "Relu",
    "Clip",
    "Sigmoid",
    "Reshape",
    "Flatten",
    "Concat",
    "Transpose",
    "Softmax",
    "Mul",
    "LeakyRelu",
    "HardSigmoid",
    "HardSwish",
    "ReduceMean",
    "BatchNormalization",
    "Sub",
    "Div",
    "Tanh",
    "Abs",
    "Neg",
    "Floor",
    "Ceil",
    "Round",
    "Sign",
    "Exp",
    "Erf",
    "Softplus",
    "Softsign",
    "Elu",
    "ThresholdedRelu",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Split",
    "Pad",
    "Resize",
    "Gather",
    "GlobalMaxPool",
)
_ONNX_INT_TYPES = {2: "uint8", 3: "int8", 6: "int32"}
# Float ops a following Relu/Clip folds into (before the group's QuantizeLinear).
_ACT_FUSIBLE = (
    "Conv",
    "ConvTranspose",
    "MatMul",
    "Gemm",
    "BatchNormalization",
    "Add",
    "Mul",
    "Sub",
    "Div",
    "ReduceMean",
    "AveragePool",
    "GlobalAveragePool",
)
# Ops that only move stored values: the output keeps the input's quantisation (QDQ groups must agree).
_MOVE_OPS = (
    "Reshape",
    "Flatten",
    "MaxPool",
    "Transpose",
    "Squeeze",
    "Unsqueeze",
    "Slice",
    "Split",
    "Pad",
    "Resize",
    "Gather",
    "GlobalMaxPool",
)


_Unsupported = Unmappable


def _load(model: Any) -> Any:
    import onnx

    if isinstance(model, (bytes, bytearray)):
        try:
            return onnx.load_from_string(bytes(model))
        except Exception as err:
            raise QuantizedModelError(
                f"cannot read the ONNX model: {err}", "re-export the model; check that the file is complete"
            ) from err
    return model


def is_quantized_onnx(model: Any) -> bool:
    """True when the graph has QuantizeLinear/DequantizeLinear or QLinear* operators."""
    try:
        m = _load(model)
    except QuantizedModelError:
        return False
    return any(n.op_type in QDQ_OPS or n.op_type in QLINEAR_OPS for n in m.graph.node)


_attrs = node_attrs
_f32 = f32


class OnnxLowerer:
    def __init__(self, model: Any) -> None:
        from onnx import numpy_helper

        self.model = model
        self.bb = relax.BlockBuilder()
        self.values: dict[str, Any] = {}
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in model.graph.initializer
        }
        for node in model.graph.node:
            if node.op_type == "Constant":
                self.consts[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
        self.problems: list[UnsupportedOp] = []
        self.opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.layouts: dict[tuple[int, bool], tuple[Any, QAct]] = {}

    # --- plumbing ---------------------------------------------------------------------------------

    def call(
        self, func: tvm.tirx.PrimFunc, kind: str, args: list[Any], shape: tuple[int, ...], dtype: str
    ) -> Any:
        gv = self.bb.add_func(func, kind)
        return self.bb.emit(relax.call_tir(gv, args, relax.TensorType(list(shape), dtype)), name_hint=kind)

    def get(self, name: str) -> Any:
        if name == "":
            return None
        if name in self.consts:
            return self.consts[name]
        if name not in self.values:
            raise _Unsupported(f"input {name!r} comes from an operator the integer path could not map")
        return self.values[name]

    def qparams(self, scale_name: str, zp_name: str | None, axis: int = 1) -> QParams:
        scale = self.consts.get(scale_name)
        if scale is None:
            raise _Unsupported(
                f"scale {scale_name!r} is computed at run time; only constant scales are supported"
            )
        if zp_name:
            zp = self.consts.get(zp_name)
            if zp is None:
                raise _Unsupported(f"zero point {zp_name!r} is computed at run time")
            dtype = str(zp.dtype)
        else:
            zp, dtype = np.zeros(1, np.int64), "uint8"  # ONNX's default zero point is uint8 0
        scales, zps = np.asarray(scale, np.float32).reshape(-1), np.asarray(zp, np.int64).reshape(-1)
        if scales.size != zps.size and 1 not in (scales.size, zps.size):
            raise _Unsupported(f"scale {scale_name!r} and zero point {zp_name!r} differ in length")
        size = max(scales.size, zps.size)
        return QParams(
            np.broadcast_to(scales, (size,)).copy(), np.broadcast_to(zps, (size,)).copy(), dtype, axis
        )

    def nhwc(self, q: QAct) -> QAct:
        return self._converted(q, True)

    def nchw(self, q: QAct) -> QAct:
        return self._converted(q, False)

    def _converted(self, q: QAct, nhwc: bool) -> QAct:
        """The tensor in the other layout, transposed once however many consumers want it."""
        if len(q.shape) != 4 or q.nhwc == nhwc:
            return q
        key = (id(q.expr), nhwc)
        if key not in self.layouts:
            perm = (0, 2, 3, 1) if nhwc else (0, 3, 1, 2)
            # The source is kept alive with the entry, so its id cannot be reused by another tensor.
            self.layouts[key] = (q.expr, QAct(self._relayout(q, perm), q.shape, nhwc, q.offset))
        return self.layouts[key][1]

    def _relayout(self, q: QAct, perm: tuple[int, ...]) -> Any:
        phys = q.physical_shape
        target = tuple(phys[p] for p in perm)
        # Only unit axes move (the others keep their order): same bytes, a reshape suffices. Compare
        # axes, not sizes: NHWC (1, 8, 8, 8) -> NCHW has the same sizes but is a real transpose.
        kept = [p for p in perm if phys[p] != 1]
        if kept == sorted(kept):
            return self.bb.emit(relax.op.reshape(q.expr, list(target)))
        func = kernels.transpose(phys, perm, "int8", "transpose")
        return self.call(func, "transpose", [q.expr], target, "int8")

    def act_input(self, value: Any, q: QParams, what: str) -> QAct:
        if not isinstance(value, QAct):
            raise _Unsupported(f"{what} is not an integer activation computed by the model")
        if not q.per_tensor:
            raise _Unsupported(f"{what} is {q.describe()}; activations must be per-tensor")
        if q.offset != value.offset:
            raise _Unsupported(f"{what} is {value.onnx_dtype} but read as {q.dtype}")
        return value

    # --- the walk ---------------------------------------------------------------------------------

    def run(self, model_name: str) -> tvm.IRModule:
        graph = self.model.graph
        params = []
        used: set[str] = set()
        inits = set(self.consts)
        for vi in graph.input:
            if vi.name in inits:
                continue
            tt = vi.type.tensor_type
            shape = tuple(int(d.dim_value) for d in tt.shape.dim)
            if any(d <= 0 for d in shape):
                raise _Unsupported(f"input {vi.name!r} has symbolic dimensions; fix them (--input-shapes)")
            dtype = {1: "float32", 2: "uint8", 3: "int8"}.get(tt.elem_type)
            if dtype is None:
                raise _Unsupported(f"input {vi.name!r} has ONNX element type {tt.elem_type}")
            var = relax.Var(claim_unique(vi.name, used), relax.TensorType(list(shape), dtype))
            params.append((vi.name, var, dtype, shape))
        with self.bb.function(
            "main",
            [p[1] for p in params],
            attrs={"global_symbol": "main", "tvmc_micro.model_name": model_name},
        ):
            with self.bb.dataflow():
                for name, var, dtype, shape in params:
                    if dtype == "float32":
                        self.values[name] = FloatIn(var, shape)
                    elif dtype == "uint8":
                        func = onnx_kernels.shift_storage(shape, "uint8", "int8", "from_uint8")
                        self.values[name] = QAct(
                            self.call(func, "from_uint8", [var], shape, "int8"), shape, False, 128
                        )
                    else:
                        self.values[name] = QAct(var, shape, False, 0)
                for index, node in enumerate(graph.node):
                    try:
                        self.visit(node)
                    except _Unsupported as err:
                        self.problems.append(
                            UnsupportedOp(index, _node_label(node), self._describe(node), str(err))
                        )
                outs = []
                for vi in graph.output:
                    try:
                        outs.append(self.output(vi.name))
                    except _Unsupported as err:
                        self.problems.append(UnsupportedOp(-1, f"model output {vi.name!r}", "-", str(err)))
                if self.problems:
                    raise UnsupportedQuantizedModel(self.problems)
                result = outs[0] if len(outs) == 1 else relax.Tuple(outs)
                out_var = self.bb.emit_output(result)
            self.bb.emit_func_output(out_var)
        return relax.transform.Normalize()(self.bb.get())

    def _describe(self, node: Any) -> str:
        parts = []
        for name in node.input:
            v = self.values.get(name)
            deqs = [a for a in v.args if isinstance(a, Deq)] if isinstance(v, Pending) else [v]
            for d in deqs:
                if isinstance(d, Deq):
                    is_const = isinstance(d.src, np.ndarray)
                    kind = ("bias" if d.q.dtype == "int32" else "weights") if is_const else "input"
                    parts.append(f"{kind} {d.q.describe()}")
        if node.op_type in ("QuantizeLinear", *QLINEAR_OPS):
            try:
                k = {"QuantizeLinear": 1, "QLinearConv": 6, "QLinearMatMul": 6, "QGemm": 7}.get(
                    node.op_type, -2
                )
                q = self.qparams(node.input[k], node.input[k + 1] if len(node.input) > k + 1 else None)
                parts.append(f"output {q.describe()}")
            except (_Unsupported, IndexError):
                pass
        return "; ".join(parts) or "no quantised inputs"

    def output(self, name: str) -> Any:
        v = self.get(name)
        if isinstance(v, IndexOut):
            return v.expr
        if isinstance(v, QAct):
            v = self.nchw(v)
            if v.offset:
                func = onnx_kernels.shift_storage(v.shape, "int8", "uint8", "to_uint8")
                return self.call(func, "to_uint8", [v.expr], v.shape, "uint8")
            return v.expr
        if isinstance(v, Deq) and isinstance(v.src, QAct):
            src = self.nchw(v.src)
            if not v.q.per_tensor:
                raise _Unsupported("a per-channel DequantizeLinear of an activation is not supported")
            func = onnx_kernels.dequantize(src.shape, v.q.zero_point - v.q.offset, "dequantize")
            fp = relax.const(onnx_kernels.fparams(v.q.scale))
            return self.call(func, "dequantize", [src.expr, fp], src.shape, "float32")
        if isinstance(v, Pending):  # a float op ending the model (no QuantizeLinear after it)
            return onnx_ops_more.float_output(self, v)
        raise _Unsupported("it is not computed by the integer graph")

    def visit(self, node: Any) -> None:
        op = node.op_type
        if node.domain not in ("", "ai.onnx", "com.microsoft"):
            raise _Unsupported(f"operator domain {node.domain!r} is not supported")
        if op == "Constant":
            return
        handler = _HANDLERS.get(op)
        if handler is not None:
            handler(self, node)
            return
        if op == "ArgMax":
            self.values[node.output[0]] = onnx_moves.argmax(self, node, self.get(node.input[0]))
            return
        if op in ("Identity", "Dropout"):
            # Inference no-ops, whatever the value is (integer, DequantizeLinear view, pending float op).
            if op == "Dropout" and (len(node.output) > 1 and node.output[1]):
                raise _Unsupported("Dropout's mask output is not supported (inference has no mask)")
            if op == "Dropout" and len(node.input) > 2 and node.input[2]:
                mode = self.get(node.input[2])
                if not isinstance(mode, np.ndarray) or bool(mode.reshape(-1)[0]):
                    raise _Unsupported("Dropout in training mode is not supported")
            self.values[node.output[0]] = self.get(node.input[0])
            return
        if op in _MOVE_OPS and isinstance(self.get(node.input[0]), QAct):
            # Data movement on an integer tensor (QLinear models): ORT runs these on int8/uint8 directly.
            x = self.get(node.input[0])
            args = [x, *[self.get(n) if n else None for n in node.input[1:]]]
            for k, name in enumerate(node.output):
                if name:
                    self.values[name] = self.move(Pending(node, args, output_index=k), x)
            return
        if op in _FLOAT_OPS:
            self.values[node.output[0]] = self.pending(node)
            return
        raise _Unsupported("no integer kernel for this operator")

    def pending(self, node: Any) -> Pending:
        args = [self.get(n) if n else None for n in node.input]
        if node.op_type in ("Relu", "Clip"):
            lo, hi = 0.0 if node.op_type == "Relu" else -np.inf, np.inf
            if node.op_type == "Clip":
                a = _attrs(node)
                lo = (
                    float(a.get("min", -np.inf))
                    if len(args) < 2 or args[1] is None
                    else float(np.asarray(args[1]))
                )
                hi = (
                    float(a.get("max", np.inf))
                    if len(args) < 3 or args[2] is None
                    else float(np.asarray(args[2]))
                )
            src = args[0]
            if isinstance(src, Pending) and src.node.op_type in _ACT_FUSIBLE and src.activation is None:
                return Pending(src.node, src.args, (lo, hi), [node.name], src.output_index)
            return Pending(node, [src], (lo, hi))
        if node.op_type in _MOVE_OPS and args and isinstance(args[0], FloatIn):
            # A float model input moved (e.g. padded) before its QuantizeLinear: quantising commutes with
            # moving values, so the group is quantise-then-move (the pad value quantised the same way).
            return Pending(node, args)
        # A move of a float op's output (DequantizeLinear -> Sub -> Resize -> QuantizeLinear): quantising
        # commutes with moving values, so the float op is lowered with the QuantizeLinear after the move.
        moves_float = node.op_type in _MOVE_OPS and bool(args) and isinstance(args[0], Pending)
        # Sub/Div of a float model input and a dequantised activation: ORT computes it in float32 too.
        float_in_ok = node.op_type in ("Sub", "Div") and any(isinstance(a, Deq) for a in args)
        for arg in args[1:] if moves_float else args:
            if isinstance(arg, (Pending, QAct)) or (isinstance(arg, FloatIn) and not float_in_ok):
                raise _Unsupported(
                    f"{node.op_type} reads a tensor that is not a DequantizeLinear output; "
                    "only DequantizeLinear -> op -> QuantizeLinear groups are integer"
                )
        for k, name in enumerate(node.output[1:], start=1):  # Split: one group per output
            if name:
                self.values[name] = Pending(node, args, output_index=k)
        return Pending(node, args)

    # --- QuantizeLinear / DequantizeLinear ---------------------------------------------------------

    def quantize_linear(self, node: Any) -> None:
        a = _attrs(node)
        q = self.qparams(node.input[1], node.input[2] if len(node.input) > 2 else None, int(a.get("axis", 1)))
        if not q.per_tensor or q.dtype not in ("int8", "uint8"):
            raise _Unsupported(f"output is {q.describe()}; needs int8/uint8 per-tensor")
        x = self.get(node.input[0])
        if isinstance(x, FloatIn):
            self.values[node.output[0]] = self.quantize_input(x, q)
        elif isinstance(x, Pending):
            try:
                self.values[node.output[0]] = self.lower_pending(x, q)
            except _Unsupported as err:  # name the float op the group is built around
                raise _Unsupported(f"the group around {_node_label(x.node)}: {err}") from err
        elif isinstance(x, Deq) and isinstance(x.src, QAct):
            self.values[node.output[0]] = self.lut(x.src, x.q, q, lambda v: v, "requantize")
        else:
            raise _Unsupported("QuantizeLinear of a value that is neither a model input nor a quantised op")

    def quantize_input(self, x: FloatIn, q: QParams) -> QAct:
        func = onnx_kernels.quantize(x.shape, q.zero_point - q.offset, "quantize")
        fp = relax.const(onnx_kernels.fparams(q.scale))
        out = self.call(func, "quantize", [x.expr, fp], x.shape, "int8")
        return QAct(out, x.shape, False, q.offset)

    def dequantize_linear(self, node: Any) -> None:
        a = _attrs(node)
        q = self.qparams(node.input[1], node.input[2] if len(node.input) > 2 else None, int(a.get("axis", 1)))
        x = self.get(node.input[0])
        if isinstance(x, np.ndarray):
            q.dtype = str(x.dtype)
            self.values[node.output[0]] = Deq(x, q)
        elif isinstance(x, QAct):
            self.values[node.output[0]] = Deq(self.act_input(x, q, "the DequantizeLinear input"), q)
        else:
            raise _Unsupported("DequantizeLinear of a value that is not an integer tensor")

    def lower_pending(self, p: Pending, out_q: QParams) -> QAct:
        result = self._lower_pending_op(p, out_q)
        if p.activation is not None and p.node.op_type not in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
            # A Relu/Clip between the op and QuantizeLinear: quantising is monotonic, so clamping the
            # quantised value at the quantised bounds is the same (kernels with an output range do it
            # in their epilogue; the others get a table).
            if p.node.op_type not in ("Relu", "Clip"):
                lo, hi = (np.float32(b) for b in p.activation)
                result = self.lut(result, out_q, out_q, lambda v: np.clip(v, lo, hi), "clip")
        return result

    def _lower_pending_op(self, p: Pending, out_q: QParams) -> QAct:
        op = p.node.op_type
        x = p.args[0]

        def deq_act(i: int) -> tuple[QAct, QParams]:
            v = p.args[i]
            if not isinstance(v, Deq) or not isinstance(v.src, QAct):
                raise _Unsupported(f"input {i} of {op} is not a DequantizeLinear of an activation")
            return v.src, v.q

        if op in ("Conv", "ConvTranspose", "MatMul", "Gemm"):
            xa, xq = deq_act(0)
            w = p.args[1]
            if op == "MatMul" and isinstance(w, Deq) and isinstance(w.src, QAct) and len(p.args) == 2:
                return self.matmul_act(xa, xq, w.src, w.q, out_q)
            if not isinstance(w, Deq) or not isinstance(w.src, np.ndarray):
                raise _Unsupported(f"{op} weights are not a DequantizeLinear of a constant")
            bias = None
            if len(p.args) > 2 and p.args[2] is not None:
                b = p.args[2]
                if not isinstance(b, Deq) or not isinstance(b.src, np.ndarray) or b.src.dtype != np.int32:
                    raise _Unsupported(f"{op} bias is not a DequantizeLinear of an int32 constant")
                bias = b.src
            if op == "Conv":
                return self.conv(p.node, xa, xq, w.src, w.q, bias, out_q, p.activation)
            if op == "ConvTranspose":
                return self.conv_transpose(p.node, xa, xq, w.src, w.q, bias, out_q, p.activation)
            return self.matmul(p.node, xa, xq, w.src, w.q, bias, out_q, p.activation)
        if op == "Add":
            args: list[tuple[QAct | np.ndarray, QParams]] = []
            for k in (0, 1):
                v = p.args[k] if len(p.args) > k else None
                if isinstance(v, Deq) and isinstance(v.src, np.ndarray):
                    args.append((v.src, v.q))  # a quantised constant
                else:
                    args.append(deq_act(k))
            return self.add(args[0][0], args[0][1], args[1][0], args[1][1], out_q)
        if op == "AveragePool":
            xa, xq = deq_act(0)
            return self.avg_pool(p.node, xa, xq, out_q)
        if op == "GlobalAveragePool":
            xa, xq = deq_act(0)
            return self.global_avg_pool(xa, xq, out_q)
        if op in _MOVE_OPS and isinstance(x, Pending):
            return self.move(p, self.lower_pending(x, out_q), out_q)
        if op in _MOVE_OPS and isinstance(x, FloatIn):
            return self.move(p, self.quantize_input(x, out_q), out_q)
        if op in _MOVE_OPS:
            xa, xq = deq_act(0)
            if _same(xq, out_q):
                return self.move(p, xa, xq)
            if op == "Pad" or not out_q.per_tensor:  # a requantised pad value is not the float one
                raise _Unsupported(f"{op} changes the quantisation ({xq.describe()} -> {out_q.describe()})")
            # Moving values commutes with the monotonic DequantizeLinear -> QuantizeLinear map: move the
            # stored values, then requantise them as ORT's float op and QuantizeLinear do.
            return self.lut(self.move(p, xa, xq), xq, out_q, lambda v: v, "requantize")
        if op == "Concat":
            parts = [deq_act(i) for i in range(len(p.args))]
            return self.concat(parts, out_q, int(_attrs(p.node).get("axis", 0)))
        if op == "Softmax":
            xa, xq = deq_act(0)
            return self.softmax(p.node, xa, xq, out_q, self.opset)  # ORT fuses it into QLinearSoftmax
        if op == "Mul":
            return self.mul(*self._binary_operands(p, deq_act), out_q)
        if op == "ReduceMean":
            xa, xq = deq_act(0)
            return self.reduce_mean(p, xa, xq, out_q)
        if op in ("Sub", "Div"):
            return self.binary_float(p, out_q)
        if op == "BatchNormalization":
            xa, xq = deq_act(0)
            return self.batch_norm(p, xa, xq, out_q)
        if op in LUT_FUNCS:
            xa, xq = deq_act(0)
            return self.lut(xa, xq, out_q, LUT_FUNCS[op](_attrs(p.node)), op.lower())
        if op in ("Relu", "Clip", "Sigmoid"):
            xa, xq = deq_act(0)
            if op == "Sigmoid":
                return self.lut(xa, xq, out_q, sigmoid, "sigmoid")
            lo, hi = p.activation or (-np.inf, np.inf)
            return self.lut(xa, xq, out_q, lambda v: np.clip(v, np.float32(lo), np.float32(hi)), op.lower())
        raise _Unsupported(f"{op} between DequantizeLinear and QuantizeLinear has no integer kernel")

    # --- operators ----------------------------------------------------------------------------------

    def conv(
        self,
        node: Any,
        x: QAct,
        xq: QParams,
        w: np.ndarray,
        wq: QParams,
        bias: np.ndarray | None,
        yq: QParams,
        activation: tuple[float, float] | None,
    ) -> QAct:
        a = _attrs(node)
        if len(x.shape) != 4 or w.ndim != 4:
            raise _Unsupported("only 2-D convolutions (4-D NCHW data, OIHW weights) are supported")
        groups = int(a.get("group", 1))
        n, cin, h, wd = x.shape
        cout, cin_g, kh, kw = w.shape
        strides = tuple(a.get("strides", [1, 1]))
        dil = tuple(a.get("dilations", [1, 1]))
        pads = _pads(a, (h, wd), (kh, kw), strides, dil)
        oh = (h + pads[0] + pads[2] - ((kh - 1) * dil[0] + 1)) // strides[0] + 1
        ow = (wd + pads[1] + pads[3] - ((kw - 1) * dil[1] + 1)) // strides[1] + 1
        ws = self.weights(w, wq, axis=0, what="Conv weights")
        rq = FloatRequant.from_scales(_f32(xq.scale) * _per_out(wq, cout) / _f32(yq.scale))
        geo = kernels.ConvGeometry(
            (int(strides[0]), int(strides[1])), (int(dil[0]), int(dil[1])), (pads[0], pads[1])
        )
        x = self.nhwc(x)
        in_zp, out_zp = xq.zero_point - xq.offset, yq.zero_point - yq.offset
        act = _act_range(activation, yq)
        out_shape = (n, oh, ow, cout)
        if groups == cin and cin_g == 1 and groups > 1:
            wt = np.ascontiguousarray(ws.transpose(1, 2, 3, 0))  # [1, kh, kw, cout]
            sums = wt.astype(np.int64).sum(axis=(0, 1, 2))
            func = kernels.depthwise_conv2d(
                x.physical_shape,
                wt.shape,
                out_shape,
                geo,
                cout // cin,
                in_zp,
                out_zp,
                rq,
                act,
                "depthwise_conv2d",
            )
            kind = "depthwise_conv2d"
        else:
            if cin != cin_g * groups or cout % groups:
                raise _Unsupported(f"group={groups} does not divide {cin} input / {cout} output channels")
            wt = np.ascontiguousarray(ws.transpose(0, 2, 3, 1))  # OHWI
            sums = wt.astype(np.int64).sum(axis=(1, 2, 3))
            func = kernels.conv2d(
                x.physical_shape, wt.shape, out_shape, geo, in_zp, out_zp, rq, act, "conv2d"
            )
            kind = "conv2d"
        folded = _fold_bias(bias, sums, in_zp, cout)
        args = [
            x.expr,
            relax.const(wt),
            relax.const(folded),
            *[relax.const(t) for t in rq.constant_tensors()],
        ]
        out = self.call(func, kind, args, out_shape, "int8")
        return QAct(out, (n, cout, oh, ow), True, yq.offset)

    def conv_transpose(
        self,
        node: Any,
        x: QAct,
        xq: QParams,
        w: np.ndarray,
        wq: QParams,
        bias: np.ndarray | None,
        yq: QParams,
        activation: tuple[float, float] | None,
    ) -> QAct:
        """2-D ConvTranspose (group 1, no dilation) in integers: each output pixel gathers the input
        pixels that scatter onto it, int32 sum, ORT's float requantisation. ORT itself runs the group in
        float (it has no fused kernel), so rare values differ by 1 LSB (summation rounding)."""
        a = _attrs(node)
        if len(x.shape) != 4 or w.ndim != 4:
            raise _Unsupported("only 2-D ConvTranspose (4-D NCHW data, IOHW weights) is supported")
        if int(a.get("group", 1)) != 1 or any(int(d) != 1 for d in a.get("dilations", [1, 1])):
            raise _Unsupported("ConvTranspose with group > 1 or dilation is not supported")
        if "output_shape" in a or attr_text(a, "auto_pad", "NOTSET") not in ("NOTSET", ""):
            raise _Unsupported("ConvTranspose with output_shape or auto_pad is not supported (give pads)")
        n, cin, h, wd = x.shape
        w_in, cout, kh, kw = w.shape
        if w_in != cin:
            raise _Unsupported(f"ConvTranspose weights {list(w.shape)} do not match {cin} input channels")
        strides = [int(v) for v in a.get("strides", [1, 1])]
        pads = [int(v) for v in a.get("pads", [0, 0, 0, 0])]
        extra = [int(v) for v in a.get("output_padding", [0, 0])]
        oh = strides[0] * (h - 1) + extra[0] + kh - pads[0] - pads[2]
        ow = strides[1] * (wd - 1) + extra[1] + kw - pads[1] - pads[3]
        ws = self.weights(w, wq, axis=1, what="ConvTranspose weights")
        wt = np.ascontiguousarray(ws.transpose(1, 2, 3, 0))  # IOHW -> [out_c, kh, kw, in_c]
        rq = FloatRequant.from_scales(_f32(xq.scale) * _per_out(wq, cout) / _f32(yq.scale))
        b = np.zeros(cout, np.int32) if bias is None else bias.astype(np.int32).reshape(-1)
        x = self.nhwc(x)
        out_shape = (n, oh, ow, cout)
        func = kernels.transpose_conv2d(
            x.physical_shape,
            wt.shape,
            out_shape,
            (strides[0], strides[1]),
            (pads[0], pads[1]),
            xq.zero_point - xq.offset,
            yq.zero_point - yq.offset,
            rq,
            _act_range(activation, yq),
            "transpose_conv2d",
        )
        args = [x.expr, relax.const(wt), relax.const(b), *[relax.const(t) for t in rq.constant_tensors()]]
        out = self.call(func, "transpose_conv2d", args, out_shape, "int8")
        return QAct(out, (n, cout, oh, ow), True, yq.offset)

    def matmul(
        self,
        node: Any,
        x: QAct,
        xq: QParams,
        w: np.ndarray,
        wq: QParams,
        bias: np.ndarray | None,
        yq: QParams,
        activation: tuple[float, float] | None,
    ) -> QAct:
        a = _attrs(node)
        if node.op_type in ("Gemm", "QGemm"):
            if (
                float(a.get("alpha", 1.0)) != 1.0
                or float(a.get("beta", 1.0)) != 1.0
                or int(a.get("transA", 0))
            ):
                raise _Unsupported("Gemm with alpha/beta != 1 or transA is not supported")
            trans_b = int(a.get("transB", 0))
        else:
            trans_b = 0
        lead = x.shape[:-1]  # MatMul of an N-D input: its leading axes are rows (e.g. after Unsqueeze)
        if len(x.shape) > 2 and node.op_type in ("MatMul", "QLinearMatMul"):
            x = self.nchw(x)
            x = QAct(
                self.bb.emit(relax.op.reshape(x.expr, [int(np.prod(lead)), x.shape[-1]])),
                (int(np.prod(lead)), x.shape[-1]),
                False,
                x.offset,
            )
        if w.ndim != 2 or len(x.shape) != 2:
            raise _Unsupported(
                f"needs a 2-D input and 2-D constant weights (got {list(x.shape)} x {list(w.shape)})"
            )
        units = w.shape[0] if trans_b else w.shape[1]
        ws = self.weights(w, wq, axis=0 if trans_b else 1, what=f"{node.op_type} weights")
        wt = np.ascontiguousarray(ws if trans_b else ws.T)  # [units, depth]
        batches, depth = x.shape
        if wt.shape[1] != depth:
            raise _Unsupported(f"weights {list(w.shape)} do not match input {list(x.shape)}")
        rq = FloatRequant.from_scales(_f32(xq.scale) * _per_out(wq, units) / _f32(yq.scale))
        in_zp, out_zp = xq.zero_point - xq.offset, yq.zero_point - yq.offset
        folded = _fold_bias(bias, wt.astype(np.int64).sum(axis=1), in_zp, units)
        func = kernels.fully_connected(
            batches, depth, units, out_zp, rq, _act_range(activation, yq), "fully_connected"
        )
        args = [
            x.expr,
            relax.const(wt),
            relax.const(folded),
            *[relax.const(t) for t in rq.constant_tensors()],
        ]
        out = self.call(func, "fully_connected", args, (batches, units), "int8")
        if len(lead) > 1:
            out = self.bb.emit(relax.op.reshape(out, [*lead, units]))
        return QAct(out, (*lead, units) if len(lead) > 1 else (batches, units), False, yq.offset)

    def weights(self, w: np.ndarray, wq: QParams, axis: int, what: str) -> np.ndarray:
        """Weights as int8 with zero point 0 (uint8 with zero point 128 shifts exactly); else unsupported."""
        zps = set(int(z) for z in wq.zero_points.reshape(-1))
        if w.dtype == np.int8 and zps == {0}:
            return w
        if w.dtype == np.uint8 and zps == {128}:
            return (w.astype(np.int16) - 128).astype(np.int8)
        raise _Unsupported(
            f"{what} are {wq.describe()}; the integer kernels need symmetric weights "
            "(int8 zero point 0, or uint8 zero point 128)"
        )
        del axis

    def add(self, a: QAct | np.ndarray, aq: QParams, b: QAct | np.ndarray, bq: QParams, yq: QParams) -> QAct:
        """QLinearAdd; one operand may be a quantised constant (uint8/int8, kept in int8 storage)."""
        for name, q in (("A", aq), ("B", bq), ("C", yq)):
            if not q.per_tensor:
                raise _Unsupported(f"Add input {name} is {q.describe()}; needs per-tensor")
        if isinstance(a, QAct) and isinstance(b, QAct):
            a, b = _same_layout(self, a, b)
        elif isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
            raise _Unsupported("Add of two constants")
        elif any(isinstance(v, np.ndarray) and v.size > 1 for v in (a, b)):
            # A constant with several values broadcasts against the ONNX (NCHW) layout.
            a, b = (self.nchw(v) if isinstance(v, QAct) else v for v in (a, b))
        a_op, b_op = _int8_operand(a), _int8_operand(b)
        (a_expr, shape_a, a_logical, a_offset), (b_expr, shape_b, b_logical, b_offset) = a_op, b_op
        act = a if isinstance(a, QAct) else b
        assert isinstance(act, QAct)
        try:
            out_shape = tuple(int(d) for d in np.broadcast_shapes(shape_a, shape_b))
        except ValueError as err:
            raise _Unsupported(
                f"input shapes {list(a_logical)} and {list(b_logical)} do not broadcast"
            ) from err
        ratio_a = _f32(aq.scale) / _f32(yq.scale)
        ratio_b = _f32(bq.scale) / _f32(yq.scale)
        # MLAS (built with FMA contraction): zpC - fma(ratio_a, zpA, ratio_b * zpB), all float32.
        inner = np.float32(
            np.float64(ratio_a) * aq.zero_point + np.float64(np.float32(ratio_b * np.float32(bq.zero_point)))
        )
        fixed = np.float32(np.float32(yq.zero_point) - inner)
        func = onnx_kernels.add(shape_a, shape_b, out_shape, a_offset, b_offset, yq.offset, "add")
        fp = relax.const(onnx_kernels.fparams(ratio_a, ratio_b, fixed))
        out = self.call(func, "add", [a_expr, b_expr, fp], out_shape, "int8")
        logical = tuple(int(d) for d in np.broadcast_shapes(a_logical, b_logical))
        return QAct(out, logical, act.nhwc and len(logical) == 4 and len(out_shape) == 4, yq.offset)

    def avg_pool(self, node: Any, x: QAct, xq: QParams, yq: QParams) -> QAct:
        a = _attrs(node)
        if len(x.shape) != 4 or int(a.get("ceil_mode", 0)):
            raise _Unsupported("only 2-D average pooling with ceil_mode=0 is supported")
        kh, kw = (int(k) for k in a["kernel_shape"])
        strides = tuple(int(s) for s in a.get("strides", [1, 1]))
        n, c, h, w = x.shape
        pads = _pads(a, (h, w), (kh, kw), strides, (1, 1))
        if (kh, kw) == (h, w) and not any(pads):
            # A window over the whole image: ORT 1.32 runs MLAS's global average pool (integer sum, one
            # float requantisation), not its float window sum (measured: the two differ in rare values).
            return self.global_avg_pool(x, xq, yq)
        oh = (h + pads[0] + pads[2] - kh) // strides[0] + 1
        ow = (w + pads[1] + pads[3] - kw) // strides[1] + 1
        x = self.nhwc(x)
        geo = kernels.ConvGeometry((strides[0], strides[1]), (1, 1), (pads[0], pads[1]))
        func = onnx_kernels.average_pool2d(
            x.physical_shape,
            (n, oh, ow, c),
            (kh, kw),
            geo,
            bool(a.get("count_include_pad", 0)),
            xq.zero_point - xq.offset,
            yq.zero_point,
            yq.offset,
            "average_pool2d",
        )
        fp = relax.const(onnx_kernels.fparams(xq.scale, yq.scale))
        out = self.call(func, "average_pool2d", [x.expr, fp], (n, oh, ow, c), "int8")
        return QAct(out, (n, c, oh, ow), True, yq.offset)

    def global_avg_pool(self, x: QAct, xq: QParams, yq: QParams) -> QAct:
        if len(x.shape) != 4:
            raise _Unsupported("only 4-D GlobalAveragePool is supported")
        n, c, h, w = x.shape
        x = self.nhwc(x)
        # MLAS: ScaleInput / (ScaleOutput * float(ImageSize)), then MlasRequantizeOutput of sum - zp*size.
        scale = _f32(xq.scale) / (_f32(yq.scale) * _f32(h * w))
        func = onnx_kernels.global_average_pool(
            x.physical_shape, xq.zero_point - xq.offset, yq.zero_point - yq.offset, "global_average_pool"
        )
        fp = relax.const(onnx_kernels.fparams(scale))
        out = self.call(func, "global_average_pool", [x.expr, fp], (n, 1, 1, c), "int8")
        return QAct(out, (n, c, 1, 1), True, yq.offset)

    def max_pool(self, node: Any, x: QAct, offset: int) -> QAct:
        a = _attrs(node)
        if len(x.shape) != 4 or int(a.get("ceil_mode", 0)) or len(node.output) > 1:
            raise _Unsupported("only 2-D MaxPool with ceil_mode=0 and one output is supported")
        kh, kw = (int(k) for k in a["kernel_shape"])
        strides = tuple(int(s) for s in a.get("strides", [1, 1]))
        dil = tuple(int(d) for d in a.get("dilations", [1, 1]))
        if dil != (1, 1):
            raise _Unsupported("dilated MaxPool is not supported")
        n, c, h, w = x.shape
        pads = _pads(a, (h, w), (kh, kw), strides, (1, 1))
        oh = (h + pads[0] + pads[2] - kh) // strides[0] + 1
        ow = (w + pads[1] + pads[3] - kw) // strides[1] + 1
        x = self.nhwc(x)
        geo = kernels.ConvGeometry((strides[0], strides[1]), (1, 1), (pads[0], pads[1]))
        # Max is order-preserving, so the int8 storage values pool like the real ones: no requantisation.
        func = kernels.max_pool2d(x.physical_shape, (n, oh, ow, c), (kh, kw), geo, (-128, 127), "max_pool2d")
        out = self.call(func, "max_pool2d", [x.expr], (n, oh, ow, c), "int8")
        return QAct(out, (n, c, oh, ow), True, offset)

    def move(self, p: Pending, x: QAct, xq: QParams | None = None) -> QAct:
        """An op that only moves (or repeats, or pads with the zero point) stored values: the output has
        the input's quantisation. `xq` is the DequantizeLinear's in the QDQ form (for a float pad value)."""
        op = p.node.op_type
        if op == "Transpose":
            return self.transpose(p.node, x)
        if op == "MaxPool":
            return self.max_pool(p.node, x, x.offset)
        if op in ("Reshape", "Flatten", "Squeeze", "Unsqueeze"):
            return self.reshape(p, x)
        if op in ("Slice", "Split"):
            return onnx_moves.slice_(self, p, x)
        if op == "Pad":
            return onnx_moves.pad(self, p, x, xq)
        if op == "Resize":
            return onnx_moves.resize(self, p, x)
        if op == "GlobalMaxPool":
            return onnx_ops_more.global_max_pool(self, x)
        return onnx_moves.gather(self, p, x)  # the last of _MOVE_OPS

    def reshape(self, p: Pending, x: QAct) -> QAct:
        rank = len(x.shape)
        if p.node.op_type == "Flatten":
            axis = int(_attrs(p.node).get("axis", 1)) % max(rank, 1)
            shape: tuple[int, ...] = (int(np.prod(x.shape[:axis])), int(np.prod(x.shape[axis:])))
        elif p.node.op_type == "Squeeze":
            axes = onnx_moves.axes_of(p, rank)
            drop = set(axes) if axes is not None else {k for k, d in enumerate(x.shape) if d == 1}
            if any(x.shape[k] != 1 for k in drop):
                raise _Unsupported(f"Squeeze of axes {sorted(drop)} that are not 1 in {list(x.shape)}")
            shape = tuple(d for k, d in enumerate(x.shape) if k not in drop)
        elif p.node.op_type == "Unsqueeze":
            axes = onnx_moves.axes_of(p, -rank)
            if axes is None:
                raise _Unsupported("Unsqueeze needs its axes")
            dims = iter(x.shape)
            shape = tuple(1 if k in axes else next(dims) for k in range(rank + len(axes)))
        else:
            target = p.args[1]
            if not isinstance(target, np.ndarray):
                raise _Unsupported("the target shape is computed at run time")
            shape = _resolve_shape(x.shape, [int(d) for d in target.reshape(-1)])
        x = self.nchw(x)
        return QAct(self.bb.emit(relax.op.reshape(x.expr, list(shape))), shape, False, x.offset)

    def transpose(self, node: Any, x: QAct) -> QAct:
        rank = len(x.shape)
        perm = tuple(int(p) for p in _attrs(node).get("perm", list(range(rank))[::-1]))
        x = self.nchw(x)
        shape = tuple(x.shape[p] for p in perm)
        if [x.shape[p] for p in perm if x.shape[p] != 1] == [d for d in x.shape if d != 1] and sorted(
            p for p in perm if x.shape[p] != 1
        ) == [p for p in perm if x.shape[p] != 1]:
            return QAct(self.bb.emit(relax.op.reshape(x.expr, list(shape))), shape, False, x.offset)
        func = kernels.transpose(x.shape, perm, "int8", "transpose")
        return QAct(self.call(func, "transpose", [x.expr], shape, "int8"), shape, False, x.offset)

    def concat(self, parts: list[tuple[QAct, QParams]], yq: QParams, axis: int) -> QAct:
        acts = []
        for act, q in parts:
            if not _same(q, yq):
                act = self.lut(act, q, yq, lambda v: v, "requantize")
            acts.append(act)
        rank = len(acts[0].shape)
        axis %= rank
        nhwc = rank == 4 and all(a.nhwc for a in acts)
        acts = [self.nhwc(a) if nhwc else self.nchw(a) for a in acts]
        phys_axis = {0: 0, 1: 3, 2: 1, 3: 2}[axis] if nhwc else axis
        shapes = [a.physical_shape for a in acts]
        out_phys = list(shapes[0])
        out_phys[phys_axis] = sum(s[phys_axis] for s in shapes)
        func = kernels.concatenate(shapes, tuple(out_phys), phys_axis, "int8", "concatenation")
        out = self.call(func, "concatenation", [a.expr for a in acts], tuple(out_phys), "int8")
        logical = list(acts[0].shape)
        logical[axis] = sum(a.shape[axis] for a in acts)
        return QAct(out, tuple(logical), nhwc, yq.offset)

    def _binary_operands(
        self, p: Pending, deq_act: Callable[[int], tuple[QAct, QParams]]
    ) -> tuple[QAct, QParams, QAct | np.ndarray, QParams]:
        """A binary QDQ op's operands: an activation first, then an activation or a quantised constant."""
        if len(p.args) != 2:
            raise _Unsupported(f"{p.node.op_type} needs two inputs")
        order = (0, 1)
        if isinstance(p.args[0], Deq) and isinstance(p.args[0].src, np.ndarray):
            order = (1, 0)  # constant first: the product commutes
        a, aq = deq_act(order[0])
        b = p.args[order[1]]
        if not isinstance(b, Deq):
            raise _Unsupported(f"input {order[1]} of {p.node.op_type} is not a DequantizeLinear output")
        return a, aq, b.src, b.q

    def mul(self, a: QAct, aq: QParams, b: QAct | np.ndarray, bq: QParams, yq: QParams) -> QAct:
        for name, q in (("A", aq), ("B", bq), ("C", yq)):
            if not q.per_tensor:
                raise _Unsupported(f"Mul input {name} is {q.describe()}; needs per-tensor")
        if isinstance(b, np.ndarray):
            if b.dtype not in (np.int8, np.uint8):
                raise _Unsupported(f"Mul constant B is {b.dtype}; needs int8 or uint8")
            b_offset = 128 if b.dtype == np.uint8 else 0
            stored = (b.astype(np.int16) - b_offset).astype(np.int8)
            if stored.size > 1:
                a = self.nchw(a)  # a constant with more than one value broadcasts against the ONNX layout
            b_expr, b_phys, b_logical, b_zp = (
                relax.const(stored),
                stored.shape,
                stored.shape,
                bq.zero_point - b_offset,
            )
        else:
            a, b = _same_layout(self, a, b)
            b_expr, b_phys, b_logical, b_zp = b.expr, b.physical_shape, b.shape, bq.zero_point - b.offset
        shape_a = a.physical_shape
        try:
            out_shape = tuple(int(d) for d in np.broadcast_shapes(shape_a, b_phys))
            logical = tuple(int(d) for d in np.broadcast_shapes(a.shape, b_logical))
        except ValueError as err:
            raise _Unsupported(
                f"input shapes {list(a.shape)} and {list(b_logical)} do not broadcast"
            ) from err
        ratio = _f32(_f32(aq.scale) * _f32(bq.scale)) / _f32(yq.scale)
        func = onnx_kernels.mul(
            shape_a,
            tuple(b_phys),
            out_shape,
            aq.zero_point - a.offset,
            b_zp,
            yq.zero_point - yq.offset,
            "mul",
        )
        fp = relax.const(onnx_kernels.fparams(ratio))
        out = self.call(func, "mul", [a.expr, b_expr, fp], out_shape, "int8")
        return QAct(out, logical, a.nhwc and len(logical) == 4 and len(out_shape) == 4, yq.offset)

    def matmul_act(self, a: QAct, aq: QParams, b: QAct, bq: QParams, yq: QParams) -> QAct:
        """MatMul of two activations (attention's Q.K^T and P.V): QLinearMatMul with B not constant."""
        for name, q in (("A", aq), ("B", bq), ("Y", yq)):
            if not q.per_tensor:
                raise _Unsupported(f"MatMul input {name} is {q.describe()}; needs per-tensor")
        if len(a.shape) != 2 or len(b.shape) != 2 or a.shape[1] != b.shape[0]:
            raise _Unsupported(
                "a MatMul of two activations needs matching 2-D inputs "
                f"(got {list(a.shape)} x {list(b.shape)})"
            )
        (m, k), n = a.shape, b.shape[1]
        scale = _f32(_f32(aq.scale) * _f32(bq.scale)) / _f32(yq.scale)
        func = onnx_kernels.matmul(
            m, k, n, aq.zero_point - a.offset, bq.zero_point - b.offset, yq.zero_point - yq.offset, "matmul"
        )
        fp = relax.const(onnx_kernels.fparams(scale))
        out = self.call(func, "matmul", [a.expr, b.expr, fp], (m, n), "int8")
        return QAct(out, (m, n), False, yq.offset)

    def binary_float(self, p: Pending, yq: QParams) -> QAct:
        """Sub/Div in float32 between DequantizeLinear and QuantizeLinear; an operand may be a constant
        (quantised, dequantised here as ORT would, or left float by the quantizer)."""
        op = p.node.op_type
        if len(p.args) != 2:
            raise _Unsupported(f"{op} needs two inputs")
        operands: list[tuple[Any, tuple[int, ...], int | None, np.float32, QAct | None]] = []
        for k, v in enumerate(p.args):
            if isinstance(v, Deq) and isinstance(v.src, QAct):
                act = v.src
                operands.append((act, act.shape, v.q.zero_point - act.offset, _f32(v.q.scale), act))
            elif isinstance(v, Deq) and isinstance(v.src, np.ndarray) and v.q.per_tensor:
                real = (v.src.astype(np.int64) - v.q.zero_point).astype(np.float32) * _f32(v.q.scale)
                operands.append((real.astype(np.float32), real.shape, None, _f32(1.0), None))
            elif isinstance(v, np.ndarray) and v.dtype == np.float32:
                operands.append((v, v.shape, None, _f32(1.0), None))
            elif isinstance(v, FloatIn):  # a float model input, used as is (NCHW)
                operands.append((v.expr, v.shape, None, _f32(1.0), None))
            else:
                raise _Unsupported(f"input {k} of {op} is neither a dequantised activation nor a constant")
        acts = [o[4] for o in operands if o[4] is not None]
        if not acts:
            raise _Unsupported(f"{op} has no activation input")
        if len(acts) == 2:
            a, b = _same_layout(self, acts[0], acts[1])
            operands = [(a, *operands[0][1:4], a), (b, *operands[1][1:4], b)]
        elif any(o[4] is None and (not isinstance(o[0], np.ndarray) or o[0].size > 1) for o in operands):
            # A constant with more than one value is laid out like the ONNX (NCHW) tensor.
            operands = [
                (self.nchw(o[4]), *o[1:4], self.nchw(o[4])) if o[4] is not None else o for o in operands
            ]
        exprs, phys, logical = [], [], []
        for value, shape, _zp, _scale, operand in operands:
            if operand is not None:
                exprs.append(operand.expr)
                phys.append(operand.physical_shape)
                logical.append(operand.shape)
            else:
                exprs.append(
                    value if isinstance(value, relax.Expr) else relax.const(np.asarray(value, np.float32))
                )
                phys.append(tuple(shape))
                logical.append(tuple(shape))
        try:
            out_phys = tuple(int(d) for d in np.broadcast_shapes(*phys))
            out_logical = tuple(int(d) for d in np.broadcast_shapes(*logical))
        except ValueError as err:
            raise _Unsupported(f"{op} input shapes {logical} do not broadcast") from err
        act0 = next(o[4] for o in operands if o[4] is not None)
        nhwc = act0.nhwc and len(out_logical) == 4 and len(out_phys) == 4
        func = onnx_kernels.binary_float(
            phys[0],
            phys[1],
            out_phys,
            operands[0][2],
            operands[1][2],
            yq.zero_point - yq.offset,
            op,
            op.lower(),
        )
        fp = relax.const(onnx_kernels.fparams(operands[0][3], operands[1][3], yq.scale))
        out = self.call(func, op.lower(), [*exprs, fp], out_phys, "int8")
        return QAct(out, out_logical, nhwc, yq.offset)

    def batch_norm(self, p: Pending, x: QAct, xq: QParams, yq: QParams) -> QAct:
        """Inference BatchNormalization between DequantizeLinear and QuantizeLinear (ORT runs it in
        float32; quantize_static leaves it there unless the model was pre-processed)."""
        if (len(p.node.output) > 1 and any(p.node.output[1:])) or int(_attrs(p.node).get("training_mode", 0)):
            raise _Unsupported("BatchNormalization in training mode is not supported")
        params = []
        for k, what in ((1, "scale"), (2, "B"), (3, "mean"), (4, "var")):
            v = p.args[k] if len(p.args) > k else None
            if isinstance(v, Deq) and isinstance(v.src, np.ndarray) and v.q.per_tensor:
                v = (v.src.astype(np.int64) - v.q.zero_point).astype(np.float32) * _f32(v.q.scale)
            if not isinstance(v, np.ndarray) or v.dtype != np.float32 or v.size != x.shape[1]:
                raise _Unsupported(
                    f"BatchNormalization {what} is not a float32 constant with one value per channel"
                )
            params.append(v.reshape(-1))
        gamma, beta, mean, var = params
        eps = _f32(_attrs(p.node).get("epsilon", 1e-5))
        # ORT (Eigen): inv_std = 1 / sqrt(var + eps); scale = inv_std * gamma; bias = beta - mean * scale.
        inv_std = (np.float32(1) / np.sqrt((var + eps).astype(np.float32))).astype(np.float32)
        scale = (inv_std * gamma).astype(np.float32)
        bias = (beta - (mean * scale).astype(np.float32)).astype(np.float32)
        axis = 3 if x.nhwc and len(x.shape) == 4 else 1
        func = onnx_kernels.batch_norm(
            x.physical_shape, axis, xq.zero_point - xq.offset, yq.zero_point - yq.offset, "batch_norm"
        )
        fp = relax.const(onnx_kernels.fparams(xq.scale, yq.scale))
        args = [x.expr, relax.const(scale), relax.const(bias), fp]
        out = self.call(func, "batch_norm", args, x.physical_shape, "int8")
        return QAct(out, x.shape, x.nhwc, yq.offset)

    def softmax(self, node: Any, x: QAct, xq: QParams, yq: QParams, opset: int) -> QAct:
        """QLinearSoftmax: opset < 13 normalises over the flattened axes from `axis` on, opset >= 13
        over `axis` alone (ORT transposes it last and back)."""
        if not xq.per_tensor or not yq.per_tensor:
            raise _Unsupported("Softmax needs per-tensor quantisation")
        x = self.nchw(x)
        rank = len(x.shape)
        axis = int(_attrs(node).get("axis", 1 if opset < 13 else -1)) % rank
        src, perm = x.expr, None
        if opset >= 13 and axis != rank - 1:
            perm = list(range(rank))
            perm[axis], perm[-1] = rank - 1, axis
            moved = tuple(x.shape[p] for p in perm)
            func = kernels.transpose(x.shape, perm, "int8", "transpose")
            src = self.call(func, "transpose", [src], moved, "int8")
            shape: tuple[int, ...] = moved
            depth = moved[-1]
        else:
            shape = x.shape
            depth = int(np.prod(x.shape[axis:])) if opset < 13 else x.shape[-1]
        rows = int(np.prod(shape)) // depth
        flat = self.bb.emit(relax.op.reshape(src, [rows, depth]))
        table = softmax_table(_f32(xq.scale), depth)
        y_mult = np.floor(np.float32(1.0) / _f32(yq.scale)).astype(np.float32)
        func = onnx_kernels.softmax(rows, depth, yq.zero_point, yq.offset, "softmax")
        out = self.call(
            func,
            "softmax",
            [flat, relax.const(table), relax.const(onnx_kernels.fparams(y_mult))],
            (rows, depth),
            "int8",
        )
        out = self.bb.emit(relax.op.reshape(out, list(shape)))
        if perm is not None:
            func = kernels.transpose(shape, perm, "int8", "transpose")
            out = self.call(func, "transpose", [out], x.shape, "int8")
        return QAct(out, x.shape, False, yq.offset)

    def reduce_mean(self, p: Pending, x: QAct, xq: QParams, yq: QParams) -> QAct:
        # Per-tensor already: DequantizeLinear/QuantizeLinear of an activation refuse anything else.
        a = _attrs(p.node)
        rank = len(x.shape)
        if "axes" in a:
            axes_list = [int(v) for v in a["axes"]]
        elif len(p.args) > 1 and p.args[1] is not None:
            if not isinstance(p.args[1], np.ndarray):
                raise _Unsupported("the ReduceMean axes are not a constant int64 tensor")
            axes_list = [int(v) for v in p.args[1].reshape(-1)]
        else:
            axes_list = list(range(rank))
        axes = sorted(set(v % rank for v in axes_list))
        keep = bool(int(a.get("keepdims", 1)))
        count = int(np.prod([x.shape[v] for v in axes]))
        logical = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        if rank == 4 and axes == [2, 3]:
            x = self.nhwc(x)  # the spatial mean of an NHWC tensor: one contiguous channel vector out
            phys_axes, nhwc = [1, 2], True
        else:
            x = self.nchw(x)
            phys_axes, nhwc = axes, False
        func = onnx_kernels.reduce_mean(
            x.physical_shape, phys_axes, xq.zero_point - xq.offset, yq.zero_point - yq.offset, "reduce_mean"
        )
        out_phys = tuple(1 if i in phys_axes else d for i, d in enumerate(x.physical_shape))
        fp = relax.const(onnx_kernels.fparams(xq.scale, np.float32(count), yq.scale))
        out = QAct(self.call(func, "reduce_mean", [x.expr, fp], out_phys, "int8"), logical, nhwc, yq.offset)
        if keep:
            return out
        out = self.nchw(out)
        kept = tuple(d for i, d in enumerate(logical) if i not in axes)
        return QAct(self.bb.emit(relax.op.reshape(out.expr, list(kept))), kept, False, yq.offset)

    def lut(
        self, x: QAct, xq: QParams, yq: QParams, f: Callable[[np.ndarray], np.ndarray], kind: str
    ) -> QAct:
        """Any elementwise DequantizeLinear -> f -> QuantizeLinear as a 256-entry table, computed the way
        ORT runs the group in float32: (x - zp) * scale, f, x / scale rounded half to even, saturated."""
        if not xq.per_tensor or not yq.per_tensor:
            raise _Unsupported("elementwise ops need per-tensor quantisation")
        stored = np.arange(-128, 128, dtype=np.int32)
        real = (stored + x.offset - xq.zero_point).astype(np.float32) * _f32(xq.scale)
        y = np.asarray(f(real), np.float32) / _f32(yq.scale)
        raw = np.clip(
            np.rint(np.clip(y, -(2.0**24), 2.0**24)) + yq.zero_point, yq.offset - 128, yq.offset + 127
        )
        table = (raw - yq.offset).astype(np.int8)
        func = kernels.lookup_table(x.physical_shape, kind)
        out = self.call(func, kind, [x.expr, relax.const(table)], x.physical_shape, "int8")
        return QAct(out, x.shape, x.nhwc, yq.offset)


# --- QLinear* operators (all parameters are inputs) ------------------------------------------------


def _qlinear_conv(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input) + [""] * (9 - len(node.input))
    xq, wq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[4], i[5], axis=0), lw.qparams(i[6], i[7])
    x = lw.act_input(lw.get(i[0]), xq, "QLinearConv input")
    w = lw.get(i[3])
    if not isinstance(w, np.ndarray):
        raise _Unsupported("QLinearConv weights are computed at run time")
    wq.dtype = str(w.dtype)
    bias = lw.get(i[8]) if i[8] else None
    lw.values[node.output[0]] = lw.conv(node, x, xq, w, wq, bias, yq, None)


def _qlinear_matmul(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input)
    xq, wq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[4], i[5], axis=1), lw.qparams(i[6], i[7])
    x = lw.act_input(lw.get(i[0]), xq, "QLinearMatMul input A")
    w = lw.get(i[3])
    if isinstance(w, QAct):
        lw.values[node.output[0]] = lw.matmul_act(x, xq, lw.act_input(w, wq, "QLinearMatMul input B"), wq, yq)
        return
    if not isinstance(w, np.ndarray):
        raise _Unsupported("QLinearMatMul input B is neither a constant nor an integer activation")
    wq.dtype = str(w.dtype)
    lw.values[node.output[0]] = lw.matmul(node, x, xq, w, wq, None, yq, None)


def _qgemm(lw: OnnxLowerer, node: Any) -> None:
    """com.microsoft QGemm (A, a_scale, a_zp, B, b_scale, b_zp, C, y_scale, y_zp): the QOperator Gemm."""
    i = list(node.input) + [""] * (9 - len(node.input))
    if not i[7]:
        raise _Unsupported("QGemm without y_scale has a float output; only quantised outputs are supported")
    a = _attrs(node)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[7], i[8])
    wq = lw.qparams(i[4], i[5], axis=0 if int(a.get("transB", 0)) else 1)
    x = lw.act_input(lw.get(i[0]), xq, "QGemm input A")
    w = lw.get(i[3])
    if not isinstance(w, np.ndarray):
        raise _Unsupported("QGemm input B is computed at run time; only constant B is supported")
    wq.dtype = str(w.dtype)
    bias = lw.get(i[6]) if i[6] else None
    if bias is not None and (not isinstance(bias, np.ndarray) or bias.dtype != np.int32):
        raise _Unsupported("QGemm input C must be a constant int32 bias")
    lw.values[node.output[0]] = lw.matmul(node, x, xq, w, wq, bias, yq, None)


def _qlinear_add(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input)
    aq, bq, yq = (
        lw.qparams(i[1], i[2]),
        lw.qparams(i[4], i[5]),
        lw.qparams(i[6], i[7] if len(i) > 7 else None),
    )
    a, b = lw.get(i[0]), lw.get(i[3])
    if not isinstance(a, np.ndarray):
        a = lw.act_input(a, aq, "QLinearAdd input A")
    if not isinstance(b, np.ndarray):
        b = lw.act_input(b, bq, "QLinearAdd input B")
    lw.values[node.output[0]] = lw.add(a, aq, b, bq, yq)


def _qlinear_pool(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[3], i[4] if len(i) > 4 else None)
    if int(_attrs(node).get("channels_last", 0)):
        raise _Unsupported("channels_last=1 is not supported")
    x = lw.act_input(lw.get(i[0]), xq, f"{node.op_type} input")
    if node.op_type == "QLinearGlobalAveragePool":
        lw.values[node.output[0]] = lw.global_avg_pool(x, xq, yq)
    else:
        lw.values[node.output[0]] = lw.avg_pool(node, x, xq, yq)


def _qlinear_sigmoid(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[3], i[4] if len(i) > 4 else None)
    x = lw.act_input(lw.get(i[0]), xq, "QLinearSigmoid input")
    lw.values[node.output[0]] = lw.lut(x, xq, yq, sigmoid, "sigmoid")


def _qlinear_concat(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input)
    yq = lw.qparams(i[0], i[1])
    parts = []
    for k in range(2, len(i), 3):
        q = lw.qparams(i[k + 1], i[k + 2])
        parts.append((lw.act_input(lw.get(i[k]), q, f"QLinearConcat input {(k - 2) // 3}"), q))
    lw.values[node.output[0]] = lw.concat(parts, yq, int(_attrs(node).get("axis", 0)))


def _qlinear_mul(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input)
    aq, bq = lw.qparams(i[1], i[2]), lw.qparams(i[4], i[5])
    yq = lw.qparams(i[6], i[7] if len(i) > 7 else None)
    a, b = lw.get(i[0]), lw.get(i[3])
    if isinstance(a, np.ndarray):  # constant first: the product commutes
        a, aq, b, bq = b, bq, a, aq
    a = lw.act_input(a, aq, "QLinearMul input A")
    if not isinstance(b, np.ndarray):
        b = lw.act_input(b, bq, "QLinearMul input B")
    lw.values[node.output[0]] = lw.mul(a, aq, b, bq, yq)


def _qlinear_softmax(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[3], i[4] if len(i) > 4 else None)
    x = lw.act_input(lw.get(i[0]), xq, "QLinearSoftmax input")
    a = _attrs(node)
    if "opset" not in a:
        raise _Unsupported("QLinearSoftmax has no 'opset' attribute (ORT requires it)")
    lw.values[node.output[0]] = lw.softmax(node, x, xq, yq, int(a["opset"]))


def _qlinear_leaky_relu(lw: OnnxLowerer, node: Any) -> None:
    i = list(node.input)
    xq, yq = lw.qparams(i[1], i[2]), lw.qparams(i[3], i[4] if len(i) > 4 else None)
    x = lw.act_input(lw.get(i[0]), xq, "QLinearLeakyRelu input")
    lw.values[node.output[0]] = lw.lut(x, xq, yq, LUT_FUNCS["LeakyRelu"](_attrs(node)), "leaky_relu")


_HANDLERS: dict[str, Callable[[OnnxLowerer, Any], None]] = {
    "QuantizeLinear": OnnxLowerer.quantize_linear,
    "DequantizeLinear": OnnxLowerer.dequantize_linear,
    "QLinearConv": _qlinear_conv,
    "QLinearMatMul": _qlinear_matmul,
    "QGemm": _qgemm,
    "QLinearAdd": _qlinear_add,
    "QLinearAveragePool": _qlinear_pool,
    "QLinearGlobalAveragePool": _qlinear_pool,
    "QLinearSigmoid": _qlinear_sigmoid,
    "QLinearConcat": _qlinear_concat,
    "QLinearMul": _qlinear_mul,
    "QLinearSoftmax": _qlinear_softmax,
    "QLinearLeakyRelu": _qlinear_leaky_relu,
}


# --- helpers ---------------------------------------------------------------------------------------


def _same(a: QParams, b: QParams) -> bool:
    return (
        a.per_tensor
        and b.per_tensor
        and a.scale == b.scale
        and a.zero_point == b.zero_point
        and a.offset == b.offset
    )


def _int8_operand(v: QAct | np.ndarray) -> tuple[Any, tuple[int, ...], tuple[int, ...], int]:
    """(expression, physical shape, ONNX shape, offset) of an activation or of a uint8/int8 constant
    (stored as int8: uint8 minus 128)."""
    if isinstance(v, QAct):
        return v.expr, v.physical_shape, v.shape, v.offset
    if v.dtype not in (np.int8, np.uint8):
        raise _Unsupported(f"a {v.dtype} constant operand; needs int8 or uint8")
    offset = 128 if v.dtype == np.uint8 else 0
    stored = (v.astype(np.int16) - offset).astype(np.int8)
    return relax.const(stored), stored.shape, stored.shape, offset


def _same_layout(lw: OnnxLowerer, a: QAct, b: QAct) -> tuple[QAct, QAct]:
    if len(a.shape) == 4 and len(b.shape) == 4 and a.nhwc != b.nhwc:
        return lw.nhwc(a), lw.nhwc(b)
    if (len(a.shape) == 4 and a.nhwc and len(b.shape) != 4) or (
        len(b.shape) == 4 and b.nhwc and len(a.shape) != 4
    ):
        return lw.nchw(a), lw.nchw(b)
    return a, b


def _per_out(q: QParams, n: int) -> np.ndarray:
    s = q.scales.astype(np.float32).reshape(-1)
    if s.size not in (1, n):
        raise _Unsupported(f"weights have {s.size} scales for {n} output channels")
    return np.broadcast_to(s, (n,)).astype(np.float32)


def _fold_bias(bias: np.ndarray | None, weight_sums: np.ndarray, in_zp: int, n: int) -> np.ndarray:
    """bias - in_zp * sum(w) per output channel, wrapped to int32 (ORT's int32 accumulator)."""
    b = np.zeros(n, np.int64) if bias is None else bias.astype(np.int64).reshape(-1)
    if b.size != n:
        raise _Unsupported(f"bias has {b.size} values for {n} output channels")
    folded = b - in_zp * weight_sums.astype(np.int64)
    return ((folded + (1 << 31)) % (1 << 32) - (1 << 31)).astype(np.int32)


def _act_range(activation: tuple[float, float] | None, yq: QParams) -> tuple[int, int]:
    """Relu/Clip fused into Conv/Gemm: the real bounds quantised with the output's parameters."""
    lo, hi = -128, 127
    if activation is None:
        return lo, hi
    zp = yq.zero_point - yq.offset
    if np.isfinite(activation[0]):
        lo = max(lo, zp + int(np.rint(np.float32(activation[0]) / yq.scale)))
    if np.isfinite(activation[1]):
        hi = min(hi, zp + int(np.rint(np.float32(activation[1]) / yq.scale)))
    return lo, hi


def _pads(
    a: dict[str, Any], in_hw: tuple[int, int], k_hw: tuple[int, int], strides: Any, dil: Any
) -> list[int]:
    """[top, left, bottom, right] from explicit pads or auto_pad (SAME_UPPER puts the odd pixel last)."""
    mode = a.get("auto_pad", b"NOTSET")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if mode in ("NOTSET", ""):
        return [int(p) for p in a.get("pads", [0, 0, 0, 0])]
    if mode == "VALID":
        return [0, 0, 0, 0]
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        raise _Unsupported(f"auto_pad={mode!r} is not supported")
    begin, end = [], []
    for size, k, st, d in zip(in_hw, k_hw, strides, dil, strict=True):
        out = (size + int(st) - 1) // int(st)
        total = max((out - 1) * int(st) + (k - 1) * int(d) + 1 - size, 0)
        small, big = total // 2, total - total // 2
        begin.append(small if mode == "SAME_UPPER" else big)
        end.append(big if mode == "SAME_UPPER" else small)
    return [begin[0], begin[1], end[0], end[1]]


def _resolve_shape(shape: tuple[int, ...], target: list[int]) -> tuple[int, ...]:
    out = [shape[k] if d == 0 else d for k, d in enumerate(target)]
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        out[out.index(-1)] = int(np.prod(shape)) // max(known, 1)
    if int(np.prod(out)) != int(np.prod(shape)):
        raise _Unsupported(f"cannot reshape {list(shape)} to {target}")
    return tuple(out)


def _node_label(node: Any) -> str:
    name = node.name or (node.output[0] if node.output else "?")
    op = node.op_type if node.domain in ("", "ai.onnx") else f"{node.domain}.{node.op_type}"
    return f"{op} ({name!r})"


def import_onnx_quantized(model: Any, model_name: str) -> tvm.IRModule:
    """A Relax module computing a QDQ/QLinear ONNX model in integers with ORT's arithmetic.

    `model` is an onnx ModelProto or its bytes. Raises UnsupportedQuantizedModel listing every node
    that cannot be mapped (op, location, quantisation)."""
    m = _load(model)
    if not any(n.op_type in QLINEAR_OPS for n in m.graph.node):
        # A QDQ model: ORT's reference run merges double Q/DQ pairs first (their values change).
        m = remove_double_qdq(m)
    lw = OnnxLowerer(m)
    try:
        return lw.run(model_name)
    except _Unsupported as err:
        raise UnsupportedQuantizedModel([UnsupportedOp(-1, "model", "-", str(err))]) from err
