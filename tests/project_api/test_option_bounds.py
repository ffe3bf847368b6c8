"""Project option bounds (minimum/maximum) and shell-split `words` options, declared once in
ProjectOption and checked where options are converted (issue 12 #3, #4): `stack_bytes=0`, `uart_baud=-1`
or a `cflags` with an unbalanced quote are refused naming the option, before anything is generated."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from microtvm_api.client import ProjectAPIClient
from microtvm_api.conformance import _minimal_mlf
from microtvm_api.errors import InvalidOptionError
from microtvm_api.options import ProjectOption, resolve

Launch = Callable[..., ProjectAPIClient]
STACK = ProjectOption("stack_bytes", "int", 8192, "main stack", minimum=1024, maximum=65536)
LOW = ProjectOption("retries", "int", 2, minimum=0)
HIGH = ProjectOption("ratio", "float", 0.5, maximum=1.0)
FLAGS = ProjectOption("cflags", "str", "", "extra flags", words=True)


@pytest.mark.parametrize(
    ("option", "value", "words"),
    [
        (STACK, "0", "project option 'stack_bytes' is 0; it must be between 1024 and 65536"),
        (STACK, -1, "project option 'stack_bytes' is -1; it must be between 1024 and 65536"),
        (STACK, "0x20000", "project option 'stack_bytes' is 131072; it must be between 1024 and 65536"),
        (LOW, "-1", "project option 'retries' is -1; it must be at least 0"),
        (HIGH, 1.5, "project option 'ratio' is 1.5; it must be at most 1.0"),
        (HIGH, "nan", "project option 'ratio' must be a finite number, got 'nan'"),
        (HIGH, math.inf, "project option 'ratio' must be a finite number, got inf"),
        (HIGH, 10**400, "project option 'ratio' must be a finite number"),
        (FLAGS, '-DNAME="a b', "option 'cflags' cannot be split into arguments (No closing quotation)"),
        (FLAGS, "-I x\\", "project option 'cflags' cannot be split into arguments (No escaped character)"),
    ],
)
def test_out_of_bounds_values_are_refused_naming_the_option(
    option: ProjectOption, value: Any, words: str
) -> None:
    with pytest.raises(InvalidOptionError) as info:
        resolve([option], "build", {option.name: value})
    assert words in info.value.message
    assert info.value.data == {"option": option.name} and option.name in (info.value.hint or "")


def test_values_at_the_bounds_and_good_words_pass() -> None:
    assert resolve([STACK], "build", {"stack_bytes": "1024"}) == {"stack_bytes": 1024}
    assert resolve([STACK], "build", {"stack_bytes": 65536}) == {"stack_bytes": 65536}
    assert resolve([LOW, HIGH], "build", {"retries": 0, "ratio": "1"}) == {"retries": 0, "ratio": 1.0}
    assert resolve([FLAGS], "build", {"cflags": "-DA='x y' -O2"}) == {"cflags": "-DA='x y' -O2"}


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"type": "str", "minimum": 1}, "needs an int or float option"),
        ({"type": "int", "maximum": math.nan}, "a finite number"),
        ({"type": "int", "minimum": True}, "needs an int or float option"),
        ({"type": "int", "minimum": "1"}, "needs an int or float option"),
        ({"type": "int", "minimum": 5, "maximum": 1}, "minimum 5 > maximum 1"),
        ({"type": "int", "words": True}, "words=True needs a str option"),
        ({"type": "int", "default": 0, "minimum": 1}, "'x' is 0; it must be at least 1 (in its choices or"),
        ({"type": "str", "default": "'", "words": True}, "cannot be split into arguments"),
    ],
)
def test_broken_declarations_fail_at_import(kwargs: dict[str, Any], words: str) -> None:
    with pytest.raises(ValueError, match="'x'") as info:
        ProjectOption("x", **kwargs)
    assert words in str(info.value)


def test_bounds_travel_in_server_info_and_come_back() -> None:
    assert STACK.to_json()["minimum"] == 1024 and STACK.to_json()["maximum"] == 65536
    assert FLAGS.to_json()["words"] is True
    plain = ProjectOption("verbose", "bool", False)
    assert not {"minimum", "maximum", "words"} & set(plain.to_json())  # unchanged for unbounded options
    assert ProjectOption.from_json(STACK.to_json()) == STACK
    assert ProjectOption.from_json(FLAGS.to_json()) == FLAGS
    with pytest.raises(ValueError, match="words must be a boolean"):
        ProjectOption.from_json(dict(FLAGS.to_json(), words="yes"))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"stack_bytes": 0}, "project option 'stack_bytes' is 0; it must be between 128 and 16777216"),
        ({"stack_bytes": "-4096"}, "project option 'stack_bytes' is -4096"),
        ({"uart_baud": -1}, "project option 'uart_baud' is -1; it must be between 300 and 12000000"),
        ({"compiler_flags": "-DX='1"}, "project option 'compiler_flags' cannot be split into arguments"),
    ],
)
def test_cortex_m_refuses_nonsense_before_generating(
    launch: Launch, repo_root: Path, tmp_path: Path, options: dict[str, Any], words: str
) -> None:
    server = launch(repo_root / "template_projects" / "cortex_m")
    with pytest.raises(InvalidOptionError) as info:
        server.generate_project(_minimal_mlf(tmp_path / "m.tar"), None, tmp_path / "p",
                                {"board": "mps2_an386", **options})
    assert words in info.value.message
    assert not (tmp_path / "p").exists()


def test_crt_host_cflags_with_an_unbalanced_quote(launch: Launch, repo_root: Path, tmp_path: Path) -> None:
    template = launch(repo_root / "template_projects" / "crt_host")
    cflags = [o for o in template.server_info_query()["project_options"] if o["name"] == "cflags"]
    assert cflags[0]["words"] is True
    mlf = _minimal_mlf(tmp_path / "m.tar")
    with pytest.raises(InvalidOptionError, match="'cflags' cannot be split into arguments"):
        template.generate_project(mlf, None, tmp_path / "p", {"cflags": '-DNAME="unterminated'})
    assert not (tmp_path / "p").exists()
    # Given to build of a generated project, it is refused before any compiler runs.
    template.generate_project(mlf, None, tmp_path / "ok", {})
    with pytest.raises(InvalidOptionError, match=r"'cflags' cannot be split into arguments \(No closing"):
        launch(tmp_path / "ok").build({"cflags": "-DA='1"})
    assert not (tmp_path / "ok" / "build").exists()


def test_zephyr_declares_its_int_bounds(launch: Launch, repo_root: Path) -> None:
    info = launch(repo_root / "template_projects" / "zephyr").server_info_query()
    by_name = {o["name"]: o for o in info["project_options"]}
    assert by_name["config_main_stack_size"]["minimum"] == 512
    assert (by_name["baud_rate"]["minimum"], by_name["baud_rate"]["maximum"]) == (300, 12_000_000)
    assert by_name["west_cmd"]["words"] is True
