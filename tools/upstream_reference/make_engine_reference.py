"""Regenerate tests/engine/data/engine_upstream.json with upstream GPT-SoVITS's `TTS.run`.

    WORKDIR/venv/bin/python tools/upstream_reference/make_engine_reference.py WORKDIR [--out DIR]

Writes the tiny model set and reference clips of tests/engine/tiny_voice.py into a temporary folder
(shapes from upstream's own classes), loads them with upstream's `TTS` (CPU, fp32, v2) and runs each
case of the committed file the way api_v2 runs a request: batch size 1, parallel_infer,
split_bucket, fragment_interval 0.3, one thread. `TTS.run` cannot set SoVITS's noise scale, so the
case's `noise_scale` is passed to `SynthesizerTrn.decode` (0 for RNG-free comparisons). Recorded
per case: the prompt's semantic tokens, the semantic tokens of every fragment in the order upstream
decodes them, and the float waveform before its int16 conversion (length, every `stride`-th sample
with stride = length // 400, sum and absolute sum). To add a case, add its input fields (name, text,
lang, ref_text, ref_lang, top_k, seed, noise_scale, split; optionally top_p, temperature, speed and
ref, the clip's index) to the committed file and run again.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import tempfile
from pathlib import Path

import upstream

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "engine" / "data"
INPUTS = ("name", "text", "lang", "ref_text", "ref_lang", "top_k", "top_p", "temperature", "seed", "noise_scale",
          "split", "speed", "ref")
SAMPLES_KEPT = 400
SUM_THREADS = 2


def load_tiny_voice():
    spec = importlib.util.spec_from_file_location("tiny_voice", REPO / "tests" / "engine" / "tiny_voice.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_files(kit, root: Path) -> tuple[dict, list[Path]]:
    """The tiny model set and clips, with the state-dict shapes of upstream's GPT and SoVITS (no enc_q)."""
    import torch
    from AR.models.t2s_model import Text2SemanticDecoder
    from module.models import SynthesizerTrn

    with torch.device("meta"):
        gpt = Text2SemanticDecoder(config=kit.GPT_CONFIG, top_k=3)
        hps = kit.SOVITS_HPS
        sovits = SynthesizerTrn(hps["data"]["filter_length"] // 2 + 1,
                                hps["train"]["segment_size"] // hps["data"]["hop_length"],
                                n_speakers=hps["data"]["n_speakers"], **hps["model"])
    gpt_shapes = {k: v.shape for k, v in gpt.state_dict().items()}
    sovits_shapes = {k: v.shape for k, v in sovits.state_dict().items() if not k.startswith("enc_q.")}
    files = kit.write_model_set(root / "models", gpt_shapes, sovits_shapes)
    clips = [kit.write_reference_clip(root / f"ref{i}.wav", s, 100 + i) for i, s in enumerate(kit.REFERENCE_SECONDS)]
    return files, clips


def load_tts(files: dict, root: Path):
    import yaml
    from TTS_infer_pack.TTS import TTS

    config = root / "tts_infer.yaml"  # TTS rewrites its config file: a private copy
    config.write_text(yaml.safe_dump({"custom": {
        "device": "cpu", "is_half": False, "version": "v2", "t2s_weights_path": str(files["gpt"]),
        "vits_weights_path": str(files["sovits"]), "cnhuhbert_base_path": str(files["hubert"]),
        "bert_base_path": str(files["bert"])}}))
    return TTS(str(config))


