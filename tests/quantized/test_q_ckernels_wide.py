"""--kernel-weights int16: the DSP conv and fully connected kernels read weights widened to int16 at compile
time (csrc TVMC_CONV_WIDE_W / TVMC_FC_WIDE_W). The option really changes the emitted weights and kernels,
stays bit-exact with TFLite Micro on the host (portable twins) and under QEMU mps2_an386 (real LDRD and
SMLAD), and bad values or non-constant weights are refused with a clear error."""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from qharness import Tflm, random_input
from synthetic import Synthetic, _Net

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "compiler"))
from compiler_harness import build, extract  # noqa: E402

pytestmark = pytest.mark.usefixtures("tvm_available")
M4 = "c -mcpu=cortex-m4"


def widenet(seed: int) -> Synthetic:
    """int8 in (1, 9, 7, 1): every weight layout the option rewrites: a one-input-channel depthwise with
    multiplier 6 (handed to the conv kernel with [KH, KW, OC] weights), K = 15 and 63 zero-padded, 3x3
    convs with odd output channel counts (a lone last channel), 1x1 convs, K = 300 walked in chunks, fully
    connected layers with a tail block and with a depth too odd for widening (kept int8)."""
    net = _Net(seed)
    shape = (1, 9, 7, 1)
    x = net.act("input", shape)
    hwo = net.depthwise(x, (2, 2), 6, per_channel=True, padding="SAME")  # weight_hwo conv, K = 4
    y = net.conv(x, 7, (5, 3), per_channel=True, padding="SAME", activation="RELU")  # K = 15 -> 16
    y = net.conv(y, 12, (3, 3), per_channel=False, padding="SAME")  # K = 63 -> 64
    z = net.conv(hwo, 8, (1, 1), per_channel=True, padding="VALID")  # K = 6: kept int8 (scalar tail)
    z = net.conv(z, 9, (3, 3), per_channel=True, padding="SAME", stride=(2, 1))  # K = 72, odd channels
    w = net.conv(y, 100, (1, 1), per_channel=False, padding="VALID", activation="RELU")
    w = net.conv(w, 12, (1, 3), per_channel=True, padding="SAME")  # K = 300: chunks of 4-tap groups
    net.conv(w, 5, (1, 1), per_channel=True, padding="VALID")  # K = 12
    net.fc(net.reshape(z, (5, 63)), 6, per_channel=True)  # depth 63: int8 weights kept
    net.fc(net.reshape(w, (3, 252)), 11, per_channel=False, activation="RELU")  # blocks of 6 and 5
    model = net.b.build([x], net.outputs)
    return Synthetic(f"widenet{seed}", model, ["int8"], [shape], net.output_names)


_MLF: dict[tuple[str, str], Path] = {}


def _compile(syn: Synthetic, weights: str, tmp_factory: pytest.TempPathFactory) -> Path:
    from tvmc_micro.compiler import compile_model

    key = (syn.name, weights)
    if key not in _MLF:
        d = tmp_factory.mktemp(f"{syn.name}_{weights}")
        (d / "m.tflite").write_bytes(syn.model)
        compile_model(d / "m.tflite", d / "m.tar", target=M4, kernel_weights=weights)
        _MLF[key] = d / "m.tar"
    return _MLF[key]


def _member(mlf: Path, suffix: str) -> str:
    with tarfile.open(mlf) as tar:
        name = next(n for n in tar.getnames() if n.endswith(suffix))
        f = tar.extractfile(name)
        assert f is not None
        return f.read().decode()


def _int_constants(src: str, ctype: str) -> dict[str, np.ndarray]:
    """{name: values} of the `const <ctype> name[N] = {...};` arrays of a constants.c."""
    pat = rf"const {ctype} (\w+)\[\d+\][^=]*= \{{([^}}]*)\}};"
    return {m.group(1): np.array([int(v) for v in m.group(2).split(",")]) for m in re.finditer(pat, src)}


