"""`tvmc analyze`: what a compiled model costs, from its MLF metadata alone (no device): MACs per layer and in
total, flash (weights per layer), RAM (arena, I/O, state), the activation lower bound beside the arena, and
the arena timeline (which tensor occupies which bytes at each step), as text, JSON and a self-contained HTML
page with inline SVG. A model file is compiled first (to a temporary MLF) with the given target."""

from __future__ import annotations

import html
import json
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tvmc_micro.analyze_plot import COLORS
from tvmc_micro.errors import TvmcError

_NEEDED = ("macs", "source_ops", "output_shape", "weight_bytes", "live_arena_bytes")


def load_model_entry(path: str, target: str, progress: Callable[[str], None]) -> tuple[dict[str, Any], str]:
    """(the model entry of metadata.json, what was read) for an MLF tar or a .tflite/.onnx model."""
    from tvmc_micro.project import read_mlf_metadata

    src = Path(path)
    if src.is_dir():
        return _project_model(src), f"project {src}"
    if not src.is_file():
        raise TvmcError(
            f"{path} does not exist",
            "pass a model (.tflite/.onnx), an MLF tar from tvmc compile or a project directory",
        )
    with src.open("rb") as f:
        head = f.read(512)
    is_tar = len(head) >= 262 and head[257:262] == b"ustar"
    if is_tar:
        model: dict[str, Any] = read_mlf_metadata(src)["models"][0]
        what = f"MLF {src.name}"
    else:
        from tvmc_micro.compiler import compile_model

        with tempfile.TemporaryDirectory(prefix="tvmc-analyze-") as tmp:
            result = compile_model(src, Path(tmp) / "model.tar", target=target, progress=progress)
        model = result.metadata["models"][0]
        what = f"{src.name} compiled for {target}"
    _check_new_enough(model, path)
    return model, what


def _project_model(project_dir: Path) -> dict[str, Any]:
    """The model entry of a generated project (its MLF is extracted in model/)."""
    from microtvm_api.errors import ProjectAPIError
    from microtvm_api.mlf_metadata import MAX_METADATA_BYTES, parse_metadata

    meta = project_dir / "model" / "metadata.json"
    if not meta.is_file():
        raise TvmcError(
            f"{project_dir} is a directory but not a generated project (no model/metadata.json)",
            "pass a project from tvmc micro create-project, an MLF tar or a model file",
        )
    data = meta.read_bytes()
    if len(data) > MAX_METADATA_BYTES:
        raise TvmcError(f"{meta} is larger than {MAX_METADATA_BYTES} bytes", "regenerate the project")
    try:
        model: dict[str, Any] = parse_metadata(data, str(meta))["models"][0]
    except ProjectAPIError as err:
        raise TvmcError(err.message, err.hint) from None
    _check_new_enough(model, str(project_dir))
    return model


def _check_new_enough(model: Mapping[str, Any], path: str) -> None:
    ops = model.get("operators") or []
    if (ops and any(k not in ops[0] for k in _NEEDED)) or "arena_timeline" not in model:
        raise TvmcError(
            f"{path} was made by an older tvmc-micro: its metadata has no per-operator MACs and "
            "arena timeline",
            "recompile the model with this version: tvmc compile MODEL -o model.tar",
        )


def build_figures(sizes: Mapping[str, Any], weight_bytes: int) -> dict[str, Any]:
    """What a build adds to the analysis: the image's flash (`size`'s text + data: code, read-only data
    and initial values) with the weights' share, static RAM (data + bss) and the stack estimate."""
    b = sizes["berkeley"]
    flash = int(b["text"]) + int(b["data"])
    stack = sizes.get("stack")
    return {
        "sizes": dict(sizes),
        "flash_bytes": flash,
        "weight_bytes": weight_bytes,
        "other_flash_bytes": flash - weight_bytes,
        "static_ram_bytes": int(b["data"]) + int(b["bss"]),
        "stack_estimate_bytes": None if not stack else int(stack["estimated_bytes"]),
    }


