"""Compile each stand-in model once per session (host C target and Cortex-M4), build it against the
generic MLF harness, and run the reference interpreters (TFLite Micro for int8, LiteRT for float)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from model_zoo import MODELS, ZooModel

from tests.compiler import compiler_harness as harness


def samples_for(model: ZooModel, count: int, seed: int = 0) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        row = []
        for dtype, shape in zip(model.input_dtypes, model.input_shapes, strict=True):
            if dtype == "float32":
                row.append(rng.uniform(-1, 1, size=shape).astype(np.float32))
            elif dtype == "uint8":
                row.append(rng.integers(0, 256, size=shape).astype(np.uint8))
            else:
                row.append(rng.integers(-128, 128, size=shape).astype(np.int8))
        out.append(row)
    return out


def reference(model_bytes: bytes, is_float: bool, samples: list[list[np.ndarray]]) -> list[list[np.ndarray]]:
    if is_float:
        from ai_edge_litert.interpreter import Interpreter

        lite = Interpreter(model_content=model_bytes)
        lite.allocate_tensors()
        results = []
        for s in samples:
            for det, a in zip(lite.get_input_details(), s, strict=True):
                lite.set_tensor(det["index"], a)
            lite.invoke()
            results.append([lite.get_tensor(o["index"]).copy() for o in lite.get_output_details()])
        return results
    import tflite
    from tflite_micro.python.tflite_micro import runtime

    n_out = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0).OutputsLength()
    tflm = runtime.Interpreter.from_bytes(model_bytes)
    results = []
    for s in samples:
        for i, a in enumerate(s):
            tflm.set_input(a, i)
        tflm.invoke()
        results.append([np.array(tflm.get_output(j)) for j in range(n_out)])
    return results


class ZooCache:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._models: dict[str, ZooModel] = {}
        self._tars: dict[tuple[str, str, bool], Path] = {}
        self._built: dict[str, harness.BuiltModel] = {}

    def model(self, key: str) -> ZooModel:
        if key not in self._models:
            self._models[key] = MODELS[key]()
        return self._models[key]

    def tar(self, key: str, target: str = "c", final_only: bool = False) -> Path:
        """The MLF of the model (every intermediate exposed, or only its own outputs)."""
        k = (key, target, final_only)
        if k not in self._tars:
            from tvmc_micro.compiler import compile_model

            m = self.model(key)
            tag = f"{key}_{len(self._tars)}"
            src = self.root / f"{tag}.tflite"
            src.write_bytes(m.final_only() if final_only else m.model)
            self._tars[k] = self.root / f"{tag}.tar"
            compile_model(src, self._tars[k], target=target, model_name=key)
        return self._tars[k]

    def metadata(self, key: str, target: str = "c", final_only: bool = False) -> dict[str, Any]:
        import json
        import tarfile

        with tarfile.open(self.tar(key, target, final_only)) as tar:
            f = tar.extractfile("metadata.json")
            assert f is not None
            return json.loads(f.read())["models"][0]  # type: ignore[no-any-return]

    def built(self, key: str) -> harness.BuiltModel:
        """Host build (gcc) of the every-tensor MLF."""
        if key not in self._built:
            d = self.root / f"{key}_mlf"
            self._built[key] = harness.build(harness.extract(self.tar(key), d))
        return self._built[key]
