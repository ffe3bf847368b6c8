"""The reference int8 models, bit-exact against TFLite Micro (outputs and the logits before SOFTMAX)."""

from __future__ import annotations

import numpy as np
import pytest
from qharness import Tflm, bit_difference, compile_host, with_outputs

from tests.conftest import model_path

pytestmark = pytest.mark.usefixtures("tvm_available")

# KWS: tensor 33 is the FULLY_CONNECTED output feeding SOFTMAX (the logits), 34 the model output.
KWS_LOGITS, KWS_OUTPUT = 33, 34
N_RANDOM = 100


@pytest.fixture(scope="module")
def kws_with_logits() -> bytes:
    return with_outputs(model_path("kws_ref_model.tflite").read_bytes(), [KWS_LOGITS, KWS_OUTPUT])


@pytest.mark.slow
def test_kws_bit_exact_on_random_inputs_outputs_and_logits(kws_with_logits: bytes) -> None:
    ours, ref = compile_host(kws_with_logits, "kws"), Tflm(kws_with_logits)
    rng = np.random.default_rng(2026)
    unsaturated = 0
    for _ in range(N_RANDOM):
        x = rng.integers(-128, 128, size=(1, 49, 10, 1)).astype(np.int8)
        r, o = ref(x), ours(x)
        assert bit_difference(r[0], o[0]) == 0, "logits (SOFTMAX input) differ"
        assert bit_difference(r[1], o[1]) == 0, "softmax output differs"
        unsaturated += int(np.count_nonzero(r[0] > -128))
    # The comparison means something: the logits spread over many values, not only -128.
    assert unsaturated > N_RANDOM * 3


@pytest.mark.slow
def test_kws_fixed_inputs_match_the_published_tflm_outputs(kws_with_logits: bytes) -> None:
    """Outputs for the fixed inputs listed in shared/baselines/tflm-cortex-m4.md."""
    ours = compile_host(kws_with_logits, "kws")
    zeros = np.zeros((1, 49, 10, 1), np.int8)
    seed0 = np.random.default_rng(0).integers(-128, 128, size=490, dtype=np.int16).astype(np.int8)
    assert ours(zeros)[1].reshape(-1).tolist() == [
        -1,
        -128,
        -128,
        -128,
        -128,
        -1,
        -128,
        -128,
        -128,
        -128,
        -128,
        -127,
    ]
    assert ours(seed0.reshape(1, 49, 10, 1))[1].reshape(-1).tolist() == [-128] * 9 + [127, -128, -128]


@pytest.mark.slow
def test_kws_agrees_with_litert_reference_kernels_up_to_its_fc_multiplier() -> None:
    """LiteRT's reference kernels agree on every CONV/DEPTHWISE/POOL tensor; its FULLY_CONNECTED output
    may differ by 1 LSB from TFLite Micro (and from us) because LiteRT derives the FC multiplier from a
    float32 product of the scales, TFLM from a double one. (Its XNNPACK default differs more.)"""
    litert = pytest.importorskip("ai_edge_litert.interpreter")
    every = with_outputs(model_path("kws_ref_model.tflite").read_bytes(), list(range(22, 35)))
    interp = litert.Interpreter(
        model_content=every,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_REF,
        experimental_preserve_all_tensors=True,
    )
    interp.allocate_tensors()
    ours = compile_host(every, "kws_all")
    rng = np.random.default_rng(5)
    for _ in range(20):
        x = rng.integers(-128, 128, size=(1, 49, 10, 1)).astype(np.int8)
        interp.set_tensor(interp.get_input_details()[0]["index"], x)
        interp.invoke()
        mine = ours(x)
        for k, tensor in enumerate(range(22, 35)):
            allowed = 1 if tensor == KWS_LOGITS else 0
            assert bit_difference(interp.get_tensor(tensor), mine[k]) <= allowed, f"tensor {tensor}"


def test_hello_world_bit_exact_for_every_possible_input() -> None:
    model = model_path("hello_world_int8.tflite").read_bytes()
    ours, ref = compile_host(model, "hello"), Tflm(model)
    for v in range(-128, 128):
        x = np.array([[v]], np.int8)
        assert bit_difference(ref(x)[0], ours(x)[0]) == 0, f"input {v}"
    assert ours(np.zeros((1, 1), np.int8))[0].item() == 4  # baseline: hello zeros -> 4


@pytest.mark.slow
def test_kws_module_keeps_weights_int8_and_activations_integer() -> None:
    import tvm
    from tvmc_micro.compiler.quantized import import_tflite_quantized, weight_bytes

    model = model_path("kws_ref_model.tflite").read_bytes()
    mod = import_tflite_quantized(model, "kws")
    main = mod["main"]
    assert [str(p.ty.dtype) for p in main.params] == ["int8"]
    consts: list[np.ndarray] = []

    def visit(e: object) -> None:
        if isinstance(e, tvm.ir.GenericConst):
            consts.append(e.value.numpy())

    tvm.relax.analysis.post_order_visit(main.body, visit)
    assert {c.dtype for c in consts} <= {np.dtype("int8"), np.dtype("int32")}
    total = sum(c.nbytes for c in consts)
    # int8 weights + int32 biases of the model, plus per-channel multipliers/shifts (5 B per channel)
    # and the 1 KiB softmax exp table: far from the 4x a float path needs.
    assert total <= weight_bytes(model) * 1.25
    kernels = [gv.name_hint for gv, f in mod.functions.items() if isinstance(f, tvm.tirx.PrimFunc)]
    # Identical layers share one kernel (their per-channel tables are arguments).
    assert len(kernels) == 6, kernels
