"""Errors of the integer importer, shown to the user by `tvmc compile` (message + hint)."""

from __future__ import annotations

from dataclasses import dataclass

from tvmc_micro.errors import TvmcError


@dataclass(frozen=True)
class UnsupportedOp:
    """One operator the integer path cannot compile, located and described."""

    index: int  # position in the model's operator list
    op_name: str  # TFLite builtin name, e.g. CONV_2D
    quantization: str  # its tensors' quantisation (per-tensor/per-channel, zero points)
    reason: str

    def __str__(self) -> str:
        return f"operator #{self.index} {self.op_name}: {self.reason} [{self.quantization}]"


class UnsupportedQuantizedModel(TvmcError):
    """The quantized model uses operators (or quantisation schemes) the integer path cannot compile.

    Every unsupported operator is listed at once, so one compile attempt tells the whole story.
    """

    def __init__(self, problems: list[UnsupportedOp]) -> None:
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"{len(self.problems)} operator(s) cannot be compiled in integer arithmetic:\n{lines}",
            "re-quantize the model with int8 per-tensor activations and int8 weights (per-channel or "
            "per-tensor, zero point 0), or compile through the float path with --allow-float-fallback",
        )


class QuantizedModelError(TvmcError):
    """The bytes are not a readable TFLite model (the integer importer never guesses)."""
