"""A build's sizes for `tvmc micro build --json` and `tvmc analyze`: what the template's build measured with
binutils' `size` (build/sizes.json, written by microtvm_api.image_sizes) in the documented
`tvmc-micro/build/1` form (docs/json-output.md)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tvmc_micro.errors import TvmcError

SIZES_FILE = Path("build") / "sizes.json"  # where templates write it (microtvm_api.image_sizes.SIZES_FILE)
BUILD_SCHEMA_ID = "tvmc-micro/build/1"


def read_project_sizes(project_dir: Path) -> dict[str, Any] | None:
    """The `sizes` object of the build in `project_dir`, or None when its template wrote no sizes (or
    wrote them in the older form without the `size -B` figures)."""
    path = project_dir / SIZES_FILE
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        hint = "build the project again: tvmc micro build DIR"
        raise TvmcError(f"cannot read {path}: {err}", hint) from err
    if not isinstance(raw, dict) or not isinstance(raw.get("berkeley"), dict):
        return None
    return sizes_object(raw)


def sizes_object(raw: Mapping[str, Any]) -> dict[str, Any]:
    """sizes.json's documented fields (the top-level per-section copies older readers use are left out)."""
    stack = raw.get("stack")
    return {
        "image": raw.get("image"),
        "size_tool": raw.get("size_tool"),
        "berkeley": {k: int(raw["berkeley"][k]) for k in ("text", "data", "bss", "dec")},
        "sections": {str(k): int(v) for k, v in dict(raw.get("sections") or {}).items()},
        "usage": raw.get("usage"),
        "stack": dict(stack) if isinstance(stack, Mapping) else None,
    }


def build_document(project_dir: Path, platform: str, elapsed_sec: float) -> dict[str, Any]:
    """The `tvmc micro build --json` object for the build just done in `project_dir`."""
    sizes = read_project_sizes(project_dir)
    notes = []
    if sizes is None:
        notes.append(f"the {platform} template wrote no {SIZES_FILE} with `size` figures: sizes is null")
    elif sizes["stack"] is None:
        notes.append("no stack estimate: the template's compiler wrote no call graphs (-fcallgraph-info=su)")
    return {
        "schema": BUILD_SCHEMA_ID,
        "project_dir": str(project_dir),
        "platform": platform,
        "model": project_model_name(project_dir),
        "elapsed_sec": round(elapsed_sec, 3),
        "sizes": sizes,
        "notes": notes,
    }


def project_model_name(project_dir: Path) -> str | None:
    """The name of the model a project was generated for (model/metadata.json), None if unreadable."""
    try:
        meta = json.loads((project_dir / "model" / "metadata.json").read_text(encoding="utf-8"))
        return str(meta["models"][0]["name"])
    except (OSError, ValueError, KeyError, IndexError, TypeError):
        return None


def load_build_sizes(path: str) -> tuple[dict[str, Any], str | None]:
    """(the sizes, the model's name) of a build from a project directory or a `tvmc micro build --json`
    file (analyze's --build); a clear error when there are none."""
    src = Path(path)
    if src.is_dir():
        sizes = read_project_sizes(src)
        if sizes is None:
            raise TvmcError(
                f"{src} has no build sizes ({SIZES_FILE} with `size` figures)",
                f"build it with this tvmc first: tvmc micro build {src}",
            )
        return sizes, project_model_name(src)
    if not src.is_file():
        raise TvmcError(
            f"--build {path} does not exist",
            "pass a built project directory or the file of `tvmc micro build DIR --json FILE`",
        )
    try:
        doc = json.loads(src.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        hint = "pass the file of tvmc micro build --json"
        raise TvmcError(f"--build {path} is not JSON ({err})", hint) from err
    if not isinstance(doc, dict) or doc.get("schema") != BUILD_SCHEMA_ID:
        raise TvmcError(
            f"--build {path} is not a `tvmc micro build --json` file (schema {BUILD_SCHEMA_ID})",
            "pass a built project directory or the file of `tvmc micro build DIR --json FILE`",
        )
    if doc.get("sizes") is None:
        raise TvmcError(f"--build {path} has no sizes (its template measured none)", "see its notes")
    model = doc.get("model")
    return dict(doc["sizes"]), model if isinstance(model, str) else None
