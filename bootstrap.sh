#!/usr/bin/env bash
# Set up drawviz on a fresh machine: a virtualenv in .venv with everything the notebooks, reports
# and tests need, the venv's Jupyter kernel, and headless Chromium for the browser tests.
# Safe to run again; it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}

if [ ! -x .venv/bin/python ]; then
  echo "bootstrap: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
echo "bootstrap: installing drawviz and its dependencies (torch is large: about 1-2 minutes the first time)"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[notebooks,test]" 2>&1 \
  | grep -vE "^WARNING: Location .* is ignored" || true
.venv/bin/python -c "import drawviz, torch, torchvision, papermill, ipywidgets" \
  || { echo "bootstrap: the install did not complete; see the pip output above" >&2; exit 1; }
# The notebooks ask for kernel "python3": make it this venv's interpreter.
.venv/bin/python -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (drawviz)" >/dev/null

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing Debian's headless Chromium for the browser tests"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
      || echo "bootstrap: could not install chromium; browser tests will fail until it is installed" >&2
  else
    echo "bootstrap: chromium not found; the browser tests need it (Debian: sudo apt-get install chromium)" >&2
  fi
fi
echo "bootstrap: ready"
