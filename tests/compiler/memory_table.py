"""Arena, I/O and activation lower bound of every shared model on the host target, one JSON line each.

    PYTHONPATH=client:project_api python3 tests/compiler/memory_table.py OUT ['{"io_buffers": "separate"}']

OUT (a directory) receives the MLF tars; the optional second argument is JSON of extra compile_model options.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from tvmc_micro.compiler import compile_model

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.conftest import MODELS_DIR


def main(argv: list[str]) -> int:
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    extra = json.loads(argv[2]) if len(argv) > 2 else {}
    for path in sorted(p for p in MODELS_DIR.iterdir() if p.suffix in (".tflite", ".onnx")):
        t0 = time.time()
        try:
            result = compile_model(path, out / f"{path.name}.tar", **extra)
        except Exception as err:  # a model that does not compile is a row too
            print(json.dumps({"model": path.name, "error": str(err)[:200]}), flush=True)
            continue
        m = result.metadata["models"][0]
        row = {"model": path.name, "path": m["compute_path"], "io_buffers": m.get("io_buffers", "separate")}
        print(json.dumps({**row, **m["memory"], "sec": round(time.time() - t0, 1)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
