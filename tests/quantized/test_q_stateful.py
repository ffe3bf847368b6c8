"""Models with state (TFLite variable tensors): SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM int8, bit-exact with
TFLite Micro over consecutive runs (state carried) and after `tvmgen_<name>_reset_state()`.

Each model is compiled to an MLF once, built with gcc against a harness that calls reset before one of the
runs, and compared with TFLM's interpreter running the same sequence (with `reset()` at the same point).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from tflite_builder import (
    ModelBuilder,
    fc_options,
    lstm_options,
    random_weights,
    softmax_options,
    svdf_options,
)

from tests.compiler import compiler_harness as harness

RESET_AT = 4  # the harness resets the state before run #4 (0-based)


# --- models --------------------------------------------------------------------------------------------


def svdf_model(seed: int, state_dtype: str) -> bytes:
    """One SVDF (rank 2, 16 filters, memory 5, 2 batches) with int16 or int8 (zero point -5) state."""
    rng = np.random.default_rng(seed)
    batches, n_in, n_filter, memory, rank = 2, 12, 16, 5, 2
    b = ModelBuilder()
    x = b.tensor("x", [batches, n_in], scale=0.05, zero_point=3)
    wf = b.tensor("wf", [n_filter, n_in], scale=0.01, data=random_weights(rng, [n_filter, n_in]))
    if state_dtype == "int16":
        state_scale, state_zp, wt_scale = 0.0011, 0, 0.001
        wt_data = rng.integers(-1000, 1001, size=(n_filter, memory)).astype(np.int16)
    else:
        state_scale, state_zp, wt_scale = 0.15, -5, 0.008
        wt_data = random_weights(rng, [n_filter, memory])
    wt = b.tensor("wt", [n_filter, memory], state_dtype, scale=wt_scale, data=wt_data)
    bias = b.tensor(
        "bias",
        [n_filter // rank],
        "int32",
        scale=state_scale * wt_scale,
        data=rng.integers(-3000, 3000, size=n_filter // rank).astype(np.int32),
    )
    state = b.tensor(
        "svdf_state",
        [batches, n_filter * memory],
        state_dtype,
        scale=state_scale,
        zero_point=state_zp,
        variable=True,
    )
    y = b.tensor("y", [batches, n_filter // rank], scale=0.12, zero_point=-2)
    b.op("SVDF", [x, wf, wt, bias, state], [y], svdf_options(rank), "SVDFOptions")
    return b.build([x], [y])


def lstm_model(seed: int, batches: int, cell_pow: int, cell_clip: float) -> bytes:
    """One UNIDIRECTIONAL_SEQUENCE_LSTM (3 steps, 6 features, 5 cells) followed by nothing: its whole
    hidden-state sequence is the output. Hidden state int8 with zero point -3, cell state int16 2^cell_pow."""
    rng = np.random.default_rng(seed)
    steps, n_in, n_cell = 3, 6, 5
    b = ModelBuilder()
    x = b.tensor("x", [batches, steps, n_in], scale=0.03, zero_point=-10)
    ins = [x]
    for k in range(4):
        ins.append(
            b.tensor(
                f"w_in{k}", [n_cell, n_in], scale=0.02 + 0.003 * k, data=random_weights(rng, [n_cell, n_in])
            )
        )
    for k in range(4):
        ins.append(
            b.tensor(
                f"w_rec{k}",
                [n_cell, n_cell],
                scale=0.015 + 0.002 * k,
                data=random_weights(rng, [n_cell, n_cell]),
            )
        )
    ins += [-1, -1, -1]
    for k in range(4):
        ins.append(
            b.tensor(
                f"bias{k}",
                [n_cell],
                "int32",
                scale=0.0006,
                data=rng.integers(-3000, 3000, size=n_cell).astype(np.int32),
            )
        )
    ins += [-1, -1]
    ins.append(b.tensor("h", [batches, n_cell], scale=1 / 128, zero_point=-3, variable=True))
    ins.append(b.tensor("c", [batches, n_cell], "int16", scale=2.0**cell_pow, variable=True))
    ins += [-1, -1, -1, -1]
    y = b.tensor("y", [batches, steps, n_cell], scale=1 / 128, zero_point=-3)
    b.op(
        "UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], lstm_options(cell_clip), "UnidirectionalSequenceLSTMOptions"
    )
    return b.build([x], [y])


def lstm_converter_scales(seed: int) -> bytes:
    """The shape of the TFLite converter's int8 Keras LSTM (issue 18's `k2_0156`): 10 steps, 12 features,
    8 cells, its input / weight / hidden scales, cell state 2^-14, cell clip 10. Gate FC multipliers come
    from input scale x weight scale in double: with the float32 product instead, the cell gate's input FC
    multiplier of this model has its low bits zero and the accumulator 8344 lands exactly on a rounding
    tie (761.4375 rounds to 762 twice-rounded, TFLite Micro's multiplier gives 761), so every cell-0
    cell-gate pre-activation was 1 LSB off. Cell 0's cell-gate input weights are zero and its bias 8344,
    so that accumulator occurs at every step whatever the input; the state carried across runs (and the
    other, random cells) still decide the recurrent half and the outputs."""
    rng = np.random.default_rng(seed)
    steps, n_in, n_cell = 10, 12, 8
    x_scale, h_scale = 0.007836886681616306, 0.004057401325553656
    w_in_scales = [0.002890954492613673, 0.002895709592849016, 0.002842866349965334, 0.002904964378103614]
    w_rec_scales = [0.004077394958585501, 0.003138713538646698, 0.004152128007262945, 0.0031951444689184427]
    b = ModelBuilder()
    x = b.tensor("x", [1, steps, n_in], scale=x_scale, zero_point=-1)
    ins = [x]
    for k in range(4):
        w = random_weights(rng, [n_cell, n_in])
        if k == 2:
            w[0] = 0
        ins.append(b.tensor(f"w_in{k}", [n_cell, n_in], scale=w_in_scales[k], data=w))
    for k in range(4):
        w = random_weights(rng, [n_cell, n_cell])
        ins.append(b.tensor(f"w_rec{k}", [n_cell, n_cell], scale=w_rec_scales[k], data=w))
    ins += [-1, -1, -1]
    for k in range(4):
        bias = rng.integers(-20000, 20000, size=n_cell).astype(np.int32)
        if k == 2:
            bias[0] = 8344
        bias_scale = float(np.float32(x_scale) * np.float32(w_in_scales[k]))
        ins.append(b.tensor(f"bias{k}", [n_cell], "int32", scale=bias_scale, data=bias))
    ins += [-1, -1]
    ins.append(b.tensor("h", [1, n_cell], scale=h_scale, zero_point=-3, variable=True))
    ins.append(b.tensor("c", [1, n_cell], "int16", scale=2.0**-14, variable=True))
    ins += [-1, -1, -1, -1]
    y = b.tensor("y", [1, steps, n_cell], scale=h_scale, zero_point=-3)
    b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", ins, [y], lstm_options(10.0), "UnidirectionalSequenceLSTMOptions")
    return b.build([x], [y])


def svdf_keyword_chain(seed: int) -> bytes:
    """The shape of TFLM's keyword_scrambled model: int16 input -> QUANTIZE int8 -> SVDF (int16 state) ->
    FULLY_CONNECTED -> SOFTMAX with int16 output (zero point -32768) -> QUANTIZE int32."""
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x16 = b.tensor("x16", [1, 10], "int16", scale=0.000625, zero_point=0)
    x = b.tensor("x", [1, 10], scale=0.06, zero_point=-128)
    b.op("QUANTIZE", [x16], [x])
    wf = b.tensor("wf", [8, 10], scale=0.009, data=random_weights(rng, [8, 10]))
    wt_data = rng.integers(-3000, 3001, (8, 4)).astype(np.int16)
    wt = b.tensor("wt", [8, 4], "int16", scale=0.0037, data=wt_data)
    bias = b.tensor("bias", [8], "int32", scale=0.0044 * 0.0037, data=np.zeros(8, np.int32))
    state = b.tensor("state", [1, 32], "int16", scale=0.0044, zero_point=0, variable=True)
    h = b.tensor("h", [1, 8], scale=0.05, zero_point=-128)
    b.op("SVDF", [x, wf, wt, bias, state], [h], svdf_options(1, "RELU"), "SVDFOptions")
    w = b.tensor("w", [3, 8], scale=0.02, data=random_weights(rng, [3, 8]))
    logits = b.tensor("logits", [1, 3], scale=0.07, zero_point=2)
    b.op("FULLY_CONNECTED", [h, w, -1], [logits], fc_options(), "FullyConnectedOptions")
    probs = b.tensor("probs", [1, 3], "int16", scale=1 / 65536, zero_point=-32768)
    b.op("SOFTMAX", [logits], [probs], softmax_options(), "SoftmaxOptions")
    y = b.tensor("y", [1, 3], "int32", scale=1 / 32768, zero_point=0)
    b.op("QUANTIZE", [probs], [y])
    return b.build([x16], [y, logits])


MODELS: dict[str, Callable[[], bytes]] = {
    "svdf_int16_state": lambda: svdf_model(1, "int16"),
    "svdf_int8_state": lambda: svdf_model(2, "int8"),
    "lstm_b2_q11_clip": lambda: lstm_model(3, 2, -11, 3.0),
    "lstm_b1_q13": lambda: lstm_model(4, 1, -13, 0.0),
    "lstm_converter_scales": lambda: lstm_converter_scales(8),
    "svdf_keyword_chain": lambda: svdf_keyword_chain(6),
}


# --- harness -------------------------------------------------------------------------------------------


def _build_with_reset(mlf: Path, reset_at: int) -> harness.BuiltModel:
    """compiler_harness's generic main, calling tvmgen_<name>_reset_state() before run #reset_at."""
    metadata = json.loads((mlf / "metadata.json").read_text())
    name = metadata["models"][0]["name"]
    main = harness.generate_main(metadata)
    run = f"    if (tvmgen_{name}_run(&inputs, &outputs) != 0) return 4;"
    assert run in main
    main = main.replace("int main(", "static int n_runs = 0;\n\nint main(", 1)
    main = main.replace(run, f"    if (n_runs++ == {reset_at}) tvmgen_{name}_reset_state();\n{run}", 1)
    (mlf / "harness_main.c").write_text(main)
    sources = sorted(str(p) for p in (mlf / "codegen" / "host" / "src").glob("*.c"))
    exe = mlf / "harness"
    cmd = [
        "gcc",
        *harness.CFLAGS,
        "-I",
        str(mlf / "codegen" / "host" / "include"),
        str(mlf / "harness_main.c"),
        *sources,
        "-o",
        str(exe),
        "-lm",
    ]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return harness.BuiltModel(mlf, metadata, exe)


def _tflm_sequence(model: bytes, samples: list[np.ndarray], reset_at: int) -> list[list[np.ndarray]]:
    """TFLM's outputs per run, calling reset() before run #reset_at."""
    import tflite
    from tflite_micro.python.tflite_micro import runtime

    n_outputs = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0).OutputsLength()
    interp = runtime.Interpreter.from_bytes(model)
    outs = []
    for k, x in enumerate(samples):
        if k == reset_at:
            interp.reset()
        interp.set_input(x, 0)
        interp.invoke()
        outs.append([np.array(interp.get_output(j)) for j in range(n_outputs)])
    return outs


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory, tvm_available: None) -> dict[str, Any]:
    from tvmc_micro.compiler import compile_model

    root = tmp_path_factory.mktemp("stateful")
    out: dict[str, Any] = {}
    for key, make in MODELS.items():
        model = make()
        src = root / f"{key}.tflite"
        src.write_bytes(model)
        result = compile_model(src, root / f"{key}.tar", model_name=key)
        mlf = harness.extract(root / f"{key}.tar", root / key)
        out[key] = (model, result.metadata, _build_with_reset(mlf, RESET_AT), mlf)
    return out


