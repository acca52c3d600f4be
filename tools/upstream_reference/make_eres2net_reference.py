"""Regenerate the speaker-verification reference data with upstream GPT-SoVITS's ERes2NetV2:
tests/models/data/eres2net_upstream.json and eres2net_keys.json, tests/audio/data/fbank_upstream.json
and tests/features/data/speaker_upstream.json.

    WORKDIR/venv/bin/python tools/upstream_reference/make_eres2net_reference.py WORKDIR [--out DIR]

One thread, fp32, through upstream's `sv` module (its `SV.compute_embedding3` and `kaldi.fbank`):
- eres2net_keys.json: `ERes2NetV2` state-dict keys -> shapes, in order; `full` as `sv.py` builds it
  (baseWidth 24, scale 4, expansion 4), `tiny` the same with m_channels 8;
- eres2net_upstream.json: the tiny model with tests/models/eres2net_fixtures.py's seeded weights,
  `forward3` (GPT-SoVITS's sv_emb path) and `forward` (192-dim head) on `sample_fbank()`;
- fbank_upstream.json: `kaldi.fbank` with sv.py's options (80 bins, 16 kHz, dither 0) on the committed
  input clips (cut from `sample_audio`, stored whole), checked bit-equal to torchaudio's Kaldi
  fbank, plus sums over `sample_audio(2, 4000)` stacked row by row as sv.py does;
- speaker_upstream.json: `SV.compute_embedding3` with the full-size model holding the seeded
  weights, on `sample_audio(2, 4000)`; per row the sum, the absolute sum and every 13th value
  (9 significant digits).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import upstream
from make_t2s_reference import load_fixtures

REPO = Path(__file__).resolve().parents[2]
TARGETS = {"eres2net_upstream.json": REPO / "tests/models/data", "eres2net_keys.json": REPO / "tests/models/data",
           "fbank_upstream.json": REPO / "tests/audio/data", "speaker_upstream.json": REPO / "tests/features/data"}
SHORT_COMMIT = upstream.UPSTREAM_COMMIT[:7]
SPEAKER_STRIDE = 13


def nine_digits(values) -> list[float]:
    """Floats written with 9 significant digits, which give float32 values back exactly."""
    return [float(f"{v:.9g}") for v in values]


def seeded_model(sv, fx, config: dict):
    model = sv.ERes2NetV2(**config).eval()
    model.load_state_dict(fx.seeded_weights({k: v.shape for k, v in model.state_dict().items()}), strict=True)
    return model


def fbank(sv, wave):
    return sv.Kaldi.fbank(wave.unsqueeze(0), num_mel_bins=80, sample_frequency=16000, dither=0)


def fbank_cases(sv, fx, committed: dict) -> dict:
    import torch
    from torchaudio.compliance import kaldi as torchaudio_kaldi

    cases = {}
    for name, case in committed.items():
        if "input" not in case:
            continue
        wave = torch.tensor(case["input"], dtype=torch.float32)
        out = fbank(sv, wave)
        expected = torchaudio_kaldi.fbank(wave.unsqueeze(0), num_mel_bins=80, sample_frequency=16000, dither=0)
        if not torch.equal(out, expected):
            raise SystemExit(f"fbank case {name}: upstream's kaldi.fbank and torchaudio's differ")
        cases[name] = {"input": case["input"], "fbank": out.tolist()}
    batch = torch.stack([fbank(sv, row) for row in fx.sample_audio(2, 4000)])
    cases["sample_audio_2x4000"] = {"sum": batch.double().sum().item(), "abs_sum": batch.double().abs().sum().item(),
                                    "shape": list(batch.shape)}
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="upstream workdir (gsv/, venv/, pylib/, nltk_data/)")
    parser.add_argument("--out", type=Path, help="write all four files here instead of over the committed ones")
    args = parser.parse_args()
    upstream.enter(args.workdir)
    import torch

    torch.set_num_threads(1)
    fx = load_fixtures("eres2net_fixtures")
    with upstream.quiet():
        import sv

        keys = {"upstream": SHORT_COMMIT}
        for size, config in (("full", fx.FULL_MODEL), ("tiny", fx.TINY_MODEL)):
            with torch.device("meta"):
                keys[size] = {k: list(v.shape) for k, v in sv.ERes2NetV2(**config).state_dict().items()}
        tiny = seeded_model(sv, fx, fx.TINY_MODEL)
        with torch.no_grad():
            outputs = {"forward3": tiny.forward3(fx.sample_fbank()).tolist(),
                       "forward": tiny.forward(fx.sample_fbank()).tolist()}
        committed = json.loads((TARGETS["fbank_upstream.json"] / "fbank_upstream.json").read_text("utf-8"))
        with torch.no_grad():
            fbanks = fbank_cases(sv, fx, committed["cases"])
        verifier = sv.SV.__new__(sv.SV)  # SV() would load the released checkpoint; the seeded model instead
        verifier.embedding_model, verifier.is_half = seeded_model(sv, fx, fx.FULL_MODEL), False
        embeddings = verifier.compute_embedding3(fx.sample_audio(2, 4000))
    rows = [{"sum": row.double().sum().item(), "abs_sum": row.double().abs().sum().item(), "stride": SPEAKER_STRIDE,
             "values": nine_digits(row[::SPEAKER_STRIDE].tolist())} for row in embeddings]
    documents = {
        "eres2net_keys.json": keys,
        "eres2net_upstream.json": {"upstream": SHORT_COMMIT, "config": fx.TINY_MODEL, "input": "sample_fbank()",
                                   **outputs},
        "fbank_upstream.json": {"upstream": SHORT_COMMIT, "cases": fbanks},
        "speaker_upstream.json": {"upstream": SHORT_COMMIT, "config": fx.FULL_MODEL, "input": "sample_audio(2, 4000)",
                                  "shape": list(embeddings.shape), "rows": rows},
    }
    for name, document in documents.items():
        committed_path = TARGETS[name] / name
        target = (args.out / name) if args.out else committed_path
        text = json.dumps(document) + "\n"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        same = text.encode("utf-8") == committed_path.read_bytes()
        print(f"{target}: {'identical to' if same else 'differs from'} the committed file")


if __name__ == "__main__":
    main()
