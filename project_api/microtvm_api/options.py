"""Project options: declared once, parsed and converted in one place, by the CLI and the server alike.

A server declares `ProjectOption`s; `server_info_query` sends them as
``{name, type, default, help, choices, required: [methods], optional: [methods]}``. The CLI turns
``--project-option key=value`` into a dict with `parse_key_values`; `resolve` (used by the server base for
every method that takes options, and by the CLI to report mistakes before launching anything long)
converts values to the declared type, checks choices, bounds (minimum/maximum), shell-split `words` and
absolute `path`s, fills defaults, enforces required options and returns only the options that apply to the
method. Clients make the relative values of `path` options absolute first (`absolute_paths`).
"""

from __future__ import annotations

import json
import math
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from microtvm_api.errors import InvalidOptionError
from microtvm_api.protocol import OPTION_METHODS

_DECLARATION_KEYS = frozenset(
    (
        "name", "type", "default", "help", "choices", "required", "optional", "minimum", "maximum", "words",
        "path",
    )
)  # fmt: skip
OPTION_TYPES: dict[str, type] = {"bool": bool, "str": str, "int": int, "float": float}
_EXPECTED = {"bool": "true or false", "int": "an integer", "float": "a finite number", "str": "a string"}
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


@dataclass(frozen=True)
class ProjectOption:
    """One option a template accepts.

    `required` / `optional` name the methods (generate_project, build, flash, open_transport) the option
    applies to; an option listed for neither applies, optionally, to all of them. Declare an option
    optional for generate_project too when its value should be saved into the generated project.
    """

    name: str
    type: str
    default: Any = None
    help: str = ""
    choices: Sequence[Any] | None = None
    required: Sequence[str] = field(default=())
    optional: Sequence[str] = field(default=())
    # Inclusive bounds of an int or float option (None: unbounded on that side).
    minimum: int | float | None = None
    maximum: int | float | None = None
    # A str option whose value is split into arguments like a shell would (shlex; never run by one):
    # a value shlex cannot split (an unbalanced quote) is refused like a mistyped one.
    words: bool = False
    # A str option whose value is a file path: clients send it absolute (a relative value is made absolute
    # against the client's working directory before sending; the server runs elsewhere) and a relative
    # value is refused, so it never resolves against the server's directory.
    path: bool = False

    def __post_init__(self) -> None:
        # A broken declaration is the template author's bug: fail at import with a precise message.
        type_name = self.type.__name__ if isinstance(self.type, type) else self.type
        object.__setattr__(self, "type", type_name)
        object.__setattr__(self, "required", tuple(self.required or ()))
        object.__setattr__(self, "optional", tuple(self.optional or ()))
        if not self.name.isidentifier():
            raise ValueError(f"project option name {self.name!r} is not an identifier")
        if type_name not in OPTION_TYPES:
            raise ValueError(
                f"project option {self.name!r}: type {type_name!r} is not one of {list(OPTION_TYPES)}"
            )
        for method in (*self.required, *self.optional):
            if method not in OPTION_METHODS:
                raise ValueError(
                    f"project option {self.name!r}: {method!r} is not a method that takes options "
                    f"({', '.join(OPTION_METHODS)})"
                )
        for bound in (self.minimum, self.maximum):
            if bound is not None and (
                type_name not in ("int", "float")
                or isinstance(bound, bool)
                or not isinstance(bound, int | float)
                or not math.isfinite(bound)
            ):
                raise ValueError(
                    f"project option {self.name!r}: minimum/maximum {bound!r} needs an int or float option "
                    "and a finite number"
                )
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"project option {self.name!r}: minimum {self.minimum} > maximum {self.maximum}")
        if self.words and type_name != "str":
            raise ValueError(f"project option {self.name!r}: words=True needs a str option")
        if self.path and type_name != "str":
            raise ValueError(f"project option {self.name!r}: path=True needs a str option")
        try:
            if self.choices is not None:
                checked = tuple(_checked(self, c, choices=False) for c in self.choices)
                object.__setattr__(self, "choices", checked)
            if self.default is not None:
                object.__setattr__(self, "default", _checked(self, self.default, choices=False))
        except InvalidOptionError as err:
            raise ValueError(f"declaration of {err.message} (in its choices or default)") from None
        if self.choices is not None and self.default is not None and self.default not in self.choices:
            raise ValueError(
                f"project option {self.name!r}: default {self.default!r} is not one of its choices"
            )

    def applies_to(self, method: str) -> bool:
        if not self.required and not self.optional:
            return True
        return method in self.required or method in self.optional

    def to_json(self) -> dict[str, Any]:
        declared: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "default": self.default,
            "help": self.help,
            "choices": list(self.choices) if self.choices is not None else None,
            "required": list(self.required) or None,
            "optional": list(self.optional) or None,
        }
        # Additive keys, sent only when used, so options without them look as they always did.
        if self.minimum is not None:
            declared["minimum"] = self.minimum
        if self.maximum is not None:
            declared["maximum"] = self.maximum
        if self.words:
            declared["words"] = True
        if self.path:
            declared["path"] = True
        return declared

    @classmethod
    def from_json(cls, obj: Any) -> ProjectOption:
        """Rebuild a declaration from server_info; raises ValueError naming what is wrong with it."""
        if not isinstance(obj, Mapping):
            raise ValueError(f"a project option declaration must be an object, got {obj!r:.80}")
        if not isinstance(obj.get("name"), str):
            raise ValueError(f"project option declaration without a string name: {obj!r:.120}")
        name = obj["name"]
        unknown = set(obj) - _DECLARATION_KEYS
        if unknown:
            raise ValueError(f"project option {name!r} has unknown keys {sorted(unknown)}")
        for key in ("required", "optional", "choices"):
            if obj.get(key) is not None and not isinstance(obj[key], list):
                raise ValueError(
                    f"project option {name!r}: {key} must be a list or null, got {obj[key]!r:.80}"
                )
        if not isinstance(obj.get("help", ""), str):
            raise ValueError(f"project option {name!r}: help must be a string")
        # v0.18 servers omit `type` for plain strings.
        type_name = obj.get("type") or "str"
        if not isinstance(type_name, str):
            raise ValueError(f"project option {name!r}: type must be a string, got {type_name!r}")
        for flag in ("words", "path"):
            if not isinstance(obj.get(flag, False), bool):
                raise ValueError(f"project option {name!r}: {flag} must be a boolean")
        return cls(
            name=name,
            type=type_name,
            default=obj.get("default"),
            help=obj.get("help") or "",
            choices=obj.get("choices"),
            required=obj.get("required") or (),
            optional=obj.get("optional") or (),
            minimum=obj.get("minimum"),
            maximum=obj.get("maximum"),
            words=obj.get("words", False),
            path=obj.get("path", False),
        )


