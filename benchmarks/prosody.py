"""Control accuracy of myna's prosody features: pitch, volume, breaks, duration, emphasis, word timing.

    python benchmarks/prosody.py [--gpt G --sovits S --hubert H [--bert B] --ref CLIP --ref-text TEXT]

1. Effects on real speech (espeak-ng and flite recordings, resampled to 32 kHz): `--pitch +3` measured
   as the median per-frame F0 change (WORLD harvest, frames voiced before and after) and as the change
   of median F0; `--volume -6` as the BS.1770 integrated-loudness change (pyloudnorm).
2. The engine on generated speech. Without model files: the tiny random-weight test models (noise, not
   speech: lengths, gains and timing mechanics can be judged, F0 and alignment quality cannot). Prints the
   silence a `<break time="500ms"/>` inserts, the `--duration` error at 0.7x and 1.4x the natural length,
   the marked word's level change under `<emphasis>` (documented: strong +6 dB, moderate +3 dB), the
   `--volume -6` loudness change and `--pitch +3` F0 change of the output, and the word-timestamp error
   against a forced alignment of the same audio (faster-whisper word timestamps, bundled tiny.en;
   English only, and only meaningful with trained weights).
3. The emotion classifier's accuracy per language (benchmarks/emotion.py's evaluation set).
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyloudnorm
import soundfile
import soxr

ROOT = Path(__file__).resolve().parent.parent
RATE = 32000
SENTENCES = ["The quick brown fox jumps over the lazy dog near the river bank.",
             "Please call me back tomorrow morning before nine o'clock.",
             "Every summer we drove down to the coast to see our grandparents."]
TEXT = "Good morning, dear friends. The weather is fine today, so we walk to the park."


def f0_change(before: np.ndarray, after: np.ndarray, rate: int = RATE) -> tuple[float, float, float]:
    """(median per-frame semitone change, change of the median F0, share of frames voiced in both)."""
    import pyworld

    f0_a, _ = pyworld.harvest(before.astype(np.float64), rate)
    f0_b, _ = pyworld.harvest(after.astype(np.float64), rate)
    both = (f0_a > 0) & (f0_b > 0)
    if both.sum() < 5:
        return float("nan"), float("nan"), float(both.mean())
    per_frame = float(np.median(12 * np.log2(f0_b[both] / f0_a[both])))
    of_medians = float(12 * np.log2(np.median(f0_b[f0_b > 0]) / np.median(f0_a[f0_a > 0])))
    return per_frame, of_medians, float(both.mean())


def loudness(audio: np.ndarray, rate: int = RATE) -> float:
    """BS.1770 integrated loudness (LUFS)."""
    return float(pyloudnorm.Meter(rate).integrated_loudness(audio.astype(np.float64)))


def recordings(folder: Path) -> list[tuple[str, np.ndarray]]:
    """The sentences spoken by espeak-ng and flite (those installed), at 32 kHz."""
    out = []
    for index, sentence in enumerate(SENTENCES):
        for name, command in (("espeak-ng", ["espeak-ng", "-v", "en-us", "-w"]),
                              ("flite", ["flite", "-voice", "slt", "-t", sentence, "-o"])):
            if shutil.which(command[0]) is None:
                continue
            path = folder / f"{name}{index}.wav"
            args = [*command, str(path)] + ([sentence] if name == "espeak-ng" else [])
            subprocess.run(args, check=True, capture_output=True)
            audio, rate = soundfile.read(path, dtype="float32")
            out.append((f"{name}#{index}", soxr.resample(audio, rate, RATE).astype(np.float32)))
    return out


def real_speech_effects(folder: Path) -> None:
    from myna.audio.prosody import apply_gain, shift_pitch

    print("1. effects on real speech (espeak-ng, flite; 32 kHz)")
    print(f"   {'recording':<13}{'pitch +3: per-frame st':>24}{'median-F0 st':>14}{'volume -6: dB':>15}")
    per_frame, medians, gains = [], [], []
    for name, audio in recordings(folder):
        change, of_medians, _ = f0_change(audio, shift_pitch(audio, RATE, 3.0))
        gain = loudness(apply_gain(audio, -6.0)) - loudness(audio)
        per_frame.append(change)
        medians.append(of_medians)
        gains.append(gain)
        print(f"   {name:<13}{change:>24.2f}{of_medians:>14.2f}{gain:>15.2f}")
    if per_frame:
        print(f"   {'mean':<13}{np.mean(per_frame):>24.2f}{np.mean(medians):>14.2f}{np.mean(gains):>15.2f}"
              f"   (targets +3 +-0.3 st, -6 +-0.5 dB; worst pitch error {np.max(np.abs(np.subtract(per_frame, 3))):.2f}"
              f" st per-frame, {np.max(np.abs(np.subtract(medians, 3))):.2f} st of medians)")


def load_models(args, folder: Path):
    from myna.engine.loading import ModelPaths, load_synthesizer

    if args.gpt:
        paths = ModelPaths(args.gpt, args.sovits, args.hubert, args.bert, args.sv)
        synth = load_synthesizer(paths)
        return synth, synth.voice(args.ref, args.ref_text, args.ref_lang), "given models"
    spec = importlib.util.spec_from_file_location("tiny_voice", ROOT / "tests/engine/tiny_voice.py")
    kit = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(kit)
    from myna.models.sovits import SoVITS, SoVITSConfig
    from myna.models.t2s import T2SConfig, T2SModel

    gpt = {k: v.shape for k, v in T2SModel(T2SConfig.from_dict(kit.GPT_CONFIG)).state_dict().items()}
    sovits = {k: v.shape for k, v in SoVITS(SoVITSConfig.from_dict(kit.SOVITS_HPS)).state_dict().items()}
    files = kit.write_model_set(folder / "tiny", gpt, sovits)
    clip = kit.write_reference_clip(folder / "ref.wav", 4.2, 100)
    synth = load_synthesizer(ModelPaths(files["gpt"], files["sovits"], files["hubert"], files["bert"]))
    return synth, synth.voice(clip, "This is my reference voice.", "en"), "tiny random-weight test models"


def word_level(audio: np.ndarray, word, rate: int) -> float:
    """RMS level (dB) of a word, 30 ms in from each edge (past the gain ramps)."""
    part = audio[int((word.start + 0.03) * rate) : int((word.end - 0.03) * rate)].astype(np.float64)
    return float(10 * np.log10(np.mean(np.square(part)) + 1e-12))


def forced_alignment_error(speech) -> str:
    """Mean |start| and |end| error (ms) of myna's word times against faster-whisper's on the same audio."""
    from faster_whisper import WhisperModel

    from myna.features.asr import bundled_model_dir

    model = WhisperModel(str(bundled_model_dir()), device="cpu", compute_type="int8", local_files_only=True)
    audio16 = soxr.resample(speech.audio, speech.sampling_rate, 16000).astype(np.float32)
    segments, _ = model.transcribe(audio16, language="en", word_timestamps=True, beam_size=1)
    heard = [(re.sub(r"\W", "", w.word).lower(), w.start, w.end) for s in segments for w in (s.words or [])]
    ours = [(re.sub(r"\W", "", w.text).lower(), w.start, w.end) for w in speech.words]
    pairs, j = [], 0
    for text, start, end in ours:  # match words in order by their text
        for k in range(j, len(heard)):
            if heard[k][0] == text:
                pairs.append((start - heard[k][1], end - heard[k][2]))
                j = k + 1
                break
    if not pairs:
        return f"n/a (the aligner recognised {len(heard)} word(s) and none of the {len(ours)} spoken: no speech)"
    starts, ends = np.abs(np.array(pairs)).T * 1000
    return (f"{len(pairs)}/{len(ours)} words matched, mean |start| error {starts.mean():.0f} ms, "
            f"mean |end| error {ends.mean():.0f} ms")


def engine_controls(args, folder: Path) -> None:
    from myna.engine.options import SynthesisOptions

    synth, voice, what = load_models(args, folder)
    print(f"\n2. the engine on generated speech ({what})")

    def opts(**kw):
        return SynthesisOptions(**{"top_k": 1, "seed": 0, "noise_scale": 0.0, "max_tokens": args.max_tokens, **kw})

    doc = '<speak>Good morning, dear friends.<break time="{}"/>The weather is fine today.</speak>'
    zero = synth.speak(doc.format("0ms"), "en", voice, opts())
    half = synth.speak(doc.format("500ms"), "en", voice, opts())
    inserted = (len(half.audio) - len(zero.audio)) / synth.sampling_rate * 1000
    print(f"   break 500ms: inserts {inserted:.1f} ms (target 500 +-20)")

    natural = synth.speak(TEXT, "en", voice, opts())
    for factor in (0.7, 1.4):
        target = round(natural.seconds * factor, 2)
        started = time.perf_counter()
        fitted = synth.speak(TEXT, "en", voice, opts(duration=target))
        error = (fitted.seconds - target) / target * 100
        print(f"   duration {target:.2f} s ({factor}x natural {natural.seconds:.2f} s): got {fitted.seconds:.4f} s, "
              f"error {error:+.3f}% (target within 3%), {time.perf_counter() - started:.1f} s")

    marked = '<speak>The weather is <emphasis level="{}">fine</emphasis> today.</speak>'
    base = synth.speak(marked.format("none"), "en", voice, opts(volume=-12.0))
    plain_word = {w.text: w for w in base.words}["fine"]
    for level, documented in (("moderate", 3.0), ("strong", 6.0)):
        emphasized = synth.speak(marked.format(level), "en", voice, opts(volume=-12.0))
        word = {w.text: w for w in emphasized.words}["fine"]
        rise = word_level(emphasized.audio, word, RATE) - word_level(base.audio, plain_word, RATE)
        longer = (word.end - word.start) / (plain_word.end - plain_word.start)
        print(f"   emphasis {level}: marked word {rise:+.2f} dB (documented {documented:+.0f}), "
              f"{longer:.2f}x as long")

    quiet = synth.speak(TEXT, "en", voice, opts(volume=-6.0))
    print(f"   volume -6 on the output: {loudness(quiet.audio, synth.sampling_rate) - loudness(natural.audio, synth.sampling_rate):+.2f} dB BS.1770")
    high = synth.speak(TEXT, "en", voice, opts(pitch=3.0))
    change, of_medians, voiced = f0_change(natural.audio, high.audio, synth.sampling_rate)
    note = "" if voiced > 0.3 else "  (mostly unvoiced noise: not judgeable without trained weights)"
    print(f"   pitch +3 on the output: {change:+.2f} st per-frame, {of_medians:+.2f} st of medians, "
          f"{voiced:.0%} frames voiced{note}")
    words = [w.start for w in natural.words]
    monotonic = words == sorted(words) and all(w.end > w.start for w in natural.words)
    print(f"   word timing: {len(natural.words)} words, monotonic {monotonic}, last ends {natural.words[-1].end:.2f} s "
          f"of {natural.seconds:.2f} s")
    print(f"   word timing vs forced alignment (faster-whisper tiny.en): {forced_alignment_error(natural)}")


def emotion_accuracy() -> None:
    from myna.text.emotion import LABELS, classify
    from myna.text.emotion.evaluate import evaluate, load_examples

    examples = load_examples(ROOT / "benchmarks/data/emotion_eval.jsonl")
    report = evaluate(examples, lambda text, lang: classify(text, lang).label, LABELS)
    scores = "  ".join(f"{lang} {report.accuracy(lang):.3f}" for lang in ("zh", "en", "ja", "all"))
    print(f"\n3. emotion classifier accuracy (benchmarks/data/emotion_eval.jsonl): {scores}")


def main() -> None:
    """Run every measurement and print it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for flag in ("--gpt", "--sovits", "--hubert", "--bert", "--sv", "--ref", "--ref-text"):
        parser.add_argument(flag)
    parser.add_argument("--ref-lang", default="en")
    parser.add_argument("--max-tokens", type=int, default=60, help="semantic tokens per fragment at most")
    parser.add_argument("--skip-engine", action="store_true", help="only the real-speech effects and the classifier")
    args = parser.parse_args()
    if args.gpt and not (args.sovits and args.hubert and args.ref):
        sys.exit("give --sovits, --hubert and --ref with --gpt")
    with tempfile.TemporaryDirectory() as tmp:
        real_speech_effects(Path(tmp))
        if not args.skip_engine:
            engine_controls(args, Path(tmp))
    emotion_accuracy()


if __name__ == "__main__":
    main()
