"""The deployed forms of two unseen-model stand-ins end to end: VWW (MobileNetV1-0.25, 96x96x3) and the
anomaly-detection autoencoder on the cortex_m template (mps2_an386, Cortex-M4F under QEMU, compiled for
cortex-m4 so convolutions use the DSP kernels) and through the real `tvmc` CLI on crt_host; outputs
bit-exact with TFLite Micro. VWW does not fit lm3s6965evb's 64 KiB of RAM and must be refused clearly."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from zoo_harness import ZooCache, reference, samples_for

pytestmark = pytest.mark.slow

_CORTEX_M_TESTS = Path(__file__).resolve().parent.parent / "templates" / "cortex_m"
if str(_CORTEX_M_TESTS) not in sys.path:
    sys.path.insert(0, str(_CORTEX_M_TESTS))

M4 = "c -mcpu=cortex-m4"


@pytest.mark.parametrize("key", ["vww", "anomaly"])
def test_on_mps2_an386_under_qemu(key: str, zoo_cache: ZooCache, tmp_path: Path) -> None:
    from cortex_m_device import make_project, open_session
    from cortex_m_support import require_qemu, require_toolchain

    require_toolchain()
    require_qemu()
    model = zoo_cache.model(key)
    handler = make_project(zoo_cache.tar(key, target=M4, final_only=True), tmp_path / "proj", "mps2_an386")
    samples = samples_for(model, 2, seed=3)
    got = []
    with open_session(handler) as session:
        for s in samples:
            session.set_input(0, s[0].tobytes())
            session.run()
            got.append(np.frombuffer(session.get_output(0), np.int8))
    want = reference(model.final_only(), False, samples)
    for out, ref in zip(got, want, strict=True):
        np.testing.assert_array_equal(out, ref[0].reshape(-1))


def test_vww_refused_on_a_64k_board(zoo_cache: ZooCache, tmp_path: Path) -> None:
    from cortex_m_device import make_project
    from cortex_m_support import require_toolchain

    require_toolchain()
    with pytest.raises(Exception, match=r"(?s)arena .*KB.*RAM on lm3s6965evb") as err:
        make_project(
            zoo_cache.tar("vww", target="c -mcpu=cortex-m3", final_only=True), tmp_path / "p", "lm3s6965evb"
        )
    print(err.value)


def _tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300
    )
    assert r.returncode == 0, f"tvmc {' '.join(args)} failed:\n{r.stderr}"
    return r


@pytest.mark.parametrize("key", ["vww", "anomaly"])
def test_tvmc_run_on_crt_host(key: str, zoo_cache: ZooCache, tmp_path: Path) -> None:
    model = zoo_cache.model(key)
    project = tmp_path / "project"
    _tvmc("micro", "create-project", str(project), str(zoo_cache.tar(key, final_only=True)), "crt_host")
    _tvmc("micro", "build", str(project))
    _tvmc("micro", "flash", str(project))
    import json

    meta = json.loads((project / "model" / "metadata.json").read_text())["models"][0]
    (sample,) = samples_for(model, 1, seed=9)
    np.savez(tmp_path / "in.npz", **{meta["inputs"][0]["name"]: sample[0]})
    r = _tvmc(
        "run",
        "--device",
        "micro",
        str(project),
        "-i",
        str(tmp_path / "in.npz"),
        "-o",
        str(tmp_path / "out.npz"),
        "--print-time",
    )
    with np.load(tmp_path / "out.npz") as out:
        got = out[meta["outputs"][0]["name"]]
    want = reference(model.final_only(), False, [sample])[0][0]
    np.testing.assert_array_equal(got.reshape(-1), want.reshape(-1))
    assert "time" in r.stdout.lower()
