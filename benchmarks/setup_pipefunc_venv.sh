#!/usr/bin/env bash
# Create benchmarks/.venv-pipefunc with pipefunc from PyPI: the map/reduce baseline of
# benchmarks/fan_out.py. It lives in its own venv so that its dependencies (numpy, networkx...)
# never enter the repo's environment, and the benchmark runs it as a subprocess.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
venv="$here/.venv-pipefunc"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "pipefunc"
"$venv/bin/python" -c "import importlib.metadata as m; print('pipefunc venv ready:', m.version('pipefunc'))"
