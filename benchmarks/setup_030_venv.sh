#!/usr/bin/env bash
# Create benchmarks/.venv-0.3.0 with wave-executor 0.3.0 from PyPI: the baseline release
# that the benchmarks compare against. It lives in its own venv so that it can never shadow
# (or be shadowed by) the repo's own wave_executor package.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
python="${PYTHON:-python3}"
venv="$here/.venv-0.3.0"
if [ ! -x "$venv/bin/python" ]; then
    "$python" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check "wave-executor==0.3.0"
"$venv/bin/python" -c "import importlib.metadata as m; print('0.3.0 venv ready:', m.version('wave-executor'))"
