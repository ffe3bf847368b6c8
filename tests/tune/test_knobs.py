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
