"""The state of one ONNX model's lowering to integer kernels, and the emit helpers converters share.

`OnnxLowerer` holds the Relax block builder, the tensor-name -> value map (see `onnx_values`), the model's
constants and the layout conversions already emitted. It implements `onnx_view.LowererView`, the only
part of it converters see; the QDQ group table is handed in by the importer, so this module imports no
converter family.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import tvm
from tvm import relax

from tvmc_micro.compiler.quantized import kernels_elementwise, kernels_moves, onnx_kernels
from tvmc_micro.compiler.quantized.onnx_values import (
    FloatIn,
    Pending,
    QAct,
    QParams,
    Unmappable,
    f32,
    node_attrs,
)
from tvmc_micro.compiler.quantized.onnx_view import GroupConverter

# Float ops whose kernels clamp to a fused Relu/Clip range in their epilogue (the others get a table).
_CLAMPING_KERNELS = ("Conv", "ConvTranspose", "MatMul", "Gemm")


class OnnxLowerer:
    def __init__(self, model: Any, group_converters: Mapping[str, GroupConverter]) -> None:
        from onnx import numpy_helper

        self.model = model
        self.bb = relax.BlockBuilder()
        self.values: dict[str, Any] = {}
        self.consts: dict[str, np.ndarray] = {
            t.name: numpy_helper.to_array(t) for t in model.graph.initializer
        }
        for node in model.graph.node:
            if node.op_type == "Constant":
                self.consts[node.output[0]] = numpy_helper.to_array(node_attrs(node)["value"])
        self.opset = next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
        self.layouts: dict[tuple[int, bool], tuple[Any, QAct]] = {}
        self.group_converters = group_converters

    # --- values and quantisation ----------------------------------------------------------------------

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
            raise Unmappable(f"input {name!r} comes from an operator the integer path could not map")
        return self.values[name]

    def qparams(self, scale_name: str, zp_name: str | None, axis: int = 1) -> QParams:
        scale = self.consts.get(scale_name)
        if scale is None:
            raise Unmappable(
                f"scale {scale_name!r} is computed at run time; only constant scales are supported"
            )
        if zp_name:
            zp = self.consts.get(zp_name)
            if zp is None:
                raise Unmappable(f"zero point {zp_name!r} is computed at run time")
            dtype = str(zp.dtype)
        else:
            zp, dtype = np.zeros(1, np.int64), "uint8"  # ONNX's default zero point is uint8 0
        scales, zps = np.asarray(scale, np.float32).reshape(-1), np.asarray(zp, np.int64).reshape(-1)
        if scales.size != zps.size and 1 not in (scales.size, zps.size):
            raise Unmappable(f"scale {scale_name!r} and zero point {zp_name!r} differ in length")
        size = max(scales.size, zps.size)
        return QParams(
            np.broadcast_to(scales, (size,)).copy(), np.broadcast_to(zps, (size,)).copy(), dtype, axis
        )

    def act_input(self, value: Any, q: QParams, what: str) -> QAct:
        if not isinstance(value, QAct):
            raise Unmappable(f"{what} is not an integer activation computed by the model")
        if not q.per_tensor:
            raise Unmappable(f"{what} is {q.describe()}; activations must be per-tensor")
        if q.offset != value.offset:
            raise Unmappable(f"{what} is {value.onnx_dtype} but read as {q.dtype}")
        return value

    # --- layout -------------------------------------------------------------------------------------------

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
        func = kernels_moves.transpose(phys, perm, "int8", "transpose")
        return self.call(func, "transpose", [q.expr], target, "int8")

    # --- emit helpers every family uses -------------------------------------------------------------------

    def lut(
        self, x: QAct, xq: QParams, yq: QParams, f: Callable[[np.ndarray], np.ndarray], kind: str
    ) -> QAct:
        """Any elementwise DequantizeLinear -> f -> QuantizeLinear as a 256-entry table, computed the way
        ORT runs the group in float32: (x - zp) * scale, f, x / scale rounded half to even, saturated."""
        if not xq.per_tensor or not yq.per_tensor:
            raise Unmappable("elementwise ops need per-tensor quantisation")
        stored = np.arange(-128, 128, dtype=np.int32)
        real = (stored + x.offset - xq.zero_point).astype(np.float32) * f32(xq.scale)
        y = np.asarray(f(real), np.float32) / f32(yq.scale)
        raw = np.clip(
            np.rint(np.clip(y, -(2.0**24), 2.0**24)) + yq.zero_point, yq.offset - 128, yq.offset + 127
        )
        table = (raw - yq.offset).astype(np.int8)
        func = kernels_elementwise.lookup_table(x.physical_shape, kind)
        out = self.call(func, kind, [x.expr, relax.const(table)], x.physical_shape, "int8")
        return QAct(out, x.shape, x.nhwc, yq.offset)

    def quantize_input(self, x: FloatIn, q: QParams) -> QAct:
        func = onnx_kernels.quantize(x.shape, q.zero_point - q.offset, "quantize")
        fp = relax.const(onnx_kernels.fparams(q.scale))
        out = self.call(func, "quantize", [x.expr, fp], x.shape, "int8")
        return QAct(out, x.shape, False, q.offset)

    def dequantized(self, x: QAct, q: QParams) -> Any:
        src = self.nchw(x)
        func = onnx_kernels.dequantize(src.shape, q.zero_point - src.offset, "dequantize")
        fp = relax.const(onnx_kernels.fparams(float(q.scale)))
        return self.call(func, "dequantize", [src.expr, fp], src.shape, "float32")

    def lower_group(self, p: Pending, out_q: QParams) -> QAct:
        op = p.node.op_type
        convert = self.group_converters.get(op)
        if convert is None:  # the walk only records float ops the table has
            raise Unmappable(f"{op} between DequantizeLinear and QuantizeLinear has no integer kernel")
        result = convert(self, p, out_q)
        if p.activation is not None and op not in _CLAMPING_KERNELS and op not in ("Relu", "Clip"):
            # A Relu/Clip between the op and QuantizeLinear: quantising is monotonic, so clamping the
            # quantised value at the quantised bounds is the same (a Relu/Clip group is its own clamp).
            lo, hi = (np.float32(b) for b in p.activation)
            result = self.lut(result, out_q, out_q, lambda v: np.clip(v, lo, hi), "clip")
        return result
