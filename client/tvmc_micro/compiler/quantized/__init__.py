"""The integer path for quantized TFLite models: int8 activations and weights, int32 accumulation,
TFLite's fixed-point requantisation — bit-exact against TFLite Micro's reference kernels.

`import_tflite_quantized(model_bytes, model_name)` returns a Relax module whose `main` calls integer
PrimFuncs via `call_tir`; `is_quantized_tflite(model_bytes)` says whether a model is a candidate.
"""

from tvmc_micro.compiler.quantized.errors import QuantizedModelError, UnsupportedOp, UnsupportedQuantizedModel
from tvmc_micro.compiler.quantized.importer import import_tflite_quantized, is_quantized_tflite, weight_bytes

__all__ = [
    "QuantizedModelError",
    "UnsupportedOp",
    "UnsupportedQuantizedModel",
    "import_tflite_quantized",
    "is_quantized_tflite",
    "weight_bytes",
]