# --- tests ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(MODELS))
def test_state_carried_across_runs_and_reset_bit_exact_with_tflm(
    key: str, compiled: dict[str, Any], tmp_path: Path
) -> None:
    model, metadata, built, _ = compiled[key]
    spec = metadata["models"][0]["inputs"][0]
    rng = np.random.default_rng(7)
    info = np.iinfo(spec["dtype"])
    fresh = [rng.integers(info.min, info.max + 1, size=spec["shape"]).astype(spec["dtype"]) for _ in range(3)]
    # Run #2 repeats run #0's input, run #4 (after the reset) too: the state must change the first
    # repeat and the reset must undo it.
    samples = [fresh[0], fresh[1], fresh[0], fresh[2], fresh[0], fresh[1]]
    ours = built.run([[s] for s in samples], tmp_path)
    ref = _tflm_sequence(model, samples, RESET_AT)
    for k, (r, o) in enumerate(zip(ref, ours, strict=True)):
        for j, (rj, oj) in enumerate(zip(r, o, strict=True)):
            assert np.array_equal(rj.reshape(oj.shape), oj), f"{key}: run {k} output {j} differs from TFLM"
    assert any(not np.array_equal(a, b) for a, b in zip(ref[2], ref[0], strict=True)), (
        "the state does not influence the outputs: weak test model"
    )
    for j in range(len(ours[0])):
        assert np.array_equal(ours[4][j], ours[0][j]) and np.array_equal(ours[5][j], ours[1][j])


