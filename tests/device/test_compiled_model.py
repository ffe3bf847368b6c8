"""The whole device path on a model compiled by `tvmc_micro.compiler` (contract C1 end to end).

MLF -> model glue -> crt_host firmware (gcc) -> pipes -> DeviceSession must give, bit for bit, what the
MLF's C computes when called directly (a harness written against tvmgen_<name>.h alone, no runtime),
and stay close to LiteRT (the compiler's accuracy is the compiler tests' business).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pytest
from microtvm_api.archive import safe_extract
from tvmc_micro.device import DeviceSession
from tvmc_micro.device.process import ProcessTransport
from tvmc_micro.device.reference_model import build_host_firmware


@pytest.fixture(scope="module")
def sine_firmware(
    tmp_path_factory: pytest.TempPathFactory, models_dir: Path
) -> tuple[Path, Path, dict]:  # type: ignore[type-arg]
    from tvmc_micro.compiler import compile_model

    model = models_dir / "hello_world_int8.tflite"
    if not model.is_file():
        pytest.skip(f"reference model {model} is absent")
    root = tmp_path_factory.mktemp("sine")
    result = compile_model(model, root / "sine.tar")
    safe_extract(root / "sine.tar", root / "mlf")
    firmware = build_host_firmware(root / "mlf", root / "firmware")
    return model, firmware, result.metadata["models"][0]


def _direct_outputs(mlf: Path, meta: dict, workdir: Path) -> bytes:  # type: ignore[type-arg]
    """Outputs of the MLF's C for x = -128..127, calling tvmgen_<name>_run from a plain main()."""
    name, (inp,), (out,) = meta["name"], meta["inputs"], meta["outputs"]
    main = workdir / "direct_main.c"
    main.write_text(f"""
#include <stdint.h>
#include <stdio.h>
#include "tvmgen_{name}.h"
int main(void) {{
  static int8_t x[{inp["size_bytes"]}], y[{out["size_bytes"]}];
  struct tvmgen_{name}_inputs in;
  struct tvmgen_{name}_outputs out;
  int v;
  in.{inp["c_name"]} = x;
  out.{out["c_name"]} = y;
  for (v = -128; v < 128; ++v) {{
    x[0] = (int8_t)v;
    if (tvmgen_{name}_run(&in, &out) != 0) return 1;
    fwrite(y, 1, sizeof(y), stdout);
  }}
  return 0;
}}
""")
    exe = workdir / "direct"
    sources = sorted(str(p) for p in (mlf / "codegen" / "host" / "src").glob("*.c"))
    include = mlf / "codegen" / "host" / "include"
    subprocess.run(["gcc", "-std=c99", "-O2", f"-I{include}", str(main), *sources, "-lm", "-o", str(exe)],
                   check=True, capture_output=True)
    return subprocess.run([str(exe)], check=True, capture_output=True, timeout=60).stdout


@pytest.mark.slow
def test_every_int8_input_matches_litert(sine_firmware: tuple[Path, Path, dict]) -> None:  # type: ignore[type-arg]
    from ai_edge_litert.interpreter import Interpreter

    model, firmware, meta = sine_firmware
    direct = _direct_outputs(firmware.parent / "mlf", meta, firmware.parent)
    interpreter = Interpreter(str(model))
    interpreter.allocate_tensors()
    in_index = interpreter.get_input_details()[0]["index"]
    out_index = interpreter.get_output_details()[0]["index"]
    with DeviceSession(ProcessTransport([str(firmware)])) as session:
        hello = session.hello
        assert hello is not None and (hello.model_name, hello.signature) == (meta["name"], meta["signature"])
        info = session.info()
        assert [t.name for t in info.inputs] == [t["name"] for t in meta["inputs"]]
        assert info.op_names == tuple(op["name"] for op in meta["operators"])
        compared = 0
        max_litert_diff = 0
        device_outputs = bytearray()
        for value in range(-128, 128):
            x = np.array([[value]], dtype=np.int8)
            session.set_input(0, x.tobytes())
            session.run()
            raw = session.get_output(0)
            device_outputs += raw
            y = np.frombuffer(raw, dtype=np.int8)
            interpreter.set_tensor(in_index, x)
            interpreter.invoke()
            expected = interpreter.get_tensor(out_index).ravel()
            max_litert_diff = max(max_litert_diff, abs(int(y[0]) - int(expected[0])))
            compared += 1
        assert compared == 256
        assert bytes(device_outputs) == direct  # bit for bit: the session adds nothing and loses nothing
        assert max_litert_diff <= 3
        profile = session.profile_ops()
        assert len(profile.op_ticks) == len(meta["operators"]) and profile.total_ticks > 0


def test_profile_and_timing_run_on_the_real_input_not_the_consumed_one(
    sine_firmware: tuple[Path, Path, dict],  # type: ignore[type-arg]
) -> None:
    """Inputs live in the arena and a run consumes them: `tvmc run --profile/--print-time` set them again
    before the profiled run and before the timed runs, so those compute on the real input (their outputs
    are the first run's)."""
    from tvmc_micro.runner import _time_runs, profile_on, set_inputs

    _model, firmware, meta = sine_firmware
    x = [np.array([[100]], dtype=np.int8).reshape(meta["inputs"][0]["shape"])]
    with DeviceSession(ProcessTransport([str(firmware)])) as session:
        set_inputs(session, x)
        session.run()
        first = session.get_output(0)
        session.run()  # on what the first run left of the input
        consumed = session.get_output(0)
        assert consumed != first  # the model does consume its input: the check below means something
        profile = profile_on(session, x)
        assert profile.total_ticks > 0 and session.get_output(0) == first
        session.run()
        timing = _time_runs(session, 1, lambda _msg: None, x)
        assert timing.count == 1 and session.get_output(0) == first
