"""`--target` strings as users write them (`c -mcpu=cortex-m4`) turned into TVM 0.27 dict targets.

TVM 0.27 rejects string targets with options, so the parsing is ours. Only the C backend is supported:
the MLF is C source for any compiler.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from tvmc_micro.compiler.errors import TargetError

# The Cortex-M cores we know: the key list is what TVM's arm_cpu strategies look for.
KNOWN_MCPUS = {
    "cortex-m0": ["arm_cpu", "cpu"],
    "cortex-m0plus": ["arm_cpu", "cpu"],
    "cortex-m3": ["arm_cpu", "cpu"],
    "cortex-m4": ["arm_cpu", "cpu"],
    "cortex-m7": ["arm_cpu", "cpu"],
    "cortex-m33": ["arm_cpu", "cpu"],
    "cortex-m55": ["arm_cpu", "cpu"],
    "cortex-m85": ["arm_cpu", "cpu"],
}
_SUPPORTED_KINDS = ("c",)
_FLAG_OPTIONS = {"mcpu", "march", "model"}
# Written by tvmc v0.18 command lines (`c -keys=cpu -model=host`, `-device=arm_cpu`): accepted and left
# out of the target, because the keys follow from -mcpu (KNOWN_MCPUS) and nothing here reads -device.
_V018_ACCEPTED = {"keys", "device"}


@dataclass(frozen=True)
class ParsedTarget:
    target_str: str
    target: dict[str, Any]

    @property
    def mcpu(self) -> str | None:
        value = self.target.get("mcpu")
        return str(value) if value is not None else None


def parse_target(text: str) -> ParsedTarget:
    """Parse `c [-mcpu=X] [-march=Y] [-model=M]` into a dict target."""
    try:
        words = shlex.split(text)
    except ValueError as err:
        raise TargetError(
            f"cannot parse --target {text!r}: {err}", 'write it like "c -mcpu=cortex-m4"'
        ) from err
    if not words:
        raise TargetError("--target is empty", 'use "c" (host C) or "c -mcpu=cortex-m4"')
    kind, rest = words[0], words[1:]
    if kind not in _SUPPORTED_KINDS:
        raise TargetError(
            f"target kind {kind!r} is not supported: the Model Library Format holds C source",
            'use "c" (host C) or "c -mcpu=cortex-m4" (also cortex-m3, cortex-m7, ...)',
        )
    target: dict[str, Any] = {"kind": kind}
    keys = ["cpu"]
    for word in rest:
        if not word.startswith("-") or "=" not in word:
            raise TargetError(
                f"cannot understand {word!r} in --target {text!r}",
                "options look like -mcpu=cortex-m4 (known: " + ", ".join(sorted(_FLAG_OPTIONS)) + ")",
            )
        key, value = word.lstrip("-").split("=", 1)
        if key in _V018_ACCEPTED:
            continue
        if key not in _FLAG_OPTIONS:
            raise TargetError(
                f"unknown target option -{key} in --target {text!r}",
                "known options: " + ", ".join(f"-{k}" for k in sorted(_FLAG_OPTIONS)),
            )
        if key == "mcpu":
            if value not in KNOWN_MCPUS:
                raise TargetError(
                    f"unknown -mcpu={value}",
                    "known CPUs: " + ", ".join(sorted(KNOWN_MCPUS)),
                )
            keys = list(KNOWN_MCPUS[value])
        target[key] = value
    target["keys"] = keys
    return ParsedTarget(target_str=" ".join(words), target=target)
