"""C identifiers for model, tensor and function names (the C interface depends on them)."""

from __future__ import annotations

import keyword
import re

# Words a C compiler reserves: a tensor called `int` or `float` must not become a struct member.
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int "
    "long register restrict return short signed sizeof static struct switch typedef union unsigned void "
    "volatile while _Bool _Complex _Imaginary".split()
)


def is_c_identifier(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)) and name not in _C_KEYWORDS


def sanitize_c_identifier(name: str, fallback: str = "x") -> str:
    """Map any string to a C identifier: runs of other characters become `_`, a leading digit gets `_`."""
    out = re.sub(r"[^A-Za-z0-9_]+", "_", name).strip("_") or fallback
    if out[0].isdigit():
        out = "_" + out
    if out in _C_KEYWORDS or keyword.iskeyword(out):
        out += "_"
    return out


def claim_unique(name: str, used: set[str], fallback: str = "x") -> str:
    """`name` as a C identifier not yet in `used` (a `_<n>` suffix when taken); records it in `used`."""
    base = sanitize_c_identifier(name, fallback=fallback)
    cand, n = base, 1
    while cand in used:
        cand = f"{base}_{n}"
        n += 1
    used.add(cand)
    return cand


def unique_names(names: list[str]) -> list[str]:
    """Sanitise a list of names and make them distinct (two inputs `a:0` and `a/0` must not collide)."""
    seen: set[str] = set()
    return [claim_unique(raw, seen, fallback=f"t{i}") for i, raw in enumerate(names)]
