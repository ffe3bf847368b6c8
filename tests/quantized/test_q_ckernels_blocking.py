"""The LDRD paths of the DSP C kernels (csrc/tvmc_dsp.h TVMC_LD2): convolutions whose K is walked in chunks
of 4-tap groups with each pixel's patch words at an immediate offset from the middle pixel's row (K = 128 and
3x3x32 = 288), and one whose rows lie too far apart for LDRD's +-1020 bytes (K = 600: two LDRs for the outer
pixels); FULLY_CONNECTED with the input widened into a stack copy (depth 128 with 30 batches, depth 700)
and without it (depth 3,840). Bit-exact with TFLite Micro on the host (portable twins) and under QEMU
mps2_an386, where the LDRDs really run."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from qharness import Tflm, random_input
from synthetic import Synthetic, _Net
from test_q_ckernels import M4, _compile, _kernel_source

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.usefixtures("tvm_available")


def ldrdnet(seed: int) -> Synthetic:
    """int8 in (1, 7, 5, 32): 35 pixels (eleven 3-pixel blocks and a tail of 2), odd output channel counts
    (a single-channel step), per-channel and per-tensor requantisation."""
    net = _Net(seed)
    shape = (1, 7, 5, 32)
    x = net.act("input", shape)
    net.conv(x, 19, (3, 3), per_channel=True, padding="SAME")  # K = 288, rows widened from the input
    wide = net.conv(x, 128, (1, 1), per_channel=False, padding="VALID", activation="RELU")
    net.conv(wide, 17, (1, 1), per_channel=True, padding="VALID")  # K = 128
    big = net.conv(x, 600, (1, 1), per_channel=False, padding="VALID")
    net.conv(big, 5, (1, 1), per_channel=True, padding="VALID")  # K = 600: rows 1,200 bytes apart
    net.fc(wide, 10, per_channel=True)  # [35, 128] x [10, 128]^T: widened input, a tail block of 2
    net.fc(net.reshape(big, (30, 700)), 7, per_channel=False, activation="RELU")  # widened, 7 units
    net.fc(net.reshape(wide, (1, 4480)), 5, per_channel=True)  # too deep for the stack copy
    model = net.b.build([x], net.outputs)
    return Synthetic(f"ldrdnet{seed}", model, ["int8"], [shape], net.output_names)


def test_ldrd_kernels_bit_exact_on_host(tmp_path_factory: pytest.TempPathFactory) -> None:
    sys.path.insert(0, str(REPO / "tests" / "compiler"))
    from compiler_harness import build, extract

    syn = ldrdnet(11)
    mlf = _compile(syn.model, syn.name, M4, tmp_path_factory)
    src = _kernel_source(mlf)
    fcs = {k.split(" */")[0]: k for k in src.split("/* FULLY_CONNECTED ")[1:]}
    assert "#define TVMC_FC_WIDE 1" in fcs["35x128 -> 35x10"]
    assert "#define TVMC_FC_WIDE 1" in fcs["30x700 -> 30x7"]
    assert "#define TVMC_FC_WIDE 0" in fcs["1x4480 -> 1x5"]
    assert src.count("/* CONV_2D ") == 5 and "K = 600" in src and "K = 288" in src
    work = tmp_path_factory.mktemp(f"{syn.name}_host")
    built = build(extract(mlf, work / "mlf"))
    rng = np.random.default_rng(2)
    samples = [[random_input(rng, "int8", syn.input_shapes[0])] for _ in range(6)]
    ref = Tflm(syn.model)
    for sample, got in zip(samples, built.run(samples, work), strict=True):
        for j, (r, o) in enumerate(zip(ref(*sample), got, strict=True)):
            np.testing.assert_array_equal(o.reshape(r.shape), r, err_msg=f"output #{j} {syn.output_names[j]}")


def test_ldrd_kernels_bit_exact_under_qemu(tmp_path_factory: pytest.TempPathFactory) -> None:
    sys.path.insert(0, str(REPO / "tests" / "templates" / "cortex_m"))
    from cortex_m_device import make_project, open_session
    from cortex_m_support import require_qemu, require_toolchain

    require_toolchain()
    require_qemu()
    syn = ldrdnet(11)
    mlf = _compile(syn.model, syn.name, M4, tmp_path_factory)
    handler = make_project(mlf, tmp_path_factory.mktemp("ldrdnet_qemu") / "proj", "mps2_an386")
    rng = np.random.default_rng(4)
    ref = Tflm(syn.model)
    with open_session(handler) as session:
        for _ in range(3):
            x = rng.integers(-128, 128, size=syn.input_shapes[0]).astype(np.int8)
            session.set_input(0, x.tobytes())
            session.run()
            for j, want in enumerate(ref(x)):
                got = np.frombuffer(session.get_output(j), np.int8)
                message = f"output #{j} {syn.output_names[j]}"
                np.testing.assert_array_equal(got, want.reshape(-1), err_msg=message)
