"""More DSP C kernels (compiler/quantized/ckernels.py): per-channel requantisation with channels outside
tvmc_rqz's domain (dead channels of real models: right shifts up to 31, zero multipliers, a shift of 1),
generated straight from specs and compared with numpy on the host under UBSan."""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from test_q_ckernels import GEOMS, _check_generated, _spec

pytestmark = pytest.mark.usefixtures("tvm_available")


@pytest.mark.parametrize("kind", ["conv", "depthwise"])
def test_dead_channels_stay_on_the_fast_kernel(kind: str, tmp_path: Path) -> None:
    """Most channels out of tvmc_rqz's domain (as in MLPerf Tiny's VWW, where 100 of 128 are): the kernel
    branches per channel instead of leaving for a slow loop, and stays bit-exact."""
    from tvmc_micro.compiler.quantized import ckernels

    rng = np.random.default_rng(zlib.crc32(f"dead/{kind}".encode()))
    geom = GEOMS[kind]
    oc = geom["out_shape"][3]
    mults = [int(v) for v in rng.integers(1 << 30, 1 << 31, size=oc)]
    shifts = [int(v) for v in rng.integers(-9, -2, size=oc)]
    # right shift 31, 23, a zero multiplier with TFLite's shift 0, a shift of 1; the rest in the domain
    shifts[0], shifts[1] = -31, -23
    mults[2], shifts[2] = 0, 0
    shifts[3] = -1
    spec = _spec("conv2d" if kind == "conv" else kind, GEOMS[kind], mults, shifts, (-7, 5), (-128, 127))
    assert ckernels._rq_mode(spec) == "table"
    gen = ckernels.generate(json.dumps(spec), "kern", ["int8", "int8", "int32", "int32", "int8", "int8"])
    assert gen is not None and "_exact(" not in gen.source and "TVMC_RQZ_OK(m, e)" in gen.source
    _check_generated(spec, mults, shifts, rng, tmp_path)