def convert(option: ProjectOption, value: Any) -> Any:
    """`value` (a CLI string or a JSON value) as the option's type; InvalidOptionError if it cannot be."""
    kind = option.type
    try:
        if kind == "bool":
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
        elif kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str):
                return int(value.strip(), 0)
            if isinstance(value, float) and value.is_integer():
                return int(value)
        elif kind == "float":
            number: float | None = None
            if isinstance(value, int | float) and not isinstance(value, bool):
                number = float(value)
            elif isinstance(value, str):
                number = float(value.strip())
            if number is not None and math.isfinite(number):
                return number
        elif isinstance(value, str):
            return value
    except (ValueError, OverflowError):
        pass
    expected = _EXPECTED[kind]
    raise InvalidOptionError(
        f"project option {option.name!r} must be {expected}, got {value!r}",
        f"pass --project-option {option.name}=<{kind}>" + (f"; {option.help}" if option.help else ""),
        data={"option": option.name},
    )


def parse_key_values(items: Iterable[str]) -> dict[str, str]:
    """``["a=1", "b=x=y"]`` → ``{"a": "1", "b": "x=y"}`` (split at the first `=`; later repeats win)."""
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise InvalidOptionError(
                f"project option {item!r} is not key=value",
                "write --project-option NAME=VALUE (the value may itself contain '=')",
                data={"option": item},
            )
        result[key] = value
    return result


def _valid_list(declared: Sequence[ProjectOption]) -> str:
    return ", ".join(f"{o.name} ({o.type})" for o in declared) or "(this server declares no options)"


