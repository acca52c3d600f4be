"""The recipe of the bundled default voice (myna/assets/default): train the "small" preset on a CPU.

    python scripts/train_default_voice.py sovits --corpus DIR --work DIR [--threads 2] [--max-steps N]
    python scripts/train_default_voice.py gpt    --corpus DIR --work DIR --snapshot STEP [--threads 1]
    python scripts/train_default_voice.py resynth --corpus DIR --work DIR --snapshot STEP [--clips 20]
    python scripts/train_default_voice.py posterior --corpus DIR --work DIR --snapshot STEP [--clips 20]
    python scripts/train_default_voice.py bundle --corpus DIR --work DIR --snapshot STEP [--out DIR] [--notice TEXT]

The corpus is a `myna data synth` folder (`myna data synth --utterances 100 --pseudo-speakers 16
--seed 0 OUT`). Same stages as `myna train --preset small`, arranged for small compute:

- sovits: features (computed once), then SoVITS with mel, KL and commitment losses plus the
  discriminator from step DISCRIMINATOR_START (0: from the start; 1.5 s a step instead of 0.9 s on
  2 cores). An earlier run trained mel-only until step 9,000 and stalled: of 30 held-out clips'
  words, 8.1% were heard at step 2,500, 12.2% at 5,000, 12.7% at 7,500 and 13.7% at 9,000, and
  its posterior decode (below) only rose above resynthesis once the discriminator had joined.
  The codebook and content projection learn for the first QUANTIZER_STEPS steps, then freeze, so
  the semantic tokens stop changing. Clips train on random 2-s windows (the preset's
  `crop_seconds`: the decoder only ever sees a 0.32-s slice, and whole clips made each step 2.3x
  slower). An inference snapshot is exported every SNAPSHOT_EVERY steps. Resumable: run it again
  with a higher --max-steps.
- gpt: semantic tokens from a frozen-codebook snapshot, then the GPT on them. It can run while
  `sovits` keeps training (one thread each on a 2-core machine): later snapshots give the same tokens.
- resynth: the SoVITS snapshot's word error rate on its own: clips of the held-out speakers are
  re-synthesised from their own semantic tokens, phonemes and timbre, then transcribed by Whisper
  tiny.en (the ceiling the GPT can reach with this decoder).
- posterior: the same clips decoded from their posterior mean by a training state (no tokens, no
  prior, no flow): the decoder's own ceiling. At steps 10,000-10,300 it heard 34-44% of 30 clips'
  words where resynth heard 12.5% (10,000): from there on the prior path (tokens and phonemes to
  the latent), not the vocoder, limits intelligibility.
- bundle: the GPT (its newest checkpoint while it still trains), a SoVITS snapshot and a reference
  clip of REFERENCE_SPEAKER as a default-voice folder (myna.engine.default_voice); the model card
  is written by hand next to it.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import torch

from myna.engine.default_voice import write_bundle
from myna.engine.loading import load_sovits
from myna.engine.precision import native_bf16
from myna.engine.voice_file import VoiceFile
from myna.train import loop, stages
from myna.train.dataset import MANIFEST_NAME, FeatureCache
from myna.train.export import export_gpt, export_sovits
from myna.train.features import FeatureModels, extract_features
from myna.train.presets import get_preset
from myna.train.sovits_trainer import SoVITSTrainer, render_item

QUANTIZER_STEPS = 400
DISCRIMINATOR_START = 0
SNAPSHOT_EVERY = 250
REFERENCE_SPEAKER = "festival-slt-hts"
PRESET = get_preset("small")
# bf16 autocast where the CPU runs it natively (1.8x faster SoVITS steps); emulated bf16 is 7x slower than fp32
PRECISION = "bf16" if native_bf16("cpu") else "fp32"
SOVITS_SETTINGS = replace(PRESET.sovits_train, epochs=60, save_every_steps=100, seed=1234, precision=PRECISION,
                          discriminator_start_step=DISCRIMINATOR_START, quantizer_steps=QUANTIZER_STEPS)
GPT_SETTINGS = replace(PRESET.gpt_train, epochs=60, save_every_steps=250, seed=1234, warmup_steps=200,
                       precision=PRECISION)
RECORD = {"myna": PRESET.encoder_record()}


def snapshot_path(snapshots: Path, step: int) -> Path:
    """Where the SoVITS inference snapshot of `step` is written."""
    return snapshots / f"sovits_{step:06d}.pth"


def feature_models(sovits: Path | None = None) -> FeatureModels:
    """The preset's content and speaker encoders (and a SoVITS for semantic tokens)."""
    return FeatureModels(None, sovits, device="cpu", content=PRESET.content, speaker=PRESET.speaker,
                         version=PRESET.sovits.version)


