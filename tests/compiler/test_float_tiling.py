"""Issue 18 (speed): register-tiled float CONV_2D and FULLY_CONNECTED (schedule._register_tile).

Tiling changes only the order in which *different* outputs are computed: each output still sums its
products in the model's order into one accumulator, then adds the bias. So the tiled kernels must give
bit-for-bit the outputs of the untiled ones, and match LiteRT within the float tolerance, under the
poisoning harness (a tile that skips outputs, or a pad workspace read outside what was computed, shows).
Shapes cover the tile fallbacks: channels not divisible by 4, widths not divisible by the pixel tile,
stride 2, SAME and VALID padding, 1x1, a batch of rows, and a FULLY_CONNECTED without bias (the
accumulator is then the output itself and gets a cache).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compiler_harness import BuiltModel, build, extract
from test_float_models import REL_TOL, _litert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantized"))
import tflite_builder as tb


def _conv(
    b: tb.ModelBuilder, rng: np.random.Generator, x: int, oshape: list[int], kernel: list[int], opts: Any
) -> int:
    oc = kernel[0]
    w = b.tensor(f"w{len(b.tensors)}", kernel, "float32", data=rng.normal(0, 0.4, kernel).astype(np.float32))
    bias = b.tensor(f"b{len(b.tensors)}", [oc], "float32", data=rng.normal(0, 0.2, [oc]).astype(np.float32))
    y = b.tensor(f"y{len(b.tensors)}", oshape, "float32")
    b.op("CONV_2D", [x, w, bias], [y], opts)
    return y


def _conv_model() -> bytes:
    rng = np.random.default_rng(11)
    b = tb.ModelBuilder()
    x = b.tensor("x", [1, 9, 8, 5], "float32")
    y = _conv(b, rng, x, [1, 9, 8, 8], [8, 3, 3, 5], tb.conv_options("SAME"))  # 4x4 tile, pad per tile
    y = _conv(b, rng, y, [1, 5, 4, 6], [6, 3, 3, 8], tb.conv_options("SAME", stride=(2, 2)))  # 2x4
    y = _conv(b, rng, y, [1, 3, 2, 4], [4, 3, 3, 6], tb.conv_options("VALID", activation="RELU"))
    y = _conv(b, rng, y, [1, 3, 2, 12], [12, 1, 1, 4], tb.conv_options("VALID"))  # 1x1
    return b.build([x], [y])


def _fc_model() -> bytes:
    rng = np.random.default_rng(12)
    b = tb.ModelBuilder()
    x = b.tensor("x", [3, 40], "float32")
    w1 = b.tensor("w1", [12, 40], "float32", data=rng.normal(0, 0.3, (12, 40)).astype(np.float32))
    b1 = b.tensor("b1", [12], "float32", data=rng.normal(0, 0.2, (12,)).astype(np.float32))
    h = b.tensor("h", [3, 12], "float32")
    b.op("FULLY_CONNECTED", [x, w1, b1], [h], tb.fc_options("RELU"))
    w2 = b.tensor("w2", [16, 12], "float32", data=rng.normal(0, 0.3, (16, 12)).astype(np.float32))
    out = b.tensor("out", [3, 16], "float32")
    b.op("FULLY_CONNECTED", [h, w2, -1], [out], tb.fc_options())
    return b.build([x], [out])


def _compile(tmp_path: Path, name: str, data: bytes) -> tuple[Path, BuiltModel]:
    from tvmc_micro.compiler import compile_model

    source = tmp_path / f"{name}.tflite"
    source.write_bytes(data)
    compile_model(source, tmp_path / f"{name}.tar")
    return source, build(extract(tmp_path / f"{name}.tar", tmp_path / name))


def _tiles(built: BuiltModel) -> list[int]:
    """Sizes of the accumulator arrays the kernels declare (an untiled kernel declares `float acc[1]`)."""
    lib = next((built.dir / "codegen" / "host" / "src").glob("*_lib0.c")).read_text()
    return [int(n) for n in re.findall(r"^\s*float \w+\[(\d+)\];$", lib, flags=re.M)]


@pytest.mark.parametrize("kind, make, tiles", [("conv", _conv_model, 4), ("fc", _fc_model, 2)])
def test_tiled_float_kernels_match_untiled_bit_for_bit_and_litert(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, make: Any, tiles: int
) -> None:
    from tvmc_micro.compiler import schedule

    data = make()
    source, tiled = _compile(tmp_path, "tiled", data)
    assert len([n for n in _tiles(tiled) if n > 1]) == tiles, _tiles(tiled)
    monkeypatch.setattr(schedule, "_tile_axes", lambda *_: None)
    _, plain = _compile(tmp_path, "plain", data)
    assert all(n == 1 for n in _tiles(plain)), _tiles(plain)

    rng = np.random.default_rng(5)
    samples = [
        [rng.uniform(-1.0, 1.0, size=i["shape"]).astype(i["dtype"]) for i in tiled.model["inputs"]]
        for _ in range(4)  # > len(POISON_BYTES): every poison pattern is used
    ]
    ours = tiled.run(samples, tiled.dir)
    untiled = plain.run(samples, plain.dir)
    ref = _litert(source, samples)
    for got, same, want in zip(ours, untiled, ref, strict=True):
        assert got[0].tobytes() == same[0].tobytes()
        scale = max(float(np.max(np.abs(want[0]))), 1e-30)
        assert float(np.max(np.abs(got[0].astype(np.float64) - want[0]))) / scale <= REL_TOL


def test_pad_workspace_is_a_tile_not_the_padded_tensor(tmp_path: Path) -> None:
    """The padded input of a tiled 3x3 conv is computed per tile (3 rows x tile+2 columns), not whole:
    the arena grows by at most that."""
    b = tb.ModelBuilder()
    rng = np.random.default_rng(13)
    x = b.tensor("x", [1, 32, 32, 16], "float32")
    y = _conv(b, rng, x, [1, 32, 32, 16], [16, 3, 3, 16], tb.conv_options("SAME"))
    _, built = _compile(tmp_path, "pad", b.build([x], [y]))
    mem = built.model["memory"]
    tile = 3 * (4 + 2) * 16 * 4  # rows x (pixel tile + 2) x channels x float
    assert mem["arena_bytes"] <= mem["activation_lower_bound_bytes"] + tile, mem
