"""microTVM v0.18's Project API names on this library.

A v0.18 server runs here after changing its import line only::

    from tvm.micro.project_api import server      # v0.18
    from microtvm_api.compat.v018 import server   # here

and code written against v0.18's client (``project_api.client.ProjectAPIClient``) can use
``microtvm_api.compat.v018.client``. The server-side names are also importable from this package itself
(``from microtvm_api.compat.v018 import ProjectAPIHandler, main``). Differences from v0.18 that are
deliberate are listed in docs/v018-compatibility.md.
"""

from microtvm_api.compat.v018 import client, server
from microtvm_api.compat.v018.server import (
    ErrorCode,
    IoTimeoutError,
    JSONRPCError,
    ProjectAPIHandler,
    ProjectAPIServer,
    ProjectOption,
    ServerError,
    ServerInfo,
    TransportClosedError,
    TransportTimeouts,
    UnsupportedTVMVersionError,
    default_project_options,
    main,
    read_with_timeout,
    write_with_timeout,
)

__all__ = [
    "ErrorCode",
    "IoTimeoutError",
    "JSONRPCError",
    "ProjectAPIHandler",
    "ProjectAPIServer",
    "ProjectOption",
    "ServerError",
    "ServerInfo",
    "TransportClosedError",
    "TransportTimeouts",
    "UnsupportedTVMVersionError",
    "client",
    "default_project_options",
    "main",
    "read_with_timeout",
    "server",
    "write_with_timeout",
]
