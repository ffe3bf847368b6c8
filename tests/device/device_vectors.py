"""Parsing of the test vectors in docs/wire-protocol.md (format: its section 8)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "wire-protocol.md"


@dataclass(frozen=True)
class Vector:
    kind: str
    name: str
    lines: tuple[tuple[str, str], ...]  # (key, value); key is ">" / "<" for session lines

    def get(self, key: str) -> str | None:
        return next((value for k, value in self.lines if k == key), None)


def load_vectors(kind: str, path: Path = DOC) -> list[Vector]:
    """The ```vector <kind> <name> blocks of the protocol doc (format in its section 8)."""
    vectors = []
    for match in re.finditer(r"^```vector (\S+) (\S+)\n(.*?)^```", path.read_text(), re.M | re.S):
        if match.group(1) != kind:
            continue
        lines = []
        for raw in match.group(3).splitlines():
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            if line[0] in "<>":
                lines.append((line[0], line[1:].strip()))
            else:
                key, _, value = line.partition(":")
                lines.append((key.strip(), value.strip()))
        vectors.append(Vector(kind, match.group(2), tuple(lines)))
    return vectors


def parse_hex(text: str) -> tuple[bytes, tuple[bool, ...]]:
    """Hex bytes with `??` wildcards -> (bytes, mask where True means 'must match')."""
    data, mask = bytearray(), []
    for token in text.split():
        if token == "??":
            data.append(0)
            mask.append(False)
        else:
            data.append(int(token, 16))
            mask.append(True)
    return bytes(data), tuple(mask)


def matches(actual: bytes, expected: bytes, mask: tuple[bool, ...]) -> bool:
    if len(actual) != len(expected):
        return False
    return all(not m or a == e for a, e, m in zip(actual, expected, mask, strict=True))
