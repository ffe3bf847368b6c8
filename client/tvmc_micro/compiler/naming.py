"""Model text into C: generated identifiers, escaped string literals and comment text.

Every name a model carries (tensor, model, operator, file names) reaches generated C only through this
module: either as an identifier made by `sanitize_c_identifier`/`claim_unique`/`unique_names` (only
[A-Za-z0-9_], never a keyword of C or C++, never reserved (a leading `_` or a `__`), unique, the same for
the same input), or as text escaped by `c_string_literal`/`c_comment_text`, which leave no quote, no
backslash, no `?` (trigraphs: `??/` is a backslash under -std=c99), no `*` (so no `*/` or `/*`), no control
or non-ASCII byte unescaped.
"""

from __future__ import annotations

import keyword
import re

# Words a C (C89 to C23) or C++ compiler reserves, and the macros and functions of the headers the
# generated C includes (stdint.h, stdbool.h, string.h, math.h): a tensor called `int`, `class`, `NULL` or
# `expf` must not become a struct member, a parameter or a local of a kernel that calls expf.
_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int "
    "long register restrict return short signed sizeof static struct switch typedef union unsigned void "
    "volatile while _Bool _Complex _Imaginary _Alignas _Alignof _Atomic _Generic _Noreturn _Static_assert "
    "_Thread_local alignas alignof bool constexpr false nullptr static_assert thread_local true typeof "
    "typeof_unqual _BitInt _Decimal32 _Decimal64 _Decimal128 "
    # C++ (the header is included from C++ inside extern "C")
    "and and_eq asm bitand bitor catch char8_t char16_t char32_t class co_await co_return co_yield compl "
    "concept const_cast consteval constinit decltype delete dynamic_cast explicit export friend mutable "
    "namespace new noexcept not not_eq operator or or_eq private protected public reinterpret_cast "
    "requires static_cast template this throw try typeid typename using virtual wchar_t xor xor_eq "
    "final override import module".split()
)
_LIBRARY_NAMES = frozenset(
    "NULL errno assert offsetof size_t ptrdiff_t wchar_t memcpy memset memmove memcmp strlen main "
    "INFINITY NAN HUGE_VAL HUGE_VALF EOF stdin stdout stderr "
    "abs fabs fabsf exp expf exp2 exp2f expm1 expm1f log logf log2 log2f log10 log10f log1p log1pf "
    "pow powf sqrt sqrtf cbrt cbrtf sin sinf cos cosf tan tanf asin asinf acos acosf atan atanf atan2 "
    "atan2f sinh sinhf cosh coshf tanh tanhf asinh asinhf acosh acoshf atanh atanhf erf erff erfc erfcf "
    "floor floorf ceil ceilf round roundf lround lroundf trunc truncf nearbyint nearbyintf rint rintf "
    "lrint lrintf fmod fmodf fmax fmaxf fmin fminf fma fmaf isnan isinf isfinite signbit copysign "
    "copysignf ldexp ldexpf frexp frexpf modf modff".split()
)
_STDINT = re.compile(
    r"u?int(8|16|32|64|max|ptr)_t|u?int_(least|fast)(8|16|32|64)_t"
    r"|(U?INT(8|16|32|64|MAX|PTR)|U?INT_(LEAST|FAST)(8|16|32|64)|SIZE|PTRDIFF|SIG_ATOMIC|WCHAR|WINT)_(MAX|MIN|C)"
)
# Identifiers of our own namespace in generated C (tvmgen_<model>_*, TVMGEN_*, tvmc_* helpers, tvmrt_*):
# a model name never lands in it unprefixed.
_OUR_PREFIXES = ("tvm", "TVM")
# Portable limit: C99 guarantees 63 significant characters of an internal identifier or macro name.
MAX_IDENTIFIER = 48
# What a name that is reserved (or starts with a digit) gets in front.
RESERVED_PREFIX = "v_"


def is_reserved(name: str) -> bool:
    """True if `name` may not be used as an identifier made from model text (see the module docstring)."""
    return (
        name in _C_KEYWORDS
        or name in _LIBRARY_NAMES
        or keyword.iskeyword(name)
        or name.startswith("_")
        or "__" in name
        or name.startswith(_OUR_PREFIXES)
        or _STDINT.fullmatch(name) is not None
    )


