"""What an ONNX converter may use of the lowering state: the `LowererView` protocol and the converter types.

The converter families (`onnx_convert_*`) are written against this view, not against `OnnxLowerer`, so
the import graph runs one way: `onnx_importer` -> `onnx_lowerer` and the families -> this module and
`onnx_values`. `OnnxLowerer` satisfies the protocol structurally (mypy checks it where the importer hands
the lowerer to a converter).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import tvm
from tvm import relax

from tvmc_micro.compiler.quantized.onnx_values import FloatIn, Pending, QAct, QParams


class LowererView(Protocol):
    """The Relax builder, the tensor-name -> value map and the emit helpers every family shares."""

    @property
    def bb(self) -> relax.BlockBuilder: ...

    @property
    def values(self) -> dict[str, Any]:
        """Tensor name -> QAct / Deq / Pending / FloatIn / IndexOut; a converter stores its outputs here."""
        ...

    @property
    def opset(self) -> int: ...

    def call(
        self, func: tvm.tirx.PrimFunc, kind: str, args: list[Any], shape: tuple[int, ...], dtype: str
    ) -> Any:
        """Emit one call of a TIR kernel; the Relax value of its output."""
        ...

    def get(self, name: str) -> Any:
        """The value of an input name: a constant (numpy), a tracked value, or None for an omitted input."""
        ...

    def qparams(self, scale_name: str, zp_name: str | None, axis: int = 1) -> QParams: ...

    def nhwc(self, q: QAct) -> QAct: ...

    def nchw(self, q: QAct) -> QAct: ...

    def act_input(self, value: Any, q: QParams, what: str) -> QAct:
        """`value` as an integer activation read with per-tensor `q` (refused otherwise)."""
        ...

    def lut(
        self, x: QAct, xq: QParams, yq: QParams, f: Callable[[np.ndarray], np.ndarray], kind: str
    ) -> QAct:
        """An elementwise dequantise -> f -> quantise as a 256-entry table (ORT's float32 arithmetic)."""
        ...

    def quantize_input(self, x: FloatIn, q: QParams) -> QAct: ...

    def dequantized(self, x: QAct, q: QParams) -> Any:
        """ORT's DequantizeLinear of an activation, float32 in the ONNX (NCHW) layout."""
        ...

    def lower_group(self, p: Pending, out_q: QParams) -> QAct:
        """A DequantizeLinear -> float op -> QuantizeLinear group as integer kernels (its fused Relu/Clip
        included), dispatched through the QDQ group table."""
        ...


# A QOperator-style node (QLinear*, QuantizeLinear, DequantizeLinear): stores its outputs in `values`.
QOperatorConverter = Callable[[LowererView, Any], None]
# The float op of a QDQ group, given its output quantisation (the QuantizeLinear's): its integer result.
GroupConverter = Callable[[LowererView, Pending, QParams], QAct]