def train_sovits(corpus: Path, work: Path, snapshots: Path, max_steps: int) -> None:
    """Features (once), then SoVITS up to `max_steps`, exporting snapshots on the way."""
    if not (work / "features" / MANIFEST_NAME).is_file():  # later the gpt stage owns the manifest (it adds tokens)
        extract_features(corpus / "corpus.list", work / "features", feature_models(), progress=True)
    settings = replace(SOVITS_SETTINGS, max_steps=max_steps)
    out = work / "sovits"
    out.mkdir(parents=True, exist_ok=True)
    settings.save(out / "train_config.json")
    (out / "model_config.json").write_text(json.dumps(PRESET.sovits.to_dict(), indent=2) + "\n")
    items = stages.sovits_items(FeatureCache.open(work / "features"))
    trainer = SoVITSTrainer(PRESET.sovits, settings, sample_item=items[0])
    snapshots.mkdir(parents=True, exist_ok=True)

    def on_step(step: int) -> None:
        if step % SNAPSHOT_EVERY == 0 or step == QUANTIZER_STEPS:
            trainer.generator.eval()
            export_sovits(trainer.generator, snapshot_path(snapshots, step),
                          f"default voice: small preset, SoVITS step {step}", RECORD, safetensors=True)
            trainer.generator.train()

    loop.run(trainer, items, settings, out, "SoVITS", progress=sys.stderr, on_step=on_step)


def train_gpt(corpus: Path, work: Path, snapshots: Path, step: int) -> None:
    """Semantic tokens from snapshot `step` (after the codebook froze), then the GPT."""
    if step < QUANTIZER_STEPS:
        raise SystemExit(f"snapshot {step} predates the frozen codebook (step {QUANTIZER_STEPS})")
    snapshot = snapshot_path(snapshots, step)
    extract_features(corpus / "corpus.list", work / "features", feature_models(snapshot), progress=True)
    cache = FeatureCache.open(work / "features")
    sovits = load_sovits(snapshot).eval()
    gpt = stages.train_gpt(None, PRESET.gpt, stages.gpt_items(cache, PRESET.gpt.max_sec), GPT_SETTINGS, work / "gpt",
                           sys.stderr, sovits)
    export_gpt(gpt, work / "gpt" / "default_s1.ckpt", "default voice: small preset GPT", RECORD, GPT_SETTINGS.to_dict(),
               safetensors=True)


