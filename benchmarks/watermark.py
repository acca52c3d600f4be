"""Watermark robustness, false positives, inaudibility and cost: myna's mark, and resemble-perth's when installed.

    python benchmarks/watermark.py [--clips 200] [--clean 300] [--engine] [--candidates myna,perth]
    python benchmarks/watermark.py --quick          # a few clips, a few attacks: seconds

Speech comes from the installed flite, festival and espeak-ng voices (`myna.train.synth`), two
sentences per clip (4-15 s), rendered once into `--cache` (default ~/.cache/myna/watermark-bench)
and resampled to 32 kHz, the models' rate; `--wav-dir DIR` adds recordings of your own to the clean
set. Marked clips carry a random 32-bit payload each; clean clips are other sentences.

Prints one row per attack: detection rate on the marked clips, exact payloads (CRC checked) and
payload bit accuracy (the decoder's best guess, checked or not), and false positives on the same
attack applied to the clean clips (`--fp-attacks`: by default whole clips and 3 s excerpts). Attacks: MP3 64 kbps, AAC 96 kbps, Opus 32 kbps (ffmpeg), resampling
to 16 kHz and back, +-6 dB (clipped at full scale), white noise at 20 dB SNR, a 3 s excerpt cut at a
random point, and a stream marked in random chunks (0.01-0.6 s) and joined. Then PESQ (wide band)
and STOI of marked against clean audio at 16 kHz, and the cost: ms of CPU per second of audio to
embed and to detect, and for a first streamed chunk (10 semantic tokens, 0.4 s). `--engine` also
measures the engine's first streamed audio on full-size random weights (benchmarks/engine_stream.py)
to put that chunk's cost in proportion.

resemble-perth (`--candidates myna,perth`) needs `resemble-perth`, `librosa` and `setuptools<81` importable (e.g. a
side folder on PYTHONPATH): it is not a dependency of myna. torchaudio, which it imports for three
STFT transforms, has no build for torch 2.13, so this script gives it a stand-in made of torch.stft
when the real one does not load. Perth marks presence only (a score in [0, 1], threshold 0.5).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from myna.audio.io import resample_soxr
from myna.audio.watermark import PAYLOAD_BITS, Watermarker

RATE = 32000
EXCERPT_S = 3.0


# -- speech ------------------------------------------------------------------------------------

def render_clips(count: int, seed: int, cache: Path, voices: list[str] | None = None) -> list[np.ndarray]:
    """`count` two-sentence clips at RATE, rendered with the local TTS voices (cached as WAV files)."""
    from myna.train.synth.sentences import generate_sentences
    from myna.train.synth.voices import BASE_VOICES, VoiceUnavailable

    folder = cache / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    usable = []
    for name in voices or list(BASE_VOICES):
        try:
            BASE_VOICES[name].check()
            usable.append(BASE_VOICES[name])
        except VoiceUnavailable as exc:
            print(f"# skipping {exc}", file=sys.stderr)
    if not usable:
        raise SystemExit("no TTS voice is installed (flite, festival or espeak-ng)")
    sentences = generate_sentences(2 * count, seed=1000 + seed)
    clips = []
    for i in range(count):
        path = folder / f"{i:04d}.wav"
        if not path.is_file():
            voice = usable[i % len(usable)]
            audio, rate = voice.render(f"{sentences[2 * i]} {sentences[2 * i + 1]}")
            audio = resample_soxr(audio, rate, RATE)
            sf.write(path, audio / max(1e-6, float(np.abs(audio).max())) * 0.9, RATE, subtype="FLOAT")
        audio, _ = sf.read(path, dtype="float32")
        level = 0.3 + 0.65 * ((i * 7919) % 100) / 100  # clips at different levels, peaks 0.3-0.95
        clips.append((audio / 0.9 * level).astype(np.float32))
    return clips


def read_wav_dir(folder: Path) -> list[np.ndarray]:
    """Every readable audio file under `folder`, mono at RATE."""
    from myna.audio.decode import decode

    return [decode(path, RATE) for path in sorted(folder.rglob("*")) if path.suffix.lower() in (".wav", ".flac")]


# -- attacks -----------------------------------------------------------------------------------

def ffmpeg_roundtrip(audio: np.ndarray, args: list[str], suffix: str) -> np.ndarray:
    """Encode with ffmpeg and decode back to mono float32 at RATE."""
    with tempfile.TemporaryDirectory(prefix="myna-wm-") as tmp:
        source, coded = os.path.join(tmp, "in.wav"), os.path.join(tmp, "coded" + suffix)
        sf.write(source, audio, RATE, subtype="FLOAT")
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", source, *args, coded], check=True)
        done = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", coded, "-ac", "1", "-ar", str(RATE),
                               "-f", "f32le", "pipe:1"], check=True, capture_output=True)
    return np.frombuffer(done.stdout, dtype="<f4").copy()


def white_noise(audio: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    power = float(np.mean(audio.astype(np.float64) ** 2))
    noise = np.random.default_rng(seed).normal(0, np.sqrt(power / 10 ** (snr_db / 10)), len(audio))
    return (audio + noise).astype(np.float32)


def excerpt(audio: np.ndarray, seed: int) -> np.ndarray:
    size = int(EXCERPT_S * RATE)
    start = int(np.random.default_rng(seed).integers(0, max(1, len(audio) - size)))
    return audio[start : start + size]


ATTACKS = {
    "none": lambda a, s: a,
    "mp3_64k": lambda a, s: ffmpeg_roundtrip(a, ["-c:a", "libmp3lame", "-b:a", "64k"], ".mp3"),
    "aac_96k": lambda a, s: ffmpeg_roundtrip(a, ["-c:a", "aac", "-b:a", "96k"], ".m4a"),
    "opus_32k": lambda a, s: ffmpeg_roundtrip(a, ["-c:a", "libopus", "-b:a", "32k"], ".ogg"),
    "resample_16k": lambda a, s: resample_soxr(resample_soxr(a, RATE, 16000), 16000, RATE),
    "gain_+6dB": lambda a, s: np.clip(a * 2.0, -1.0, 1.0),
    "gain_-6dB": lambda a, s: a * 0.5,
    "noise_20dB": lambda a, s: white_noise(a, 20.0, s),
    "excerpt_3s": excerpt,
}
QUICK_ATTACKS = ("none", "mp3_64k", "resample_16k", "excerpt_3s")


# -- candidates --------------------------------------------------------------------------------

@dataclass
class Candidate:
    """A watermark under test: how it marks a clip, streams, and what it detects."""

    name: str
    mark: object  # (audio, payload) -> audio
    detect: object  # audio -> (detected, payload or None, best-guess payload or None)
    stream: object = None  # (audio, payload, seed) -> audio marked chunk by chunk, or None
    notes: list[str] = field(default_factory=list)


def myna_candidate() -> Candidate:
    marker = Watermarker()

    def detect(audio):
        found = marker.detect(audio, RATE)
        return found.watermarked, found.payload, found.best_guess

    def stream(audio, payload, seed):
        rng = np.random.default_rng(seed)
        marking, out, at = marker.stream(RATE, payload), [], 0
        while at < len(audio):
            size = int(rng.integers(int(0.01 * RATE), int(0.6 * RATE)))
            out.append(marking.push(audio[at : at + size]))
            at += size
        return np.concatenate(out)

    return Candidate("myna", lambda a, p: marker.embed(a, RATE, p), detect, stream)


def perth_candidate() -> Candidate | str:
    """resemble-perth's implicit watermarker, or why it cannot run here."""
    try:
        import torchaudio  # noqa: F401
    except (ImportError, OSError):
        sys.modules["torchaudio"] = _torchaudio_stand_in()
        sys.modules["torchaudio.transforms"] = sys.modules["torchaudio"].transforms
    try:
        import perth
    except (ImportError, OSError) as exc:
        return f"resemble-perth is not importable ({exc})"
    if perth.PerthImplicitWatermarker is None:
        return "resemble-perth imported without its implicit watermarker"
    model = perth.PerthImplicitWatermarker()

    def mark(audio, payload):
        marked = np.asarray(model.apply_watermark(audio, sample_rate=RATE), dtype=np.float32)[: len(audio)]
        return np.pad(marked, (0, len(audio) - len(marked)))

    def detect(audio):
        return float(model.get_watermark(audio, RATE, round=False)) > 0.5, None, None

    return Candidate("perth", mark, detect, None, ["presence only: no payload", "no streaming API"])