def report(model: Mapping[str, Any], what: str, sizes: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The analysis as data (the --json document; docs/json-output.md); `sizes` are a build's
    (tvmc_micro.build_sizes), when there is one."""
    memory = dict(model["memory"])
    timeline = model["arena_timeline"]
    ops = [
        {
            "index": op["index"],
            "kernel": op["name"],
            "source_ops": op["source_ops"],
            "output_shape": op["output_shape"],
            "macs": int(op["macs"]),
            "weight_bytes": int(op["weight_bytes"]),
            "new_weight_bytes": int(op.get("new_weight_bytes", op["weight_bytes"])),
            "workspace_bytes": int(op.get("workspace_bytes", 0)),
            "live_arena_bytes": int(op["live_arena_bytes"]),
        }
        for op in model["operators"]
    ]
    total_macs = sum(op["macs"] for op in ops)
    peak = max(ops, key=lambda o: o["live_arena_bytes"]) if ops else None
    return {
        "schema": "tvmc-micro/analyze/1",
        "source": what,
        "model": {
            "name": model["name"],
            "source": model.get("source"),
            "target": model.get("target"),
            "compute_path": model.get("compute_path"),
            "inputs": model.get("inputs"),
            "outputs": model.get("outputs"),
        },
        "totals": {
            "operators": len(ops),
            "macs": total_macs,
            "weight_bytes": int(memory["constants_bytes"]),
            "arena_bytes": int(memory["arena_bytes"]),
            "activation_lower_bound_bytes": int(memory["activation_lower_bound_bytes"]),
            "io_bytes": int(memory["io_bytes"]),
            "state_bytes": int(memory["state_bytes"]),
            "ram_bytes": int(memory["arena_bytes"]) + int(memory["io_bytes"]) + int(memory["state_bytes"]),
            "peak_live_step": None if peak is None else peak["index"],
            "peak_live_arena_bytes": 0 if peak is None else peak["live_arena_bytes"],
        },
        "memory": memory,
        "operators": ops,
        "arena_timeline": timeline,
        "build": None if sizes is None else build_figures(sizes, int(memory["constants_bytes"])),
    }


def _src(op: Mapping[str, Any], fmt: str) -> str:
    srcs = op["source_ops"]
    if not srcs:
        return f"({op['kernel']})"
    if fmt == "onnx":
        return ", ".join(s["name"] for s in srcs)
    return ", ".join(f"{s['type']}#{s['index']}" for s in srcs)


def format_report(r: Mapping[str, Any]) -> str:
    fmt = str((r["model"].get("source") or {}).get("format", "tflite"))
    t = r["totals"]
    srcs = [_src(op, fmt) for op in r["operators"]]
    sw = min(44, max([len(s) for s in srcs] + [16]))
    lines = [
        f"model {r['model']['name']!r} ({r['source']}; {r['model'].get('compute_path')} path)",
        f"  {'#':>3}  {'source operators':<{sw}}  {'output':<16} {'MACs':>12} {'MAC %':>6} {'weights B':>10} "
        f"{'live arena B':>12}",
    ]
    for op, src in zip(r["operators"], srcs, strict=True):
        shape = "x".join(map(str, op["output_shape"]))
        share = 100 * op["macs"] / t["macs"] if t["macs"] else 0.0
        src = src if len(src) <= sw else src[: sw - 3] + "..."
        lines.append(
            f"  {op['index']:>3}  {src:<{sw}}  {shape:<16} {op['macs']:>12,} {share:>5.1f}% "
            f"{op['weight_bytes']:>10,} {op['live_arena_bytes']:>12,}"
        )
    lines += [
        f"  {'':>3}  {'total':<{sw}}  {'':<16} {t['macs']:>12,} {'':>6} {t['weight_bytes']:>10,}",
        *_flash_lines(r),
        f"RAM:   arena {t['arena_bytes']:,} B "
        f"(activation lower bound {t['activation_lower_bound_bytes']:,} B, "
        f"{_ratio(t['arena_bytes'], t['activation_lower_bound_bytes'])}), I/O {t['io_bytes']:,} B, "
        f"state {t['state_bytes']:,} B; total {t['ram_bytes']:,} B",
        f"arena: {len(r['arena_timeline'])} tensors; most live at step {t['peak_live_step']} "
        f"({t['peak_live_arena_bytes']:,} B)",
    ]
    return "\n".join(lines)


def _flash_lines(r: Mapping[str, Any]) -> list[str]:
    t, b = r["totals"], r.get("build")
    if b is None:
        return [
            f"flash: weights {t['weight_bytes']:,} B (code size: analyze a built project, or give "
            "--build DIR|BUILD_JSON)"
        ]
    berkeley = b["sizes"]["berkeley"]
    lines = [
        f"flash: image {b['flash_bytes']:,} B (text {berkeley['text']:,} + data {berkeley['data']:,}, "
        f"{b['sizes']['size_tool']} {b['sizes']['image']}): weights {b['weight_bytes']:,} B, code and "
        f"other data {b['other_flash_bytes']:,} B",
        f"static RAM: {b['static_ram_bytes']:,} B (data {berkeley['data']:,} + bss {berkeley['bss']:,}: "
        "the arena, I/O buffers, runtime state and any stack reservation)",
    ]
    stack = b["sizes"].get("stack")
    if stack:
        lines.append(
            f"stack: about {stack['estimated_bytes']:,} B needed (deepest call path by gcc's "
            f"-fcallgraph-info=su: {' -> '.join(stack['worst_path'][:6])}"
            f"{' -> ...' if len(stack['worst_path']) > 6 else ''}); stack_bytes {stack['stack_bytes']:,}"
        )
    else:
        lines.append("stack: no estimate (the template's build writes no call graphs)")
    return lines


def _ratio(arena: int, bound: int) -> str:
    return f"{arena / bound:.2f}x the bound" if bound else "no bound"


# ------------------------------------------------------------------------------------------------ HTML



def _svg_timeline(r: Mapping[str, Any], width: int = 960, height: int = 420) -> str:
    timeline = r["arena_timeline"]
    steps = max([row["last_step"] for row in timeline] + [len(r["operators"]) - 1, 0]) + 1
    arena = max(1, int(r["totals"]["arena_bytes"]))
    left, top, plot_w, plot_h = 70, 20, width - 90, height - 60
    sx, sy = plot_w / steps, plot_h / arena
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="arena timeline">',
        f'<rect x="{left}" y="{top}" width="{plot_w}" height="{plot_h}" fill="#f7f7f7" stroke="#999"/>',
    ]
    for row in timeline:
        x = left + row["first_step"] * sx
        w = (row["last_step"] - row["first_step"] + 1) * sx
        y = top + plot_h - (row["offset"] + row["size_bytes"]) * sy
        h = max(1.0, row["size_bytes"] * sy)
        tip = (
            f"{row['name']} ({row['kind']}, {row.get('dtype', '')}{row.get('shape', '')}): bytes "
            f"{row['offset']}..{row['offset'] + row['size_bytes'] - 1}, "
            f"steps {row['first_step']}..{row['last_step']}"
        )
        parts.append(
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(1.0, w - 1):.1f}" height="{h:.1f}" '
            f'fill="{COLORS.get(row["kind"], "#bab0ac")}" fill-opacity="0.8" stroke="#333" '
            'stroke-width="0.5">'
            f"<title>{html.escape(tip)}</title></rect>"
        )
    bound = int(r["totals"]["activation_lower_bound_bytes"])
    if 0 < bound <= arena:
        yb = top + plot_h - bound * sy
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{yb:.1f}" y2="{yb:.1f}" stroke="#e15759" '
            f'stroke-dasharray="6 4"><title>activation lower bound {bound:,} B</title></line>'
        )
    for k in range(steps):
        parts.append(
            f'<text x="{left + (k + 0.5) * sx:.1f}" y="{top + plot_h + 14}" font-size="10" '
            f'text-anchor="middle">{k}</text>'
        )
    parts += [
        f'<text x="{left + plot_w / 2}" y="{height - 8}" font-size="12" text-anchor="middle">step '
        "(kernel call)</text>",
        f'<text x="{left - 6}" y="{top + 10}" font-size="10" text-anchor="end">{arena:,} B</text>',
        f'<text x="{left - 6}" y="{top + plot_h}" font-size="10" text-anchor="end">0</text>',
        "</svg>",
    ]
    return "\n".join(parts)


def _svg_macs(r: Mapping[str, Any], width: int = 960, height: int = 220) -> str:
    ops = r["operators"]
    top_macs = max([op["macs"] for op in ops] + [1])
    left, top, plot_w, plot_h = 70, 10, width - 90, height - 40
    # The timeline's step width, so that bar k stands under step k of the arena picture.
    steps = max([row["last_step"] for row in r["arena_timeline"]] + [len(ops) - 1, 0]) + 1
    bw = plot_w / steps
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="MACs per operator">'
    ]
    for k, op in enumerate(ops):
        h = op["macs"] / top_macs * plot_h
        parts.append(
            f'<rect x="{left + k * bw + 1:.1f}" y="{top + plot_h - h:.1f}" width="{max(1.0, bw - 2):.1f}" '
            f'height="{h:.1f}" fill="#4e79a7"><title>#{op["index"]} {html.escape(op["kernel"])}: '
            f"{op['macs']:,} MACs</title></rect>"
        )
    parts += [
        f'<text x="{left - 6}" y="{top + 10}" font-size="10" text-anchor="end">{top_macs:,}</text>',
        f'<text x="{left + plot_w / 2}" y="{height - 6}" font-size="12" text-anchor="middle">MACs per '
        "operator</text>",
        "</svg>",
    ]
    return "\n".join(parts)


def render_html(r: Mapping[str, Any]) -> str:
    """One self-contained page: no scripts, styles or images from anywhere else."""
    fmt = str((r["model"].get("source") or {}).get("format", "tflite"))
    t = r["totals"]
    rows = "\n".join(
        "<tr>"
        + "".join(
            f"<td>{html.escape(str(v))}</td>"
            for v in (
                op["index"],
                _src(op, fmt),
                op["kernel"],
                "x".join(map(str, op["output_shape"])),
                f"{op['macs']:,}",
                f"{op['weight_bytes']:,}",
                f"{op['live_arena_bytes']:,}",
            )
        )
        + "</tr>"
        for op in r["operators"]
    )
    name = html.escape(str(r["model"]["name"]))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tvmc analyze: {name}</title>
<style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:2px 6px;font-size:13px}}td:nth-child(n+5){{text-align:right}}</style>
</head><body>
<h1>{name}</h1>
<p>{html.escape(str(r["source"]))}; {html.escape(str(r["model"].get("compute_path")))} path</p>
<h2>Totals</h2>
<ul>
<li>MACs: {t["macs"]:,} over {t["operators"]} operators</li>
<li>Flash: weights {t["weight_bytes"]:,} B</li>
<li>RAM: arena {t["arena_bytes"]:,} B (activation lower bound {t["activation_lower_bound_bytes"]:,} B),
I/O {t["io_bytes"]:,} B, state {t["state_bytes"]:,} B; total {t["ram_bytes"]:,} B</li>
{"".join(f"<li>{html.escape(line)}</li>" for line in (_flash_lines(r) if r.get("build") else []))}
</ul>
<h2>Arena timeline</h2>
<p>Each box is a tensor: horizontally the steps it is live over, vertically the bytes it occupies. Blue:
activations, teal: model inputs in the arena, orange: kernel workspaces, green: outputs computed in the
arena; dashed: activation lower bound.</p>
{_svg_timeline(r)}
<h2>MACs per operator</h2>
{_svg_macs(r)}
<h2>Operators</h2>
<table><tr><th>#</th><th>source operators</th><th>kernel</th><th>output</th><th>MACs</th><th>weights B</th>
<th>live arena B</th></tr>
{rows}
</table>
</body></html>
"""


def dump_json(r: Mapping[str, Any]) -> str:
    return json.dumps(r, indent=2)
