"""Schedule knobs: the hand-set config reproduces the untuned kernels byte for byte; other configs change
the C and keep the outputs (the end-to-end tests run them)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from tests.conftest import model_path

pytestmark = pytest.mark.slow


def _lib0(tar: Path) -> bytes:
    with tarfile.open(tar) as t:
        (member,) = [m for m in t.getmembers() if m.name.endswith("_lib0.c")]
        f = t.extractfile(member)
        assert f is not None
        return f.read()


def test_hand_set_config_is_byte_identical_and_others_differ(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.tune.tasks import extract_tasks

    model = model_path("hello_world_float.tflite")
    target = "c -mcpu=cortex-m4"
    mt = extract_tasks(model, target)
    assert len(mt.tasks) == 3 and all(t.space for t in mt.tasks)
    assert set(mt.function_task) == {f for t in mt.tasks for f in t.functions}
    compile_model(model, tmp_path / "plain.tar", target=target)
    defaults = {t.key: t.default for t in mt.tasks}
    compile_model(model, tmp_path / "same.tar", target=target, kernel_configs=defaults)
    assert _lib0(tmp_path / "plain.tar") == _lib0(tmp_path / "same.tar")
    other = {t.key: {**t.default, "tile_f": 2} for t in mt.tasks if "tile_f" in t.space}
    compile_model(model, tmp_path / "other.tar", target=target, kernel_configs=other)
    assert _lib0(tmp_path / "plain.tar") != _lib0(tmp_path / "other.tar")


def test_a_config_that_does_not_fit_falls_back_to_the_hand_set_tile(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.tune.tasks import extract_tasks

    model = model_path("hello_world_float.tflite")
    mt = extract_tasks(model, "c")
    compile_model(model, tmp_path / "plain.tar", target="c")
    bad = {t.key: {"tile_f": 7} for t in mt.tasks}  # 7 divides no extent of this model
    compile_model(model, tmp_path / "bad.tar", target="c", kernel_configs=bad)
    assert _lib0(tmp_path / "plain.tar") == _lib0(tmp_path / "bad.tar")


def _lib0_text(tar: Path) -> str:
    return _lib0(tar).decode()


def test_int8_c_kernel_knobs(tmp_path: Path) -> None:
    """The DSP C kernels' knobs (conv k_unroll, depthwise dw_wide/dw_rowbuf, fc_block): the hand-set
    config is byte-identical, each other value changes the #define it names, and a config outside the
    space (a record file is data) keeps the hand-set kernel."""
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.tune.tasks import extract_tasks

    model = model_path("kws_ref_model.tflite")
    target = "c -mcpu=cortex-m4"
    mt = extract_tasks(model, target)
    knobs = {k for t in mt.tasks for k in t.space}
    assert {"k_unroll", "dw_wide", "dw_rowbuf", "fc_block"} <= knobs, knobs
    compile_model(model, tmp_path / "plain.tar", target=target)
    same = {t.key: t.default for t in mt.tasks if t.space}
    compile_model(model, tmp_path / "same.tar", target=target, kernel_configs=same)
    assert _lib0(tmp_path / "plain.tar") == _lib0(tmp_path / "same.tar")
    other = {}
    for t in mt.tasks:
        if t.space:
            other[t.key] = {k: next(v for v in vals if v != t.default[k]) for k, vals in t.space.items()}
    compile_model(model, tmp_path / "other.tar", target=target, kernel_configs=other)
    plain, changed = _lib0_text(tmp_path / "plain.tar"), _lib0_text(tmp_path / "other.tar")
    for define in ("TVMC_CONV_UNROLL_FULL", "TVMC_DW_WIDE", "TVMC_DW_ROWBUF", "TVMC_FC_BLOCK"):
        before = sorted(x for x in plain.splitlines() if x.startswith(f"#define {define} "))
        after = sorted(x for x in changed.splitlines() if x.startswith(f"#define {define} "))
        assert before and before != after, define
    bad = {t.key: {"fc_block": 5, "k_unroll": 3, "no_such_knob": 1} for t in mt.tasks if t.space}
    compile_model(model, tmp_path / "bad.tar", target=target, kernel_configs=bad)
    assert _lib0(tmp_path / "plain.tar") == _lib0(tmp_path / "bad.tar")


def test_float_depthwise_tile_knob() -> None:
    """Float depthwise convolutions are not tiled by hand; tuning offers a pixels x channels tile whose
    hand-set value (1 x 1) is the untiled kernel, and a tile the search picks makes a register tile."""
    import tvm_ffi
    from tvmc_micro.compiler import driver
    from tvmc_micro.compiler.schedule import REGISTER_TILES_ATTR, schedule_primfunc, tuning_space

    model = model_path("vww_96_float.tflite")
    c = driver.Compilation(model, model.with_suffix(".unused.tar"), driver.CompileOptions(target="c"), print)
    for name, stage in driver.PIPELINE:
        if name == "codegen":
            break
        stage(c)
    depthwise = []
    for gv, func in c.flat.functions.items():
        fn = gv.name_hint
        space, default = tuning_space(func)
        if default.get("tile_f") == 1 and default.get("tile_g") == 1 and 2 in space.get("tile_g", []):
            depthwise.append((fn, func, space))
    assert len(depthwise) >= 5, [fn for fn, _, _ in depthwise]
    fn, func, space = depthwise[0]
    plain = schedule_primfunc(func)
    assert REGISTER_TILES_ATTR not in (plain.attrs or {})
    same = schedule_primfunc(func, {"tile_f": 1, "tile_g": 1})
    assert tvm_ffi.structural_equal(plain, same)
    tiled = schedule_primfunc(func, {"tile_f": 4, "tile_g": 2})
    assert REGISTER_TILES_ATTR in (tiled.attrs or {}), fn
    assert space.get("pad_whole") == [0, 1] and 3 in space.get("unroll_k", []), space
    # pad_whole: the padding stays a block of its own, computed whole (not inlined as bounds checks).
    assert not _blocks(tiled, "pad")
    whole = schedule_primfunc(func, {"tile_f": 4, "tile_g": 2, "pad_whole": 1, "unroll_k": 3})
    assert _blocks(whole, "pad") and REGISTER_TILES_ATTR in (whole.attrs or {})
    assert whole.script().count("if_then_else") == 1, (
        "a bounds check is left in the taps (only the pad has one)"
    )


def _blocks(func: object, prefix: str) -> list[str]:
    from tvm import s_tir

    sch = s_tir.Schedule(func)
    names = [sch.get(b).name_hint for b in sch.get_child_blocks(sch.get_sblock("root"))]
    return [n for n in names if n.startswith(prefix)]
