#!/usr/bin/env bash
# Create .venv (if needed) and install the pinned dependency set and the four packages, editable.
# Idempotent: a second call only checks. torch is pinned to the 2.13.0 CPU wheel by the lock file.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.deception-installed
want=$(cat constraints/requirements-lock.txt packages/*/pyproject.toml examples/*/pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
.venv/bin/python -m pip install -q --upgrade pip 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q -r constraints/requirements-lock.txt 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip install -q --no-deps \
  -e packages/deception-core -e packages/deception-scenarios \
  -e packages/deception-probes -e packages/deception-causal 2>&1 | grep -v "is ignored" || true
.venv/bin/python -m pip check
.venv/bin/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else f'torch {v} is not the pinned 2.13.0')"
if .venv/bin/python -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "CUDA wheels were installed; the lock file must pin torch==2.13.0" >&2; exit 1
fi
echo "$want" > "$stamp"
