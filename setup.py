"""Build hook: ship the repository's `runtime/` and `template_projects/` inside the tvmc_micro package.

Everything else about the package is in pyproject.toml. The two folders stay at the repository root
(where the C runtime's tests and the templates' own files expect them); a wheel needs them inside an
import package, so build_py copies them to `tvmc_micro/_resources/` in the build tree. An editable
install skips the copy and finds them in the checkout (tvmc_micro/resources.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("runtime", "template_projects")
# Build products and caches a developer's checkout may hold; never shipped.
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.o", "*.a", "*.so", "build", ".*")


class BuildPyWithResources(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return
        for name in SHIPPED:
            source = ROOT / name
            if not source.is_dir():
                raise SystemExit(f"error: {source} is missing; build from a full checkout or sdist")
            dest = Path(self.build_lib) / "tvmc_micro" / "_resources" / name
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(source, dest, ignore=IGNORED)


setup(cmdclass={"build_py": BuildPyWithResources})
