#!/usr/bin/env bash
# Set up myna for development on a fresh Debian machine: system packages, then a virtual
# environment in .venv with myna installed in editable mode (with its test tools).
# Idempotent: re-running only installs what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages myna needs beyond Python 3.11 with venv and a C compiler.
APT_PACKAGES=(redis-server)  # redis-server: started by the result-cache tests on a loopback port
# ffmpeg: decodes m4a/AAC (and whatever libsndfile cannot) for `myna data prepare`;
# espeak-ng: synthetic speech for the dataset-preparation tests
APT_PACKAGES+=(ffmpeg espeak-ng)
# flite, festival + festvox voices, rubberband-cli: `myna data synth` (the default voice's training corpus)
APT_PACKAGES+=(flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k rubberband-cli)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# torch first and alone, pinned: an unpinned torch resolves to the multi-GB CUDA build.
.venv/bin/python -c 'import torch' 2>/dev/null || .venv/bin/pip install -q "torch==2.13.0"
.venv/bin/pip install -q -e ".[dev]"
.venv/bin/python -c 'import torch, myna; assert torch.version.cuda is None, "a CUDA torch was installed"'
echo "myna is set up in .venv ($(.venv/bin/myna --myna-version))"
