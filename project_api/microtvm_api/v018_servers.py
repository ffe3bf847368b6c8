"""How the client drives a server written for microTVM v0.18, as v0.18's tvmc drove it.

Such a server is recognised by a server_info without `capabilities`. It gets every declared option (its
default, or None, when not given), generate_project gets a real (empty) `standalone_crt_dir`, and `0`
transport timeouts mean "no limit". When it then fails in generate_project on this project's Model
Library Format (metadata.json with `models`, not v0.18's `modules`; no v0.18 standalone CRT), the error
says so. (`microtvm_api.compat.v018` is the other direction: v0.18's names for servers ported to here.)
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from microtvm_api.errors import InvalidOptionError, ProjectAPIError
from microtvm_api.options import ProjectOption, convert

# v0.18's Model Library Format and CRT, as its template servers read them; what tvmc-micro's lack.
MLF_LAYOUT_DIFFERENCE = (
    "tvmc-micro's Model Library Format is not v0.18's: its metadata.json lists `models` (v0.18's lists "
    "`modules`), and there is no v0.18 standalone CRT (include/, src/, CMakeLists.txt) to give as "
    "standalone_crt_dir"
)
# The session's retry interval when a v0.18 server says 0 ("no limit") for it: lost frames are still resent.
DEFAULT_RETRY_SEC = 1.0


def is_v018_server_info(server_info: Mapping[str, Any] | None) -> bool:
    """The server was written for v0.18 (its server_info has no `capabilities`)."""
    return server_info is not None and "capabilities" not in server_info


def v018_options(server_info: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
    """What v0.18's tvmc sent: every declared option, the given value converted to its declared type,
    else the default (None when it has none); given options the server does not declare go too."""
    filled: dict[str, Any] = {}
    for raw in server_info.get("project_options") or []:
        try:
            option = ProjectOption.from_json(raw)
        except ValueError:
            if isinstance(raw, Mapping) and isinstance(raw.get("name"), str):
                filled[raw["name"]] = raw.get("default")
            continue
        value = given.get(option.name)
        if value is None:
            filled[option.name] = option.default
        else:
            try:
                filled[option.name] = convert(option, value)
            except InvalidOptionError:
                filled[option.name] = value  # the server judges it, as v0.18's did
    filled.update({k: v for k, v in given.items() if k not in filled})
    return filled


@contextmanager
def empty_standalone_crt_dir() -> Iterator[str]:
    """A temporary empty directory to pass as standalone_crt_dir, removed afterwards: v0.18's server.py
    makes a Path of it before the handler runs, so null would crash it."""
    path = tempfile.mkdtemp(prefix="tvmc_no_standalone_crt_")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def explain_generate_failure(err: ProjectAPIError, empty_crt: str | None) -> None:
    """Reword a v0.18 server's generate_project failure when it comes from the MLF layout or the missing
    standalone CRT (the server's own text and traceback are kept)."""
    trace = err.remote_traceback or ""
    last = trace.strip().splitlines()[-1] if trace.strip() else err.message
    port = (
        "port the server to tvmc-micro's MLF (docs/model-library-format.md) and import "
        "microtvm_api.compat.v018, or use a tvmc-micro template (crt_host, cortex_m, zephyr)"
    )
    if "'modules'" in last:
        cause = "it reads metadata.json as v0.18's (`modules`)"
    elif empty_crt is not None and empty_crt in trace:
        cause = f"it copies v0.18's standalone CRT from standalone_crt_dir ({last})"
    else:
        err.message = f"the v0.18 template server failed in generate_project: {last}"
        err.hint = f"if it reads the MLF or the CRT as v0.18's: {MLF_LAYOUT_DIFFERENCE}; {port}"
        err.args = (err.message,)
        return
    err.message = (
        f"the v0.18 template server cannot generate a project from this MLF: {cause}. {MLF_LAYOUT_DIFFERENCE}"
    )
    err.hint = port
    err.args = (err.message,)


def effective_timeouts(timeouts: Mapping[str, Any]) -> dict[str, float]:
    """open_transport's timeouts as the session uses them. 0 means "no limit" (v0.18's TransportTimeouts
    semantics): the retry interval then falls back to 1 s (lost frames are still resent), the others to
    infinity. Values that are not non-negative numbers are dropped (the session uses its defaults)."""
    result: dict[str, float] = {}
    for key, value in timeouts.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            continue
        if value == 0:
            result[key] = DEFAULT_RETRY_SEC if key == "session_start_retry_timeout_sec" else math.inf
        else:
            result[key] = float(value)
    return result
