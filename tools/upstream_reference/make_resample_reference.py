"""Regenerate tests/audio/data/resample_upstream.json with the resamplers upstream GPT-SoVITS calls.

    WORKDIR/venv/bin/python tools/upstream_reference/make_resample_reference.py WORKDIR [--out DIR]

`sinc`: torchaudio's `transforms.Resample(rate, target)`, which upstream's `TTS.resample` uses for
the reference spectrogram (to 32 kHz) and the speaker-verification input (to 16 kHz); `soxr`:
`librosa.resample(res_type="soxr_hq")`, what upstream's `librosa.load(path, sr=16000)` does to
the HuBERT input. Each case resamples the first `n` samples of a seeded signal; the rate pairs and
lengths are those of the committed file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import upstream

DATA = Path(__file__).resolve().parents[2] / "tests" / "audio" / "data"
SIGNAL = "x = torch.randn(1, 4410, generator=torch.Generator().manual_seed(0)) * 0.3; each case resamples x[:, :n]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="upstream workdir (gsv/, venv/, pylib/, nltk_data/)")
    parser.add_argument("--out", type=Path, help="write here instead of over the committed file")
    args = parser.parse_args()
    upstream.enter(args.workdir)
    import librosa
    import torch
    import torchaudio

    torch.set_num_threads(1)
    committed = json.loads((DATA / "resample_upstream.json").read_text(encoding="utf-8"))
    x = torch.randn(1, 4410, generator=torch.Generator().manual_seed(0)) * 0.3
    document = {"input": SIGNAL, "sinc": {}, "soxr": {}}
    for pair, case in committed["sinc"].items():
        rate, target = map(int, pair.split("-"))
        out = torchaudio.transforms.Resample(rate, target)(x[:, : case["n"]])[0]
        document["sinc"][pair] = {"n": case["n"], "out": out.tolist()}
    for pair, case in committed["soxr"].items():
        rate, target = map(int, pair.split("-"))
        out = librosa.resample(x[0, : case["n"]].numpy(), orig_sr=rate, target_sr=target, res_type="soxr_hq")
        document["soxr"][pair] = {"n": case["n"], "out": out.tolist()}
    text = json.dumps(document)
    target = (args.out / "resample_upstream.json") if args.out else DATA / "resample_upstream.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    same = text.encode("utf-8") == (DATA / "resample_upstream.json").read_bytes()
    print(f"{target}: {'identical to' if same else 'differs from'} the committed file")


if __name__ == "__main__":
    main()