def _voice_quality():
    """benchmarks/voice_quality.py as a module (its WER helpers)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("voice_quality", Path(__file__).resolve().parents[1]
                                                  / "benchmarks" / "voice_quality.py")
    voice_quality = importlib.util.module_from_spec(spec)
    sys.modules["voice_quality"] = voice_quality  # its dataclasses look their module up
    spec.loader.exec_module(voice_quality)
    return voice_quality


def _heldout_wer(corpus: Path, work: Path, tokens_from: Path | None, clips: int, render, label: str) -> float:
    """Transcribe `render(item)` for `clips` held-out clips; print and return the WER (see the module doc).

    `tokens_from`: the SoVITS snapshot whose semantic tokens the features carry (None: no tokens needed)."""
    import jiwer

    from myna.audio.io import resample_soxr
    from myna.features.asr import Transcriber
    from myna.train.listfile import read_list

    voice_quality = _voice_quality()
    entries = read_list(corpus / "heldout_speakers.list")[0]
    picked = entries[:: max(1, len(entries) // clips)][:clips]
    extract_features(picked, work / "heldout_features", feature_models(tokens_from), progress=False)
    rate = PRESET.sovits.sampling_rate
    asr = Transcriber()
    texts, heard, originals = [], [], []
    items = stages.sovits_items(FeatureCache.open(work / "heldout_features"))
    for utt, item in zip(items.utterances, items, strict=True):
        texts.append(utt.record["text"])
        heard.append(asr.transcribe(resample_soxr(render(item), rate, 16000), "en")[0])
        originals.append(asr.transcribe(resample_soxr(item["wav"].numpy(), rate, 16000), "en")[0])
    for text, got in list(zip(texts, heard, strict=True))[:3]:
        print(f"  {text!r} -> {got!r}")
    wer = voice_quality.word_error_rate(texts, heard)
    words = jiwer.process_words([voice_quality.normalize_words(t) for t in texts],
                                [voice_quality.normalize_words(h) or "-" for h in heard])
    print(f"{label}: WER {wer:.3f} over {len(texts)} held-out clips, "
          f"{words.hits / (words.hits + words.substitutions + words.deletions):.1%} of the words heard "
          f"(the original clips: WER {voice_quality.word_error_rate(texts, originals):.3f})")
    return wer


def resynthesis_wer(corpus: Path, work: Path, snapshots: Path, step: int, clips: int) -> float:
    """WER of held-out speakers' clips decoded from their own tokens by snapshot `step` (see the module doc).

    Each clip is re-synthesised as the SoVITS trainer renders its samples (`render_item`)."""
    snapshot = snapshot_path(snapshots, step)
    model = load_sovits(snapshot).eval()
    return _heldout_wer(corpus, work, snapshot, clips, lambda item: render_item(model, item, torch.device("cpu")),
                        f"SoVITS step {step}: resynthesis")


def posterior_wer(corpus: Path, work: Path, snapshots: Path, step: int, clips: int) -> float:
    """WER of held-out clips decoded from their posterior mean by the training state of `step` (no tokens, no prior).

    The decoder's ceiling: compared with `resynthesis_wer`, it tells the vocoder's share of the errors
    from the prior path's. Needs that step's training state (the newest two are kept)."""
    from myna.audio.spectrogram import linear_spectrogram
    from myna.models.sovits import SoVITS

    state = work / "sovits" / "checkpoints" / f"state_{step:08d}.pt"
    if not state.is_file():
        kept = ", ".join(p.stem for p in loop.checkpoint_paths(work / "sovits")) or "none"
        raise SystemExit(f"no training state for step {step} in {state.parent} (kept: {kept})")
    model = SoVITS(PRESET.sovits, with_posterior=True)
    model.load_state_dict(torch.load(state, map_location="cpu", weights_only=True)["stage"]["generator"])
    model.eval()
    c = model.config

    def render(item):
        spec = linear_spectrogram(item["wav"].float(), c.filter_length, c.hop_length, c.win_length).reshape(1, c.spec_channels, -1)
        sv = item["sv_emb"].float().reshape(1, -1) if c.is_pro else None
        return model.reconstruct(spec, sv)[0, 0].numpy()

    return _heldout_wer(corpus, work, None, clips, render, f"SoVITS step {step}: posterior decode")


def reference_clip(corpus: Path) -> tuple[Path, str]:
    """The REFERENCE_SPEAKER clip closest to 6 s among its 4-8 s clips."""
    import soundfile

    from myna.train.listfile import read_list

    clips = [(abs(soundfile.info(e.audio).duration - 6.0), e.audio, e.text)
             for e in read_list(corpus / "corpus.list")[0] if e.speaker == REFERENCE_SPEAKER
             and 4.0 <= soundfile.info(e.audio).duration <= 8.0]
    if not clips:
        raise SystemExit(f"no 4-8 s clip of {REFERENCE_SPEAKER} in {corpus}")
    _, audio, text = min(clips)
    return Path(audio), text


def latest_gpt(work: Path) -> Path:
    """The finished GPT export, else one made from the newest GPT training checkpoint."""
    final = work / "gpt" / "default_s1.safetensors"
    if final.is_file():
        return final
    states = loop.checkpoint_paths(work / "gpt")
    if not states:
        raise SystemExit(f"no GPT trained yet in {work / 'gpt'}: run the gpt stage first")
    from myna.models.t2s import T2SModel

    saved = torch.load(states[-1], map_location="cpu", weights_only=True)
    model = T2SModel(PRESET.gpt)
    model.load_state_dict(saved["stage"]["model"])
    path = work / "gpt" / f"default_s1_step{int(saved['step']):06d}.safetensors"
    export_gpt(model.eval(), path.with_suffix(".ckpt"), f"default voice: small preset GPT, step {saved['step']}",
               RECORD, GPT_SETTINGS.to_dict(), safetensors=True)
    return path


def bundle(corpus: Path, work: Path, snapshots: Path, step: int, out: Path, notice: str | None = None) -> None:
    """Write the default-voice folder from snapshot `step` and the trained (or latest) GPT."""
    ref, text = reference_clip(corpus)
    voice = VoiceFile(gpt=latest_gpt(work), sovits=snapshot_path(snapshots, step).with_suffix(".safetensors"),
                      ref=ref, ref_text=text, ref_lang="en", name="default", version=PRESET.sovits.version,
                      encoders=PRESET.encoder_record())
    print(write_bundle(voice, out, "en", notice))


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and run one stage."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("sovits", "gpt", "resynth", "posterior", "bundle"))
    parser.add_argument("--corpus", type=Path, required=True, help="a `myna data synth` folder")
    parser.add_argument("--work", type=Path, required=True, help="training state (caches, checkpoints)")
    parser.add_argument("--snapshots", type=Path, help="SoVITS snapshots (default WORK/snapshots)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=4000, help="sovits: stop after this many steps in total")
    parser.add_argument("--snapshot", type=int, help="gpt, resynth, posterior, bundle: the SoVITS step to use")
    parser.add_argument("--clips", type=int, default=20, help="resynth, posterior: held-out clips to transcribe")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "src/myna/assets/default")
    parser.add_argument("--notice", help="bundle: a line `myna say` prints when it speaks with this voice")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    snapshots = args.snapshots or args.work / "snapshots"
    if args.stage == "sovits":
        train_sovits(args.corpus, args.work, snapshots, args.max_steps)
    elif args.snapshot is None:
        parser.error(f"{args.stage} needs --snapshot STEP")
    elif args.stage == "gpt":
        train_gpt(args.corpus, args.work, snapshots, args.snapshot)
    elif args.stage == "resynth":
        resynthesis_wer(args.corpus, args.work, snapshots, args.snapshot, args.clips)
    elif args.stage == "posterior":
        posterior_wer(args.corpus, args.work, snapshots, args.snapshot, args.clips)
    else:
        bundle(args.corpus, args.work, snapshots, args.snapshot, args.out, args.notice)


if __name__ == "__main__":
    main()
