"""Broken on purpose: uses wrong error codes and exits on the first malformed line.

It answers unknown methods with -32603 instead of -32601, bad params with -32000 instead of -32602, and
a line that is not JSON kills it (the protocol says: reply -32700 and keep serving).
"""

import json
import os
import sys

out = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)

INFO = {
    "platform_name": "sloppy",
    "is_template": False,
    "model_library_format_path": "/tmp/model.tar",
    "project_options": [],
    "protocol_version": 1,
}

for line in sys.stdin:
    request = json.loads(line)  # the bug: malformed JSON raises and the server dies
    params = request.get("params", {})
    good_params = isinstance(params.get("tvm_version"), str) and len(params) == 1
    if request["method"] == "server_info_query" and good_params:
        reply = {"jsonrpc": "2.0", "id": request["id"], "result": INFO}
    elif request["method"] == "server_info_query":
        reply = {"jsonrpc": "2.0", "id": request["id"], "error": {"code": -32000, "message": "bad params"}}
    else:
        error = {"code": -32603, "message": "no such method"}
        reply = {"jsonrpc": "2.0", "id": request["id"], "error": error}
    out.write(json.dumps(reply) + "\n")
    out.flush()
