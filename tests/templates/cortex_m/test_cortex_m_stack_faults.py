"""Firmware faults under QEMU are named (HardFault, BusFault, ...), not reported as a bare exit status, and
a stack overflow points at the `stack_bytes` option with the stack need the build estimated from gcc's
call graphs (build/sizes.json). Real firmware, real QEMU, through the real `tvmc` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cortex_m_support import cm_server, fw, require_qemu, require_toolchain
from cortex_m_tiny_mlf import SOURCE, write_tiny_mlf

BOARD = ("--project-option", "board=mps2_an386")
# The model calls through a bad function pointer (an ARM-state address: Cortex-M only runs Thumb code):
# a model bug, not a stack problem. (Stray loads and stores do not fault under QEMU's mps2 boards:
# unmapped memory there reads as zero and ignores writes.)
BAD_POINTER_SOURCE = SOURCE.replace(
    "  TVMGEN_OP_HOOK(0);\n",
    "  TVMGEN_OP_HOOK(0);\n  void (*volatile bad)(void) = (void (*)(void))0x00000100u;\n  bad();\n",
    1,
)


def tvmc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True)


def _project(tmp_path: Path, name: str, *options: str, source: str = SOURCE) -> tuple[Path, str]:
    require_toolchain()
    mlf = write_tiny_mlf(tmp_path / f"{name}.tar", source=source)
    project = tmp_path / name
    r = tvmc("micro", "create-project", str(project), str(mlf), "cortex_m", *BOARD, *options)
    assert r.returncode == 0, r.stderr
    build = tvmc("micro", "build", str(project))
    assert build.returncode == 0, build.stderr
    assert tvmc("micro", "flash", str(project)).returncode == 0
    return project, build.stderr


def test_stack_overflow_names_the_fault_and_the_stack_bytes_option(tmp_path: Path) -> None:
    project, build_log = _project(tmp_path, "small_stack", "--project-option", "stack_bytes=128")
    stack = json.loads((project / "build" / "sizes.json").read_text())["stack"]
    assert stack["stack_bytes"] == 128 and stack["estimated_bytes"] > 128
    assert stack["worst_path"][0] == "main" and "tvmrt_server_feed" in stack["worst_path"]
    assert f"warning: the main stack is 128 bytes (stack_bytes) but the deepest call path needs about " \
           f"{stack['estimated_bytes']}" in build_log
    require_qemu()
    r = tvmc("run", "--device", "micro", str(project))
    assert r.returncode == 2
    first = r.stderr.splitlines()[0]
    assert "caused by a stack overflow: the main stack (stack_bytes=128) is too small" in first, r.stderr
    assert any(f"a {name} exception" in first for name in fw.FAULT_NAMES.values()), first
    assert f"the build estimated {stack['estimated_bytes']} bytes" in first
    suggested = fw.suggested_stack_bytes(stack["estimated_bytes"])
    assert f"hint: give it more: recreate the project with --project-option stack_bytes={suggested}" in (
        r.stderr
    )


def test_the_estimated_stack_is_enough(tmp_path: Path) -> None:
    probe, _ = _project(tmp_path, "probe", "--project-option", "stack_bytes=128")
    needed = json.loads((probe / "build" / "sizes.json").read_text())["stack"]["estimated_bytes"]
    project, build_log = _project(tmp_path, "enough", "--project-option", f"stack_bytes={needed}")
    assert "warning" not in build_log
    require_qemu()
    r = tvmc("run", "--device", "micro", str(project), "--print-time", "--profile")
    assert r.returncode == 0, r.stderr


def test_a_model_bug_is_reported_as_the_fault_it_is(tmp_path: Path) -> None:
    project, build_log = _project(tmp_path, "bad_pointer", source=BAD_POINTER_SOURCE)
    assert "warning" not in build_log  # 8 KiB of stack is plenty
    require_qemu()
    r = tvmc("run", "--device", "micro", str(project))
    assert r.returncode == 2
    assert "the firmware took a UsageFault exception (" in r.stderr, r.stderr
    assert "QEMU exited with status 76" in r.stderr and "stack" not in r.stderr.splitlines()[0]
    assert "a bad pointer or an out-of-bounds access" in r.stderr


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (72, "took a NMI exception"),
        (73, "took a HardFault exception"),
        (84, "took a MemManage exception caused by a stack overflow"),
        (76, "took a UsageFault exception"),
        (101, "aborted (tvmrt_platform_abort, code 1 mod 64)"),
        (178, "unexpected exception (number 8)"),
    ],
)
def test_exit_statuses_in_words(status: int, text: str) -> None:
    reason = fw.describe_exit_status(status)
    assert reason is not None and text in reason.text


def test_statuses_the_firmware_does_not_use_get_no_explanation() -> None:
    assert fw.describe_exit_status(0) is None and fw.describe_exit_status(1) is None
    assert fw.describe_exit_status(77) is None


def test_overflow_advice_without_a_build_estimate(tmp_path: Path) -> None:
    """A project built before sizes.json had a stack estimate still gets the option named (and twice the
    current stack suggested)."""
    project, _ = _project(tmp_path, "no_estimate", "--project-option", "stack_bytes=512")
    (project / "build" / "sizes.json").write_text("{}")
    explained = cm_server.CortexMHandler(project)._explain_exit(85)
    assert explained is not None
    what, hint = explained
    assert what.endswith("the main stack (stack_bytes=512) is too small")
    assert f"stack_bytes={fw.suggested_stack_bytes(1024)}" in hint


def test_no_call_graphs_means_no_estimate(tmp_path: Path) -> None:
    assert fw.estimate_stack([], fpu=True) is None
    empty = tmp_path / "x.ci"
    empty.write_text('graph: { title: "x.c"\n}\n')
    assert fw.estimate_stack([empty], fpu=False) is None
