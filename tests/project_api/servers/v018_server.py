"""A server as microTVM v0.18 wrote them: `--read-fd/--write-fd` pipes, error class name in `message`.

Old servers imported `tvm.micro.project_api.server`, which TVM removed after v0.18; this one speaks the
same wire protocol with the standard library only (the client recognises the import below and launches
it with fd pipes). Its stdout is not the protocol channel, so printing there is allowed.
"""

import argparse
import base64
import json
import os
import sys
import traceback

# A v0.18 server began with `from tvm.micro.project_api import server` (gone since TVM 0.19); the
# client recognises that name in the source and launches the server with fd pipes.


class IoTimeoutError(Exception):
    pass


OPTIONS = [
    {
        "name": "verbose",
        "choices": None,
        "default": False,
        "type": "bool",
        "required": None,
        "optional": ["build"],
        "help": "Run build with verbose output.",
    },
    {
        "name": "workspace_size_bytes",
        "choices": None,
        "default": 2097152,
        "type": "int",
        "required": None,
        "optional": ["generate_project"],
        "help": "Sets the value for TVM_WORKSPACE_SIZE_BYTES.",
    },
]


def handle(method, params):
    if method == "server_info_query":
        return {
            "platform_name": "host",
            "is_template": True,
            "model_library_format_path": None,
            "project_options": OPTIONS,
            "protocol_version": 1,
        }
    if method == "read_transport":
        raise IoTimeoutError()
    if method == "write_transport":
        return {"echo": base64.b85decode(params["data"]).decode()}
    if method == "build":
        raise RuntimeError("make failed")
    raise KeyError(method)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--read-fd", type=int, required=True)
    parser.add_argument("--write-fd", type=int, required=True)
    parser.add_argument("--debug", action="store_true")
    args = parser.parse_args()
    print("v0.18 server starting (stdout is only a log here)")
    sys.stdout.flush()
    reader = os.fdopen(args.read_fd, "rb", buffering=0)
    writer = os.fdopen(args.write_fd, "wb", buffering=0)
    while True:
        line = reader.readline()
        if not line:
            return
        request = json.loads(line)
        try:
            reply = {
                "jsonrpc": "2.0",
                "result": handle(request["method"], request.get("params", {})),
                "id": request["id"],
            }
        except Exception as exc:
            name = type(exc).__name__ if isinstance(exc, IoTimeoutError) else "ServerError"
            reply = {
                "jsonrpc": "2.0",
                "id": request["id"],
                "error": {
                    "code": -32000,
                    "message": name,
                    "data": {"traceback": "".join(traceback.format_exception(exc))},
                },
            }
        writer.write(json.dumps(reply).encode() + b"\n")


if __name__ == "__main__":
    main()
