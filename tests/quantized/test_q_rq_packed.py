"""Per-channel requantisation tables laid out at compile time (TVMC_RQ_PACKED of csrc/tvmc_epilogue.inc):
the layout against the epilogue's own high-word formula over the whole domain, its guards, which kernels
use it and how the executor rewrites a shared table. The kernels' exactness with packed tables is checked
by the C unit tests (conv_j, dw_i, dw_j, fc_p in test_q_csrc.py) and against numpy by test_q_ckernels*."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest


def _khi(zp: int, e: int) -> int:
    """TVMC_KHI(e) as C computes it: (int32)((uint32)(2 zp + 1) << (e - 2))."""
    v = (((2 * zp + 1) & 0xFFFFFFFF) << (e - 2)) & 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def test_layout_is_the_epilogue_high_word_over_the_domain() -> None:
    from tvmc_micro.compiler.quantized import ckernels

    shifts = np.arange(2, 23, dtype=np.int8)
    for zp in (-128, -1, 0, 5, 127):
        laid = ckernels._rq_right_layout(shifts.size, zp)(shifts)
        assert laid.dtype == np.int32 and laid.shape == (shifts.size, 2)
        assert laid[:, 0].tolist() == [_khi(zp, int(e)) for e in shifts]
        assert laid[:, 1].tolist() == [int(e) - 1 for e in shifts]


def test_layout_checks_its_input() -> None:
    from tvmc_micro.compiler.errors import LoweringError
    from tvmc_micro.compiler.quantized import ckernels

    with pytest.raises(LoweringError, match="a requantisation table of 3 shifts, the kernel expects 4"):
        ckernels._rq_right_layout(4, 0)(np.array([3, 4, 5], np.int8))
    with pytest.raises(LoweringError, match=r"right shifts \[1, 23\] outside tvmc_rqz's domain"):
        ckernels._rq_right_layout(3, 0)(np.array([1, 5, 23], np.int8))


def _fc_spec(in_domain: bool, per_channel: bool = True) -> dict[str, Any]:
    rq = {"in_domain": in_domain, "per_channel": per_channel, "has_left": False, "mult": 0, "left": 0,
          "right": 0}  # fmt: skip
    if not per_channel:
        rq.update(mult=1 << 30, right=4)
    return {"kind": "fully_connected", "batches": 1, "depth": 8, "units": 5, "out_zp": -3, "requant": rq,
            "act_range": [-128, 127]}  # fmt: skip


def test_only_in_domain_tables_are_packed() -> None:
    from tvmc_micro.compiler.quantized import ckernels

    dtypes = ["int8", "int8", "int32", "int32", "int8", "int8"]
    packed = ckernels.generate(json.dumps(_fc_spec(True)), "f", dtypes)
    assert packed is not None and packed.rq_layout is not None
    assert packed.rq_layout[0] == 4 and packed.param_dtypes[4] == "int32"
    assert "#define TVMC_RQ_PACKED 1\n" in packed.source and "int32_t* rq_right" in packed.source
    per_tensor = ["int8", "int8", "int32", "int8"]
    for spec, types in ((_fc_spec(False), dtypes), (_fc_spec(True, per_channel=False), per_tensor)):
        plain = ckernels.generate(json.dumps(spec), "f", types)
        assert plain is not None and plain.rq_layout is None and plain.param_dtypes == types
        assert "#define TVMC_RQ_PACKED 0\n" in plain.source


def _graph() -> tuple[Any, int, int]:
    from tvmc_micro.compiler.executor import ExecutorGraph

    g = ExecutorGraph(tensors=[], calls=[], inputs=[], outputs=[])
    x = g.add(shape=(4,), dtype="int8", kind="input", name="x")
    r = g.add(shape=(2,), dtype="int8", kind="constant", name="r", constant=np.array([3, 22], np.int8))
    return g, x, r


def test_a_shared_table_is_rewritten_beside_the_original() -> None:
    """Two kernels read one rq_right constant, only one of them packed: it gets its own laid-out copy."""
    from tvmc_micro.compiler.executor import KernelCall, apply_weight_layouts
    from tvmc_micro.compiler.quantized import ckernels
    from tvmc_micro.compiler.tir_codegen import LoweredKernel

    g, x, r = _graph()
    o1 = g.add(shape=(2,), dtype="int8", kind="intermediate", name="o1")
    o2 = g.add(shape=(2,), dtype="int8", kind="output", name="o2")
    g.calls.append(KernelCall("a", [x, r, o1], [o1]))
    g.calls.append(KernelCall("b", [o1, r, o2], [o2]))
    laid = (1, ckernels._rq_right_layout(2, 1))
    packed = LoweredKernel("k_a", ["int8", "int32", "int8"], [], rq_layout=laid)
    plain = LoweredKernel("k_b", ["int8", "int8", "int8"], [])
    apply_weight_layouts(g, {"a": packed, "b": plain})
    new = g.calls[0].args[1]
    assert new != r and g.calls[1].args[1] == r
    assert g.tensors[r].constant.tolist() == [3, 22]
    assert g.tensors[new].dtype == "int32" and g.tensors[new].constant.tolist() == [[3 * 2, 2], [3 << 20, 21]]


def test_a_non_constant_table_is_refused() -> None:
    from tvmc_micro.compiler.errors import LoweringError
    from tvmc_micro.compiler.executor import KernelCall, apply_weight_layouts
    from tvmc_micro.compiler.quantized import ckernels
    from tvmc_micro.compiler.tir_codegen import LoweredKernel

    g, x, _ = _graph()
    t = g.add(shape=(2,), dtype="int8", kind="intermediate", name="t")
    o = g.add(shape=(2,), dtype="int8", kind="output", name="o")
    g.calls.append(KernelCall("a", [x, t, o], [o]))
    laid = (1, ckernels._rq_right_layout(2, 0))
    kernel = LoweredKernel("k_a", ["int8", "int32", "int8"], [], rq_layout=laid)
    with pytest.raises(LoweringError, match=r"argument 1 \(t\).*not a constant") as info:
        apply_weight_layouts(g, {"a": kernel})
    assert "requantisation tables are not constants" in str(info.value)
