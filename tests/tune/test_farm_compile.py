"""The farm's worker-side compile (tvmc_micro.tune.farm._compile_request): the MLF a worker builds from
the model bytes, task configs and target a `tvmc tune --rpc-tracker` client sends must hold the same
generated code as the client's own compile with those configs (what the local path measures)."""

from __future__ import annotations

import base64
import tarfile
from pathlib import Path

import pytest
from tvmc_micro.errors import TvmcError

from tests.conftest import model_path

TARGET = "c -mcpu=cortex-m4"


def _codegen(mlf: Path) -> dict[str, bytes]:
    with tarfile.open(mlf) as tar:
        out = {}
        for m in tar.getmembers():
            if m.isfile() and m.name.lstrip("./").startswith("codegen/"):
                f = tar.extractfile(m)
                assert f is not None
                out[m.name] = f.read()
        return out


def test_worker_compile_equals_client_compile(tmp_path: Path) -> None:
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.tune.farm import _compile_request
    from tvmc_micro.tune.search import all_configs
    from tvmc_micro.tune.tasks import extract_tasks

    model = model_path("hello_world_float.tflite")
    mt = extract_tasks(model, TARGET)
    task = next(t for t in mt.tasks if t.space)
    config = next(c for c in all_configs(task.space) if c != task.default)
    configs = {task.key: config}
    local = tmp_path / "local.tar"
    compile_model(model, local, target=TARGET, kernel_configs=configs, progress=lambda _m: None)
    work = tmp_path / "worker"
    work.mkdir()
    remote = work / "candidate.tar"
    request = {
        "model": base64.b64encode(model.read_bytes()).decode(),
        "model_name": model.name,
        "target": TARGET,
        "input_shapes": {},
        "configs": configs,
    }
    _compile_request(request, work, remote)
    ours, theirs = _codegen(local), _codegen(remote)
    assert ours and ours == theirs
    # The config reached the compile: the hand-set config's code differs from this candidate's.
    hand_set = tmp_path / "hand_set.tar"
    compile_model(model, hand_set, target=TARGET, kernel_configs={}, progress=lambda _m: None)
    assert _codegen(hand_set) != theirs


@pytest.mark.parametrize("name", ["", "..", "."])
def test_worker_refuses_a_model_name_that_is_not_a_file_name(tmp_path: Path, name: str) -> None:
    from tvmc_micro.tune.farm import _compile_request

    request = {"model": "", "model_name": name, "target": TARGET, "configs": {}}
    with pytest.raises(TvmcError, match="is not a file name"):
        _compile_request(request, tmp_path, tmp_path / "c.tar")
