"""Compile each reference model once per session and build it against the generic harness."""

from __future__ import annotations

from pathlib import Path

import pytest
from compiler_harness import BuiltModel, build, extract

# (fixture key, model file, compile options). int8 models are compiled through the float (QDQ) path on
# purpose here: the integer path has its own tests.
MODELS = {
    "hello_float_tflite": ("hello_world_float.tflite", {}),
    "hello_float_onnx": ("hello_world_float.onnx", {}),
    "resnet_tflite": ("pretrainedResnet.tflite", {}),
    "resnet_onnx": ("pretrainedResnet.onnx", {}),
    "resnet_onnx_nhwc": ("pretrainedResnet.onnx", {"desired_layout": "NHWC"}),
    "hello_int8_qdq": ("hello_world_int8.tflite", {"integer_path": False}),
    "kws_qdq": ("kws_ref_model.tflite", {"integer_path": False}),
    "hello_int8": ("hello_world_int8.tflite", {}),
    "kws_int8": ("kws_ref_model.tflite", {}),
    "kws_qdq_m4": (
        "kws_ref_model.tflite",
        {"integer_path": False, "target": "c -mcpu=cortex-m4", "model_name": "kws"},
    ),
}


class CompiledModels:
    def __init__(self, root: Path, models_dir: Path) -> None:
        self.root = root
        self.models_dir = models_dir
        self._tars: dict[str, Path] = {}
        self._built: dict[str, BuiltModel] = {}
        self.compile_seconds: dict[str, float] = {}

    def tar(self, key: str) -> Path:
        if key not in self._tars:
            from tvmc_micro.compiler import compile_model

            file, options = MODELS[key]
            out = self.root / f"{key}.tar"
            src = self.models_dir / file
            if not src.is_file():
                pytest.skip(f"reference model {src} is absent")
            result = compile_model(src, out, **options)  # type: ignore[arg-type]
            self.compile_seconds[key] = result.timing["total"]
            self._tars[key] = out
        return self._tars[key]

    def mlf_dir(self, key: str) -> Path:
        d = self.root / key
        if not d.exists():
            extract(self.tar(key), d)
        return d

    def built(self, key: str) -> BuiltModel:
        if key not in self._built:
            self._built[key] = build(self.mlf_dir(key))
        return self._built[key]


@pytest.fixture(scope="session")
def compiled(tmp_path_factory: pytest.TempPathFactory, models_dir: Path) -> CompiledModels:
    return CompiledModels(tmp_path_factory.mktemp("mlf"), models_dir)
