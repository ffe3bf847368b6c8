"""microtvm_api.mlf_metadata: one validating reader of metadata.json (issue 12 #4), used by the client
(`tvmc micro create-project`, `tvmc run`) and by generate_project, so bad metadata fails early, naming the
field, instead of as a KeyError/AttributeError/RecursionError/UnicodeDecodeError later."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from microtvm_api.client import ProjectAPIClient
from microtvm_api.conformance import _minimal_mlf
from microtvm_api.errors import ArchiveError
from microtvm_api.mlf_metadata import (
    DTYPES,
    MAX_METADATA_BYTES,
    InvalidMetadataError,
    load_metadata,
    parse_metadata,
)
from microtvm_api.model_glue import _DTYPES

TENSOR = {"name": "x", "c_name": "x", "shape": [1, 4], "dtype": "int8", "size_bytes": 4, "quantization": None}
GOOD: dict[str, Any] = {
    "mlf_version": 1,
    "models": [
        {
            "name": "m",
            "signature": "0123456789abcdef",
            "target_str": "c",
            "memory": {"arena_bytes": 16, "io_bytes": 8},
            "inputs": [TENSOR],
            "outputs": [dict(TENSOR, name="y:0", c_name="y", quantization={"scale": 0.5, "zero_point": -3})],
            "state": [dict(TENSOR, name="s", c_name=None)],
            "operators": [{"index": 0, "name": "copy"}],
        }
    ],
}


def _w(path: str, value: Any) -> dict[str, Any]:
    """GOOD with the field at dotted `path` of models[0] (list indices as numbers) set to `value`, or
    deleted when `value` is `...`."""
    doc = copy.deepcopy(GOOD)
    keys: list[Any] = ["models", 0] + [int(k) if k.isdigit() else k for k in path.split(".") if path]
    target: Any = doc
    for key in keys[:-1]:
        target = target[key]
    if value is ...:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return doc


BAD: list[tuple[Any, str]] = [
    ([GOOD], "must be a JSON object, not a list"),
    ("models", "must be a JSON object, not a string"),
    ({}, "field 'models' is missing"),
    ({"models": []}, "field 'models' is []"),
    ({"models": {"m": 1}}, 'field \'models\' is {"m": 1}'),
    (_w("", "m"), 'models[0] is "m": a model must be an object'),
    (_w("name", ...), "models[0].name is missing: it must be a C identifier"),
    (_w("name", "my-model"), 'models[0].name is "my-model": it must be a C identifier'),
    (_w("signature", ...), "models[0].signature is missing: it must be a non-empty string"),
    (_w("signature", ""), 'models[0].signature is "": it must be a non-empty string'),
    (_w("target_str", 3), "models[0].target_str is 3: it must be a string"),
    (_w("inputs", ...), "models[0].inputs is missing: it must be a list of tensors"),
    (_w("outputs", {}), "models[0].outputs is {}: it must be a list of tensors"),
    (_w("inputs.0", 7), "models[0].inputs[0] is 7: a tensor must be an object"),
    (_w("inputs.0.name", None), "models[0].inputs[0].name is null: it must be a string"),
    (_w("inputs.0.c_name", "1x"), 'inputs[0].c_name is "1x": it must be a C identifier'),
    (_w("outputs.0.c_name", ...), 'outputs[0].name is "y:0": it must be a C identifier'),
    (_w("inputs.0.dtype", "complex64"), 'inputs[0].dtype is "complex64": it must be one of int8'),
    (_w("inputs.0.shape", "1x4"), 'inputs[0].shape is "1x4": it must be a list of non-negative'),
    (_w("inputs.0.shape", [1, -4]), "inputs[0].shape is [1, -4]: it must be a list of non-negative"),
    (_w("inputs.0.shape", [1, True]), "inputs[0].shape is [1, true]: it must be a list"),
    (_w("inputs.0.size_bytes", ...), "inputs[0].size_bytes is missing: it must be a non-neg"),
    (_w("inputs.0.size_bytes", 4.0), "inputs[0].size_bytes is 4.0: it must be a non-negative"),
    (_w("inputs.0.size_bytes", 5), "inputs[0].size_bytes is 5: it must be 4 (shape [1, 4] of int8)"),
    (_w("inputs.0.quantization", [0.5, 0]), "inputs[0].quantization is [0.5, 0]: it must be null"),
    (_w("outputs.0.quantization.scale", "big"), 'quantization.scale is "big": it must be a finite'),
    (_w("outputs.0.quantization.zero_point", 1.5), "quantization.zero_point is 1.5: it must be an "),
    (_w("state", {}), "models[0].state is {}: it must be a list of tensors"),
    (_w("state.0.dtype", None), "models[0].state[0].dtype is null"),
    (_w("memory", [16]), "models[0].memory is [16]: it must be an object of byte counts"),
    (_w("memory.arena_bytes", -1), "memory.arena_bytes is -1: it must be a non-negative"),
    (_w("operators", "copy"), 'models[0].operators is "copy": it must be a list of operators'),
    (_w("operators.0", "copy"), 'operators[0] is "copy": an operator must be an object'),
    (_w("operators.0.name", ...), "models[0].operators[0].name is missing: it must be a string"),
    (_w("operators.0.index", "0"), 'operators[0].index is "0": it must be a non-negative'),
    (_w("signature", [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]),
     "the document nests more than 32 levels deep"),
]


@pytest.mark.parametrize(("document", "words"), BAD, ids=[f"bad{i}" for i in range(len(BAD))])
def test_bad_metadata_names_the_field_and_value(document: Any, words: str) -> None:
    with pytest.raises(InvalidMetadataError) as info:
        parse_metadata(json.dumps(document).encode(), "model.tar: metadata.json")
    assert info.value.message.startswith("model.tar: metadata.json: ")
    assert words in info.value.message
    assert "tvmc compile" in (info.value.hint or "")
    assert isinstance(info.value, ArchiveError)  # travels as a -32000 ArchiveError from generate_project


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (json.dumps(GOOD).encode("utf-16"), "is UTF-16 encoded; metadata.json must be UTF-8"),
        (json.dumps(GOOD).encode("utf-16-le"), "is UTF-16 encoded"),
        (b'{"models": "\xff"}', "is not UTF-8 text (byte 12 is b'\\xff')"),
        (b'{"models": [', "is not valid JSON"),
        (b'{"models": NaN}', "is not valid JSON (NaN is not a JSON value)"),
        (b"[" * 100_000 + b"]" * 100_000, "the document nests more than 32 levels deep"),
        (b" " * (MAX_METADATA_BYTES + 1), "more than the 4,194,304 bytes a metadata.json may have"),
    ],
    ids=["utf16", "utf16le", "latin1", "truncated", "nan", "deep", "huge"],
)
def test_undecodable_metadata(data: bytes, words: str) -> None:
    with pytest.raises(InvalidMetadataError, match=r"metadata\.json") as info:
        parse_metadata(data, "metadata.json")
    assert words in info.value.message


def test_good_metadata_passes_and_a_utf8_bom_is_accepted() -> None:
    assert parse_metadata(json.dumps(GOOD).encode()) == GOOD
    assert parse_metadata(json.dumps(GOOD).encode("utf-8-sig")) == GOOD


def test_load_metadata_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(GOOD))
    assert load_metadata(path)["models"][0]["name"] == "m"
    with pytest.raises(InvalidMetadataError, match=r"missing\.json: file not found"):
        load_metadata(tmp_path / "missing.json")
    with pytest.raises(InvalidMetadataError, match="cannot be read: Is a directory"):
        load_metadata(tmp_path)
    path.write_bytes(b" " * (MAX_METADATA_BYTES + 10))
    # Only one byte past the cap is ever read.
    with pytest.raises(InvalidMetadataError, match="the file is 4,194,305 bytes, more than"):
        load_metadata(path)


def test_the_glue_generator_knows_every_dtype_the_validator_accepts() -> None:
    assert set(_DTYPES) == set(DTYPES)


def _mlf(path: Path, metadata: bytes) -> Path:
    (path.parent / "metadata.json").write_bytes(metadata)
    with tarfile.open(path, "w") as tar:
        tar.add(path.parent / "metadata.json", arcname="metadata.json")
    return path


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        (json.dumps([GOOD]).encode(), "metadata.json: the document must be a JSON object, not a list"),
        (json.dumps(_w("signature", ...)).encode(), "models[0].signature is missing"),
        (json.dumps(GOOD).encode("utf-16"), "metadata.json: the file is UTF-16 encoded"),
        (b"[" * 5000 + b"]" * 5000, "metadata.json: the document nests more than 32 levels deep"),
    ],
    ids=["list", "no_signature", "utf16", "deep"],
)
def test_the_cli_refuses_bad_metadata_before_any_server_runs(
    tmp_path: Path, metadata: bytes, words: str
) -> None:
    mlf = _mlf(tmp_path / "model.tar", metadata)
    argv = ["micro", "create-project", str(tmp_path / "p"), str(mlf), "crt_host"]
    done = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *argv], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 2 and words in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "p").exists()


def test_generate_project_validates_the_metadata_it_extracts(
    tmp_path: Path, repo_root: Path, launch: Callable[..., ProjectAPIClient]
) -> None:
    server = launch(repo_root / "template_projects" / "crt_host")
    for i, (document, words) in enumerate(BAD[:3] + BAD[8:9] + BAD[23:24]):
        (tmp_path / f"m{i}").mkdir()
        mlf = _mlf(tmp_path / f"m{i}" / "model.tar", json.dumps(document).encode())
        with pytest.raises(InvalidMetadataError) as info:
            server.generate_project(mlf, None, tmp_path / f"p{i}", {})
        assert words in info.value.message
        assert not (tmp_path / f"p{i}").exists()


def test_run_reports_bad_metadata_in_a_project_instead_of_a_key_error(tmp_path: Path) -> None:
    """A project whose model.tar was replaced by one without a signature: `tvmc run` names the field
    before any transport opens (it used to die with KeyError: 'signature')."""
    project = tmp_path / "proj"
    tvmc = [sys.executable, "-m", "tvmc_micro"]
    create = ["micro", "create-project", str(project), str(_minimal_mlf(tmp_path / "m.tar")), "crt_host"]
    made = subprocess.run([*tvmc, *create], capture_output=True, text=True, timeout=60, check=False)
    assert made.returncode == 0, made.stderr
    (tmp_path / "bad").mkdir()
    _mlf(tmp_path / "bad" / "model.tar", json.dumps(_w("signature", ...)).encode())
    (project / "model.tar").write_bytes((tmp_path / "bad" / "model.tar").read_bytes())
    done = subprocess.run([*tvmc, "run", "--device", "micro", str(project)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "metadata.json: models[0].signature is missing: it must be a non-empty string" in done.stderr
