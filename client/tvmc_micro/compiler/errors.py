"""Compiler errors: each names the problem in the user's terms and says what to try."""

from __future__ import annotations

from tvmc_micro.errors import TvmcError


class ModelFileError(TvmcError):
    """The model file is missing, truncated, garbage, or not the format its name claims."""


class UnsupportedOperatorsError(TvmcError):
    """The model uses operators the frontend (or our pipeline) cannot convert."""


class InputShapeError(TvmcError):
    """Input shapes are missing (symbolic dimensions) or `--input-shapes` is malformed."""


class TargetError(TvmcError):
    """The `--target` string cannot be turned into a TVM target."""


class CompileOptionError(TvmcError):
    """A compile option (output path, pass config, layout, model name) is unusable."""


class LoweringError(TvmcError):
    """TVM could not lower the model, or the lowered graph holds something our executor cannot run."""