def test_option_changes_the_emitted_weights(tmp_path_factory: pytest.TempPathFactory) -> None:
    syn = widenet(5)
    narrow, wide = _compile(syn, "int8", tmp_path_factory), _compile(syn, "int16", tmp_path_factory)
    lib8, lib16 = _member(narrow, "_lib0.c"), _member(wide, "_lib0.c")
    assert "#define TVMC_CONV_WIDE_W 1" not in lib8 and "#define TVMC_FC_WIDE_W 1" not in lib8
    # K = 4 (weight_hwo), 16, 64, 72, 12, 300, 12 widened, K = 6 not; depth 252 widened, depth 63 not
    assert lib16.count("#define TVMC_CONV_WIDE_W 1") == 7 and lib16.count("#define TVMC_CONV_WIDE_W 0") == 1
    assert lib16.count("#define TVMC_FC_WIDE_W 1") == 1 and lib16.count("#define TVMC_FC_WIDE_W 0") == 1
    c8, c16 = _member(narrow, "_constants.c"), _member(wide, "_constants.c")
    assert not _int_constants(c8, "int16_t")
    w16 = _int_constants(c16, "int16_t")
    assert len(w16) == 8 and "TVMGEN_CONST_ALIGN4" in c16
    # every widened array holds the values of one int8 weight array (plus zero taps), reordered
    w8 = _int_constants(c8, "int8_t")
    assert sum(v.size for v in w8.values()) > sum(v.size for v in _int_constants(c16, "int8_t").values())
    for name, values in w16.items():
        assert name in w8, f"{name} was rewritten in place"
        orig = w8[name]
        assert values.size >= orig.size and not np.array_equal(values[: orig.size], orig)
        assert sorted(values[values != 0].tolist()) == sorted(orig[orig != 0].tolist())
    meta8, meta16 = _member(narrow, "metadata.json"), _member(wide, "metadata.json")
    assert '"kernel_weights": "int16"' in meta16 and '"kernel_weights": "int8"' in meta8


def test_widened_layout_of_a_channel_pair() -> None:
    """Two rows of 8 and a lone third row in blocks of 2: per 4-element group, the rows' elements 0, 2, 1, 3
    side by side."""
    from tvmc_micro.compiler.quantized.ckernels import widened_blocks

    w = np.arange(24, dtype=np.int8).reshape(3, 8)
    got = widened_blocks(w, 2)
    want = [0, 2, 1, 3, 8, 10, 9, 11, 4, 6, 5, 7, 12, 14, 13, 15, 16, 18, 17, 19, 20, 22, 21, 23]
    assert got.dtype == np.int16 and got.tolist() == want


