"""Write small quantized TFLite flatbuffers for tests, with TFLM's own schema object API.

Real int8 models are scarce (tensorflow is not installed and nothing is downloaded), so the tests
generate models that exercise each operator and parameter combination, then run them in TFLite Micro
and in our compiled module and compare bit for bit.
"""

from __future__ import annotations

from typing import Any

import flatbuffers
import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

_TYPES = {
    "int8": schema.TensorType.INT8,
    "int32": schema.TensorType.INT32,
    "float32": schema.TensorType.FLOAT32,
    "int16": schema.TensorType.INT16,
    "uint8": schema.TensorType.UINT8,
    "int64": schema.TensorType.INT64,
}
_ACTIVATIONS = {
    "NONE": schema.ActivationFunctionType.NONE,
    "RELU": schema.ActivationFunctionType.RELU,
    "RELU6": schema.ActivationFunctionType.RELU6,
    "RELU_N1_TO_1": schema.ActivationFunctionType.RELU_N1_TO_1,
}
_PADDING = {"SAME": schema.Padding.SAME, "VALID": schema.Padding.VALID}


class ModelBuilder:
    """Accumulates tensors, buffers and operators of one subgraph; `build()` returns the .tflite bytes."""

    def __init__(self) -> None:
        self.tensors: list[Any] = []
        self.buffers: list[Any] = [schema.BufferT()]  # buffer 0: the conventional empty buffer
        self.operators: list[Any] = []
        self.opcodes: list[Any] = []
        self._opcode_index: dict[int, int] = {}

    def tensor(
        self,
        name: str,
        shape: list[int],
        dtype: str = "int8",
        scale: float | list[float] | None = None,
        zero_point: int | list[int] | None = None,
        qdim: int = 0,
        data: np.ndarray | None = None,
        variable: bool = False,
    ) -> int:
        t = schema.TensorT()
        t.name = name
        t.isVariable = variable  # model state (SVDF/LSTM memory) that persists across Invoke()
        t.shape = list(shape)
        t.type = _TYPES[dtype]
        if scale is not None:
            q = schema.QuantizationParametersT()
            scales = list(np.atleast_1d(np.asarray(scale, dtype=np.float32)))
            zps = np.atleast_1d(np.asarray(0 if zero_point is None else zero_point, dtype=np.int64))
            if len(zps) == 1 and len(scales) > 1:
                zps = np.repeat(zps, len(scales))
            q.scale = [float(s) for s in scales]
            q.zeroPoint = [int(z) for z in zps]
            q.quantizedDimension = qdim
            t.quantization = q
        if data is not None:
            b = schema.BufferT()
            b.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8).tolist()
            self.buffers.append(b)
            t.buffer = len(self.buffers) - 1
        else:
            t.buffer = 0
        self.tensors.append(t)
        return len(self.tensors) - 1

    def const_int32(self, name: str, values: list[int] | np.ndarray) -> int:
        arr = np.asarray(values, dtype=np.int32)
        return self.tensor(name, list(arr.shape), "int32", data=arr)

    def op(
        self,
        opname: str,
        inputs: list[int],
        outputs: list[int],
        options: Any = None,
        options_kind: str | None = None,
        version: int = 1,
    ) -> None:
        code = getattr(schema.BuiltinOperator, opname)
        if code not in self._opcode_index:
            oc = schema.OperatorCodeT()
            oc.builtinCode = code
            oc.deprecatedBuiltinCode = min(code, 127)
            oc.version = version
            self._opcode_index[code] = len(self.opcodes)
            self.opcodes.append(oc)
        o = schema.OperatorT()
        o.opcodeIndex = self._opcode_index[code]
        o.inputs = list(inputs)
        o.outputs = list(outputs)
        if options is not None:
            o.builtinOptionsType = getattr(schema.BuiltinOptions, options_kind or type(options).__name__[:-1])
            o.builtinOptions = options
        self.operators.append(o)

    def build(self, inputs: list[int], outputs: list[int]) -> bytes:
        sg = schema.SubGraphT()
        sg.tensors = self.tensors
        sg.operators = self.operators
        sg.inputs = list(inputs)
        sg.outputs = list(outputs)
        sg.name = "main"
        m = schema.ModelT()
        m.version = 3
        m.operatorCodes = self.opcodes
        m.subgraphs = [sg]
        m.buffers = self.buffers
        m.description = "tvmc-micro test model"
        b = flatbuffers.Builder(1024)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())


