#!/usr/bin/env python3
"""Mutate reference TFLite models byte by byte; every mutant must be refused clearly or compile bit-exact.

For each model, N mutants (1-2 changed bytes each, seeded) go through the model reader, the census and
the frontend/integer importer in a worker process (a crash or hang kills only the worker, and is counted).
Outcomes: `refused` (a TvmcError-family message), `accepted`, `crash` (any other exception, or the worker
died), `hang` (no answer within --timeout). Up to --e2e accepted mutants per model whose changed bytes lie
outside the weight buffers are then compiled to an MLF, built with the host C harness
(tests/compiler/compiler_harness.py) and run next to TFLite Micro's interpreter (in its own process: it
does not verify files and can crash): `exact`, `differs`, `tflm-refuses`, `tflm-crashes`, `build-failed`.

    PYTHONPATH=client:project_api python3 scripts/fuzz_models.py -n 200 --e2e 3 --out fuzz.md

Exit status 1 when any mutant crashed, hung or differed from TFLite Micro. See docs/model-checks.md.
"""

from __future__ import annotations

import argparse
import pickle
import random
import re
import select
import struct
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
DEFAULT_MODELS = REPO.parent / "shared" / "models"
BAD = ("crash", "hang")


@dataclass
class Mutant:
    model: str
    index: int
    changes: list[tuple[int, int, int]]  # (byte position, old value, new value)
    data: bytes = field(repr=False)
    structural: bool = False  # a changed byte lies outside every weight buffer's data

    def describe(self) -> str:
        return ", ".join(f"@{p}: {a:#04x}->{b:#04x}" for p, a, b in self.changes)


@dataclass
class Outcome:
    mutant: Mutant
    kind: str  # refused | accepted | crash | hang
    message: str = ""
    # exact | close (float path) | differs | tflm-refuses | tflm-crashes | build-failed | refused-at-compile
    e2e: str = ""


def weight_ranges(data: bytes) -> list[tuple[int, int]]:
    """Byte ranges of the buffers' data (weights): mutating them changes values, not structure."""
    import tflite

    model = tflite.Model.GetRootAsModel(data, 0)
    ranges = []
    for b in range(model.BuffersLength()):
        buf = model.Buffers(b)
        n = buf.DataLength()
        if n:
            start = buf._tab.Vector(buf._tab.Offset(4))
            ranges.append((start, start + n))
    return ranges


def mutants(path: Path, n: int, seed: int, structural_share: float = 0.8) -> list[Mutant]:
    """`n` mutants of the file, 1-2 bytes each; most land in the structure (tables, vtables, shapes,
    quantization), where damage matters, the rest anywhere."""
    data = path.read_bytes()
    rng = random.Random(f"{seed}:{path.name}")
    weights = weight_ranges(data)

    def in_weights(p: int) -> bool:
        return any(a <= p < b for a, b in weights)

    structure = [p for p in range(len(data)) if not in_weights(p)]
    out = []
    for i in range(n):
        buf = bytearray(data)
        changes = []
        for _ in range(rng.choice((1, 1, 2))):
            pos = rng.choice(structure) if rng.random() < structural_share else rng.randrange(len(data))
            new = rng.choice((rng.randrange(256), buf[pos] ^ (1 << rng.randrange(8)), 0x00, 0xFF, 0x7F, 0x80))
            if new == buf[pos]:
                new = buf[pos] ^ 1
            changes.append((pos, buf[pos], new))
            buf[pos] = new
        out.append(Mutant(path.name, i, changes, bytes(buf), any(not in_weights(p) for p, _, _ in changes)))
    return out


# ------------------------------------------------------------------------------------- worker process


def front_check(data: bytes, name: str, workdir: str) -> tuple[str, str]:
    """(kind, message) for one mutant: reader + census + import, in this process."""
    from tvmc_micro.errors import TvmcError

    path = Path(workdir) / name
    path.write_bytes(data)
    try:
        from tvmc_micro.compiler.frontend import import_model
        from tvmc_micro.compiler.graph_info import tflite_census
        from tvmc_micro.compiler.model_file import load_model_file

        mf = load_model_file(path)
        info = tflite_census(mf)
        import_model(mf, info, "fuzz", {}, allow_float_fallback=False)
    except TvmcError as err:
        text = str(err)
        if "unexpected" in text:  # model_file's last-resort wrapper: a check itself failed
            return "crash", text.splitlines()[0][:300]
        return "refused", text.splitlines()[0][:300]
    except Exception as err:
        tb = traceback.extract_tb(err.__traceback__)[-1]
        return "crash", f"{type(err).__name__}: {str(err)[:200]} at {Path(tb.filename).name}:{tb.lineno}"
    return "accepted", ""


