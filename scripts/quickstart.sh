#!/usr/bin/env bash
# The main job end to end on the default platform (crt_host: the firmware is a host process, no hardware):
# compile a model to Model Library Format, create a project from the crt_host template, build, flash, run,
# and check the device's outputs against the model's reference interpreter.
# MODEL=path overrides the model; OUT=dir the working directory (default /tmp/tvmc-quickstart).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
scripts/setup.sh
OUT=${OUT:-/tmp/tvmc-quickstart}
mkdir -p "$OUT"
if [ -z "${MODEL:-}" ]; then
  if [ -f ../shared/models/kws_ref_model.tflite ]; then
    MODEL=../shared/models/kws_ref_model.tflite   # MLPerf Tiny keyword spotting, int8
  else
    MODEL="$OUT/demo_mlp.onnx"                    # no shared models here: make a small one
    "$PYTHON" scripts/make_demo_model.py "$MODEL"
  fi
fi
run() { echo "+ $*" >&2; "$@"; }
run tvmc compile "$MODEL" -o "$OUT/model.tar"
run tvmc micro create-project -f "$OUT/project" "$OUT/model.tar" crt_host
run tvmc micro build "$OUT/project"
run tvmc micro flash "$OUT/project"
run tvmc run --device micro "$OUT/project" --fill-mode random --seed 0 -o "$OUT/outputs.npz" \
    --print-top 3 --print-time --repeat 10 --validate "$MODEL"
