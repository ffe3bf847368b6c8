"""Finding the runtime and templates: the checkout's folders here, an error naming both places when an
installation has neither, and an MLF is never written without the runtime."""

from __future__ import annotations

from pathlib import Path

import pytest
from tvmc_micro import resources
from tvmc_micro.compiler import mlf
from tvmc_micro.errors import TvmcError

from tests.conftest import REPO_ROOT


def test_checkout_folders_are_found() -> None:
    assert resources.runtime_dir() == REPO_ROOT / "runtime"
    assert (resources.templates_dir() / "crt_host" / "microtvm_api_server.py").is_file()


def test_incomplete_installation_is_an_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(resources, "_CHECKOUT_ROOT", tmp_path)
    monkeypatch.setattr(resources, "PACKAGED_DIR", "_not_there")
    with pytest.raises(TvmcError, match=r"has no runtime/ folder") as info:
        resources.runtime_dir()
    assert str(tmp_path) in info.value.message and "reinstall" in (info.value.hint or "")


def test_runtime_without_sources_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "include").mkdir()
    (tmp_path / "include" / "x.h").write_text("/* header only */\n")
    with pytest.raises(TvmcError, match="no C sources under src/"):
        mlf.runtime_files(tmp_path)


def test_runtime_tests_stay_out_of_the_mlf() -> None:
    files = mlf.runtime_files()
    assert "src/server.c" in files
    assert not [n for n in files if n.endswith("_test.c") or n.startswith("test/")]
