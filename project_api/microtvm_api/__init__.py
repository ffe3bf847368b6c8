"""The microTVM Project API: JSON-RPC 2.0 between `tvmc` and a template's `microtvm_api_server.py`.

Small on purpose (stdlib + jsonrpcserver): template servers import it, possibly from another interpreter.
"""
