"""Every bad input of `tvmc compile`, for real through the CLI: clear message, exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import onnx
import pytest


def tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", "compile", *args], capture_output=True, text=True, timeout=300
    )


def assert_clean_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "tvmc compile: error:" in proc.stderr and "hint:" in proc.stderr
    for needle in needles:
        assert needle in proc.stderr, proc.stderr


def test_missing_model_file(tmp_path: Path) -> None:
    assert_clean_error(tvmc(str(tmp_path / "nope.tflite"), "-o", str(tmp_path / "m.tar")), "does not exist")


@pytest.mark.parametrize("cut", [100, 20000, 53000])
def test_truncated_tflite(models_dir: Path, tmp_path: Path, cut: int) -> None:
    bad = tmp_path / "kws.tflite"
    bad.write_bytes((models_dir / "kws_ref_model.tflite").read_bytes()[:cut])
    assert_clean_error(tvmc(str(bad), "-o", str(tmp_path / "m.tar")), "damaged TFLite", "truncated")
    assert not (tmp_path / "m.tar").exists()


def test_truncated_onnx(models_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "r.onnx"
    bad.write_bytes((models_dir / "pretrainedResnet.onnx").read_bytes()[:150000])
    assert_clean_error(tvmc(str(bad), "-o", str(tmp_path / "m.tar")), "truncated")


def test_garbage_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.tflite"
    bad.write_bytes(b"this is not a model at all\n" * 50)
    assert_clean_error(tvmc(str(bad), "-o", str(tmp_path / "m.tar")), "neither a TFLite", "garbage")


def test_empty_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"")
    assert_clean_error(tvmc(str(bad), "-o", str(tmp_path / "m.tar")), "is empty")


def test_extension_that_lies(models_dir: Path, tmp_path: Path) -> None:
    liar = tmp_path / "sine.onnx"
    liar.write_bytes((models_dir / "hello_world_float.tflite").read_bytes())
    assert_clean_error(
        tvmc(str(liar), "-o", str(tmp_path / "m.tar")),
        "contains a TFLITE model",
        "its extension says ONNX",
        "--model-format tflite",
    )


def test_model_format_flag_that_lies(models_dir: Path, tmp_path: Path) -> None:
    proc = tvmc(
        str(models_dir / "hello_world_float.onnx"), "--model-format", "tflite", "-o", str(tmp_path / "m.tar")
    )
    assert_clean_error(proc, "contains an ONNX model", "--model-format says TFLITE")


def _patch_tflite_opcodes(data: bytes, new_codes: dict[int, int]) -> bytes:
    """Rewrite operator codes in place (deprecated_builtin_code, an int8 field) to unsupported builtins."""
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    buf = bytearray(data)
    for index, code in new_codes.items():
        oc = model.OperatorCodes(index)
        offset = oc._tab.Offset(4)
        assert offset and oc._tab.Offset(10) == 0, "test model layout changed"
        buf[oc._tab.Pos + offset] = code
    return bytes(buf)


def test_unsupported_tflite_operators_all_listed(models_dir: Path, tmp_path: Path) -> None:
    from tflite.BuiltinOperator import BuiltinOperator

    data = (models_dir / "kws_ref_model.tflite").read_bytes()
    # KWS opcodes: 1 = DEPTHWISE_CONV_2D (4 uses), 5 = SOFTMAX (1 use).
    bad = tmp_path / "kws_bad.tflite"
    bad.write_bytes(_patch_tflite_opcodes(data, {1: BuiltinOperator.RNN, 5: BuiltinOperator.LSH_PROJECTION}))
    proc = tvmc(str(bad), "-o", str(tmp_path / "m.tar"))
    assert_clean_error(
        proc, "5 of the model's 13 operators", "2 kinds", "RNN x4", "LSH_PROJECTION x1", "op #1 ("
    )
    assert "op #12 (output 'Identity')" in proc.stderr


def test_unsupported_onnx_operators_all_listed(tmp_path: Path) -> None:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("Relu", ["x"], ["a"], name="relu0"),
        helper.make_node("Det", ["a"], ["b"], name="det0"),
        helper.make_node("Relu", ["b"], ["c"], name="relu1"),
        helper.make_node("Det", ["c"], ["d"], name="det1"),
        helper.make_node("Frobnicate", ["d"], ["y"], name="custom0", domain="com.example"),
    ]
    graph = helper.make_graph(nodes, "g", [x], [y])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]
    )
    path = tmp_path / "bad.onnx"
    path.write_bytes(model.SerializeToString())
    proc = tvmc(str(path), "-o", str(tmp_path / "m.tar"))
    assert_clean_error(
        proc,
        "3 of the model's 5 operators",
        "Det x2",
        "node #1 ('det0')",
        "node #3 ('det1')",
        "com.example.Frobnicate x1",
    )


def _symbolic_onnx(models_dir: Path, tmp_path: Path) -> Path:
    model = onnx.load(str(models_dir / "hello_world_float.onnx"))
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_param = "batch"
    path = tmp_path / "sym.onnx"
    onnx.save(model, str(path))
    return path


def test_onnx_symbolic_dims_need_input_shapes(models_dir: Path, tmp_path: Path) -> None:
    proc = tvmc(str(_symbolic_onnx(models_dir, tmp_path)), "-o", str(tmp_path / "m.tar"))
    assert_clean_error(
        proc,
        "'serving_default_dense_input:0' has symbolic dimension(s) batch",
        "--input-shapes serving_default_dense_input:0:[1,1]",
    )


@pytest.mark.slow
def test_onnx_symbolic_dims_with_input_shapes(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.tar"
    proc = tvmc(
        str(_symbolic_onnx(models_dir, tmp_path)),
        "-o",
        str(out),
        "--input-shapes",
        "serving_default_dense_input:0:[1,1]",
    )
    assert proc.returncode == 0, proc.stderr
    assert out.is_file()


def test_input_shapes_unknown_name(models_dir: Path, tmp_path: Path) -> None:
    proc = tvmc(
        str(models_dir / "hello_world_float.tflite"),
        "-o",
        str(tmp_path / "m.tar"),
        "--input-shapes",
        "nosuch:[1,1]",
    )
    assert_clean_error(proc, "'nosuch', which is not an input", "'serving_default_dense_input:0'")


@pytest.mark.parametrize("spec", ["x:[1,,2]", "x[1,2]", "x:[0,3]"])
def test_input_shapes_malformed(models_dir: Path, tmp_path: Path, spec: str) -> None:
    proc = tvmc(
        str(models_dir / "hello_world_float.onnx"), "-o", str(tmp_path / "m.tar"), "--input-shapes", spec
    )
    assert_clean_error(proc, "--input-shapes")


def test_output_in_missing_directory(models_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "no" / "such" / "dir" / "m.tar"
    assert_clean_error(
        tvmc(str(models_dir / "hello_world_float.tflite"), "-o", str(out)), "does not exist", "mkdir -p"
    )


def test_output_is_a_directory(models_dir: Path, tmp_path: Path) -> None:
    assert_clean_error(
        tvmc(str(models_dir / "hello_world_float.tflite"), "-o", str(tmp_path)), "is a directory"
    )


@pytest.mark.parametrize(
    "target, needle",
    [
        ("llvm -mcpu=cortex-m4", "not supported"),
        ("c -mcpu=cortex-m99", "unknown -mcpu=cortex-m99"),
        ("c -mfloat-abi=hard", "unknown target option"),
        ("c cortex-m4", "cannot understand"),
        ('c "-mcpu=cortex-m4', "cannot parse"),
    ],
)
def test_bad_target(models_dir: Path, tmp_path: Path, target: str, needle: str) -> None:
    proc = tvmc(
        str(models_dir / "hello_world_float.tflite"), "-o", str(tmp_path / "m.tar"), "--target", target
    )
    assert_clean_error(proc, needle)


def test_bad_pass_config_syntax(models_dir: Path, tmp_path: Path) -> None:
    proc = tvmc(
        str(models_dir / "hello_world_float.tflite"),
        "-o",
        str(tmp_path / "m.tar"),
        "--pass-config",
        "tirx.disable_vectorize",
    )
    assert_clean_error(proc, "is not KEY=VALUE")


def test_unknown_pass_config_key(models_dir: Path, tmp_path: Path) -> None:
    proc = tvmc(
        str(models_dir / "hello_world_float.tflite"),
        "-o",
        str(tmp_path / "m.tar"),
        "--pass-config",
        "tirx.no_such_option=1",
    )
    assert_clean_error(proc, "--pass-config rejected by TVM", "no_such_option")


@pytest.mark.slow
def test_model_name_not_a_c_identifier_is_sanitised(models_dir: Path, tmp_path: Path) -> None:
    import json
    import tarfile

    out = tmp_path / "m.tar"
    proc = tvmc(str(models_dir / "hello_world_float.tflite"), "-o", str(out), "--model-name", "9-sine model")
    assert proc.returncode == 0, proc.stderr
    assert (
        "model name '9-sine model' (from --model-name) is not a C identifier; using 'v_9_sine_model'"
        in proc.stderr
    )
    with tarfile.open(out) as tar:
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
        assert meta["models"][0]["name"] == "v_9_sine_model"
        assert "codegen/host/include/tvmgen_v_9_sine_model.h" in tar.getnames()


def test_custom_operator_is_named(tmp_path: Path) -> None:
    """A custom operator (TFLM's signal library, Vela's ethos-u) is listed by its custom code; TVM's
    frontend itself would raise NotImplementedError before any census could name it."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT()
    model.version = 3
    model.buffers = [schema.BufferT()]
    codes = []
    ops_used = ((schema.BuiltinOperator.RELU, None), (schema.BuiltinOperator.CUSTOM, "SignalRfft"))
    for builtin, custom in ops_used:
        oc = schema.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = builtin, min(builtin, 127), 1
        oc.customCode = custom
        codes.append(oc)
    model.operatorCodes = codes
    tensors = []
    for name in ("x", "y", "z"):
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = name, [1, 8], schema.TensorType.FLOAT32, 0
        tensors.append(t)
    ops = []
    for k, (a, b) in enumerate(((0, 1), (1, 2))):
        op = schema.OperatorT()
        op.opcodeIndex, op.inputs, op.outputs = k, [a], [b]
        ops.append(op)
    sg = schema.SubGraphT()
    sg.tensors, sg.operators, sg.inputs, sg.outputs = tensors, ops, [0], [2]
    model.subgraphs = [sg]
    builder = flatbuffers.Builder(256)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    bad = tmp_path / "custom.tflite"
    bad.write_bytes(bytes(builder.Output()))
    proc = tvmc(str(bad), "-o", str(tmp_path / "m.tar"))
    assert_clean_error(proc, "1 of the model's 2 operators", "CUSTOM(SignalRfft) x1: op #1 (output 'z')")
    assert "NotImplementedError" not in proc.stderr