def _send(stream: Any, obj: object) -> None:
    blob = pickle.dumps(obj)
    stream.write(struct.pack("<I", len(blob)) + blob)
    stream.flush()


def _recv(stream: Any) -> Any:
    head = stream.read(4)
    if len(head) < 4:
        raise EOFError
    return pickle.loads(stream.read(struct.unpack("<I", head)[0]))


def worker_main(workdir: str) -> None:
    """`fuzz_models.py --worker DIR`: answer (kind, message) for each mutant sent on stdin."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # anything a library prints must not corrupt the answers
    while True:
        try:
            data = _recv(sys.stdin.buffer)
        except EOFError:
            return
        _send(out, front_check(data, "mutant.tflite", workdir))


class Worker:
    """A process checking mutants (this script with --worker); replaced when a mutant kills it or hangs it."""

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self._start()

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--worker", self.workdir],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def _restart(self) -> None:
        self.proc.kill()
        self.proc.wait()
        self._start()

    def check(self, m: Mutant, timeout: float) -> tuple[str, str]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        try:
            _send(self.proc.stdin, m.data)
        except BrokenPipeError:
            self._restart()
            return self.check(m, timeout)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if ready:
            try:
                return _recv(self.proc.stdout)  # type: ignore[no-any-return]
            except EOFError:
                pass
        if self.proc.poll() is None:
            self._restart()
            return "hang", f"no answer within {timeout:.0f} s"
        code = self.proc.returncode
        self._start()
        return "crash", f"worker died (exit code {code})"

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --------------------------------------------------------------------------------------- end to end

_TFLM = """
import sys, numpy as np
from tflite_micro.python.tflite_micro import runtime
data = open(sys.argv[1], 'rb').read()
ins = np.load(sys.argv[2])
interp = runtime.Interpreter.from_bytes(data, arena_size=max(16 << 20, 8 * len(data)))
outs = []
for s in range(int(ins['n'])):
    k = 0
    while f's{s}_{k}' in ins:
        interp.set_input(ins[f's{s}_{k}'], k); k += 1
    interp.invoke()
    j = 0
    while True:
        try:
            outs.append(np.array(interp.get_output(j)))
        except Exception:
            break
        j += 1
