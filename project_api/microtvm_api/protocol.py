"""Protocol constants shared by server, client and checker: the version and the method table."""

from __future__ import annotations

# The major version of the Project API wire protocol. A client refuses a server whose major differs.
# Additive changes (new optional result keys, new `capabilities`) keep the major; v0.18 servers also speak 1.
PROTOCOL_VERSION = 1

# The methods a server answers, in the order a project's life uses them. Same names and parameter names as
# microTVM's Project API (v0.18), so authors of old servers recognise them.
METHODS: tuple[str, ...] = (
    "server_info_query",
    "generate_project",
    "build",
    "flash",
    "open_transport",
    "close_transport",
    "read_transport",
    "write_transport",
)

# Methods that take an `options` object; project options declare which of these they apply to.
OPTION_METHODS: tuple[str, ...] = ("generate_project", "build", "flash", "open_transport")


def protocol_major(version: object) -> int | None:
    """Major number of a `protocol_version` as a server reports it (1, or "1.2"); None if junk."""
    if isinstance(version, bool):
        return None
    if isinstance(version, int):
        return version
    if isinstance(version, str):
        head = version.split(".", 1)[0]
        if head.isdigit():
            return int(head)
    return None
