"""Repository rules the test suite itself depends on."""

from __future__ import annotations

import collections
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_test_module_basenames_are_unique() -> None:
    """Test folders are not packages, so pytest imports each module by its basename: two `test_x.py` in
    different folders collide ("import file mismatch") and stop the whole run."""
    names = collections.Counter(
        p.name for p in TESTS.rglob("*.py") if p.name not in ("conftest.py", "__init__.py")
    )
    assert [n for n, c in names.items() if c > 1] == []
