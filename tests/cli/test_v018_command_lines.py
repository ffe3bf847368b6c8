"""tvmc v0.18 command lines run unchanged: the microTVM tutorial's compile line (micro_tvmc.sh) and
test_tvmc.py's, through create-project/build/flash/run on crt_host with the v0.18 spellings (platform
`crt`, several values after one --project-option); flags that cannot be honoured stop with a hint; the
docs table is the code's table."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from tvmc_micro.cli.v018_flags import COMPILE_FLAGS, normalize_argv, translate_pass_config

from tests.conftest import REPO_ROOT

# The tutorial's line, with the model file name substituted (its magic_wand.tflite is a download).
TUTORIAL_COMPILE = [
    "--target=c -keys=cpu -model=host",
    "--runtime=crt",
    "--runtime-crt-system-lib",
    "1",
    "--executor=graph",
    "--executor-graph-link-params",
    "0",
    "--output",
    "model.tar",
    "--output-format",
    "mlf",
    "--pass-config",
    "tir.disable_vectorize=1",
    "--disabled-pass=AlterOpLayout",
]


def tvmc(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if ok:
        assert r.returncode == 0, f"tvmc {' '.join(args)} failed:\n{r.stderr}"
    return r


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("v018")
    subprocess.run(
        [sys.executable, str(REPO_ROOT / "scripts" / "make_demo_model.py"), str(work / "m.onnx")], check=True
    )
    return work / "m.onnx"


@pytest.mark.slow
def test_tutorial_lines_run_through_crt_host(onnx_model: Path) -> None:
    work = onnx_model.parent
    r = tvmc(work, "compile", onnx_model.name, *TUTORIAL_COMPILE)
    for said in ("--runtime=crt", "--executor=graph", "tirx.disable_vectorize", "AlterOpLayout"):
        assert said in r.stderr, f"no note about {said}:\n{r.stderr}"
    with tarfile.open(work / "model.tar") as tar:
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
    assert meta["models"][0]["target"]["kind"] == "c"
    # v0.18's create line: platform `crt`, two options after one --project-option.
    tvmc(
        work,
        "micro",
        "create",
        "project",
        "model.tar",
        "crt",
        "--project-option",
        "verbose=false",
        "cflags=-O1",
    )
    assert json.loads((work / "project" / "project_options.json").read_text()).get("cflags") == "-O1"
    tvmc(work, "micro", "build", "project", "crt")
    tvmc(work, "micro", "flash", "project", "crt")
    r = tvmc(
        work, "run", "--device", "micro", "project", "--fill-mode", "random", "--validate", onnx_model.name
    )
    assert "PASS" in r.stdout + r.stderr


def test_target_c_mcpu_is_mcpu(onnx_model: Path, tmp_path: Path) -> None:
    tvmc(
        tmp_path,
        "compile",
        str(onnx_model),
        "-o",
        "m.tar",
        "--target-c-mcpu=cortex-m4",
        "--module-name",
        "net",
    )
    with tarfile.open(tmp_path / "m.tar") as tar:
        meta = json.load(tar.extractfile("metadata.json"))  # type: ignore[arg-type]
        names = tar.getnames()
    model = meta["models"][0]
    assert model["target"]["mcpu"] == "cortex-m4" and model["name"] == "net"
    assert "codegen/host/include/tvmgen_net.h" in names


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--runtime=cpp"], "only the C runtime"),
        (["--executor-aot-interface-api=packed"], "only the C interface"),
        (["--output-format", "tar"], "invalid choice"),
        (["--module-name", "a", "--model-name", "b"], "disagree"),
        (["--target", "c -keys=cpu -bogus=1"], "unknown target option -bogus"),
    ],
)
def test_flags_that_cannot_be_honoured_stop_with_a_hint(
    onnx_model: Path, tmp_path: Path, flags: list[str], message: str
) -> None:
    r = tvmc(tmp_path, "compile", str(onnx_model), "-o", "m.tar", *flags, ok=False)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not (tmp_path / "m.tar").exists()


def test_pass_config_translation() -> None:
    notes: list[str] = []
    out = translate_pass_config(
        {
            "tir.disable_vectorize": 1,
            "tir.usmp.enable": 1,
            "relay.backend.use_auto_scheduler": 0,
            "tirx.x": 2,
        },
        notes,
    )
    assert out == {"tirx.disable_vectorize": 1, "tirx.x": 2}
    assert len(notes) == 3 and any("tir.usmp.enable" in n and "ignored" in n for n in notes)


def test_project_option_values_after_one_flag() -> None:
    argv = [
        "micro",
        "create",
        "p",
        "m.tar",
        "zephyr",
        "--project-option",
        "project_type=host_driven",
        "board=qemu_x86",
    ]
    assert normalize_argv(argv)[-4:] == [
        "--project-option",
        "project_type=host_driven",
        "--project-option",
        "board=qemu_x86",
    ]
    # A positional after the options (no '=') and a following flag are left alone.
    assert normalize_argv(["--project-option", "a=1", "b=2", "dir", "-f"]) == [
        "--project-option",
        "a=1",
        "--project-option",
        "b=2",
        "dir",
        "-f",
    ]
    assert normalize_argv(["--project-option"]) == ["--project-option"]


def test_docs_table_is_the_code_table() -> None:
    doc = (REPO_ROOT / "docs" / "v018-compatibility.md").read_text()
    # The compile table: the rows after its header, up to the blank line that ends it.
    lines = doc.splitlines()
    start = lines.index("| v0.18 flag | here |") + 2
    end = lines.index("", start)
    rows = lines[start:end]
    expected = [
        f"| `{f.name}`{' ' + '/'.join(f.choices) if f.choices else ''} | {f.meaning} |" for f in COMPILE_FLAGS
    ]
    assert rows == expected
