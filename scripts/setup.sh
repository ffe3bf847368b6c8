#!/usr/bin/env bash
# Installs what tvmc-micro needs on a fresh Debian machine: the Python package (editable, with test
# extras) and, when running as root, the Debian toolchains the templates use. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

need_apt=()
command -v gcc >/dev/null || need_apt+=(gcc)
command -v arm-none-eabi-gcc >/dev/null || need_apt+=(gcc-arm-none-eabi libnewlib-arm-none-eabi)
command -v qemu-system-arm >/dev/null || need_apt+=(qemu-system-arm)
# Headless Chromium: the test that opens `tvmc analyze --html`'s page (it skips without a browser).
command -v chromium >/dev/null || command -v chromium-browser >/dev/null || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "+ apt-get install ${need_apt[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "note: not root, skipping apt-get install ${need_apt[*]} (the tests that need them will skip)" >&2
  fi
fi

# Reinstall unless this very checkout is what Python imports (another clone may be installed editable).
if ! "$PYTHON" - <<'PY' 2>/dev/null
import pathlib, sys
import ai_edge_litert, onnxruntime, tflite_micro, tvm  # noqa: F401  (the test extras are there)
import cloudpickle, psutil, tornado  # noqa: F401  (the [tune] extra: TVM's RPC tracker)
import matplotlib  # noqa: F401  (the [plot] extra: tvmc analyze --png)
import microtvm_api, tvmc_micro
here = pathlib.Path("client").resolve()
sys.exit(0 if pathlib.Path(tvmc_micro.__file__).resolve().is_relative_to(here) else 1)
PY
then
  echo "+ $PYTHON -m pip install -e .[test,tune]"
  "$PYTHON" -m pip install -q --disable-pip-version-check -e ".[test,tune]"
fi
