"""Broken on purpose: a hand-rolled stdio server that prints a banner and progress on stdout.

Its replies are otherwise correct, so only the stdout-hygiene checks catch it.
"""

import json
import sys

print("Vendor board server v1.0 ready")
sys.stdout.flush()

OPTIONS = [
    {
        "name": "board",
        "type": "str",
        "default": "devkit",
        "choices": None,
        "help": "board",
        "required": None,
        "optional": ["build"],
    }
]

for line in sys.stdin:
    try:
        request = json.loads(line)
    except ValueError:
        reply = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32700, "message": "parse error", "data": {"type": "ParseError"}},
        }
        print(json.dumps(reply), flush=True)
        continue
    if not isinstance(request, dict):
        reply = {
            "jsonrpc": "2.0",
            "id": None,
            "error": {"code": -32600, "message": "invalid request", "data": {"type": "InvalidRequestError"}},
        }
    elif request.get("method") == "server_info_query":
        if not isinstance(request.get("params", {}).get("tvm_version"), str):
            error = {"code": -32602, "message": "bad tvm_version", "data": {"type": "InvalidParamsError"}}
            reply = {"jsonrpc": "2.0", "id": request.get("id"), "error": error}
        else:
            print("answering server_info_query")  # the bug: progress on the protocol channel
            info = {
                "platform_name": "vendor",
                "is_template": True,
                "model_library_format_path": None,
                "project_options": OPTIONS,
                "protocol_version": 1,
            }
            reply = {"jsonrpc": "2.0", "id": request.get("id"), "result": info}
    else:
        reply = {
            "jsonrpc": "2.0",
            "id": request.get("id"),
            "error": {"code": -32601, "message": "method not found", "data": {"type": "MethodNotFoundError"}},
        }
    print(json.dumps(reply), flush=True)