@pytest.mark.parametrize("seed", [5, 6])
def test_wide_weights_bit_exact_on_host(seed: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    syn = widenet(seed)
    mlf = _compile(syn, "int16", tmp_path_factory)
    work = tmp_path_factory.mktemp(f"{syn.name}_host")
    built = build(extract(mlf, work / "mlf"))
    rng = np.random.default_rng(seed)
    samples = [[random_input(rng, "int8", syn.input_shapes[0])] for _ in range(12)]
    ref = Tflm(syn.model)
    for sample, got in zip(samples, built.run(samples, work), strict=True):
        for j, (r, o) in enumerate(zip(ref(*sample), got, strict=True)):
            np.testing.assert_array_equal(o.reshape(r.shape), r, err_msg=f"output #{j} {syn.output_names[j]}")


def test_wide_weights_bit_exact_under_qemu(tmp_path_factory: pytest.TempPathFactory) -> None:
    sys.path.insert(0, str(REPO / "tests" / "templates" / "cortex_m"))
    from cortex_m_device import make_project, open_session
    from cortex_m_support import require_qemu, require_toolchain

    require_toolchain()
    require_qemu()
    syn = widenet(5)
    mlf = _compile(syn, "int16", tmp_path_factory)
    handler = make_project(mlf, tmp_path_factory.mktemp("widenet_qemu") / "proj", "mps2_an386")
    rng = np.random.default_rng(8)
    ref = Tflm(syn.model)
    with open_session(handler) as session:
        for _ in range(3):
            x = rng.integers(-128, 128, size=syn.input_shapes[0]).astype(np.int8)
            session.set_input(0, x.tobytes())
            session.run()
            for j, want in enumerate(ref(x)):
                got = np.frombuffer(session.get_output(j), np.int8)
                np.testing.assert_array_equal(got, want.reshape(-1), err_msg=f"output #{j}")


def test_bad_kernel_weights_value_is_refused(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.compiler.errors import CompileOptionError

    with pytest.raises(CompileOptionError, match="--kernel-weights 'int4' is not one of int8, int16"):
        compile_model(tmp_path / "none.tflite", tmp_path / "m.tar", target=M4, kernel_weights="int4")


def test_non_constant_weights_are_refused() -> None:
    """A kernel that wants its weights laid out at compile time, handed an arena tensor."""
    from tvmc_micro.compiler.errors import LoweringError
    from tvmc_micro.compiler.executor import ExecutorGraph, KernelCall, apply_weight_layouts
    from tvmc_micro.compiler.tir_codegen import LoweredKernel

    g = ExecutorGraph(tensors=[], calls=[], inputs=[], outputs=[])
    x = g.add(shape=(4,), dtype="int8", kind="input", name="x")
    w = g.add(shape=(4,), dtype="int8", kind="intermediate", name="w")
    o = g.add(shape=(1,), dtype="int8", kind="output", name="o")
    g.calls.append(KernelCall("fc", [x, w, o], [o]))
    kernel = LoweredKernel("k_fc", ["int8", "int16", "int8"], [], weight_layout=(1, lambda a: a))
    with pytest.raises(LoweringError, match=r"argument 1 \(w\).*not a constant"):
        apply_weight_layouts(g, {"fc": kernel})


def test_fc_layout_follows_the_block_knob() -> None:
    """A tuning knob that changes the FC block changes the widened layout with it (and the C block)."""
    import json

    from tvmc_micro.compiler.quantized import ckernel_knobs, ckernels

    rq = {"in_domain": True, "per_channel": False, "has_left": False, "mult": 1 << 30, "left": 0, "right": 4}
    spec = {"kind": "fully_connected", "batches": 1, "depth": 8, "units": 7, "out_zp": 0, "requant": rq}
    spec["act_range"] = [-128, 127]
    w = np.arange(56, dtype=np.int8)
    for knobs, block in (({}, 6), ({"fc_block": 3}, 3)):
        text = json.dumps({**spec, ckernel_knobs.KNOBS_KEY: knobs} if knobs else spec)
        gen = ckernels.generate(text, "f", ["int8", "int8", "int32", "int8"], "int16")
        assert gen is not None and gen.weight_layout is not None and gen.param_dtypes[1] == "int16"
        assert f"#define TVMC_FC_BLOCK {block}\n" in gen.source
        index, layout = gen.weight_layout
        assert index == 1
        assert layout(w).tolist() == ckernels.widened_blocks(w.reshape(7, 8), block).tolist()
    narrow = ckernels.generate(json.dumps(spec), "f", ["int8", "int8", "int32", "int8"], "int8")
    assert narrow is not None and narrow.weight_layout is None and narrow.param_dtypes[1] == "int8"


def test_weight_layout_checks_its_input() -> None:
    """Internal guards: a weight array of the wrong size, an unknown kernel_weights value."""
    import json

    from tvmc_micro.compiler.errors import LoweringError
    from tvmc_micro.compiler.quantized import ckernels

    with pytest.raises(LoweringError, match="FC weights of 12 elements, the kernel expects 2 x 8"):
        ckernels._fc_weight_layout(2, 8, 4)(np.zeros(12, np.int8))
    spec = {"kind": "conv2d", "weight_shape": [3, 1, 1, 8]}
    with pytest.raises(LoweringError, match="conv weights of 20 elements, the kernel expects 3 x 8"):
        ckernels._conv_weight_layout(spec, 8, 8)(np.zeros(20, np.int8))
    with pytest.raises(ValueError, match="kernel_weights must be one of"):
        ckernels.generate(json.dumps(spec), "f", ["int8"], "int4")


def test_shared_constant_gets_a_widened_copy() -> None:
    """A constant another kernel also reads stays as it is; the widening kernel gets its own copy."""
    from tvmc_micro.compiler.executor import ExecutorGraph, KernelCall, apply_weight_layouts
    from tvmc_micro.compiler.tir_codegen import LoweredKernel

    g = ExecutorGraph(tensors=[], calls=[], inputs=[], outputs=[])
    x = g.add(shape=(4,), dtype="int8", kind="input", name="x")
    c = g.add(shape=(4,), dtype="int8", kind="constant", name="c", constant=np.arange(4, dtype=np.int8))
    o1 = g.add(shape=(1,), dtype="int8", kind="intermediate", name="o1")
    o2 = g.add(shape=(4,), dtype="int8", kind="output", name="o2")
    g.calls += [KernelCall("fc", [x, c, o1], [o1]), KernelCall("add", [x, c, o2], [o2])]

    def widen(a: np.ndarray) -> np.ndarray:
        return a.astype(np.int16)[::-1].copy()

    kernels = {
        "fc": LoweredKernel("k_fc", ["int8", "int16", "int8"], [], weight_layout=(1, widen)),
        "add": LoweredKernel("k_add", ["int8", "int8", "int8"], []),
    }
    apply_weight_layouts(g, kernels)
    assert g.calls[1].args[1] == c and g.tensors[c].dtype == "int8"
    new = g.tensors[g.calls[0].args[1]]
    assert new.id != c and new.kind == "constant" and new.dtype == "int16"
    assert new.constant is not None and new.constant.tolist() == [3, 2, 1, 0]


def _tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300, check=False
    )


def test_cli_kernel_weights(tmp_path: Path) -> None:
    """`tvmc compile --kernel-weights int16` reaches the compile; a bad value is refused by name."""
    syn = widenet(5)
    model = tmp_path / "m.tflite"
    model.write_bytes(syn.model)
    out = tmp_path / "m.tar"
    done = _tvmc("compile", str(model), "--target", M4, "--kernel-weights", "int16", "-o", str(out), "-q")
    assert done.returncode == 0, done.stderr
    assert '"kernel_weights": "int16"' in _member(out, "metadata.json")
    bad = _tvmc("compile", str(model), "--target", M4, "--kernel-weights", "int4", "-o", str(out))
    assert bad.returncode != 0 and "--kernel-weights" in bad.stderr and "int4" in bad.stderr
    assert "--kernel-weights {int8,int16}" in _tvmc("compile", "--help").stdout
