"""Helpers for the integer-path tests: TFLite Micro as the reference, compiled modules cached per session."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import numpy as np

_COMPILED: dict[str, Any] = {}


def compile_host(model: bytes, name: str = "model") -> Callable[..., list[np.ndarray]]:
    """Import with the integer path, build for the host (LLVM), and return f(*inputs) -> list of outputs.

    Cached by model bytes, so each model compiles once per session."""
    key = hashlib.sha256(model).hexdigest()
    if key not in _COMPILED:
        import tvm
        from tvm import relax
        from tvmc_micro.compiler.quantized import import_tflite_quantized

        mod = import_tflite_quantized(model, name)
        vm = relax.VirtualMachine(tvm.compile(mod, target="llvm"), tvm.cpu())
        _COMPILED[key] = vm
    vm = _COMPILED[key]

    def run(*inputs: np.ndarray) -> list[np.ndarray]:
        import tvm

        out = vm["main"](*[tvm.runtime.tensor(np.ascontiguousarray(x)) for x in inputs])
        if hasattr(out, "numpy"):
            return [out.numpy()]
        return [o.numpy() for o in out]

    return run


class Tflm:
    """TFLite Micro (reference kernels) running one model."""

    def __init__(self, model: bytes) -> None:
        from tflite_micro.python.tflite_micro import runtime

        self.interp = runtime.Interpreter.from_bytes(model)
        self.n_outputs = _count_outputs(model)

    def __call__(self, *inputs: np.ndarray) -> list[np.ndarray]:
        for i, x in enumerate(inputs):
            self.interp.set_input(x, i)
        self.interp.invoke()
        return [np.array(self.interp.get_output(j)) for j in range(self.n_outputs)]


def _count_outputs(model: bytes) -> int:
    import tflite

    return int(tflite.Model.GetRootAsModel(model, 0).Subgraphs(0).OutputsLength())


def with_outputs(model: bytes, tensor_indices: list[int]) -> bytes:
    """The same model with its outputs replaced (to expose intermediate tensors, e.g. KWS's logits)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(model, 0))
    m.subgraphs[0].outputs = list(tensor_indices)
    b = flatbuffers.Builder(len(model) + 1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def bit_difference(ref: np.ndarray, ours: np.ndarray) -> int:
    """Max |diff| in LSB for integers; number of differing values (bitwise) for floats."""
    assert ref.shape == ours.shape and ref.dtype == ours.dtype, (ref.shape, ref.dtype, ours.shape, ours.dtype)
    if ref.dtype == np.float32:
        return int(np.count_nonzero(ref.view(np.int32) != ours.view(np.int32)))
    return int(np.abs(ref.astype(np.int64) - ours.astype(np.int64)).max(initial=0))


def random_input(rng: np.random.Generator, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    if dtype == "float32":
        return rng.uniform(-4.0, 4.0, size=shape).astype(np.float32)
    return rng.integers(-128, 128, size=shape).astype(np.int8)
