"""Issue 15's pictures through the real CLI: `tvmc analyze --png` writes a real PNG at least 800 px wide for
KWS (and refuses, before any work, with a hint when matplotlib cannot be imported); the `--html` page opens
in headless Chromium with no console message (a checker shown to catch a page with a deliberate error)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def tvmc(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro", *args], capture_output=True, text=True, timeout=300, env=env
    )


@pytest.fixture(scope="module")
def kws_mlf(compiled_mlf) -> Path:  # type: ignore[no-untyped-def]
    return compiled_mlf("kws_ref_model.tflite")  # type: ignore[no-any-return]


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the PNG's IHDR chunk, after checking the signature."""
    head = path.read_bytes()[:24]
    assert head[:8] == PNG_SIGNATURE, f"{path} is not a PNG: {head[:8]!r}"
    assert head[12:16] == b"IHDR"
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def test_png_of_kws(kws_mlf: Path, tmp_path: Path) -> None:
    out = tmp_path / "kws.png"
    r = tvmc("analyze", str(kws_mlf), "--png", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"wrote {out}" in r.stderr
    width, height = png_size(out)
    assert width >= 800 and height >= 600
    # The picture has the arena drawn in it: a blank canvas compresses to a few kilobytes.
    assert out.stat().st_size > 30_000


def test_png_without_matplotlib(kws_mlf: Path, tmp_path: Path) -> None:
    # A `matplotlib` that fails to import, first on the path: what a machine without it sees.
    fake = tmp_path / "fake"
    (fake / "matplotlib").mkdir(parents=True)
    (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('No module named matplotlib')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(fake), *filter(None, [env.get("PYTHONPATH")])])
    out, js = tmp_path / "kws.png", tmp_path / "kws.json"
    r = tvmc("analyze", str(kws_mlf), "--png", str(out), "--json", str(js), env=env)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "--png needs matplotlib" in r.stderr and "tvmc-micro[plot]" in r.stderr
    assert "Traceback" not in r.stderr
    assert not out.exists() and not js.exists()  # refused before anything was written


# ------------------------------------------------------------------------------------ headless Chromium

_BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome", "chrome-headless-shell")


def find_chromium() -> str | None:
    for name in _BROWSERS:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def console_messages(browser: str, page: Path, screenshot: Path) -> list[str]:
    """Opens `page` in headless Chromium and returns what it printed to the page's console (Chromium logs
    each console message, errors and uncaught exceptions included, as an INFO:CONSOLE line on stderr)."""
    profile = screenshot.parent / f"profile-{screenshot.stem}"
    r = subprocess.run(
        [
            browser,
            "--headless",
            "--disable-gpu",
            "--no-sandbox",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--enable-logging=stderr",
            "--v=0",
            "--hide-scrollbars",
            "--window-size=1100,1400",
            f"--screenshot={screenshot}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert screenshot.is_file(), f"{browser} wrote no screenshot (status {r.returncode}):\n{r.stderr[-2000:]}"
    return [line for line in r.stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def browser() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip(
            f"no headless Chromium on PATH (looked for {', '.join(_BROWSERS)}; apt-get install chromium)"
        )
    return path


def test_console_check_catches_a_broken_page(browser: str, tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>t</title></head><body><p>x</p>"
        "<script>no_such_function();</script></body></html>",
        encoding="utf-8",
    )
    messages = console_messages(browser, page, tmp_path / "broken.png")
    assert any("Uncaught ReferenceError" in m and "no_such_function" in m for m in messages), messages


def test_analyze_html_opens_without_console_messages(browser: str, kws_mlf: Path, tmp_path: Path) -> None:
    page = tmp_path / "kws.html"
    r = tvmc("-q", "analyze", str(kws_mlf), "--html", str(page))
    assert r.returncode == 0, r.stdout + r.stderr
    shot = tmp_path / "kws_page.png"
    assert console_messages(browser, page, shot) == []
    width, _ = png_size(shot)
    assert width == 1100
