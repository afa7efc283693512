#!/usr/bin/env bash
# Create .venv (if needed) and install the pinned runtime set and the four packages, editable.
#
#   bash scripts/bootstrap.sh            # run the toolkit
#   bash scripts/bootstrap.sh --dev      # also the development tools (pytest, nox, ruff, ...), inspect-ai
#                                        # (the extra deception-core[inspect], for Inspect eval logs) and
#                                        # `transformers serve` (the serve extra: the --engine openai tests)
#   bash scripts/bootstrap.sh --cpu      # insist on the CPU build of torch (Linux laptop, CI)
#   bash scripts/bootstrap.sh --dry-run  # print which torch path this machine takes, install nothing
#
# torch, in this order:
#   1. the interpreter ($PYTHON, else python3) already has torch >= 2.6 with CUDA (a GPU pod's
#      PyTorch image): .venv sees it (--system-site-packages) and nothing is downloaded for torch;
#   2. --cpu: torch==2.13.0 CPU build, from the package index configured for pip plus PyTorch's
#      CPU index ($DECEPTION_TORCH_CPU_INDEX; empty for pip's configuration only); CUDA wheels
#      are refused. CI=true implies --dev and the same refusal, with pip's configuration only
#      (the project's machines hold the CPU wheel locally);
#   3. otherwise torch==2.13.0 from the standard index: the CUDA build on Linux x86_64 (a GPU
#      pod), the CPU/MPS build on macOS.
# Idempotent: a second call with the same lock files and flags only checks.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
dev=0 cpu=0 dry=0 index=0
[[ ${CI:-} == true ]] && dev=1 cpu=1
for arg in "$@"; do
  case $arg in
    --dev) dev=1 ;;
    --cpu) cpu=1 index=1 ;;
    --dry-run) dry=1 ;;
    *) echo "bootstrap.sh: unknown option $arg (use --dev, --cpu or --dry-run)" >&2; exit 2 ;;
  esac
done
CPU_INDEX=""
[[ $index == 1 ]] && CPU_INDEX=${DECEPTION_TORCH_CPU_INDEX-https://download.pytorch.org/whl/cpu}

# A torch the interpreter already has: reused when it is recent enough and has CUDA.
system_torch=$("$PY" - <<'EOF' 2>/dev/null || true
import torch
major, minor = (int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
if (major, minor) >= (2, 6) and torch.version.cuda:
    print(torch.__version__)
EOF
)
if [[ $cpu == 1 ]]; then
  path="cpu"
elif [[ -n $system_torch ]]; then
  path="reuse"
else
  path="pinned"
fi
case $path in
  reuse) echo "torch: reusing the interpreter's torch $system_torch (CUDA) through --system-site-packages" ;;
  cpu) echo "torch: 2.13.0, CPU build${CPU_INDEX:+ (extra index $CPU_INDEX)}; CUDA wheels refused" ;;
  pinned) echo "torch: 2.13.0 from the standard index ($(uname -s) $(uname -m))" ;;
esac
[[ $dry == 1 ]] && exit 0

if [[ ! -x .venv/bin/python ]]; then
  if [[ $path == reuse ]]; then
    "$PY" -m venv --system-site-packages .venv
  else
    "$PY" -m venv .venv
  fi
fi
stamp=.venv/.deception-installed
locks=(constraints/requirements-lock.txt)
[[ $dev == 1 ]] && locks+=(constraints/dev-lock.txt)
want=$( (cat "${locks[@]}" packages/*/pyproject.toml examples/*/pyproject.toml 2>/dev/null; echo "$path") | sha256sum | cut -c1-16)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi
quiet() { grep -v "is ignored" || true; }
pip=(.venv/bin/python -m pip install -q)
"${pip[@]}" --upgrade pip 2>&1 | quiet
requirements=()
for lock in "${locks[@]}"; do requirements+=(-r "$lock"); done
if [[ $path == reuse ]]; then
  # keep the image's torch: drop the pin and hold torch at the installed version
  held=$(mktemp)
  trap 'rm -f "$held" "$held.req"' EXIT
  grep -v '^torch==' constraints/requirements-lock.txt > "$held.req"
  echo "torch==$system_torch" > "$held"
  requirements=(-r "$held.req" -c "$held")
  [[ $dev == 1 ]] && requirements+=(-r constraints/dev-lock.txt)
elif [[ $path == cpu && -n $CPU_INDEX ]]; then
  requirements+=(--extra-index-url "$CPU_INDEX")
fi
"${pip[@]}" "${requirements[@]}" 2>&1 | quiet
"${pip[@]}" --no-deps \
  -e packages/deception-core -e packages/deception-scenarios \
  -e packages/deception-probes -e packages/deception-causal 2>&1 | quiet
.venv/bin/python -m pip check
if [[ $path == reuse ]]; then
  .venv/bin/python -c "import torch, sys; sys.exit(0 if torch.version.cuda else 'the reused torch lost CUDA')"
else
  .venv/bin/python -c "import torch, sys; v = torch.__version__; sys.exit(0 if v.startswith('2.13.0') else f'torch {v} is not the pinned 2.13.0')"
fi
if [[ $path == cpu ]] && .venv/bin/python -m pip list 2>/dev/null | grep -qi '^nvidia-'; then
  echo "CUDA wheels were installed although the CPU build was asked for (--cpu or CI=true);" \
       "check that pip resolves torch==2.13.0 to a +cpu wheel" >&2
  exit 1
fi
echo "$want" > "$stamp"