def _torchaudio_stand_in() -> types.ModuleType:
    """torchaudio.transforms' Spectrogram / InverseSpectrogram / TimeStretch as perth uses them."""
    import math

    import torch

    class Spectrogram(torch.nn.Module):
        def __init__(self, n_fft, win_length, hop_length, window_fn, power=None, normalized=False):
            super().__init__()
            self.n_fft, self.win_length, self.hop_length = n_fft, win_length, hop_length
            self.register_buffer("window", window_fn(win_length))

        def forward(self, x):
            return torch.stft(x, self.n_fft, self.hop_length, self.win_length, self.window, center=True,
                              pad_mode="reflect", return_complex=True)

    class InverseSpectrogram(Spectrogram):
        def __init__(self, n_fft, win_length, hop_length, window_fn, normalized=False):
            super().__init__(n_fft, win_length, hop_length, window_fn)

        def forward(self, spec, length=None):
            return torch.istft(spec, self.n_fft, self.hop_length, self.win_length, self.window, center=True,
                               length=length)

    class TimeStretch(torch.nn.Module):
        def __init__(self, n_freq, hop_length, **_):
            super().__init__()
            self.register_buffer("phase_advance", torch.linspace(0, math.pi * hop_length, n_freq)[..., None])

    module = types.ModuleType("torchaudio")
    module.transforms = types.SimpleNamespace(Spectrogram=Spectrogram, InverseSpectrogram=InverseSpectrogram,
                                              TimeStretch=TimeStretch)
    return module