def synthesize(tts, clips: list[Path], case: dict):
    """One api_v2-style request: the fragments' semantic tokens and the float waveform upstream returned."""
    import numpy as np
    import torch
    from module import models

    decode, postprocess, to_cpu = models.SynthesizerTrn.decode, tts.audio_postprocess, torch.Tensor.cpu
    tokens, handed_over = [], []

    def recording_decode(self, codes, text, refer, noise_scale=0.5, speed=1, sv_emb=None):
        tokens.append(codes[0, 0].tolist())
        return decode(self, codes, text, refer, noise_scale=case["noise_scale"], speed=speed, sv_emb=sv_emb)

    def recording_cpu(tensor, *args, **kwargs):
        handed_over.append(tensor.detach().clone())
        return to_cpu(tensor, *args, **kwargs)

    def recording_postprocess(*args, **kwargs):
        # the float waveform is the last tensor audio_postprocess moves to the CPU (to make int16 of it)
        torch.Tensor.cpu = recording_cpu
        try:
            return postprocess(*args, **kwargs)
        finally:
            torch.Tensor.cpu = to_cpu

    request = {"text": case["text"], "text_lang": case["lang"], "ref_audio_path": str(clips[case.get("ref", 0)]),
               "prompt_text": case["ref_text"] or "", "prompt_lang": case["ref_lang"], "top_k": case["top_k"],
               "top_p": case.get("top_p", 1.0), "temperature": case.get("temperature", 1.0),
               "repetition_penalty": 1.35, "speed_factor": case.get("speed", 1.0), "seed": case["seed"],
               "text_split_method": case["split"], "batch_size": 1, "batch_threshold": 0.75, "split_bucket": True,
               "fragment_interval": 0.3, "parallel_infer": True, "return_fragment": False, "streaming_mode": False,
               "super_sampling": False, "sample_steps": 32, "aux_ref_audio_paths": []}
    models.SynthesizerTrn.decode, tts.audio_postprocess = recording_decode, recording_postprocess
    try:
        _, int16 = next(tts.run(request))
    finally:
        models.SynthesizerTrn.decode, tts.audio_postprocess = decode, postprocess
    wave = handed_over[-1].float().numpy()
    if not np.array_equal((wave * 32768).astype(np.int16), int16):
        raise SystemExit(f"case {case['name']}: the recorded float waveform is not the one upstream returned")
    return tokens, wave


def run_case(tts, clips: list[Path], case: dict) -> dict:
    """The recorded fields of one case."""
    tokens, wave = synthesize(tts, clips, case)
    stride = wave.size // SAMPLES_KEPT
    return {"tokens": tokens, "prompt_semantic": tts.prompt_cache["prompt_semantic"].tolist(),
            "samples": int(wave.size), "stride": stride, "every_stride": wave[::stride].tolist(),
            **sums(wave)}


def sums(wave) -> dict:
    """Sum and absolute sum in float64, added up by torch on two threads as the committed file was (the
    last digits depend on the order of the additions; the tests compare to 1e-4 of the value)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(SUM_THREADS)
    try:
        values = torch.from_numpy(wave).double()
        return {"sum": float(values.sum()), "abs_sum": float(values.abs().sum())}
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="upstream workdir (gsv/, venv/, pylib/, nltk_data/)")
    parser.add_argument("--out", type=Path, help="write here instead of over the committed file")
    args = parser.parse_args()
    out = (args.out / "engine_upstream.json") if args.out else DATA / "engine_upstream.json"
    upstream.enter(args.workdir)
    import torch

    torch.set_num_threads(1)
    kit = load_tiny_voice()
    upstream.front_end()  # g2pW off, NN tags: the same text front-end as the text reference data
    committed = json.loads((DATA / "engine_upstream.json").read_text(encoding="utf-8"))
    with tempfile.TemporaryDirectory(prefix="engine-reference-") as folder, upstream.quiet():
        files, clips = write_files(kit, Path(folder))
        tts = load_tts(files, Path(folder))
        cases = []
        for case in committed["cases"]:
            given = {key: case[key] for key in INPUTS if key in case}
            cases.append({**given, **run_case(tts, clips, given)})
    text = json.dumps({"upstream_commit": upstream.UPSTREAM_COMMIT, "cases": cases})
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    same = text.encode("utf-8") == (DATA / "engine_upstream.json").read_bytes()
    print(f"{out}: {'identical to' if same else 'differs from'} the committed file")


if __name__ == "__main__":
    main()
