#!/usr/bin/env bash
# Set up myna for development on a fresh Debian machine: system packages, then a virtual
# environment in .venv with myna installed in editable mode, with its training and test extras.
# Idempotent: re-running only installs what is missing.
#
#   bash scripts/setup.sh            torch's CPU build (the default)
#   bash scripts/setup.sh --cuda     torch's CUDA build, for a machine with an NVIDIA GPU
#                                    (or MYNA_TORCH=cuda; MYNA_TORCH=cpu is the default)
# MYNA_TORCH_INDEX=URL installs torch from that package index instead (e.g. another CUDA version's).
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
TORCH_VARIANT=${MYNA_TORCH:-cpu}
for arg in "$@"; do
  case "$arg" in
    --cuda) TORCH_VARIANT=cuda ;;
    --cpu) TORCH_VARIANT=cpu ;;
    *) echo "usage: bash scripts/setup.sh [--cpu|--cuda]" >&2; exit 2 ;;
  esac
done
case "$TORCH_VARIANT" in
  cpu|cuda) ;;
  *) echo "MYNA_TORCH must be cpu or cuda, not '$TORCH_VARIANT'" >&2; exit 2 ;;
esac

# System packages myna needs beyond Python 3.11 with venv and a C compiler.
APT_PACKAGES=(redis-server)  # redis-server: started by the result-cache tests on a loopback port
# ffmpeg: decodes m4a/AAC (and whatever libsndfile cannot) for `myna data prepare`;
# espeak-ng: synthetic speech for the dataset-preparation tests
APT_PACKAGES+=(ffmpeg espeak-ng)
# flite, festival + festvox voices: `myna data synth` (the default voice's training corpus);
# rubberband-cli: pitch shifting at run time (--pitch, SSML prosody and emphasis) and pseudo-speakers in `data synth`
APT_PACKAGES+=(flite festival festvox-us-slt-hts festvox-kallpc16k festvox-kdlpc16k rubberband-cli)
# chromium + a font: the web page's end-to-end tests (Playwright drives this browser; none is downloaded)
APT_PACKAGES+=(chromium fonts-dejavu-core)
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
# torch first and alone, pinned, in the variant asked for. PyPI's Linux torch is the multi-GB CUDA
# build; the CPU build comes from PyTorch's CPU index, unless pip can already see one (a local wheel
# through pip's find-links on an offline machine, say), which is then used as it is.
torch_variant() { .venv/bin/python -c 'import torch; print("cuda" if torch.version.cuda else "cpu")' 2>/dev/null; }
installed=$(torch_variant || true)
if [ "$installed" != "$TORCH_VARIANT" ]; then
  [ -z "$installed" ] || .venv/bin/pip uninstall -q -y torch
  torch_args=("torch==$TORCH_VERSION")
  if [ -n "${MYNA_TORCH_INDEX:-}" ]; then
    torch_args+=(--index-url "$MYNA_TORCH_INDEX")
  elif [ "$TORCH_VARIANT" = cpu ] && \
       ! .venv/bin/pip install -q --dry-run --no-index --no-deps "torch==$TORCH_VERSION+cpu" >/dev/null 2>&1; then
    torch_args+=(--extra-index-url https://download.pytorch.org/whl/cpu)
  fi
  .venv/bin/pip install -q "${torch_args[@]}"
fi
.venv/bin/pip install -q -e ".[train,dev]"
if [ "$(torch_variant)" != "$TORCH_VARIANT" ]; then
  echo "torch's $(torch_variant) build is installed, not the $TORCH_VARIANT build asked for (MYNA_TORCH_INDEX picks" \
       "the index to install it from)" >&2
  exit 1
fi
echo "myna is set up in .venv ($(.venv/bin/myna --myna-version), torch $TORCH_VERSION $TORCH_VARIANT)"
