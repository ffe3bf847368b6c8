"""Float32 UNIDIRECTIONAL_SEQUENCE_LSTM (issue 18): four-gate (Keras) and CIFG, batch- and time-major, cell
clipping, state carried across runs in the executor's state buffer and reset by
tvmgen_<name>_reset_state(). Each model is compiled, built against the poisoning harness and run over a
sequence of inputs with a reset in the middle; TFLite Micro's interpreter runs the same sequence (with
reset() at the same point). Outputs agree within 1e-5 (relative to the largest output). The variants the
float LSTM does not implement (peephole, projection, layer normalisation) are refused by name."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compiler_harness import CFLAGS, BuiltModel, extract, generate_main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantized"))
import tflite_builder as tb

REL_TOL = 1e-5
RESET_AT = 4  # the harness resets the state before run #4 (0-based)


def add_lstm(
    b: tb.ModelBuilder,
    rng: np.random.Generator,
    batches: int,
    steps: int,
    n_in: int,
    n_cell: int,
    *,
    time_major: bool = False,
    cifg: bool = False,
    cell_clip: float = 0.0,
    extra: dict[int, list[int]] | None = None,
    weight_scale: float = 0.6,
    variable_state: bool = True,
) -> tuple[int, int]:
    """One float LSTM with the 24 operands TFLite's op takes (unused ones -1), into `b`; (input, output).
    `extra` adds float operands at other positions (peephole, projection, layer norm) for the refusals."""
    x_shape = [steps, batches, n_in] if time_major else [batches, steps, n_in]
    x = b.tensor("x", x_shape, "float32")
    ins = [x]

    def const(name: str, shape: list[int], scale: float = weight_scale) -> int:
        return b.tensor(name, shape, "float32", data=rng.uniform(-scale, scale, shape).astype(np.float32))

    gates = ("input", "forget", "cell", "output")
    ins += [-1 if cifg and g == "input" else const(f"w_{g}", [n_cell, n_in]) for g in gates]
    ins += [-1 if cifg and g == "input" else const(f"r_{g}", [n_cell, n_cell]) for g in gates]
    ins += [-1, -1, -1]
    ins += [-1 if cifg and g == "input" else const(f"b_{g}", [n_cell], 0.3) for g in gates]
    ins += [-1, -1]
    for name in ("h_state", "c_state"):
        zeros = None if variable_state else np.zeros((batches, n_cell), np.float32)
        ins.append(b.tensor(name, [batches, n_cell], "float32", data=zeros, variable=variable_state))
    ins += [-1, -1, -1, -1]
    for pos, shape in (extra or {}).items():
        ins[pos] = const(f"extra{pos}", shape)
    y = b.tensor("y", [*x_shape[:2], n_cell], "float32")
    b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], tb.lstm_options(cell_clip, time_major))
    return x, y


def lstm_model(seed: int, *shape: int, then_logistic: bool = False, **kw: Any) -> bytes:
    """An LSTM alone (its whole hidden sequence is the output), or followed by LOGISTIC (TVM's op)."""
    b = tb.ModelBuilder()
    x, y = add_lstm(b, np.random.default_rng(seed), *shape, **kw)
    if not then_logistic:
        return b.build([x], [y])
    z = b.tensor("z", list(b.tensors[y].shape), "float32")
    b.op("LOGISTIC", [y], [z])
    return b.build([x], [z, y])


def keras_mnist_like(seed: int) -> bytes:
    """The shape of TFLM's mnist_lstm example (Keras LSTM, return_sequences=False): LSTM over the rows,
    STRIDED_SLICE of the last step, FULLY_CONNECTED, SOFTMAX."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    rng = np.random.default_rng(seed)
    steps, n_in, n_cell, n_cls = 7, 6, 8, 4
    b = tb.ModelBuilder()
    x, y = add_lstm(b, rng, 1, steps, n_in, n_cell)
    begin = b.const_int32("begin", [0, steps - 1, 0])
    end = b.const_int32("end", [1, steps, n_cell])
    strides = b.const_int32("strides", [1, 1, 1])
    last = b.tensor("last", [1, n_cell], "float32")
    opts = schema.StridedSliceOptionsT()
    opts.shrinkAxisMask = 2
    b.op("STRIDED_SLICE", [y, begin, end, strides], [last], opts, "StridedSliceOptions")
    w = b.tensor(
        "fc_w", [n_cls, n_cell], "float32", data=rng.uniform(-1, 1, (n_cls, n_cell)).astype(np.float32)
    )
    bias = b.tensor("fc_b", [n_cls], "float32", data=rng.uniform(-0.2, 0.2, n_cls).astype(np.float32))
    logits = b.tensor("logits", [1, n_cls], "float32")
    b.op("FULLY_CONNECTED", [last, w, bias], [logits], tb.fc_options(), "FullyConnectedOptions")
    probs = b.tensor("probs", [1, n_cls], "float32")
    b.op("SOFTMAX", [logits], [probs], tb.softmax_options(), "SoftmaxOptions")
    return b.build([x], [probs])


MODELS: dict[str, Callable[[], bytes]] = {
    # LSTM -> last step -> FULLY_CONNECTED -> SOFTMAX, like TFLM's mnist_lstm example.
    "lstm_keras_head": lambda: keras_mnist_like(4),
    # Keras-style four gates, two batches, followed by a TVM-converted op (LOGISTIC).
    "lstm_b2": lambda: lstm_model(1, 2, 4, 3, 5, then_logistic=True),
    # Time-major with large weights so that the cell clip (0.7) bites.
    "lstm_tm_clip": lambda: lstm_model(2, 3, 3, 4, 6, time_major=True, cell_clip=0.7, weight_scale=1.5),
    # CIFG (no input gate: i = 1 - f), one batch, one step per run (a streaming model). TFLite Micro
    # refuses CIFG LSTMs (its Prepare requires the input gate): the reference is LiteRT only.
    "lstm_cifg_stream": lambda: lstm_model(3, 1, 1, 5, 4, cifg=True),
}


def _build_with_reset(mlf: Path, reset_at: int) -> BuiltModel:
    """compiler_harness's generic main, calling tvmgen_<name>_reset_state() before run #reset_at."""
    metadata = json.loads((mlf / "metadata.json").read_text())
    name = metadata["models"][0]["name"]
    main = generate_main(metadata)
    run = f"    if (tvmgen_{name}_run(&inputs, &outputs) != 0) return 4;"
    assert run in main
    main = main.replace("int main(", "static int n_runs = 0;\n\nint main(", 1)
    main = main.replace(run, f"    if (n_runs++ == {reset_at}) tvmgen_{name}_reset_state();\n{run}", 1)
    (mlf / "harness_main.c").write_text(main)
    sources = sorted(str(p) for p in (mlf / "codegen" / "host" / "src").glob("*.c"))
    exe = mlf / "harness"
    include = ["-I", str(mlf / "codegen" / "host" / "include")]
    cmd = ["gcc", *CFLAGS, *include, str(mlf / "harness_main.c"), *sources, "-o", str(exe), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return BuiltModel(mlf, metadata, exe)


def _tflm_sequence(model: bytes, samples: list[np.ndarray], n_outputs: int) -> list[list[np.ndarray]]:
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(model)
    outs = []
    for k, x in enumerate(samples):
        if k == RESET_AT:
            interp.reset()
        interp.set_input(x, 0)
        interp.invoke()
        outs.append([np.array(interp.get_output(j)) for j in range(n_outputs)])
    return outs


def _litert_sequence(model: bytes, samples: list[np.ndarray], n_outputs: int) -> list[list[np.ndarray]]:
    """LiteRT's outputs per run (variable tensors persist across invoke(), reset_all_variables())."""
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_content=model)
    interp.allocate_tensors()
    src, outs = interp.get_input_details()[0]["index"], interp.get_output_details()
    by_name = {d["name"]: d["index"] for d in outs}
    names = [t.Name().decode() for t in _model_outputs(model)]
    result = []
    for k, x in enumerate(samples):
        if k == RESET_AT:
            interp.reset_all_variables()
        interp.set_tensor(src, x)
        interp.invoke()
        result.append([interp.get_tensor(by_name[n]).copy() for n in names[:n_outputs]])
    return result


def _model_outputs(model: bytes) -> list[Any]:
    import tflite

    sub = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    return [sub.Tensors(int(i)) for i in sub.OutputsAsNumpy()]


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("tvm")
    pytest.importorskip("tflite_micro")
    from tvmc_micro.compiler import compile_model

    root = tmp_path_factory.mktemp("float_lstm")
    out: dict[str, Any] = {}
    for key, make in MODELS.items():
        model = make()
        src = root / f"{key}.tflite"
        src.write_bytes(model)
        result = compile_model(src, root / f"{key}.tar", model_name=key)
        mlf = extract(root / f"{key}.tar", root / key)
        out[key] = (model, result.metadata, _build_with_reset(mlf, RESET_AT))
    return out


TFLM_REFUSES = {"lstm_cifg_stream"}


@pytest.mark.parametrize("reference", ["tflm", "litert"])
@pytest.mark.parametrize("key", sorted(MODELS))
def test_float_lstm_matches_reference_over_runs_and_reset(
    key: str, reference: str, compiled: dict[str, Any], tmp_path: Path
) -> None:
    if reference == "tflm" and key in TFLM_REFUSES:
        pytest.skip("TFLite Micro cannot run CIFG LSTMs (its Prepare needs the input gate)")
    model, metadata, built = compiled[key]
    spec = metadata["models"][0]["inputs"][0]
    rng = np.random.default_rng(11)
    fresh = [rng.uniform(-1.5, 1.5, spec["shape"]).astype(np.float32) for _ in range(3)]
    # Run #2 repeats run #0's input, run #4 (after the reset) too: the state must change the first
    # repeat and the reset must undo it.
    samples = [fresh[0], fresh[1], fresh[0], fresh[2], fresh[0], fresh[1], fresh[2]]
    ours = built.run([[s] for s in samples], tmp_path)
    ref = (_tflm_sequence if reference == "tflm" else _litert_sequence)(model, samples, len(ours[0]))
    worst = 0.0
    for k, (r, o) in enumerate(zip(ref, ours, strict=True)):
        for j, (rj, oj) in enumerate(zip(r, o, strict=True)):
            assert rj.shape == oj.shape and oj.dtype == np.float32, (key, k, j)
            scale = max(float(np.max(np.abs(rj))), 1e-30)
            worst = max(worst, float(np.max(np.abs(oj.astype(np.float64) - rj))) / scale)
    print(f"{key} vs {reference}: relative max error {worst:.2e} over {len(samples)} runs")
    assert worst <= REL_TOL, f"{key}: {worst:.2e}"
    assert not np.allclose(ref[2][0], ref[0][0]), "the state does not influence the outputs: weak test model"
    for j in range(len(ours[0])):
        assert np.array_equal(ours[4][j], ours[0][j]) and np.array_equal(ours[5][j], ours[1][j])


def test_metadata_describes_the_float_state(compiled: dict[str, Any]) -> None:
    _, metadata, _ = compiled["lstm_b2"]
    model = metadata["models"][0]
    states = {s["name"]: s for s in model["state"]}
    assert set(states) == {"h_state", "c_state"}
    for s in states.values():
        assert s["dtype"] == "float32" and s["reset_byte"] == 0 and s["size_bytes"] == 2 * 5 * 4
    assert [o["name"] for o in model["outputs"]] == ["z", "y"]
    assert [i["name"] for i in model["inputs"]] == ["x"]


def test_cell_clip_bites(compiled: dict[str, Any], tmp_path: Path) -> None:
    """The clipped model's cell state reaches the clip: without clipping its outputs would differ."""
    unclipped = lstm_model(2, 3, 3, 4, 6, time_major=True, cell_clip=0.0, weight_scale=1.5)
    clipped, metadata, _ = compiled["lstm_tm_clip"]
    shape = metadata["models"][0]["inputs"][0]["shape"]
    x = [np.random.default_rng(11).uniform(-1.5, 1.5, shape).astype(np.float32)] * 2
    a, b = _tflm_sequence(clipped, x, 1), _tflm_sequence(unclipped, x, 1)
    assert not np.allclose(a[1][0], b[1][0])


@pytest.mark.parametrize(
    "what, extra",
    [
        ("peephole connections", {9: [5], 10: [5], 11: [5]}),
        ("a projection layer", {16: [5, 5]}),
        ("layer normalisation", {20: [5], 21: [5], 22: [5], 23: [5]}),
    ],
)
def test_unsupported_variants_refused_by_name(what: str, extra: dict[int, list[int]], tmp_path: Path) -> None:
    pytest.importorskip("tvm")
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.errors import TvmcError

    src = tmp_path / "m.tflite"
    src.write_bytes(lstm_model(5, 1, 2, 3, 5, extra=extra))
    with pytest.raises(TvmcError) as err:
        compile_model(src, tmp_path / "m.tar")
    text = str(err.value)
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in text and what in text and "not supported" in text, text


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"variable_state": False}, "is not a variable tensor"),
        ({"extra": {1: [5, 3]}}, "must all be present or all absent"),
    ],
)
def test_malformed_lstm_refused(kw: dict[str, Any], message: str, tmp_path: Path) -> None:
    pytest.importorskip("tvm")
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.errors import TvmcError

    src = tmp_path / "m.tflite"
    src.write_bytes(lstm_model(5, 1, 2, 3, 5, cifg="extra" in kw, **kw))
    with pytest.raises(TvmcError, match=message):
        compile_model(src, tmp_path / "m.tar")
