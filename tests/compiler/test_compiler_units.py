"""Unit tests of the pure-Python parts: arena planner, target parsing, names, --input-shapes."""

from __future__ import annotations

import random

import pytest
from tvmc_micro.compiler.errors import InputShapeError, TargetError
from tvmc_micro.compiler.graph_info import parse_input_shapes
from tvmc_micro.compiler.naming import is_c_identifier, sanitize_c_identifier, unique_names
from tvmc_micro.compiler.planner import ALIGNMENT, Interval, check_plan, plan_arena
from tvmc_micro.compiler.targets import parse_target


def test_planner_reuses_dead_memory_across_dtypes() -> None:
    # a (call 0-1) and c (call 2-3) never live together: they share bytes whatever their dtypes.
    ivs = [Interval(0, 4000, 0, 1), Interval(1, 1000, 1, 2), Interval(2, 4000, 2, 3)]
    plan = plan_arena(ivs)
    check_plan(ivs, plan)
    assert plan.offsets[0] == plan.offsets[2]
    assert plan.size == 5008  # 4000 + 1000 rounded up to 16


def test_planner_inplace_only_when_input_dies_at_that_call() -> None:
    ivs = [Interval(0, 64, 0, 1), Interval(1, 64, 1, 2), Interval(2, 64, 2, 3)]
    plan = plan_arena(ivs, inplace=[(1, 0), (2, 1)])
    check_plan(ivs, plan)
    assert plan.size == 64 and len(set(plan.offsets.values())) == 1
    # Input still read after the call: no in-place.
    ivs = [Interval(0, 64, 0, 2), Interval(1, 64, 1, 2)]
    plan = plan_arena(ivs, inplace=[(1, 0)])
    check_plan(ivs, plan)
    assert plan.size == 128


def test_planner_keeps_two_operands_read_at_one_step_apart() -> None:
    # out = a / b at step 0 with both operands model inputs (born and read at step 0) and both declared
    # in place with out: out may take a's bytes, but then b must not join them (it is read at step 0 too).
    a, b, out = Interval(0, 64, 0, 0), Interval(1, 64, 0, 0), Interval(2, 64, 0, 1)
    plan = plan_arena([a, b, out], inplace=[(2, 0), (2, 1)])
    assert plan.offsets[0] != plan.offsets[1]
    assert plan.offsets[2] == plan.offsets[0] and plan.size == 128


def test_planner_inplace_with_lead_shifts_the_output() -> None:
    # A depthwise-like chain: 0 -> 1 written 64 B before its input, then 1 -> 2 exactly over it.
    ivs = [Interval(0, 8000, 0, 1), Interval(1, 8000, 1, 2), Interval(2, 8000, 2, 3)]
    plan = plan_arena(ivs, inplace=[(1, 0, 64), (2, 1, 0)])
    check_plan(ivs, plan)
    assert plan.offsets[1] == plan.offsets[0] - 64 and plan.offsets[2] == plan.offsets[1]
    assert min(plan.offsets.values()) == 0 and plan.size == 8064
    # A lead that is not a multiple of the alignment is not a placement the planner can make.
    plan = plan_arena(ivs[:2], inplace=[(1, 0, 8)])
    assert plan.size == 16000


def test_planner_random_lifetimes_never_overlap() -> None:
    rng = random.Random(3)
    for _ in range(200):
        ivs = []
        for k in range(rng.randint(1, 25)):
            s = rng.randint(0, 20)
            ivs.append(Interval(k, rng.randint(1, 5000), s, s + rng.randint(0, 6)))
        plan = plan_arena(ivs)
        check_plan(ivs, plan)
        assert all(o % ALIGNMENT == 0 for o in plan.offsets.values())
        # Never worse than stacking everything, never better than the busiest call.
        peak = max(sum(-(-iv.size // 16) * 16 for iv in ivs if iv.start <= t <= iv.end) for t in range(27))
        assert peak <= plan.size <= sum(-(-iv.size // 16) * 16 for iv in ivs)


def test_check_plan_catches_overlap() -> None:
    ivs = [Interval(0, 64, 0, 1), Interval(1, 64, 1, 2)]
    plan = plan_arena(ivs)
    plan.offsets[1] = plan.offsets[0]
    with pytest.raises(AssertionError):
        check_plan(ivs, plan)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("c", {"kind": "c", "keys": ["cpu"]}),
        ("c -mcpu=cortex-m4", {"kind": "c", "mcpu": "cortex-m4", "keys": ["arm_cpu", "cpu"]}),
        ("c -mcpu=cortex-m7", {"kind": "c", "mcpu": "cortex-m7", "keys": ["arm_cpu", "cpu"]}),
        ("c  -mcpu=cortex-m3", {"kind": "c", "mcpu": "cortex-m3", "keys": ["arm_cpu", "cpu"]}),
        ("c -march=armv7e-m", {"kind": "c", "march": "armv7e-m", "keys": ["cpu"]}),
    ],
)
def test_parse_target(text: str, expected: dict) -> None:
    parsed = parse_target(text)
    assert parsed.target == expected
    import tvm

    tvm.target.Target(parsed.target)  # TVM 0.27 accepts what we produce


def test_parse_target_rejects_empty() -> None:
    with pytest.raises(TargetError, match="empty"):
        parse_target("  ")


def test_names() -> None:
    assert sanitize_c_identifier("serving_default_dense_input:0") == "serving_default_dense_input_0"
    assert sanitize_c_identifier("9lives") == "v_9lives"
    assert sanitize_c_identifier("int") == "v_int"
    assert sanitize_c_identifier("::") == "x"
    assert unique_names(["a:0", "a/0", "a_0"]) == ["a_0", "a_0_1", "a_0_2"]
    assert is_c_identifier("kws") and not is_c_identifier("float") and not is_c_identifier("a-b")


def test_parse_input_shapes() -> None:
    assert parse_input_shapes(["input_1:[1,49,10,1]"]) == {"input_1": [1, 49, 10, 1]}
    assert parse_input_shapes(["a:0:[1, 2]", "b:[3]"]) == {"a:0": [1, 2], "b": [3]}
    assert parse_input_shapes(["a:[1,2] b:[3]"]) == {"a": [1, 2], "b": [3]}
    assert parse_input_shapes(None) == {}
    with pytest.raises(InputShapeError, match="not positive"):
        parse_input_shapes(["a:[1,-1]"])
    with pytest.raises(InputShapeError, match="cannot parse"):
        parse_input_shapes(["a=[1]"])
