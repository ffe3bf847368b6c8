"""`tvmc compile --tuning-records FILE`: the best record per task, for the compile's target."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any


def configs_for_compile(
    path: Path, target: str, say: Callable[[str], None]
) -> tuple[dict[str, dict[str, int]], dict[str, str]]:
    """(task key -> best config, {"file", "sha256"} for metadata.json). Records of another target or tool
    version are ignored with a note; records of several devices: those of the device most records were
    measured on are used (a note names the others)."""
    from tvmc_micro import __version__ as tool_version
    from tvmc_micro.compiler.targets import parse_target
    from tvmc_micro.tune.records import best_configs, file_digest, load_records, most_common_device, select
    from tvmc_micro.tune.tasks import target_json

    records, notes = load_records(path)
    kept, why = select(records, target=target_json(parse_target(target).target), tool_version=tool_version)
    for note in notes + why:
        say(f"note: tuning records: {note}")
    device = most_common_device(kept)
    if device is not None:
        others = sorted({(r.platform, r.board) for r in kept if r.valid} - {device})
        if others:
            say(
                f"note: tuning records: using those measured on {device[0]} {device[1]}; ignoring those of "
                + ", ".join(f"{p} {b}".strip() for p, b in others)
            )
        kept = [r for r in kept if (r.platform, r.board) == device]
    best = best_configs(kept)
    return {k: dict(r.config) for k, r in best.items()}, {"file": path.name, "sha256": file_digest(path)}


def applied_note(metadata: Mapping[str, Any], configs: Mapping[str, Any]) -> str:
    applied = (metadata["models"][0].get("tuning") or {}).get("applied") or {}
    tasks: dict[str, Any] = {}
    for fn, entry in applied.items():
        tasks.setdefault(entry["task"], (fn, entry["config"]))
    used = [fn for fn, cfg in tasks.values() if cfg is not None]
    without = [fn for fn, cfg in tasks.values() if cfg is None]
    text = f"note: tuning records: applied the best config to {len(used)} of {len(tasks)} task(s)"
    if without:
        text += f"; hand-set (no record): {', '.join(without)}"
    if not configs:
        text += " (no record applies to this target and tool version)"
    return text