# -- measuring ---------------------------------------------------------------------------------

def bit_accuracy(guess: int | None, payload: int) -> float:
    if guess is None:
        return 0.5  # nothing decoded: as good as a coin per bit
    return 1.0 - bin(guess ^ payload).count("1") / PAYLOAD_BITS


def measure(candidate: Candidate, marked_clips, clean_clips, attacks, fp_attacks, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    payloads = [int(p) for p in rng.integers(0, 2**PAYLOAD_BITS, len(marked_clips))]
    started, marked = time.process_time(), []
    for clip, payload in zip(marked_clips, payloads, strict=True):
        marked.append(candidate.mark(clip, payload))
    seconds = sum(len(c) for c in marked_clips) / RATE
    result = {"embed_ms_per_s": 1000 * (time.process_time() - started) / seconds, "rows": {}}
    detect_time, detect_audio = 0.0, 0.0
    rows = list(attacks) + (["stream"] if candidate.stream else [])
    for name in rows:
        found, exact, bits, false = [], [], [], []
        for i, (clip, payload) in enumerate(zip(marked_clips, payloads, strict=True)):
            audio = candidate.stream(clip, payload, seed + i) if name == "stream" else ATTACKS[name](marked[i], seed + i)
            t = time.process_time()
            hit, got, guess = candidate.detect(audio)
            detect_time += time.process_time() - t
            detect_audio += len(audio) / RATE
            found.append(hit)
            exact.append(got == payload)
            bits.append(bit_accuracy(guess, payload))
        if name in fp_attacks:
            for i, clip in enumerate(clean_clips):
                false.append(candidate.detect(ATTACKS[name](clip, seed + 10_000 + i))[0])
        fp = float(np.mean(false)) if false else float("nan")
        result["rows"][name] = (np.mean(found), np.mean(exact), np.mean(bits), fp, len(false))
        print(f"# {candidate.name} {name}: detected {np.mean(found):.3f}, false positives {fp:.4f}", file=sys.stderr)
    result["detect_ms_per_s"] = 1000 * detect_time / max(detect_audio, 1e-9)
    result["pesq"], result["stoi"] = quality(marked_clips, marked)
    return result


def quality(clean, marked) -> tuple[tuple[float, float], tuple[float, float]]:
    """(mean, min) PESQ wide band and STOI of marked against clean, both at 16 kHz."""
    from pesq import pesq
    from pystoi import stoi

    pesqs, stois = [], []
    for a, b in zip(clean, marked, strict=True):
        a16, b16 = resample_soxr(a, RATE, 16000), resample_soxr(b, RATE, 16000)
        pesqs.append(pesq(16000, a16, b16, "wb"))
        stois.append(stoi(a16, b16, 16000))
    return (float(np.mean(pesqs)), float(np.min(pesqs))), (float(np.mean(stois)), float(np.min(stois)))


def first_chunk_cost(repeats: int = 20) -> float:
    """ms to mark a stream's first chunk: 10 semantic tokens = 0.4 s at 32 kHz."""
    marker = Watermarker()
    chunk = np.random.default_rng(0).normal(0, 0.1, int(0.4 * RATE)).astype(np.float32)
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        marker.stream(RATE, 1).push(chunk)
        best = min(best, time.perf_counter() - t)
    return 1000 * best


def engine_first_audio_ms() -> float:
    """The engine's first streamed audio (ms), full-size random weights, as benchmarks/engine_stream.py measures it."""
    # a sibling script: benchmarks/ is on sys.path when this file runs as a script
    from engine_stream import build_models, first_audio_latency

    gpt, sovits = build_models()
    return 1000 * first_audio_latency(gpt, sovits)[0]


def print_table(results: dict[str, dict], clip_count: int, clean_count: int) -> None:
    print(f"# {clip_count} marked clips, {clean_count} clean clips, {RATE} Hz; detection / payload exact / "
          "payload bit accuracy / false positives")
    names = list(results)
    header = f"{'attack':14s}" + "".join(f" | {n + ' det':>9s} {'exact':>6s} {'bits':>6s} {'fp':>6s}" for n in names)
    print(header)
    rows = dict.fromkeys(row for r in results.values() for row in r["rows"])
    for row in rows:
        line = f"{row:14s}"
        for n in names:
            if row in results[n]["rows"]:
                det, exact, bits, fp, _ = results[n]["rows"][row]
                line += f" | {det:9.3f} {exact:6.3f} {bits:6.3f} " + (f"{fp:6.3f}" if fp == fp else f"{'-':>6s}")
            else:
                line += f" | {'-':>9s} {'-':>6s} {'-':>6s} {'-':>6s}"
        print(line)
    print()
    print(f"{'candidate':10s} {'pesq_mean':>9s} {'pesq_min':>8s} {'stoi_mean':>9s} {'stoi_min':>8s} "
          f"{'embed_ms/s':>10s} {'detect_ms/s':>11s}")
    for n, r in results.items():
        print(f"{n:10s} {r['pesq'][0]:9.3f} {r['pesq'][1]:8.3f} {r['stoi'][0]:9.4f} {r['stoi'][1]:8.4f} "
              f"{r['embed_ms_per_s']:10.1f} {r['detect_ms_per_s']:11.1f}")


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=200, help="marked clips (default 200)")
    parser.add_argument("--clean", type=int, default=300, help="clean clips for false positives (default 300)")
    parser.add_argument("--wav-dir", type=Path, help="also count these recordings as clean clips")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "myna" / "watermark-bench")
    parser.add_argument("--voices", help="comma-separated voices of myna.train.synth (default: all installed)")
    parser.add_argument("--attacks", help=f"comma-separated subset of {', '.join(ATTACKS)}")
    parser.add_argument("--fp-attacks", help="attacks also applied to the clean clips, comma-separated "
                        "(default: none,excerpt_3s: whole clips and 3 s excerpts)")
    parser.add_argument("--candidates", default="myna", help="comma-separated: myna, perth (resemble-perth, "
                        "if importable); default myna")
    parser.add_argument("--engine", action="store_true", help="also measure the engine's first streamed audio")
    parser.add_argument("--quick", action="store_true", help="3 marked and 3 clean clips, 4 attacks")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.quick:
        args.clips, args.clean = 3, 3
    attacks = args.attacks.split(",") if args.attacks else (QUICK_ATTACKS if args.quick else tuple(ATTACKS))
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        parser.error(f"unknown attack(s) {', '.join(unknown)}")
    voices = args.voices.split(",") if args.voices else None
    marked = render_clips(args.clips, args.seed, args.cache, voices)
    clean = render_clips(args.clean, args.seed + 1, args.cache, voices)
    if args.wav_dir:
        clean += read_wav_dir(args.wav_dir)
    candidates = []
    for name in args.candidates.split(","):
        if name == "myna":
            candidates.append(myna_candidate())
        elif name == "perth":
            perth = perth_candidate()
            if isinstance(perth, str):
                print(f"# perth: {perth}")
            else:
                candidates.append(perth)
        else:
            parser.error(f"unknown candidate {name!r}: myna or perth")
    fp_attacks = [a for a in (args.fp_attacks.split(",") if args.fp_attacks else ("none", "excerpt_3s")) if a in attacks]
    results = {c.name: measure(c, marked, clean, attacks, fp_attacks, args.seed) for c in candidates}
    print_table(results, len(marked), len(clean))
    chunk_ms = first_chunk_cost()
    print(f"\nfirst streamed chunk (0.4 s at 32 kHz): myna's mark takes {chunk_ms:.1f} ms")
    if args.engine:
        first = engine_first_audio_ms()
        print(f"engine first streamed audio: {first:.0f} ms; with the mark {first + chunk_ms:.0f} ms "
              f"(+{100 * chunk_ms / first:.1f}%)")
    for c in candidates:
        for note in c.notes:
            print(f"# {c.name}: {note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
