"""A test server whose `build` returns a mapping the JSON encoder itself fails on (not a TypeError): the
server must still answer (-32603) and keep serving, not die."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from echo_server import EchoHandler
from microtvm_api.server import main


class _Exploding(dict[str, Any]):
    """A dict subclass: the C encoder asks it for its items, and that fails."""

    def items(self) -> Any:
        raise RuntimeError("this result cannot be encoded")


class UnencodableHandler(EchoHandler):
    def build(self, options: Mapping[str, Any]) -> Any:
        return _Exploding(a=1)


if __name__ == "__main__":
    main(UnencodableHandler)