def test_metadata_and_header_describe_the_state(compiled: dict[str, Any]) -> None:
    _, metadata, _, mlf = compiled["lstm_b2_q11_clip"]
    model = metadata["models"][0]
    states = {s["name"]: s for s in model["state"]}
    assert set(states) == {"h", "c"}
    assert states["h"]["dtype"] == "int8" and states["h"]["reset_byte"] == 0xFD  # zero point -3
    assert states["c"]["dtype"] == "int16" and states["c"]["size_bytes"] == 2 * 5 * 2
    assert model["memory"]["state_bytes"] == max(s["offset"] + s["size_bytes"] for s in model["state"])
    header = (mlf / "codegen/host/include/tvmgen_lstm_b2_q11_clip.h").read_text()
    assert "void tvmgen_lstm_b2_q11_clip_reset_state(void);" in header
    assert f"#define TVMGEN_LSTM_B2_Q11_CLIP_STATE_SIZE {model['memory']['state_bytes']}" in header
    # The state is not in the arena: the arena plan is smaller than arena + state would be.
    assert model["memory"]["arena_bytes"] >= 0 and model["inputs"][0]["name"] == "x"


def test_stateless_model_has_no_reset_function(tmp_path: Path, tvm_available: None) -> None:
    from tvmc_micro.compiler import compile_model

    b = ModelBuilder()
    x = b.tensor("x", [1, 4], scale=0.1, zero_point=0)
    w = b.tensor("w", [3, 4], scale=0.02, data=np.ones((3, 4), np.int8))
    y = b.tensor("y", [1, 3], scale=0.1, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, -1], [y], fc_options(), "FullyConnectedOptions")
    (tmp_path / "fc.tflite").write_bytes(b.build([x], [y]))
    meta = compile_model(tmp_path / "fc.tflite", tmp_path / "fc.tar").metadata["models"][0]
    assert meta["memory"]["state_bytes"] == 0 and meta["state"] == []
    mlf = harness.extract(tmp_path / "fc.tar", tmp_path / "mlf")
    assert "reset_state" not in (mlf / "codegen/host/include/tvmgen_fc.h").read_text()


