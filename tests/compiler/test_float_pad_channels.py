"""Issue 18: a float PAD along the channel axis fused with what follows it.

Every producer kind (MAX_POOL_2D, AVERAGE_POOL_2D, CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, MEAN) feeds
a PAD that adds channels, which feeds each consumer kind (ADD, MUL, CONCATENATION, RELU, or the PAD is the
model output). The padded channels do not depend on the producer; a schedule that moved the consumer under
the producer's loops left them unwritten. Built against the poisoning harness (compiler_harness.py), so an
unwritten element shows up as 3.4e38 / NaN, and compared with LiteRT.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from compiler_harness import POISON_BYTES, BuiltModel, build, extract
from test_float_models import REL_TOL, _litert

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "quantized"))
import tflite_builder as tb
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

PRODUCERS = ("MAX_POOL_2D", "AVERAGE_POOL_2D", "CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "MEAN")
CONSUMERS = ("ADD", "MUL", "CONCATENATION", "RELU", "OUTPUT")
N_SAMPLES = 4  # more than len(POISON_BYTES): every poison byte is used at least once
EXTRA_CHANNELS = 2  # what CONCATENATION appends after the padded channels


def _producer(b: tb.ModelBuilder, kind: str, rng: np.random.Generator) -> tuple[int, list[int], list[int]]:
    """(producer output tensor, its shape, model inputs it needs)."""
    x = b.tensor("x", [1, 8, 8, 3] if kind != "FULLY_CONNECTED" else [1, 16], "float32")
    if kind in ("MAX_POOL_2D", "AVERAGE_POOL_2D"):
        shape = [1, 4, 4, 3]
        y = b.tensor("y", shape, "float32")
        b.op(kind, [x], [y], tb.pool_options((2, 2), (2, 2)))
    elif kind == "CONV_2D":
        shape = [1, 8, 8, 4]
        w = b.tensor(
            "conv_w", [4, 3, 3, 3], "float32", data=rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32)
        )
        bias = b.tensor("conv_b", [4], "float32", data=rng.normal(0, 0.2, (4,)).astype(np.float32))
        y = b.tensor("y", shape, "float32")
        b.op(kind, [x, w, bias], [y], tb.conv_options("SAME"))
    elif kind == "DEPTHWISE_CONV_2D":
        shape = [1, 8, 8, 3]
        w = b.tensor(
            "dw_w", [1, 3, 3, 3], "float32", data=rng.normal(0, 0.5, (1, 3, 3, 3)).astype(np.float32)
        )
        bias = b.tensor("dw_b", [3], "float32", data=rng.normal(0, 0.2, (3,)).astype(np.float32))
        y = b.tensor("y", shape, "float32")
        b.op(kind, [x, w, bias], [y], tb.depthwise_options("SAME"))
    elif kind == "FULLY_CONNECTED":
        shape = [1, 6]
        w = b.tensor("fc_w", [6, 16], "float32", data=rng.normal(0, 0.5, (6, 16)).astype(np.float32))
        bias = b.tensor("fc_b", [6], "float32", data=rng.normal(0, 0.2, (6,)).astype(np.float32))
        y = b.tensor("y", shape, "float32")
        b.op(kind, [x, w, bias], [y], tb.fc_options())
    else:  # MEAN over H and W, keeping them
        shape = [1, 1, 1, 3]
        axes = b.const_int32("mean_axes", [1, 2])
        y = b.tensor("y", shape, "float32")
        b.op(kind, [x, axes], [y], tb.reducer_options(keep_dims=True))
    return y, shape, [x]


def _model(producer: str, consumer: str, seed: int) -> bytes:
    """producer -> PAD(channels) -> consumer -> model output (the PAD itself when consumer is OUTPUT)."""
    rng = np.random.default_rng(seed)
    b = tb.ModelBuilder()
    y, shape, inputs = _producer(b, producer, rng)
    # Channels added after the producer's (TVM does not fuse a PAD that also adds channels before).
    before, after = 0, 5
    pads = np.zeros((len(shape), 2), np.int32)
    pads[-1] = before, after
    padded = [*shape[:-1], shape[-1] + before + after]
    p = b.tensor("pad", padded, "float32")
    b.op("PAD", [y, b.const_int32("pads", pads)], [p], schema.PadOptionsT())
    if consumer == "OUTPUT":
        return b.build(inputs, [p])
    if consumer in ("ADD", "MUL"):
        other = b.tensor("other", padded, "float32")
        inputs.append(other)
        out = b.tensor("out", padded, "float32")
        b.op(consumer, [p, other], [out], tb.add_options() if consumer == "ADD" else tb.mul_options())
    elif consumer == "CONCATENATION":
        other = b.tensor("other", [*shape[:-1], EXTRA_CHANNELS], "float32")
        inputs.append(other)
        out = b.tensor("out", [*shape[:-1], padded[-1] + EXTRA_CHANNELS], "float32")
        b.op(consumer, [p, other], [out], tb.concat_options(axis=len(shape) - 1))
    else:  # RELU
        out = b.tensor("out", padded, "float32")
        b.op(consumer, [p], [out])
    return b.build(inputs, [out])


def _compile(tmp_path: Path, name: str, data: bytes, **options: Any) -> tuple[Path, BuiltModel]:
    from tvmc_micro.compiler import compile_model

    source = tmp_path / f"{name}.tflite"
    source.write_bytes(data)
    compile_model(source, tmp_path / f"{name}.tar", **options)
    return source, build(extract(tmp_path / f"{name}.tar", tmp_path / name))


def _samples(model: dict[str, Any], n: int, seed: int) -> list[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [
        [rng.uniform(-1.0, 1.0, size=i["shape"]).astype(i["dtype"]) for i in model["inputs"]]
        for _ in range(n)
    ]


@pytest.mark.parametrize("consumer", CONSUMERS)
@pytest.mark.parametrize("producer", PRODUCERS)
def test_channel_pad_fused_after_producer_matches_litert(
    tmp_path: Path, producer: str, consumer: str
) -> None:
    source, built = _compile(tmp_path, "m", _model(producer, consumer, seed=PRODUCERS.index(producer)))
    # The class under test is there: the PAD runs inside the producer's kernel.
    first = built.model["operators"][0]["name"]
    assert "pad" in first and first != "pad", built.model["operators"]
    samples = _samples(built.model, N_SAMPLES, seed=3)
    ours = built.run(samples, tmp_path)
    ref = _litert(source, samples)
    worst = 0.0
    for got, want in zip(ours, ref, strict=True):
        assert got[0].shape == want[0].shape
        scale = max(float(np.max(np.abs(want[0]))), 1e-30)
        worst = max(worst, float(np.max(np.abs(got[0].astype(np.float64) - want[0]))) / scale)
    assert worst <= REL_TOL, f"relative error {worst:.3g}"


def test_poisoned_harness_exposes_an_unwritten_output(tmp_path: Path) -> None:
    """The harness fills outputs (and the arena) with poison before every run: with the kernel call removed
    from the executor, each run returns exactly the poison pattern of its round. (Outputs in caller-owned
    buffers here: with the default I/O in the arena, the output's arena slot may hold the copied-in input.)"""
    _, built = _compile(tmp_path, "skip", _model("CONV_2D", "RELU", seed=1), io_buffers="separate")
    executor = next((built.dir / "codegen" / "host" / "src").glob("*_executor.c"))
    text = executor.read_text()
    calls = [ln for ln in text.splitlines() if ln.strip().startswith("if (tvmgen_skip_")]
    assert calls
    executor.write_text(text.replace(calls[0], "  /* kernel skipped by the test */"))
    skipped = build(built.dir)
    samples = _samples(built.model, len(POISON_BYTES), seed=5)
    ours = skipped.run(samples, tmp_path)
    for k, outs in enumerate(ours):
        want = np.full(outs[0].nbytes, POISON_BYTES[k], np.uint8)
        np.testing.assert_array_equal(np.frombuffer(outs[0].tobytes(), np.uint8), want)


def test_coverage_guard_rejects_what_tvm_reverse_compute_at_does(tmp_path: Path) -> None:
    """The root cause, at the TIR level: TVM 0.27's reverse_compute_at moves the ADD under the max pool's
    loops and bounds it by the channels it reads from the pool, so the padded channels are never written;
    schedule.py's guard sees it and schedule_primfunc keeps the ADD whole."""
    import tvm
    from tvm import s_tir
    from tvmc_micro.compiler import schedule
    from tvmc_micro.compiler.executor import build_executor_graph
    from tvmc_micro.compiler.frontend import _from_tflite
    from tvmc_micro.compiler.model_file import load_model_file
    from tvmc_micro.compiler.relax_passes import lower_to_flat_main

    source = tmp_path / "m.tflite"
    source.write_bytes(_model("MAX_POOL_2D", "ADD", seed=0))
    flat = lower_to_flat_main(
        _from_tflite(load_model_file(source, None), {}), tvm.target.Target({"kind": "c"}), None
    )
    func = flat[build_executor_graph(flat).calls[0].func]
    required = schedule._write_coverage(func)[1]
    assert {str(b.name) for b in required} >= {"T_add_intermediate"}

    sch = s_tir.Schedule(func)
    pool, pad, add = sch.get_child_blocks(sch.get_sblock("root"))
    sch.compute_inline(pad)
    assert schedule._keeps_coverage(sch.mod["main"], required)  # inlining the pad is fine
    sch.reverse_compute_at(add, sch.get_loops(pool)[3], preserve_unit_loops=True)
    assert not schedule._keeps_coverage(sch.mod["main"], required)  # the ADD now covers 3 of 8 channels

    scheduled = schedule.schedule_primfunc(func)
    assert schedule._keeps_coverage(scheduled, required)
    assert not scheduled.same_as(func)  # still scheduled (pad inlined, reduction init hoisted)
