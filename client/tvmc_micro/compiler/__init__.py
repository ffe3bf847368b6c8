"""The compiler: TFLite/ONNX model -> Model Library Format (contract C2).

`compile_model` is imported lazily so that light modules of this package (targets, naming) do not pull
in TVM.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tvmc_micro.compiler.driver import CompileResult, compile_model

__all__ = ["CompileResult", "compile_model"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from tvmc_micro.compiler import driver

        return getattr(driver, name)
    raise AttributeError(name)
