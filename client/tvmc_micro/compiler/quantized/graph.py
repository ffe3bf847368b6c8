"""Read a TFLite flatbuffer into plain Python objects: tensors with quantisation, operators with options.

Only the first subgraph is read (TFLite Micro runs the others only through control-flow operators,
which the integer path does not support). Everything else reads these objects, never the flatbuffer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

_NP_TYPES = {
    "INT8": np.int8,
    "UINT8": np.uint8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FLOAT32": np.float32,
    "BOOL": np.bool_,
}


@dataclass
class QTensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # TFLite type name: INT8, INT32, FLOAT32, ...
    scales: np.ndarray  # float32, empty when not quantized
    zero_points: np.ndarray  # int64, empty when not quantized
    quantized_dimension: int
    data: np.ndarray | None  # constant contents, None for activations
    # TFLite `is_variable`: model state (SVDF/LSTM memory) kept across invocations (stateful.py).
    is_variable: bool = False

    @property
    def is_quantized(self) -> bool:
        return self.scales.size > 0

    @property
    def per_channel(self) -> bool:
        return self.scales.size > 1

    @property
    def scale(self) -> float:
        """The per-tensor scale promoted to double, as TFLite's `static_cast<double>(params.scale)`."""
        return float(self.scales[0])

    @property
    def zero_point(self) -> int:
        return int(self.zero_points[0]) if self.zero_points.size else 0

    def describe_quantization(self) -> str:
        if not self.is_quantized:
            return f"{self.dtype.lower()} (not quantized)"
        if self.per_channel:
            zps = sorted(set(int(z) for z in self.zero_points))
            zp_text = f"zero points {zps}" if len(zps) > 1 else f"zero point {zps[0]}"
            return (
                f"{self.dtype.lower()} per-channel (axis {self.quantized_dimension}, "
                f"{self.scales.size} scales, {zp_text})"
            )
        return f"{self.dtype.lower()} per-tensor (scale {self.scale:.6g}, zero point {self.zero_point})"


@dataclass
class QOperator:
    index: int
    name: str  # BuiltinOperator name, e.g. CONV_2D
    version: int
    inputs: list[int]  # -1 marks an omitted optional input
    outputs: list[int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class QGraph:
    tensors: list[QTensor]
    operators: list[QOperator]
    inputs: list[int]
    outputs: list[int]

    def consumers(self, tensor_index: int) -> list[QOperator]:
        return [op for op in self.operators if tensor_index in op.inputs]


def _enum_names(enum_cls: type) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _read_options(op: Any, opname: str) -> dict[str, Any]:
    """The builtin options as a dict of snake-case-free accessor names (Padding, StrideW, ...)."""
    import tflite

    table = op.BuiltinOptions()
    if table is None:
        return {}
    type_names = _enum_names(tflite.BuiltinOptions)
    kind = type_names.get(op.BuiltinOptionsType())
    if kind is None or not hasattr(tflite, kind):
        return {}
    opts = getattr(tflite, kind)()
    opts.Init(table.Bytes, table.Pos)
    out: dict[str, Any] = {"_kind": kind}
    for attr in dir(opts):
        if (
            attr.startswith("_")
            or attr in ("Init",)
            or attr.startswith("GetRootAs")
            or attr.endswith("IsNone")
        ):
            continue
        if attr.endswith("Length") or attr.endswith("AsNumpy"):
            continue
        fn = getattr(opts, attr)
        if not callable(fn):
            continue
        try:
            if hasattr(opts, attr + "AsNumpy"):
                val = getattr(opts, attr + "AsNumpy")()
                out[attr] = [] if isinstance(val, int) else [int(v) for v in val]
            else:
                out[attr] = fn()
        except TypeError:
            continue
    return out


def read_graph(model_bytes: bytes) -> QGraph:
    """Parse the model; raises ValueError with a plain reason when the bytes are not a usable TFLite model."""
    import tflite

    if len(model_bytes) < 8 or model_bytes[4:8] != b"TFL3":
        raise ValueError('not a TFLite flatbuffer (no "TFL3" identifier at offset 4)')
    try:
        model = tflite.Model.GetRootAsModel(model_bytes, 0)
        if model.SubgraphsLength() < 1:
            raise ValueError("the model has no subgraph")
        sg = model.Subgraphs(0)
        op_names = _enum_names(tflite.BuiltinOperator)
        type_names = _enum_names(tflite.TensorType)
        tensors = []
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            dtype = type_names.get(t.Type(), f"TYPE{t.Type()}")
            q = t.Quantization()
            scales = np.zeros(0, np.float32)
            zps = np.zeros(0, np.int64)
            qdim = 0
            if q is not None and q.ScaleLength() > 0:
                scales = q.ScaleAsNumpy().astype(np.float32)
                zps = (
                    q.ZeroPointAsNumpy().astype(np.int64)
                    if q.ZeroPointLength() > 0
                    else np.zeros(scales.size, np.int64)
                )
                qdim = q.QuantizedDimension()
            shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() > 0 else ()
            data: np.ndarray | None = None
            buf = model.Buffers(t.Buffer()) if t.Buffer() < model.BuffersLength() else None
            if buf is not None and buf.DataLength() > 0 and dtype in _NP_TYPES:
                raw = buf.DataAsNumpy().tobytes()
                data = np.frombuffer(raw, dtype=_NP_TYPES[dtype]).reshape(shape).copy()
            name = t.Name().decode("utf-8", "replace") if t.Name() else f"tensor_{i}"
            tensors.append(QTensor(i, name, shape, dtype, scales, zps, qdim, data, bool(t.IsVariable())))
        operators = []
        for k in range(sg.OperatorsLength()):
            op = sg.Operators(k)
            oc = model.OperatorCodes(op.OpcodeIndex())
            code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
            name = op_names.get(code, f"BUILTIN_{code}")
            if name == "CUSTOM" and oc.CustomCode():
                name = f"CUSTOM({oc.CustomCode().decode('utf-8', 'replace')})"
            ins = [int(v) for v in op.InputsAsNumpy()] if op.InputsLength() else []
            outs = [int(v) for v in op.OutputsAsNumpy()] if op.OutputsLength() else []
            operators.append(QOperator(k, name, oc.Version(), ins, outs, _read_options(op, name)))
        inputs = [int(v) for v in sg.InputsAsNumpy()]
        outputs = [int(v) for v in sg.OutputsAsNumpy()]
    except ValueError:
        raise
    except Exception as exc:  # flatbuffers raises IndexError/struct.error on truncated data
        raise ValueError(f"the flatbuffer is truncated or damaged ({type(exc).__name__}: {exc})") from exc
    return QGraph(tensors, operators, inputs, outputs)