# --- option helpers ---------------------------------------------------------------------------


def conv_options(
    padding: str = "SAME",
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    activation: str = "NONE",
) -> Any:
    o = schema.Conv2DOptionsT()
    o.padding = _PADDING[padding]
    o.strideH, o.strideW = stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.fusedActivationFunction = _ACTIVATIONS[activation]
    return o


def depthwise_options(
    padding: str = "SAME",
    stride: tuple[int, int] = (1, 1),
    dilation: tuple[int, int] = (1, 1),
    multiplier: int = 1,
    activation: str = "NONE",
) -> Any:
    o = schema.DepthwiseConv2DOptionsT()
    o.padding = _PADDING[padding]
    o.strideH, o.strideW = stride
    o.dilationHFactor, o.dilationWFactor = dilation
    o.depthMultiplier = multiplier
    o.fusedActivationFunction = _ACTIVATIONS[activation]
    return o


def fc_options(activation: str = "NONE", keep_num_dims: bool = False) -> Any:
    o = schema.FullyConnectedOptionsT()
    o.fusedActivationFunction = _ACTIVATIONS[activation]
    o.keepNumDims = keep_num_dims
    return o


def pool_options(
    filter_hw: tuple[int, int], stride: tuple[int, int], padding: str = "VALID", activation: str = "NONE"
) -> Any:
    o = schema.Pool2DOptionsT()
    o.padding = _PADDING[padding]
    o.strideH, o.strideW = stride
    o.filterHeight, o.filterWidth = filter_hw
    o.fusedActivationFunction = _ACTIVATIONS[activation]
    return o


def add_options(activation: str = "NONE") -> Any:
    o = schema.AddOptionsT()
    o.fusedActivationFunction = _ACTIVATIONS[activation]
    return o


def mul_options(activation: str = "NONE") -> Any:
    o = schema.MulOptionsT()
    o.fusedActivationFunction = _ACTIVATIONS[activation]
    return o


def softmax_options(beta: float = 1.0) -> Any:
    o = schema.SoftmaxOptionsT()
    o.beta = beta
    return o


def concat_options(axis: int, activation: str = "NONE") -> Any:
    o = schema.ConcatenationOptionsT()
    o.axis = axis
    o.fusedActivationFunction = _ACTIVATIONS[activation]
    return o


def reshape_options(shape: list[int]) -> Any:
    o = schema.ReshapeOptionsT()
    o.newShape = list(shape)
    return o


def reducer_options(keep_dims: bool) -> Any:
    o = schema.ReducerOptionsT()
    o.keepDims = keep_dims
    return o


def svdf_options(rank: int, activation: str = "NONE") -> Any:
    o = schema.SVDFOptionsT()
    o.rank = rank
    o.fusedActivationFunction = _ACTIVATIONS[activation]
    return o


def lstm_options(cell_clip: float = 0.0, time_major: bool = False) -> Any:
    """UNIDIRECTIONAL_SEQUENCE_LSTM options; the cell gate activation is TANH (4), as converters emit."""
    o = schema.UnidirectionalSequenceLSTMOptionsT()
    o.fusedActivationFunction = 4
    o.cellClip = cell_clip
    o.projClip = 0.0
    o.timeMajor = time_major
    return o


def random_weights(rng: np.random.Generator, shape: list[int]) -> np.ndarray:
    """Symmetric int8 weights like a converter emits (range [-127, 127])."""
    return rng.integers(-127, 128, size=shape, dtype=np.int32).astype(np.int8)