def resolve(
    declared: Sequence[ProjectOption],
    method: str,
    given: Mapping[str, Any] | None,
    *,
    saved: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The options `method` receives: typed, checked, defaults filled, only those that apply to it.

    Precedence: `given` (this call) over `saved` (stored in a generated project) over the declared default.
    A None value counts as not given. Unknown names raise InvalidOptionError listing the valid ones; so do
    bad types and choices (for every given option, even one that does not apply to this method, so a typo
    never passes silently).
    """
    by_name = {o.name: o for o in declared}
    # None is "not given" (a v0.18 client sends every declared option, None for the unset ones).
    given = {name: value for name, value in (given or {}).items() if value is not None}
    unknown = sorted(set(given) - set(by_name))
    if unknown:
        raise InvalidOptionError(
            f"unknown project option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}",
            f"valid options: {_valid_list(declared)}",
            data={"option": unknown[0]},
        )
    typed: dict[str, Any] = {}
    for name, value in given.items():
        typed[name] = _checked(by_name[name], value)
    result: dict[str, Any] = {}
    for option in declared:
        if not option.applies_to(method):
            continue
        if option.name in typed:
            result[option.name] = typed[option.name]
        elif saved and option.name in saved:
            result[option.name] = _checked(option, saved[option.name])
        elif option.default is not None:
            result[option.name] = option.default
        elif method in option.required:
            choices = f" (one of: {', '.join(map(str, option.choices))})" if option.choices else ""
            raise InvalidOptionError(
                f"project option {option.name!r} is required by {method}{choices}",
                f"pass --project-option {option.name}=<{option.type}>"
                + (f"; {option.help}" if option.help else ""),
                data={"option": option.name},
            )
    return result


def _checked(option: ProjectOption, value: Any, *, choices: bool = True) -> Any:
    """`value` converted and checked against everything the declaration says (choices, bounds, words)."""
    typed = convert(option, value)
    if choices and option.choices is not None and typed not in option.choices:
        raise InvalidOptionError(
            f"project option {option.name!r} is {typed!r}, not one of: {', '.join(map(str, option.choices))}",
            f"pass --project-option {option.name}=<one of the choices>",
            data={"option": option.name},
        )
    low, high = option.minimum, option.maximum
    if (low is not None and typed < low) or (high is not None and typed > high):
        allowed = (
            f"between {low} and {high}" if low is not None and high is not None
            else f"at least {low}" if low is not None else f"at most {high}"
        )
        raise InvalidOptionError(
            f"project option {option.name!r} is {typed!r}; it must be {allowed}",
            f"pass --project-option {option.name}=<{allowed}>" + (f"; {option.help}" if option.help else ""),
            data={"option": option.name},
        )
    if option.words:
        split_words(option, typed)
    if option.path and typed and not os.path.isabs(typed):
        raise InvalidOptionError(
            f"project option {option.name!r} is a file path and must be absolute, got {typed!r} (the server "
            "does not run in your working directory)",
            f"pass --project-option {option.name}=/absolute/path (tvmc makes a relative path absolute "
            "against its working directory; another client must do the same)",
            data={"option": option.name},
        )
    return typed


def absolute_paths(
    declared: Iterable[ProjectOption], values: Mapping[str, Any], cwd: str | Path | None = None
) -> dict[str, Any]:
    """`values` with every relative value of a path option (`path=True`) made absolute against `cwd`
    (default: this process's working directory), `~` expanded; the client does this before sending, since
    the server runs in its own directory. Other values, and empty or non-string ones, are left as given."""
    paths = {o.name for o in declared if o.path}
    base = os.fspath(cwd) if cwd is not None else os.getcwd()
    result = dict(values)
    for name, value in values.items():
        if name in paths and isinstance(value, str) and value:
            expanded = os.path.expanduser(value)
            if not os.path.isabs(expanded):
                expanded = os.path.abspath(os.path.join(base, expanded))
            result[name] = expanded
    return result


def split_words(option: ProjectOption, value: str) -> list[str]:
    """`value` split into arguments like a shell would (never run by one); InvalidOptionError naming the
    option when it cannot be split (an unbalanced quote, a trailing backslash)."""
    try:
        return shlex.split(value)
    except ValueError as err:
        raise InvalidOptionError(
            f"project option {option.name!r} cannot be split into arguments ({err}): {value!r}",
            f"pass --project-option {option.name}=... with balanced quotes (escape a lone quote or a final "
            "backslash with a backslash)",
            data={"option": option.name},
        ) from None



# A generated project keeps the options it was created with, so `build` and `flash` need not repeat them.
SAVED_OPTIONS_FILE = "project_options.json"


def save_options(project_dir: str | Path, values: Mapping[str, Any]) -> Path:
    path = Path(project_dir) / SAVED_OPTIONS_FILE
    path.write_text(json.dumps(dict(values), indent=2, sort_keys=True) + "\n")
    return path


def load_options(project_dir: str | Path) -> dict[str, Any]:
    path = Path(project_dir) / SAVED_OPTIONS_FILE
    if not path.is_file():
        return {}
    loaded = json.loads(path.read_text())
    return dict(loaded) if isinstance(loaded, dict) else {}