# --- issue 12: damaged files, special files, input shapes that contradict the model ---------------


def test_fifo_as_model_path_is_refused_without_blocking(tmp_path: Path) -> None:
    import os

    fifo = tmp_path / "model.tflite"
    os.mkfifo(fifo)
    proc = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", "compile", str(fifo), "-o", str(tmp_path / "m.tar")],
        capture_output=True,
        text=True,
        timeout=60,  # before the fix this never returned
    )
    assert_clean_error(proc, "is a FIFO (named pipe), not a model file")


def test_character_device_as_model_path_is_refused(tmp_path: Path) -> None:
    # /dev/zero used to be read until MemoryError (10.7 GB).
    assert_clean_error(tvmc("/dev/zero", "-o", str(tmp_path / "m.tar")), "/dev/zero is a character device")


def test_directory_and_oversized_model_files_are_refused(tmp_path: Path) -> None:
    from tvmc_micro.compiler.errors import ModelFileError
    from tvmc_micro.compiler.model_file import MAX_MODEL_BYTES, read_model_bytes

    with pytest.raises(ModelFileError, match="is a directory, not a model file"):
        read_model_bytes(tmp_path)
    big = tmp_path / "big.tflite"
    with big.open("wb") as f:
        f.truncate(MAX_MODEL_BYTES + 1)  # sparse: no disk space used
    with pytest.raises(ModelFileError, match="more than 512 MiB"):
        read_model_bytes(big)
    with pytest.raises(ModelFileError, match="does not exist"):
        read_model_bytes(tmp_path / "nope.tflite")