np.savez(sys.argv[3], *outs)
"""


def end_to_end(m: Mutant, workdir: Path, samples: int = 4, seed: int = 0) -> str:
    """Compile the accepted mutant, run it in the host C harness and in TFLite Micro; compare bytes."""
    import numpy as np

    sys.path.insert(0, str(REPO / "tests" / "compiler"))
    from compiler_harness import build, extract  # type: ignore[import-not-found]
    from tvmc_micro.compiler import compile_model
    from tvmc_micro.errors import TvmcError

    d = workdir / f"{Path(m.model).stem}_{m.index}"
    d.mkdir(parents=True, exist_ok=True)
    src = d / "mutant.tflite"
    src.write_bytes(m.data)
    try:
        compile_model(src, d / "m.tar", model_name="fuzz")
    except TvmcError:
        return "refused-at-compile"
    try:
        built = build(extract(d / "m.tar", d / "mlf"))
    except subprocess.CalledProcessError:
        return "build-failed"
    rng = np.random.default_rng(seed)
    batch = []
    for _ in range(samples):
        row = []
        for spec in built.model["inputs"]:
            if spec["dtype"] == "float32":
                row.append(rng.uniform(-1, 1, spec["shape"]).astype(np.float32))
            else:
                info = np.iinfo(spec["dtype"])
                row.append(rng.integers(info.min, info.max + 1, spec["shape"]).astype(spec["dtype"]))
        batch.append(row)
    try:
        got = built.run(batch, d)
    except subprocess.CalledProcessError as err:
        return f"harness-crashed ({err.returncode})"
    arrays = {f"s{s}_{k}": a for s, row in enumerate(batch) for k, a in enumerate(row)}
    np.savez(d / "in.npz", n=np.array(samples), **arrays)
    ref = subprocess.run(
        [sys.executable, "-c", _TFLM, str(src), str(d / "in.npz"), str(d / "ref.npz")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    if ref.returncode < 0:
        return "tflm-crashes"
    if ref.returncode != 0:
        return "tflm-refuses"
    with np.load(d / "ref.npz") as z:
        want = [z[f"arr_{i}"] for i in range(len(z.files))]
    have = [o for row in got for o in row]
    if len(want) != len(have):
        return "differs"
    pairs = list(zip(have, want, strict=True))
    if all(a.size == b.size and a.tobytes() == b.astype(a.dtype).tobytes() for a, b in pairs):
        return "exact"
    # The float path is not bit-exact with TFLM's float kernels (summation order): 1e-4 relative then.
    floats = built.model.get("compute_path") != "integer" and all(a.dtype.kind == "f" for a, _ in pairs)
    close = floats and all(np.allclose(a, b.reshape(a.shape), rtol=1e-4, atol=1e-5) for a, b in pairs)
    return "close" if close else "differs"


# ---------------------------------------------------------------------------------------------- main


def run(models: list[Path], n: int, seed: int, e2e: int, timeout: float) -> list[Outcome]:
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="tvmc-fuzz-") as tmp:
        worker = Worker(tmp)
        try:
            for path in models:
                done_e2e = 0
                for m in mutants(path, n, seed):
                    kind, msg = worker.check(m, timeout)
                    o = Outcome(m, kind, msg)
                    if kind == "accepted" and m.structural and done_e2e < e2e:
                        o.e2e = end_to_end(m, Path(tmp) / "e2e", seed=seed)
                        done_e2e += 1
                    outcomes.append(o)
        finally:
            worker.close()
    return outcomes


def summary(outcomes: list[Outcome], seconds: float) -> str:
    models = list(dict.fromkeys(o.mutant.model for o in outcomes))
    cols = ("refused", "accepted", "crash", "hang")
    e2e_cols = (
        "exact",
        "close",
        "differs",
        "tflm-refuses",
        "tflm-crashes",
        "refused-at-compile",
        "build-failed",
    )
    lines = [
        f"# Model fuzzing: {len(outcomes)} mutants, {seconds:.0f} s",
        "",
        "| model | mutants | " + " | ".join(cols) + " | e2e " + " | e2e ".join(e2e_cols) + " |",
        "|---|" + "---:|" * (1 + len(cols) + len(e2e_cols)),
    ]
    for model in models:
        rows = [o for o in outcomes if o.mutant.model == model]
        counts = [sum(o.kind == c for o in rows) for c in cols]
        e2e_counts = [sum(o.e2e == c for o in rows) for c in e2e_cols]
        lines.append(f"| {model} | {len(rows)} | " + " | ".join(map(str, counts + e2e_counts)) + " |")
    bad = [o for o in outcomes if o.kind in BAD or o.e2e not in ("", "exact", "close", "refused-at-compile")]
    if bad:
        lines += ["", "## Problems", ""]
        for o in bad:
            m = o.mutant
            lines.append(f"- {m.model} #{m.index} ({m.describe()}): {o.kind} {o.e2e} {o.message}")
    reasons: dict[str, int] = {}
    for o in outcomes:
        if o.kind == "refused":
            # The kind of check, not the instance: numbers and names blanked out.
            text = o.message.split("mutant.tflite", 1)[-1]
            key = re.sub(r"\d+", "N", re.sub(r"'[^']*('|$)", "'...'", text)).strip(" :")[:90]
            reasons[key] = reasons.get(key, 0) + 1
    lines += ["", "## Most frequent refusals", ""]
    lines += [f"- {k} x{v}" for k, v in sorted(reasons.items(), key=lambda kv: -kv[1])[:15]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker_main(argv[1])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("models", nargs="*", type=Path, help="TFLite files (default: every shared model)")
    ap.add_argument("-n", type=int, default=100, help="mutants per model (default 100)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--e2e", type=int, default=2, help="accepted mutants per model compiled and run")
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per mutant before it is a hang")
    ap.add_argument("--out", type=Path, help="write the summary table (markdown) here")
    args = ap.parse_args(argv)
    models = args.models or sorted(DEFAULT_MODELS.glob("*.tflite"))
    if not models:
        print(f"no models given and none in {DEFAULT_MODELS}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    outcomes = run(models, args.n, args.seed, args.e2e, args.timeout)
    text = summary(outcomes, time.perf_counter() - t0)
    print(text)
    if args.out:
        args.out.write_text(text)
    bad = [o for o in outcomes if o.kind in BAD or o.e2e in ("differs", "build-failed")]
    return 1 if bad or any(o.e2e.startswith("harness") for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())
