"""A gather whose indices arrive at run time (an embedding lookup) never reads outside its table.

TVM's frontends emit an unchecked `table[index]`; relax_passes._bounded_take turns it into a wrapped
index: every valid index (negative ones too) gives the reference's row, an index out of range gives some
row of the table instead of a read outside it. Run under ASan/UBSan and the poisoning harness; the
valid indices are compared with onnxruntime. Constant indices out of range are refused by name."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from compiler_harness import build, extract
from onnx import TensorProto, helper, numpy_helper

ROWS = 10


def _embedding(path: Path) -> Path:
    """Gather(table[10, 4], idx) with idx a graph input."""
    table = np.arange(ROWS * 4, dtype=np.float32).reshape(ROWS, 4) * 0.5 - 3.0
    inits = [numpy_helper.from_array(table, "table")]
    inputs = [helper.make_tensor_value_info("idx", TensorProto.INT64, [5])]
    nodes = [
        helper.make_node("Gather", ["table", "idx"], ["g"], axis=0),
        helper.make_node("Identity", ["g"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes, "emb", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 4])], inits
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), path)
    return path


def test_run_time_indices_stay_inside_the_table(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model

    source = _embedding(tmp_path / "emb.onnx")
    compile_model(source, tmp_path / "emb.tar")
    built = build(extract(tmp_path / "emb.tar", tmp_path / "emb"), sanitize=True, extra_cflags=["-O0"])
    valid = np.array([0, 3, 9, -1, -10], dtype=np.int64)
    hostile = np.array([10, -11, 1 << 40, -(1 << 50), 123_456_789], dtype=np.int64)
    got_valid, got_hostile = (out[0] for out in built.run([[valid], [hostile]], tmp_path))
    want = ort.InferenceSession(str(source)).run(None, {"idx": valid})[0]
    np.testing.assert_array_equal(got_valid, want)
    table = np.arange(ROWS * 4, dtype=np.float32).reshape(ROWS, 4) * 0.5 - 3.0
    for row in got_hostile:  # each an actual row of the table, not poison or memory beyond it
        assert any(np.array_equal(row, t) for t in table), row


def test_constant_indices_out_of_range_are_refused(tmp_path: Path) -> None:
    """Gather(x, [0, 1, 2, 3, 12]) from a [10, 4] input: the frontend cannot fold it, the pass refuses it."""
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.errors import TvmcError

    graph = helper.make_graph(
        [helper.make_node("Gather", ["x", "idx"], ["y"], axis=0)],
        "gather_const",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [ROWS, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 4])],
        [numpy_helper.from_array(np.array([0, 1, 2, 3, 12], dtype=np.int64), "idx")],
    )
    source = tmp_path / "bad.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), source)
    with pytest.raises(TvmcError, match=r"constant indices reach 0\.\.12 but the table has 10 entries"):
        compile_model(source, tmp_path / "bad.tar")
