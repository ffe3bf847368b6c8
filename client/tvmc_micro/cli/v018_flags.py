"""tvmc v0.18 command-line flags that tvmc-micro accepts for old scripts, and what each one means here.

One table (`COMPILE_FLAGS`) declares every v0.18 `tvmc compile` flag that the microTVM tutorial and tests
used: how it is honoured, or why it needs nothing here (a note is printed), or why it cannot be honoured
(an error saying what to use instead). docs/v018-compatibility.md lists the same table; a test keeps the
two equal. `normalize_argv` rewrites v0.18's `--project-option a=1 b=2` (several values after one flag)
into the repeated form this CLI declares.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tvmc_micro.errors import TvmcError

Notes = list[str]


@dataclass
class V018Compile:
    """What the v0.18 flags of one `tvmc compile` add to the run: target words, pass-config entries,
    disabled passes, a model name, and the notes to print."""

    target_words: list[str] = field(default_factory=list)
    disabled_passes: list[str] = field(default_factory=list)
    model_name: str | None = None
    notes: Notes = field(default_factory=list)


Handler = Callable[[str, V018Compile], None]


@dataclass(frozen=True)
class Flag:
    name: str  # as v0.18 spelled it
    meaning: str  # one line for the docs table and --help
    handle: Handler
    choices: tuple[str, ...] | None = None


def _note(text: str) -> Handler:
    def handle(value: str, out: V018Compile) -> None:
        out.notes.append(text)

    return handle


def _runtime(value: str, out: V018Compile) -> None:
    if value != "crt":
        raise TvmcError(
            f"--runtime={value}: only the C runtime exists on microcontrollers",
            "drop --runtime (crt is what every MLF carries)",
        )
    out.notes.append("--runtime=crt: every MLF carries tvmc-micro's C runtime (runtime/); nothing to choose")


def _executor(value: str, out: V018Compile) -> None:
    if value == "aot":
        out.notes.append("--executor=aot: the executor is always generated C (AOT); nothing to choose")
        return
    out.notes.append(
        "--executor=graph: no graph executor is generated (no executor-config/graph/graph.json); the model "
        "runs through the generated AOT executor instead, which tvmc run and the templates drive the same way"
    )


def _interface_api(value: str, out: V018Compile) -> None:
    if value != "c":
        raise TvmcError(
            f"--executor-aot-interface-api={value}: only the C interface is generated",
            "drop the flag: the header declares tvmgen_<model>_run(struct ..._inputs*, struct ..._outputs*)",
        )
    out.notes.append("--executor-aot-interface-api=c: the C interface is the only one; nothing to choose")


def _disabled_pass(value: str, out: V018Compile) -> None:
    names = [n.strip() for n in value.split(",") if n.strip()]
    out.disabled_passes += names
    out.notes.append(
        f"--disabled-pass={','.join(names)}: disabled in the Relax pass context; v0.18 Relay pass names "
        "(e.g. AlterOpLayout) do not exist in the Relax pipeline and change nothing"
    )


def _target_word(key: str) -> Handler:
    def handle(value: str, out: V018Compile) -> None:
        out.target_words.append(f"-{key}={value}")

    return handle


def _module_name(value: str, out: V018Compile) -> None:
    out.model_name = value


def _opt_level(value: str, out: V018Compile) -> None:
    if value != "3":
        out.notes.append(f"--opt-level {value}: the pass list is fixed (as at level 3); ignored")


_STATIC_LINK = "kernels are linked statically and called by the generated executor; no system library"
_PARAMS = "weights are always in the firmware as const arrays (codegen/host/src/*_constants.c)"
_ALIGN = "arena tensors are 16-byte aligned, constants have their C type's alignment"

COMPILE_FLAGS: tuple[Flag, ...] = (
    Flag(
        "--runtime", "crt: accepted (the MLF carries the C runtime); cpp: refused", _runtime, ("crt", "cpp")
    ),
    Flag(
        "--runtime-crt-system-lib",
        f"accepted, note: {_STATIC_LINK}",
        _note(f"--runtime-crt-system-lib: {_STATIC_LINK}"),
    ),
    Flag(
        "--executor",
        "aot: accepted; graph: accepted with a note, the AOT executor is generated",
        _executor,
        ("aot", "graph"),
    ),
    Flag(
        "--executor-aot-interface-api",
        "c: accepted; packed: refused (only the C interface)",
        _interface_api,
        ("c", "packed"),
    ),
    Flag(
        "--executor-aot-unpacked-api",
        "accepted, note: kernels are always called unpacked",
        _note("--executor-aot-unpacked-api: kernels are always called unpacked"),
    ),
    Flag(
        "--executor-aot-link-params",
        f"accepted, note: {_PARAMS}",
        _note(f"--executor-aot-link-params: {_PARAMS}"),
    ),
    Flag(
        "--executor-graph-link-params",
        f"accepted, note: {_PARAMS}",
        _note(f"--executor-graph-link-params: {_PARAMS}"),
    ),
    Flag(
        "--executor-aot-workspace-byte-alignment",
        f"accepted, note: {_ALIGN}",
        _note(f"workspace alignment: {_ALIGN}"),
    ),
    Flag(
        "--executor-aot-constant-byte-alignment",
        f"accepted, note: {_ALIGN}",
        _note(f"constant alignment: {_ALIGN}"),
    ),
    Flag("--disabled-pass", "honoured: the passes are disabled in the Relax pass context", _disabled_pass),
    Flag("--module-name", "honoured as --model-name (the tvmgen_<name> prefix)", _module_name),
    Flag("--opt-level", "3 accepted; other levels accepted with a note (the pass list is fixed)", _opt_level),
    Flag("--target-c-mcpu", "honoured: the same as -mcpu= in --target", _target_word("mcpu")),
    Flag("--target-c-march", "honoured: the same as -march= in --target", _target_word("march")),
    Flag("--target-c-model", "honoured: the same as -model= in --target", _target_word("model")),
    Flag("--target-c-keys", "accepted: the same as -keys= in --target", _target_word("keys")),
    Flag("--target-c-device", "accepted: the same as -device= in --target", _target_word("device")),
    Flag(
        "--target-c-executor",
        "accepted, note: the AOT executor is generated",
        _note("--target-c-executor: the AOT executor is always generated"),
    ),
    Flag(
        "--target-c-unpacked-api",
        "accepted, note: kernels are always called unpacked",
        _note("--target-c-unpacked-api: kernels are always called unpacked"),
    ),
    Flag(
        "--target-c-interface-api",
        "accepted, note: only the C interface is generated",
        _note("--target-c-interface-api: only the C interface is generated"),
    ),
    Flag("--target-c-link-params", f"accepted, note: {_PARAMS}", _note(f"--target-c-link-params: {_PARAMS}")),
    Flag(
        "--target-c-constants-byte-alignment",
        f"accepted, note: {_ALIGN}",
        _note(f"constant alignment: {_ALIGN}"),
    ),
    Flag(
        "--target-c-workspace-byte-alignment",
        f"accepted, note: {_ALIGN}",
        _note(f"workspace alignment: {_ALIGN}"),
    ),
)

# v0.18 pass-config keys: `tir.` became `tirx.` in TVM 0.27; these prefixes configure passes that do not
# exist in the Relax pipeline (USMP's work is done by tvmc-micro's own arena planner).
PASS_CONFIG_RENAMES = {"tir.": "tirx."}
PASS_CONFIG_OBSOLETE = ("tir.usmp.", "relay.")


def add_compile_flags(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "tvmc v0.18 flags",
        "accepted so v0.18 scripts run unchanged; each is honoured, or prints why it needs nothing here "
        "(docs/v018-compatibility.md)",
    )
    for flag in COMPILE_FLAGS:
        group.add_argument(
            flag.name,
            dest=_dest(flag.name),
            choices=flag.choices,
            metavar=None if flag.choices else "VALUE",
            help=flag.meaning,
        )


def _dest(name: str) -> str:
    return "v018_" + name.lstrip("-").replace("-", "_")


def apply_compile_flags(args: argparse.Namespace) -> V018Compile:
    """Run the handler of every v0.18 flag given on the command line, in table order."""
    out = V018Compile()
    for flag in COMPILE_FLAGS:
        value = getattr(args, _dest(flag.name), None)
        if value is not None:
            flag.handle(str(value), out)
    return out


def translate_pass_config(config: dict[str, Any], notes: Notes) -> dict[str, Any]:
    """v0.18 pass-config keys in TVM 0.27 spelling; keys of passes that no longer exist dropped (noted)."""
    result: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith(PASS_CONFIG_OBSOLETE):
            notes.append(
                f"--pass-config {key}: a v0.18 option of a pass the Relax pipeline does not have; ignored"
            )
            continue
        for old, new in PASS_CONFIG_RENAMES.items():
            if key.startswith(old):
                notes.append(f"--pass-config {key}: TVM 0.27 calls it {new}{key[len(old) :]}")
                key = new + key[len(old) :]
        result[key] = value
    return result


def normalize_argv(argv: Sequence[str]) -> list[str]:
    """v0.18 took several KEY=VALUE words after one `--project-option`; this CLI takes one per flag.
    Words after the flag that contain `=` and do not start with `-` become repeated flags."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        word = argv[i]
        out.append(word)
        i += 1
        if word == "--project-option" and i < len(argv):
            out.append(argv[i])
            i += 1
            while i < len(argv) and "=" in argv[i] and not argv[i].startswith("-"):
                out += ["--project-option", argv[i]]
                i += 1
    return out
