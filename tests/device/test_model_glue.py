"""microtvm_api.model_glue: the generated glue compiles and serves the model; bad metadata is refused."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from microtvm_api.errors import ArchiveError
from microtvm_api.model_glue import InvalidMetadataError, render_model_glue, runtime_sources, write_model_glue
from tvmc_micro.device.reference_model import RUNTIME_DIR, write_tiny_mlf


def _metadata(tmp_path: Path, **model_overrides: object) -> Path:
    mlf = write_tiny_mlf(tmp_path / "mlf", n=4)
    meta = json.loads((mlf / "metadata.json").read_text())
    meta["models"][0].update(model_overrides)
    (mlf / "metadata.json").write_text(json.dumps(meta))
    return mlf / "metadata.json"


def test_glue_has_aligned_buffers_hook_and_descriptor(tmp_path: Path) -> None:
    text = render_model_glue(_metadata(tmp_path))
    assert '#include "tvmgen_tiny.h"' in text
    assert "static uint8_t tvmrt_input_0[4] TVMRT_ALIGNED(16);" in text
    assert "void tvmgen_op_hook(uint32_t index) { tvmrt_profiler_hook(index); }" in text
    assert "const tvmrt_model_t* tvmrt_firmware_model(void)" in text
    assert '"0123456789abcdef"' in text


def _compile_glue(glue: Path, include: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", f"-I{RUNTIME_DIR / 'include'}",
         f"-I{include}", "-c", str(glue), "-o", str(glue.with_suffix(".o"))],
        capture_output=True, text=True, check=False,
    )


def test_header_and_metadata_size_mismatch_fails_to_compile(tmp_path: Path) -> None:
    """If metadata.json and tvmgen_<name>.h disagree on a size, the glue does not build."""
    meta = _metadata(tmp_path)
    include = meta.parent / "codegen" / "host" / "include"
    glue = write_model_glue(meta, tmp_path / "glue.c")
    assert _compile_glue(glue, include).returncode == 0
    header = include / "tvmgen_tiny.h"
    text = header.read_text().replace("#define TVMGEN_TINY_Y_SIZE 4", "#define TVMGEN_TINY_Y_SIZE 8")
    header.write_text(text)
    result = _compile_glue(glue, include)
    assert result.returncode != 0
    assert "tvmrt_output_0_size_matches_header" in result.stderr


def test_strings_are_escaped_for_c(tmp_path: Path) -> None:
    meta = _metadata(tmp_path, operators=[{"index": 0, "name": 'a"b\\c\u00e9', "function": "f"}])
    text = render_model_glue(meta)
    assert '"a\\"b\\\\c\\303\\251"' in text
    glue = write_model_glue(meta, tmp_path / "glue.c")
    assert _compile_glue(glue, meta.parent / "codegen" / "host" / "include").returncode == 0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"name": "bad-name"}, r'models\[0\]\.name is "bad-name": it must be a C identifier'),
        ({"inputs": [{"name": "x", "c_name": "1x", "dtype": "int8", "shape": [4], "size_bytes": 4}]},
         r'models\[0\]\.inputs\[0\]\.c_name is "1x": it must be a C identifier'),
        ({"outputs": [{"name": "y", "c_name": "y", "dtype": "complex64", "shape": [4], "size_bytes": 4}]},
         r'models\[0\]\.outputs\[0\]\.dtype is "complex64": it must be one of int8'),
        ({"inputs": [{"name": "x", "c_name": "x", "dtype": "int8", "shape": [-1], "size_bytes": 4}]},
         r"inputs\[0\]\.shape is \[-1\]: it must be a list of non-negative integers"),
        ({"inputs": [{"name": "x", "c_name": "x", "dtype": "int8", "shape": [4], "size_bytes": "4"}]},
         r'inputs\[0\]\.size_bytes is "4": it must be a non-negative integer'),
        ({"inputs": None}, r"models\[0\]\.inputs is null: it must be a list of tensors"),
        ({"operators": [{"index": 0}]}, r"models\[0\]\.operators\[0\]\.name is missing: it must be a string"),
        ({"signature": 5}, r"models\[0\]\.signature is 5: it must be a non-empty string"),
    ],
)
def test_bad_metadata_is_refused(tmp_path: Path, overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidMetadataError, match=message) as info:
        render_model_glue(_metadata(tmp_path, **overrides))
    assert "tvmc compile" in (info.value.hint or "")
    assert isinstance(info.value, ArchiveError)


def test_missing_invalid_and_ambiguous_metadata(tmp_path: Path) -> None:
    with pytest.raises(InvalidMetadataError, match="file not found"):
        render_model_glue(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidMetadataError, match="not valid JSON"):
        render_model_glue(bad)
    bad.write_text(json.dumps({"models": []}))
    with pytest.raises(InvalidMetadataError, match=r"field 'models' is \[\]: it must be a non-empty list"):
        render_model_glue(bad)
    meta = _metadata(tmp_path)
    doc = json.loads(meta.read_text())
    doc["models"].append(dict(doc["models"][0], name="other"))
    meta.write_text(json.dumps(doc))
    with pytest.raises(InvalidMetadataError, match=r"holds 2 models \['tiny', 'other'\]"):
        render_model_glue(meta)
    assert "tvmgen_other.h" in render_model_glue(meta, model_name="other")
    with pytest.raises(InvalidMetadataError, match="no model named 'third'"):
        render_model_glue(meta, model_name="third")


def test_model_without_operators_compiles(tmp_path: Path) -> None:
    meta = _metadata(tmp_path, operators=[])
    text = render_model_glue(meta)
    assert "0u, 0, 0," in text  # no op table, no tick storage
    glue = write_model_glue(meta, tmp_path / "glue.c")
    assert _compile_glue(glue, meta.parent / "codegen" / "host" / "include").returncode == 0


def test_runtime_sources_skip_unit_tests(tmp_path: Path) -> None:
    sources = runtime_sources(RUNTIME_DIR, "host")
    names = [p.name for p in sources]
    assert "server.c" in names and "platform_host.c" in names
    assert not [n for n in names if n.endswith("_test.c")]
    assert all(p.parent.name != "test" for p in sources)
    assert "platform_host.c" not in [p.name for p in runtime_sources(RUNTIME_DIR, None)]
    with pytest.raises(InvalidMetadataError, match="no runtime sources"):
        runtime_sources(tmp_path)
    with pytest.raises(InvalidMetadataError, match="no platform sources for 'zephyr'"):
        runtime_sources(RUNTIME_DIR, "zephyr")