# --- refusals --------------------------------------------------------------------------------------------


def _variable_into_fully_connected() -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", [1, 4], scale=0.1, zero_point=0)
    v = b.tensor("memory", [1, 4], scale=0.1, zero_point=0, variable=True)
    w = b.tensor("w", [3, 4], scale=0.02, data=np.ones((3, 4), np.int8))
    y = b.tensor("y", [1, 3], scale=0.1, zero_point=0)
    z = b.tensor("z", [1, 3], scale=0.1, zero_point=0)
    b.op("FULLY_CONNECTED", [x, w, -1], [y], fc_options(), "FullyConnectedOptions")
    b.op("FULLY_CONNECTED", [v, w, -1], [z], fc_options(), "FullyConnectedOptions")
    return b.build([x], [y, z])


def _svdf_mixed_state_types() -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", [1, 4], scale=0.1, zero_point=0)
    wf = b.tensor("wf", [2, 4], scale=0.02, data=np.ones((2, 4), np.int8))
    wt = b.tensor("wt", [2, 3], "int16", scale=0.001, data=np.ones((2, 3), np.int16))
    s = b.tensor("s", [1, 6], scale=0.1, zero_point=0, variable=True)
    y = b.tensor("y", [1, 2], scale=0.1, zero_point=0)
    b.op("SVDF", [x, wf, wt, -1, s], [y], svdf_options(1), "SVDFOptions")
    return b.build([x], [y])


def _time_major_lstm() -> bytes:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    m = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(lstm_model(5, 1, -11, 0.0), 0))
    m.subgraphs[0].operators[0].builtinOptions.timeMajor = True
    fb = flatbuffers.Builder(4096)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    return bytes(fb.Output())