def test_kws_with_a_conv_batch_of_18_is_refused(models_dir: Path, tmp_path: Path) -> None:
    """The issue's mutant: it used to compile into a kernel reading out of bounds."""
    import tflite

    data = bytearray((models_dir / "kws_ref_model.tflite").read_bytes())
    sub = tflite.Model.GetRootAsModel(bytes(data), 0).Subgraphs(0)
    out = sub.Tensors(sub.Operators(0).Outputs(0))
    data[out._tab.Vector(out._tab.Offset(4))] = 18
    bad = tmp_path / "kws.tflite"
    bad.write_bytes(bytes(data))
    proc = tvmc(str(bad), "-o", str(tmp_path / "m.tar"))
    assert_clean_error(proc, "shape[0] is 18 but CONV_2D (operator 0) computes 1", "re-export")
    assert not (tmp_path / "m.tar").exists()


def test_int8_zero_point_near_1e14_is_refused(models_dir: Path, tmp_path: Path) -> None:
    """It used to compile and give outputs different from TFLite Micro's."""
    import struct

    import tflite

    data = bytearray((models_dir / "hello_world_int8.tflite").read_bytes())
    t = tflite.Model.GetRootAsModel(bytes(data), 0).Subgraphs(0).Tensors(0)
    q = t.Quantization()
    pos = q._tab.Vector(q._tab.Offset(10))
    data[pos : pos + 8] = struct.pack("<q", 10**14)
    bad = tmp_path / "sine.tflite"
    bad.write_bytes(bytes(data))
    proc = tvmc(str(bad), "-o", str(tmp_path / "m.tar"))
    assert_clean_error(proc, "zero_point[0] is 100000000000000; it must be in -128..127")