def is_c_identifier(name: str) -> bool:
    return bool(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)) and name not in _C_KEYWORDS


def sanitize_c_identifier(name: str, fallback: str = "x") -> str:
    """Map any string to a safe C identifier, deterministically.

    Runs of characters outside [A-Za-z0-9_] (and runs of `_`) become one `_`, leading and trailing `_`
    go, the result is cut to MAX_IDENTIFIER characters; a name that then starts with a digit or is
    reserved (a keyword, a library name, our own `tvm` prefix) gets RESERVED_PREFIX in front.
    """
    out = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_")[:MAX_IDENTIFIER].rstrip("_") or fallback
    if out[0].isdigit() or is_reserved(out):
        out = RESERVED_PREFIX + out
    return out


# Names that generated macros already use after the model name (TVMGEN_<MODEL>_WORKSPACE_SIZE,
# TVMGEN_<MODEL>_STATE_SIZE): an input called `workspace` must not redefine them.
_TAKEN_MACRO_STEMS = frozenset({"WORKSPACE", "STATE"})


def claim_unique(name: str, used: set[str], fallback: str = "x") -> str:
    """`name` as a C identifier not yet in `used` (a `_<n>` suffix when taken); records it in `used`.

    Names are unique ignoring case: size macros spell them in upper case (`a` and `A` would both give
    TVMGEN_<MODEL>_A_SIZE)."""
    base = sanitize_c_identifier(name, fallback=fallback)
    taken = {u.upper() for u in used} | _TAKEN_MACRO_STEMS
    cand, n = base, 1
    while cand.upper() in taken:
        cand = f"{base}_{n}"
        n += 1
    used.add(cand)
    return cand


def unique_names(names: list[str], used: set[str] | None = None) -> list[str]:
    """Sanitise a list of names and make them distinct (two inputs `a:0` and `a/0` must not collide).

    Pass the same `used` set for lists whose names share a namespace (a model's inputs and outputs
    share the size macros)."""
    seen: set[str] = set() if used is None else used
    return [claim_unique(raw, seen, fallback=f"t{i}") for i, raw in enumerate(names)]


# What the executor and integration C define after `tvmgen_<model>_` (c_emit, integration): a kernel,
# named `tvmgen_<model>_<kernel>`, must never take one of them (a PrimFunc called `run` or `input_ptr`).
EXECUTOR_SUFFIXES = frozenset(
    (
        "run", "input_ptr", "output_ptr", "arena_base", "set_arena", "memory", "reset_state", "arena",
        "state", "state_ready", "metadata_json", "metadata_text",
    )
)  # fmt: skip


def kernel_symbols(model: str, funcs: list[str]) -> dict[str, str]:
    """The C symbol of each kernel: `tvmgen_<model>_<name>`, names made by `unique_names` and never one of
    EXECUTOR_SUFFIXES (a kernel called `run` becomes `run_1`)."""
    names = unique_names(funcs, set(EXECUTOR_SUFFIXES))
    return {fn: f"tvmgen_{model}_{name}" for fn, name in zip(funcs, names, strict=True)}


# Characters a literal or comment keeps as they are: printable ASCII except `"`, `\`, `?` and `*`.
# (microtvm_api.model_glue escapes device strings the same way.)
_PLAIN = frozenset(chr(c) for c in range(32, 127)) - set('"\\?*')
_NAMED_ESCAPES = {"\\": "\\\\", '"': '\\"', "?": "\\?"}


def _escape(text: str) -> str:
    out: list[str] = []
    for ch in text:
        if ch in _PLAIN:
            out.append(ch)
        elif ch in _NAMED_ESCAPES:
            out.append(_NAMED_ESCAPES[ch])
        else:
            # Octal, always three digits: a hex escape would swallow a following hex digit.
            out.extend(f"\\{b:03o}" for b in ch.encode("utf-8", errors="surrogatepass"))
    return "".join(out)


def c_string_literal(text: str) -> str:
    """`text` as a C string literal (quotes included) that compiles to exactly its UTF-8 bytes."""
    return '"' + _escape(text) + '"'


def c_comment_text(text: str) -> str:
    """`text` for inside a /* */ comment: escaped as in a string literal (so `*/`, `/*`, trigraphs, a
    trailing backslash and line breaks cannot occur) and quoted, so a reader sees where it starts and ends."""
    return '"' + _escape(text) + '"'