def _shared_svdf_state() -> bytes:
    """Two SVDFs reading the same state tensor (TFLM would let them interleave; we refuse)."""
    b = ModelBuilder()
    x = b.tensor("x", [1, 4], scale=0.1, zero_point=0)
    wf = b.tensor("wf", [2, 4], scale=0.02, data=np.ones((2, 4), np.int8))
    wt = b.tensor("wt", [2, 3], "int16", scale=0.001, data=np.ones((2, 3), np.int16))
    s = b.tensor("s", [1, 6], "int16", scale=0.01, zero_point=0, variable=True)
    y = b.tensor("y", [1, 2], scale=0.1, zero_point=0)
    z = b.tensor("z", [1, 2], scale=0.1, zero_point=0)
    b.op("SVDF", [x, wf, wt, -1, s], [y], svdf_options(1), "SVDFOptions")
    b.op("SVDF", [x, wf, wt, -1, s], [z], svdf_options(1), "SVDFOptions")
    return b.build([x], [y, z])


def _state_as_model_output() -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", [1, 4], scale=0.1, zero_point=0)
    wf = b.tensor("wf", [2, 4], scale=0.02, data=np.ones((2, 4), np.int8))
    wt = b.tensor("wt", [2, 3], "int16", scale=0.001, data=np.ones((2, 3), np.int16))
    s = b.tensor("s", [1, 6], "int16", scale=0.01, zero_point=0, variable=True)
    y = b.tensor("y", [1, 2], scale=0.1, zero_point=0)
    b.op("SVDF", [x, wf, wt, -1, s], [y], svdf_options(1), "SVDFOptions")
    return b.build([x], [y, s])


def _softmax_int16_wrong_zero_point() -> bytes:
    b = ModelBuilder()
    x = b.tensor("x", [1, 4], scale=0.1, zero_point=0)
    y = b.tensor("y", [1, 4], "int16", scale=1 / 65536, zero_point=0)
    b.op("SOFTMAX", [x], [y], softmax_options(), "SoftmaxOptions")
    return b.build([x], [y])


@pytest.mark.parametrize(
    ("make", "op", "words"),
    [
        (_variable_into_fully_connected, "FULLY_CONNECTED", "'memory' is a variable (state) tensor"),
        (_svdf_mixed_state_types, "SVDF", "weights_time is int16 but the state is int8"),
        (_time_major_lstm, "UNIDIRECTIONAL_SEQUENCE_LSTM", "time-major input is not supported"),
        (_softmax_int16_wrong_zero_point, "SOFTMAX", "needs output scale 1/65536 and zero point -32768"),
        (_shared_svdf_state, "SVDF", "state tensor 's' is shared by operators #0 SVDF, #1 SVDF"),
        (_state_as_model_output, "model output 's'", "cannot be a model input or output"),
    ],
)
def test_unsupported_state_patterns_fail_naming_op_and_quantisation(make: Any, op: str, words: str) -> None:
    from tvmc_micro.compiler.quantized import UnsupportedQuantizedModel, import_tflite_quantized

    with pytest.raises(UnsupportedQuantizedModel) as info:
        import_tflite_quantized(make(), "bad")
    problems = [p for p in info.value.problems if p.op_name == op]
    assert problems, str(info.value)
    text = str(info.value)
    assert words in text and op in text
    assert "per-tensor" in problems[0].quantization and problems[0].quantization in text


# --- the device session ----------------------------------------------------------------------------------


def _tvmc(*args: str) -> None:
    cmd = [sys.executable, "-m", "tvmc_micro", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, f"tvmc {' '.join(args)} failed:\n{r.stderr}"


def test_tvmc_run_on_crt_host_starts_from_the_reset_state(compiled: dict[str, Any], tmp_path: Path) -> None:
    """crt_host starts a fresh firmware process per session, so every `tvmc run` is TFLM's first Invoke()."""
    model, _, _, mlf = compiled["lstm_b2_q11_clip"]
    tar = mlf.parent / "lstm_b2_q11_clip.tar"
    project = tmp_path / "project"
    _tvmc("micro", "create-project", str(project), str(tar), "crt_host")
    _tvmc("micro", "build", str(project))
    _tvmc("micro", "flash", str(project))
    x = np.random.default_rng(11).integers(-128, 128, size=(2, 3, 6)).astype(np.int8)
    np.savez(tmp_path / "in.npz", x=x)
    ((first,),) = _tflm_sequence(model, [x], reset_at=-1)
    for k in range(2):
        _tvmc("run", str(project), "-i", str(tmp_path / "in.npz"), "-o", str(tmp_path / f"o{k}.npz"))
        with np.load(tmp_path / f"o{k}.npz") as out:
            np.testing.assert_array_equal(out["y"].reshape(first.shape), first)
