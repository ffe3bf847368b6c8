"""Every supported operator and parameter variant, bit-exact against TFLite Micro on random inputs.

The synthetic models expose each intermediate activation as an output, so a failure names the
operator that diverged."""

from __future__ import annotations

import numpy as np
import pytest
from qharness import Tflm, bit_difference, compile_host, random_input
from synthetic import Synthetic, autoencoder, convnet, elementwise

pytestmark = pytest.mark.usefixtures("tvm_available")

N_RANDOM = 100

_MODELS = {
    **{f"convnet{v}": (lambda v=v: convnet(11 + v, v)) for v in range(3)},
    **{f"elementwise{v}": (lambda v=v: elementwise(21 + v, v)) for v in range(3)},
    "autoencoder": lambda: autoencoder(31),
}


@pytest.mark.parametrize("name", sorted(_MODELS))
def test_synthetic_model_bit_exact(name: str) -> None:
    syn: Synthetic = _MODELS[name]()
    ours, ref = compile_host(syn.model, syn.name), Tflm(syn.model)
    rng = np.random.default_rng(99)
    worst = dict.fromkeys(range(len(syn.output_names)), 0)
    for _ in range(N_RANDOM):
        xs = [random_input(rng, d, s) for d, s in zip(syn.input_dtypes, syn.input_shapes, strict=True)]
        for j, (r, o) in enumerate(zip(ref(*xs), ours(*xs), strict=True)):
            worst[j] = max(worst[j], bit_difference(r, o))
    bad = {f"#{j} {syn.output_names[j]}": d for j, d in worst.items() if d}
    assert not bad, f"outputs differing from TFLite Micro (max LSB / float mismatches): {bad}"


def test_autoencoder_outputs_do_not_saturate() -> None:
    """A model whose output uses the whole int8 range makes the comparison above meaningful."""
    syn = autoencoder(31)
    ref = Tflm(syn.model)
    rng = np.random.default_rng(1)
    out = np.concatenate([ref(random_input(rng, "int8", (1, 64)))[-1].ravel() for _ in range(20)])
    assert len(np.unique(out)) > 50
