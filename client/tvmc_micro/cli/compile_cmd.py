"""`tvmc compile MODEL -o model.tar`: TFLite/ONNX to Model Library Format."""

from __future__ import annotations

import argparse


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("compile", help="compile a TFLite or ONNX model into Model Library Format (MLF)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tvmc_micro.errors import TvmcError

    raise TvmcError("tvmc compile is not implemented yet")
