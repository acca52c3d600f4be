"""Regenerate tests/models/data/sovits_upstream.json, sovits_keys.json and
tests/audio/data/spectrogram_upstream.json with upstream GPT-SoVITS's SoVITS.

    WORKDIR/venv/bin/python tools/upstream_reference/make_sovits_reference.py WORKDIR [--out DIR]

One thread. For v1, v2, v2Pro and v2ProPlus: upstream's `module.models.SynthesizerTrn` built as
`TTS` builds it, from upstream's s2 configs with tests/models/sovits_fixtures.py's tiny widths and
seeded weights; recorded are `extract_latent` of the fixture's SSL features and fingerprints
(`sovits_fixtures.summarize`) of `decode` with noise 0 and one reference, two references, speed 0.7
and 1.3, and noise 0.6 after `torch.manual_seed(1234)` (upstream draws the noise from the global
RNG). sovits_keys.json: state-dict key -> shape without `enc_q.*` (inference files leave the
posterior encoder out) for the tiny and the full configs; `v2/full` whole, every other entry as
the keys `removed` from its `base` plus the `shapes` it changes or adds.
spectrogram_upstream.json: `module.mel_processing.spectrogram_torch` (2048/32000/640/2048,
center=False) on `sovits_fixtures.spectrogram_input` clips of the committed cases' lengths and peaks.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import upstream
from make_t2s_reference import load_fixtures

REPO = Path(__file__).resolve().parents[2]
MODELS = REPO / "tests" / "models" / "data"
AUDIO = REPO / "tests" / "audio" / "data"
CONFIGS = {"v1": "s2.json", "v2": "s2.json", "v2Pro": "s2v2Pro.json", "v2ProPlus": "s2v2ProPlus.json"}
KEY_BASES = {"v2/full": None, "v1/full": "v2/full", "v2Pro/full": "v2/full", "v2ProPlus/full": "v2Pro/full",
             "v2/tiny": "v2/full", "v1/tiny": "v2/tiny", "v2Pro/tiny": "v2/tiny", "v2ProPlus/tiny": "v2Pro/tiny"}


def build(fx, version: str, tiny: bool):
    """Upstream's SynthesizerTrn for `version`, constructed as TTS.init_vits_weights does."""
    from module.models import SynthesizerTrn

    base = json.loads(Path("GPT_SoVITS/configs", CONFIGS[version]).read_text(encoding="utf-8"))
    hps = fx.upstream_hps(base, version, tiny=tiny)
    data = hps["data"]
    return SynthesizerTrn(data["filter_length"] // 2 + 1, hps["train"]["segment_size"] // data["hop_length"],
                          n_speakers=data["n_speakers"], **hps["model"]).eval()


def inference_shapes(model) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items() if not k.startswith("enc_q.")}


def decode_cases(fx, model, version: str) -> dict:
    import torch

    x = fx.tiny_inputs(version)
    pro = version in ("v2Pro", "v2ProPlus")
    one = x["sv_a"] if pro else None
    two = [x["sv_a"], x["sv_b"]] if pro else None
    with torch.no_grad():
        result = {"codes": model.extract_latent(x["ssl"]).tolist()}
        result["decode"] = fx.summarize(model.decode(x["codes"], x["phones"], x["refer_a"], noise_scale=0.0,
                                                     sv_emb=one))
        result["decode_two_refs"] = fx.summarize(model.decode(x["codes"], x["phones"], [x["refer_a"], x["refer_b"]],
                                                              noise_scale=0.0, sv_emb=two))
        for speed in (0.7, 1.3):
            result[f"decode_speed_{speed}"] = fx.summarize(model.decode(
                x["codes"], x["phones"], x["refer_a"], noise_scale=0.0, speed=speed, sv_emb=one))
        torch.manual_seed(1234)
        result["decode_noise_0.6_seed_1234"] = fx.summarize(model.decode(
            x["codes"], x["phones"], x["refer_a"], noise_scale=0.6, sv_emb=one))
    return result


def keys_document(all_shapes: dict[str, dict[str, list[int]]]) -> str:
    """sovits_keys.json as committed: one entry per line group, one key per line."""
    entries = []
    for name, base in KEY_BASES.items():
        shapes = all_shapes[name]
        if base is None:
            head, changed = {}, shapes
        else:
            head = {"base": base, "removed": sorted(set(all_shapes[base]) - set(shapes))}
            changed = {k: v for k, v in shapes.items() if all_shapes[base].get(k) != v}
        lines = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in changed.items())
        opening = json.dumps(head)[:-1] + (", " if head else "") + '"shapes": {'
        entries.append(f"{json.dumps(name)}: {opening}\n{lines}}}}}")
    return "{\n" + ",\n".join(entries) + "\n}\n"


def spectrogram_cases(fx, committed: list[dict]) -> list[dict]:
    import torch
    from module.mel_processing import spectrogram_torch

    cases = []
    for case in committed:
        wave = fx.spectrogram_input(case["seconds"], case["peak"])
        with torch.no_grad():
            spec = spectrogram_torch(wave, 2048, 32000, 640, 2048, center=False)
        cases.append({"seconds": case["seconds"], "peak": case["peak"], "shape": list(spec.shape),
                      **fx.summarize_spectrogram(spec)})
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="upstream workdir (gsv/, venv/, pylib/, nltk_data/)")
    parser.add_argument("--out", type=Path, help="write all three files here instead of over the committed ones")
    args = parser.parse_args()
    upstream.enter(args.workdir)
    import torch

    torch.set_num_threads(1)
    fx = load_fixtures("sovits_fixtures")
    cases, all_shapes = {}, {}
    with upstream.quiet():
        for version in fx.TINY_VERSIONS:
            torch.manual_seed(0)
            model = build(fx, version, tiny=True)
            all_shapes[f"{version}/tiny"] = inference_shapes(model)
            model.load_state_dict(fx.tiny_weights(all_shapes[f"{version}/tiny"]), strict=False)
            cases[version] = decode_cases(fx, model, version)
            with torch.device("meta"):
                all_shapes[f"{version}/full"] = inference_shapes(build(fx, version, tiny=False))
        committed = json.loads((AUDIO / "spectrogram_upstream.json").read_text(encoding="utf-8"))["cases"]
        spectrograms = spectrogram_cases(fx, committed)
    outputs = {
        MODELS / "sovits_upstream.json": json.dumps({"upstream_commit": upstream.UPSTREAM_COMMIT, "cases": cases}) + "\n",
        MODELS / "sovits_keys.json": keys_document(all_shapes),
        AUDIO / "spectrogram_upstream.json": json.dumps({"upstream_commit": upstream.UPSTREAM_COMMIT,
                                                         "cases": spectrograms}) + "\n",
    }
    for committed_path, text in outputs.items():
        target = (args.out / committed_path.name) if args.out else committed_path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        same = text.encode("utf-8") == committed_path.read_bytes()
        print(f"{target}: {'identical to' if same else 'differs from'} the committed file")


if __name__ == "__main__":
    main()
