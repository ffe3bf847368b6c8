"""Path options (`ProjectOption(..., path=True)`): the client sends them absolute, made so against its own
working directory; the server refuses a relative one (-32602), since it runs in another directory. The
cortex_m and zephyr `input` option (project_type standalone) is one."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from microtvm_api.client import ProjectAPIClient
from microtvm_api.conformance import _minimal_mlf
from microtvm_api.errors import InvalidOptionError
from microtvm_api.options import ProjectOption, absolute_paths, resolve

Launch = Callable[..., ProjectAPIClient]
INPUT = ProjectOption("input", "str", None, "an input file", path=True)
NAME = ProjectOption("name", "str", None, "not a path")


def test_a_path_option_travels_in_server_info_only_when_declared() -> None:
    assert INPUT.to_json()["path"] is True
    assert "path" not in NAME.to_json()  # unchanged for other options (older clients see nothing new)
    assert ProjectOption.from_json(INPUT.to_json()) == INPUT
    with pytest.raises(ValueError, match="'input': path must be a boolean"):
        ProjectOption.from_json(dict(INPUT.to_json(), path="yes"))
    with pytest.raises(ValueError, match="'n': path=True needs a str option"):
        ProjectOption("n", "int", path=True)
    with pytest.raises(ValueError, match="'p' is a file path and must be absolute"):
        ProjectOption("p", "str", "rel/x.npz", path=True)  # a relative default is the author's bug


@pytest.mark.parametrize("value", ["in.npz", "./in.npz", "../d/in.npz", "~/in.npz"])
def test_a_relative_path_is_refused_naming_the_option(value: str) -> None:
    with pytest.raises(InvalidOptionError) as info:
        resolve([INPUT], "generate_project", {"input": value})
    assert f"project option 'input' is a file path and must be absolute, got {value!r}" in info.value.message
    assert info.value.code == -32602 and info.value.data == {"option": "input"}
    assert "/absolute/path" in (info.value.hint or "")


def test_absolute_and_empty_paths_pass() -> None:
    assert resolve([INPUT], "build", {"input": "/data/in.npz"}) == {"input": "/data/in.npz"}
    assert resolve([INPUT], "build", {"input": ""}) == {"input": ""}  # empty: no path given


def test_the_client_makes_relative_paths_absolute_against_a_directory(tmp_path: Path) -> None:
    given: dict[str, Any] = {"input": "d/../in.npz", "name": "rel", "other": "x"}
    assert absolute_paths([INPUT, NAME], given, tmp_path) == {
        "input": str(tmp_path / "in.npz"),
        "name": "rel",
        "other": "x",
    }
    assert absolute_paths([INPUT], {"input": "/abs/in.npz"}, tmp_path) == {"input": "/abs/in.npz"}
    assert absolute_paths([INPUT], {"input": "~/in.npz"}, tmp_path) == {
        "input": os.path.expanduser("~/in.npz")
    }
    assert absolute_paths([INPUT], {"input": ""}, tmp_path) == {"input": ""}
    assert absolute_paths([INPUT], {"input": None}, tmp_path) == {"input": None}
    assert absolute_paths([INPUT], {"input": "in.npz"}) == {"input": os.path.join(os.getcwd(), "in.npz")}


@pytest.mark.parametrize("template", ["cortex_m", "zephyr"])
def test_templates_declare_input_a_path_and_refuse_a_relative_one(
    launch: Launch, repo_root: Path, tmp_path: Path, template: str
) -> None:
    """A client that sends `input` relative (one that ignores `path`) gets -32602, nothing is generated."""
    server = launch(repo_root / "template_projects" / template)
    declared = {o["name"]: o for o in server.server_info_query()["project_options"]}
    assert declared["input"]["path"] is True
    board = "mps2_an386" if template == "cortex_m" else "qemu_cortex_m3"
    params = {
        "model_library_format_path": str(_minimal_mlf(tmp_path / "m.tar")),
        "standalone_crt_dir": None,
        "project_dir": str(tmp_path / "p"),
        "options": {"board": board, "project_type": "standalone", "input": "in.npz"},
    }
    with pytest.raises(InvalidOptionError, match="'input' is a file path and must be absolute") as info:
        server.call("generate_project", params)  # raw: what an older client sends
    assert info.value.code == -32602
    assert not (tmp_path / "p").exists()
