#!/usr/bin/env bash
# Installs vaefrag and everything it needs on a fresh Debian machine with Python 3.10+.
#   bash scripts/install.sh          # the library, CLI and dashboard
#   bash scripts/install.sh --test   # ... plus the test requirements, Chromium and chromedriver
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [[ "${1:-}" == "--test" ]] && ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -q
  $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

# torch first, pinned to the CPU build; requirements.txt admits no newer torch
"$PY" -m pip install -q torch==2.13.0
if [[ "${1:-}" == "--test" ]]; then
  "$PY" -m pip install -q -r requirements-test.txt
else
  "$PY" -m pip install -q -r requirements.txt
fi
"$PY" -m pip install -q --no-deps -e .