def test_tflite_input_shapes_that_differ_are_refused(models_dir: Path, tmp_path: Path) -> None:
    proc = tvmc(
        str(models_dir / "hello_world_float.tflite"),
        "-o",
        str(tmp_path / "m.tar"),
        "--input-shapes",
        "serving_default_dense_input:0:[4,1]",
    )
    assert_clean_error(proc, "shape [4, 1], but this TFLite model fixes it to [1, 1]", "drop --input-shapes")


def test_onnx_input_shapes_that_contradict_static_dims_are_refused(models_dir: Path, tmp_path: Path) -> None:
    proc = tvmc(
        str(models_dir / "hello_world_float.onnx"),
        "-o",
        str(tmp_path / "m.tar"),
        "--input-shapes",
        "serving_default_dense_input:0:[1,7]",
    )
    assert_clean_error(
        proc, "the model fixes it to [1,1] (dimension 1 is 1, not 7)", "only symbolic dimensions"
    )
    assert "Metadata omitted" not in proc.stderr and "BlockBuilder" not in proc.stderr


def _onnx_qdq(tmp_path: Path, zero_point: int) -> Path:
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    scale = helper.make_tensor("s", TensorProto.FLOAT, [], [0.1])
    zp = TensorProto(name="zp", data_type=TensorProto.INT8)  # int8 values live in int32_data, unchecked
    zp.int32_data.append(zero_point)
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "s", "zp"], ["q"]),
        helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"]),
    ]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [scale, zp]))
    path = tmp_path / "qdq.onnx"
    path.write_bytes(model.SerializeToString())
    return path


def test_onnx_zero_point_out_of_range_is_refused(tmp_path: Path) -> None:
    from tvmc_micro.compiler.errors import ModelFileError
    from tvmc_micro.compiler.model_file import load_model_file

    with pytest.raises(ModelFileError, match=r"zero point 'zp' holds 100000, outside -128\.\.127"):
        load_model_file(_onnx_qdq(tmp_path, 100000))
    load_model_file(_onnx_qdq(tmp_path, -3))


def test_onnx_initializer_size_and_scale_are_checked(tmp_path: Path) -> None:
    from onnx import TensorProto, helper
    from tvmc_micro.compiler.errors import ModelFileError
    from tvmc_micro.compiler.model_file import load_model_file

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    for scale, raw, needle in (
        (0.0, None, r"scale 's' is 0\.0; scales must be finite and > 0"),
        (0.1, b"\x00" * 20, r"initializer 'b' has dims \[4\] \(16 bytes\) but holds 20 bytes"),
    ):
        b = helper.make_tensor("b", TensorProto.FLOAT, [4], b"\x00" * 16, raw=True)
        b.raw_data = raw or b.raw_data
        s = helper.make_tensor("s", TensorProto.FLOAT, [], [scale])
        zp = helper.make_tensor("zp", TensorProto.INT8, [], [0])
        nodes = [
            helper.make_node("Add", ["x", "b"], ["a"]),
            helper.make_node("QuantizeLinear", ["a", "s", "zp"], ["q"]),
            helper.make_node("DequantizeLinear", ["q", "s", "zp"], ["y"]),
        ]
        path = tmp_path / "m.onnx"
        model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], [b, s, zp]))
        path.write_bytes(model.SerializeToString())
        with pytest.raises(ModelFileError, match=needle):
            load_model_file(path)
