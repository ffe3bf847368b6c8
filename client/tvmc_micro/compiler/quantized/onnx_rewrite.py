"""The graph rewrites ONNX Runtime applies to a QDQ model before running it, where they change values.

The integer path reproduces ORT at its default optimisation level. Most of ORT's level-1 rewrites do not
change any value, but `DoubleQDQPairsRemover` does: a chain Q1 -> DQ1 -> Q2 -> DQ2 (each DQ/Q pair with
its own constant scale and zero point, single consumers, no graph outputs) becomes one pair Q1 -> DQ2
whose parameters are recomputed over the intersection of the two ranges. The first pair's producer then
quantises straight to that new grid. `remove_double_qdq` applies the same rewrite to a copy of the model
(after dropping Identity and Dropout, which ORT eliminates first and which often sit in such chains).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

_QTYPES = {np.dtype(np.uint8): (0, 255), np.dtype(np.int8): (-128, 127)}


def remove_double_qdq(model: Any) -> Any:
    """A copy of `model` with ORT's Identity/Dropout elimination and double-QDQ-pair merging applied."""
    m = copy.deepcopy(model)
    graph = m.graph
    while _drop_no_ops(graph) or _merge_one_double_pair(graph):
        pass
    return m


def _consumers(graph: Any) -> dict[str, list[Any]]:
    users: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            if name:
                users.setdefault(name, []).append(node)
    return users


def _graph_outputs(graph: Any) -> set[str]:
    return {o.name for o in graph.output}


def _drop_no_ops(graph: Any) -> bool:
    """Bypass one Identity (or Dropout without a mask output) that does not produce a graph output."""
    outputs = _graph_outputs(graph)
    for node in graph.node:
        if node.op_type not in ("Identity", "Dropout") or node.output[0] in outputs:
            continue
        if node.op_type == "Dropout" and (
            (len(node.output) > 1 and node.output[1]) or (len(node.input) > 2 and node.input[2])
        ):
            continue  # a mask output or a training-mode input: left for the importer to refuse
        src, dst = node.input[0], node.output[0]
        for user in graph.node:
            for k, name in enumerate(user.input):
                if name == dst:
                    user.input[k] = src
        graph.node.remove(node)
        return True
    return False


def _constants(graph: Any) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant" and node.attribute and node.attribute[0].name == "value":
            values[node.output[0]] = numpy_helper.to_array(node.attribute[0].t)
    return values


def _pair_params(q: Any, dq: Any, consts: dict[str, np.ndarray]) -> tuple[np.float32, np.ndarray] | None:
    """(scale, zero point) when Q and DQ use the same constant scalar parameters (ORT's
    IsQDQPairSupported, which also wants an explicit zero point), else None."""
    if len(q.input) < 3 or len(dq.input) < 3:
        return None
    values = []
    for node in (q, dq):
        scale, zp = consts.get(node.input[1]), consts.get(node.input[2])
        if scale is None or zp is None or scale.size != 1 or zp.size != 1:
            return None
        values.append((np.float32(scale.reshape(-1)[0]), zp.reshape(-1)))
    (s1, z1), (s2, z2) = values
    if s1 != s2 or z1.dtype != z2.dtype or z1[0] != z2[0]:
        return None
    return s1, z1


def _merge_one_double_pair(graph: Any) -> bool:
    from onnx import numpy_helper

    users, outputs, consts = _consumers(graph), _graph_outputs(graph), _constants(graph)
    producers = {out: node for node in graph.node for out in node.output}
    for dq1 in graph.node:
        if dq1.op_type != "DequantizeLinear" or dq1.output[0] in outputs:
            continue
        q1 = producers.get(dq1.input[0])
        dq1_users = users.get(dq1.output[0], [])
        if q1 is None or q1.op_type != "QuantizeLinear" or len(dq1_users) != 1:
            continue
        q2 = dq1_users[0]
        if q2.op_type != "QuantizeLinear" or q2.input[0] != dq1.output[0] or q2.output[0] in outputs:
            continue
        q2_users = users.get(q2.output[0], [])
        if len(q2_users) != 1 or q2_users[0].op_type != "DequantizeLinear":
            continue
        if q1.output[0] in outputs or len(users.get(q1.output[0], [])) != 1:
            continue
        dq2 = q2_users[0]
        first, second = _pair_params(q1, dq1, consts), _pair_params(q2, dq2, consts)
        if first is None or second is None or first[1].dtype not in _QTYPES:
            continue
        (s1, z1), (s2, z2) = first, second
        if z1.dtype != z2.dtype:
            continue
        same = (dq1.input[1], dq1.input[2]) == (q2.input[1], q2.input[2]) or (
            z1[0] == z2[0] and abs(float(s1) - float(s2)) < 1e-20
        )
        if not same:
            scale, zero_point = _merged_params(s1, int(z1[0]), s2, int(z2[0]), z1.dtype)
            for node in (q1, dq2):
                tag = f"DoubleQDQRemoved_{node.name or node.output[0]}"
                graph.initializer.append(numpy_helper.from_array(np.array(scale, np.float32), f"{tag}_scale"))
                graph.initializer.append(numpy_helper.from_array(np.array(zero_point, z1.dtype), f"{tag}_zp"))
                node.input[1], node.input[2] = f"{tag}_scale", f"{tag}_zp"
        dq2.input[0] = q1.output[0]
        graph.node.remove(q2)
        graph.node.remove(dq1)
        return True
    return False


def _merged_params(
    s1: np.float32, z1: int, s2: np.float32, z2: int, dtype: np.dtype
) -> tuple[np.float32, int]:
    """FindNewZeroPointAndScale: the intersection of both real ranges spread over the type's range, in
    float32; the zero point rounded half away from zero (std::round)."""
    f = np.float32
    qmin, qmax = _QTYPES[np.dtype(dtype)]
    real_min = max(f(qmin - z1) * s1, f(qmin - z2) * s2)
    real_max = min(f(qmax - z1) * s1, f(qmax - z2) * s2)
    scale = f(f(real_max - real_min) / f(qmax - qmin))
    shifted = float(f(f(qmin) - f(real_min / scale)))
    whole = float(np.trunc(shifted))
    if abs(shifted - whole) >= 0.5:  # exact in double for a float32 value
        whole += float(np.sign(shifted))
    return scale, int(whole)
