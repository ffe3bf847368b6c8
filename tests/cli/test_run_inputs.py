"""Inputs for `tvmc run`: .npz files checked against the model's metadata, or filled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tvmc_micro.errors import TvmcError
from tvmc_micro.runner import format_top, make_inputs

KWS_LIKE = [
    {
        "name": "serving_default_input_1:0",
        "c_name": "serving_default_input_1_0",
        "shape": [1, 49, 10, 1],
        "dtype": "int8",
        "size_bytes": 490,
        "quantization": {"scale": 0.5, "zero_point": -10},
    }
]
FLOAT_IN = [{"name": "x", "c_name": "x", "shape": [1, 4], "dtype": "float32", "size_bytes": 16}]


def _npz(tmp_path: Path, **arrays: np.ndarray) -> str:
    path = tmp_path / "in.npz"
    np.savez(path, **arrays)
    return str(path)


def test_reads_by_tensor_name_or_c_name(tmp_path: Path) -> None:
    data = np.arange(490, dtype=np.int16).astype(np.int8).reshape(1, 49, 10, 1)
    (got,) = make_inputs(KWS_LIKE, _npz(tmp_path, **{"serving_default_input_1:0": data}))
    assert got.dtype == np.int8 and np.array_equal(got, data)
    (got,) = make_inputs(KWS_LIKE, _npz(tmp_path, serving_default_input_1_0=data))
    assert np.array_equal(got, data)


def test_missing_input_names_what_the_model_wants(tmp_path: Path) -> None:
    two = [*FLOAT_IN, {"name": "y", "c_name": "y", "shape": [2], "dtype": "int8", "size_bytes": 2}]
    with pytest.raises(TvmcError, match=r"no array for input 'y' int8\[2\]") as err:
        make_inputs(two, _npz(tmp_path, x=np.zeros((1, 4), np.float32)))
    assert "--fill-mode" in (err.value.hint or "")


def test_extra_arrays_are_named(tmp_path: Path) -> None:
    with pytest.raises(TvmcError, match="no input for: 'bogus'") as err:
        make_inputs(FLOAT_IN, _npz(tmp_path, x=np.zeros((1, 4), np.float32), bogus=np.zeros(3)))
    assert "'x' float32[1, 4]" in (err.value.hint or "")


def test_wrong_shape_says_both_shapes(tmp_path: Path) -> None:
    with pytest.raises(TvmcError, match=r"shape \[2, 4\], the model needs \[1, 4\]"):
        make_inputs(FLOAT_IN, _npz(tmp_path, x=np.zeros((2, 4), np.float32)))


def test_squeezable_shape_is_reshaped(tmp_path: Path) -> None:
    data = np.ones((49, 10), np.int8)
    (got,) = make_inputs(KWS_LIKE, _npz(tmp_path, **{"serving_default_input_1:0": data}))
    assert got.shape == (1, 49, 10, 1)


def test_float_for_quantized_input_is_quantized(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = np.full((1, 49, 10, 1), 2.0, np.float32)
    (got,) = make_inputs(KWS_LIKE, _npz(tmp_path, **{"serving_default_input_1:0": data}))
    assert got.dtype == np.int8 and int(got.flat[0]) == -6  # 2.0 / 0.5 + (-10)
    assert "quantizing float input" in capsys.readouterr().err


def test_integers_that_fit_are_cast_and_others_refused(tmp_path: Path) -> None:
    ok = np.full((1, 49, 10, 1), 100, np.int64)
    (got,) = make_inputs(KWS_LIKE, _npz(tmp_path, **{"serving_default_input_1:0": ok}))
    assert got.dtype == np.int8
    bad = np.full((1, 49, 10, 1), 300, np.int64)
    with pytest.raises(TvmcError, match="is int64, the model needs int8"):
        make_inputs(KWS_LIKE, _npz(tmp_path, **{"serving_default_input_1:0": bad}))


def test_float_quantized_needs_quantization_params(tmp_path: Path) -> None:
    meta = [dict(KWS_LIKE[0], quantization=None)]
    with pytest.raises(TvmcError, match="is float32, the model needs int8"):
        make_inputs(
            meta, _npz(tmp_path, **{"serving_default_input_1:0": np.zeros((1, 49, 10, 1), np.float32)})
        )


def test_unreadable_and_missing_files(tmp_path: Path) -> None:
    with pytest.raises(TvmcError, match="does not exist"):
        make_inputs(FLOAT_IN, str(tmp_path / "nope.npz"))
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(TvmcError, match=r"cannot read .* as \.npz"):
        make_inputs(FLOAT_IN, str(garbage))


def test_fill_modes() -> None:
    (z,) = make_inputs(KWS_LIKE, None, "zeros")
    (o,) = make_inputs(KWS_LIKE, None, "ones")
    (r1,) = make_inputs(KWS_LIKE, None, "random", seed=3)
    (r2,) = make_inputs(KWS_LIKE, None, "random", seed=3)
    assert not z.any() and (o == 1).all() and np.array_equal(r1, r2) and r1.dtype == np.int8
    assert r1.min() < -64 and r1.max() > 64  # spans the int8 range
    (f,) = make_inputs(FLOAT_IN, None, "random", seed=1)
    assert f.dtype == np.float32 and -1.0 <= f.min() and f.max() <= 1.0


def test_format_top_dequantizes() -> None:
    meta = [
        {"name": "out", "shape": [1, 4], "dtype": "int8", "quantization": {"scale": 0.5, "zero_point": 0}}
    ]
    text = format_top({"out": np.array([[1, 9, -3, 4]], np.int8)}, meta, 2)
    lines = text.splitlines()
    assert "class    1" in lines[1] and "≈ 4.5" in lines[1] and "class    3" in lines[2]


def test_random_fill_gives_each_input_its_own_values() -> None:
    # Two inputs of one shape and dtype (a subtract branch, a siamese pair): the same seed must still give
    # them different tensors, and the same seed again must give the same pair.
    twins = [dict(KWS_LIKE[0], name="a"), dict(KWS_LIKE[0], name="b")]
    a, b = make_inputs(twins, None, "random", seed=7)
    a2, b2 = make_inputs(twins, None, "random", seed=7)
    assert not np.array_equal(a, b)
    assert np.array_equal(a, a2) and np.array_equal(b, b2)
