"""Calibrate the consent check's same-speaker threshold and measure the whole check on real speech.

    python benchmarks/consent.py [--pseudo 8] [--utterances 5] [--voices A,B] [--sv FILE] [--table [--trials N]]
    python benchmarks/consent.py --threshold 0.76 [--trials N]     # only the table

Speakers are the installed flite, festival and espeak-ng voices (voices built from the same
person's recordings, e.g. flite's slt and festival's slt HTS, count as one speaker) plus `--pseudo`
pitch/formant/tempo-shifted copies made with Rubber Band (each a speaker of its own: the hardest
impostors, since they share a base voice with another speaker). Each speaker reads `--utterances`
different sentences, and each reading gets one random degradation: none, white noise at 10-25 dB
SNR, gain -12..+6 dB, MP3 at 32 kbps, Opus at 24 kbps, or telephone band (8 kHz and back).
Every pair of two readings is scored by cosine similarity of the speaker embeddings (Resemblyzer
GE2E, or ERes2NetV2 x-vectors with `--sv`); same-speaker pairs never share a sentence.

Prints the equal error rate (EER) on all pairs and its threshold; then, to show how it carries
over, the threshold fitted on the even-numbered speakers and its false accept / false reject rates
on the odd-numbered ones (no speaker in both). The threshold myna uses
(`myna.voices.consent.SPEAKER_THRESHOLDS`) is the all-pairs EER threshold rounded to 0.01.

`--table` also runs the full consent check (challenge, Whisper tiny.en, speaker check) for each base
voice: the right speaker reading the right sentence, a wrong sentence, a wrong speaker, a replayed
and an expired challenge and silence, with the seconds each check takes.
"""

from __future__ import annotations

import argparse
import io
import itertools
import random
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

SENTENCES = (
    "Curious purple rabbits painted the wooden ladder near the river on Monday.",
    "The quiet library opens late on Sundays and closes early in winter.",
    "Please bring the large basket of apples to the kitchen before dinner.",
    "A gentle breeze moved the paper lanterns across the small harbor.",
    "Our train left the station ten minutes after the storm had passed.",
    "Brave penguins carried the broken clock behind the old museum.",
    "She found a golden key under the garden fence last summer.",
    "Every morning the baker sings while the bread is in the oven.",
)
DEGRADATIONS = ("clean", "noise", "gain", "mp3", "opus", "phone")


def degrade(audio: np.ndarray, rate: int, kind: str, rng: random.Random) -> np.ndarray:
    """One degradation of a clip (same rate and roughly the same length)."""
    from myna.audio.io import resample_soxr

    if kind == "noise":
        snr = rng.uniform(10, 25)
        power = float(np.mean(audio**2)) / 10 ** (snr / 10)
        noise = np.random.default_rng(rng.randrange(2**32)).standard_normal(audio.size) * np.sqrt(power)
        return (audio + noise).astype(np.float32)
    if kind == "gain":
        return np.clip(audio * 10 ** (rng.uniform(-12, 6) / 20), -1, 1).astype(np.float32)
    if kind == "phone":
        return resample_soxr(resample_soxr(audio, rate, 8000), 8000, rate)
    if kind in ("mp3", "opus"):
        codec = ["-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"] if kind == "mp3" else \
                ["-c:a", "libopus", "-b:a", "24k", "-f", "ogg"]
        with tempfile.TemporaryDirectory(prefix="myna-consent-bench-") as tmp:
            source, coded = Path(tmp) / "in.wav", Path(tmp) / "coded"
            sf.write(source, audio, rate)
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", str(source), *codec, str(coded)], check=True)
            decoded = subprocess.run(["ffmpeg", "-v", "error", "-i", str(coded), "-f", "f32le", "-ac", "1", "-ar",
                                      str(rate), "-"], check=True, capture_output=True).stdout
        return np.frombuffer(decoded, dtype=np.float32).copy()
    return audio


def speakers(pseudo: int, seed: int, names: list[str] | None = None):
    """(label, Speaker) for the installed base voices (or those named) and the pseudo-speakers."""
    from myna.train.synth.augment import plan_speakers
    from myna.train.synth.voices import DEFAULT_VOICES, VoiceUnavailable, base_voices

    bases = []
    for voice in base_voices(names or list(DEFAULT_VOICES)):
        try:
            voice.check()
            bases.append(voice)
        except VoiceUnavailable:
            continue
    planned = plan_speakers(bases, pseudo, seed)
    # espeak-ng's variants are different synthetic speakers; other families are one recorded person each
    return [(s.name if s.augmented or s.base.engine == "espeak-ng" else s.base.family, s) for s in planned]


def equal_error_rate(same: np.ndarray, different: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where the false reject rate of same-speaker pairs meets the false accept rate."""
    candidates = np.unique(np.concatenate([same, different]))
    frr = np.array([(same < t).mean() for t in candidates])
    far = np.array([(different >= t).mean() for t in candidates])
    index = int(np.argmin(np.abs(frr - far)))
    return float((frr[index] + far[index]) / 2), float(candidates[index])


def rates(same: np.ndarray, different: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false accept rate, false reject rate) at a threshold."""
    return float((different >= threshold).mean()), float((same < threshold).mean())


def calibrate(args: argparse.Namespace, embedder) -> float:
    """Embed every degraded reading, score every pair, print EER and thresholds; return the threshold."""
    from myna.train.synth.augment import shift
    from myna.voices.consent import cosine

    rng = random.Random(args.seed)
    readings = []  # (speaker index, label, sentence index, degradation, embedding)
    start = time.perf_counter()
    cast = speakers(args.pseudo, args.seed, args.voices.split(",") if args.voices else None)
    for index, (label, speaker) in enumerate(cast):
        for sentence in rng.sample(range(len(SENTENCES)), args.utterances):
            audio, rate = speaker.base.render(SENTENCES[sentence])
            audio = shift(audio, rate, speaker)
            kind = rng.choice(DEGRADATIONS)
            readings.append((index, label, sentence, kind, embedder.embed(degrade(audio, rate, kind, rng), rate)))
    made = time.perf_counter() - start
    same, different, pairs_of = [], [], {0: ([], []), 1: ([], [])}
    for a, b in itertools.combinations(readings, 2):
        if a[2] == b[2]:
            continue  # never the same sentence
        score = cosine(a[4], b[4])
        is_same = a[1] == b[1]
        (same if is_same else different).append(score)
        if a[0] % 2 == b[0] % 2:
            pairs_of[a[0] % 2][0 if is_same else 1].append(score)
    same_a, diff_a = np.array(same), np.array(different)
    eer, threshold = equal_error_rate(same_a, diff_a)
    labels = sorted({label for label, _ in cast})
    print(f"encoder {embedder.identity}: {len(cast)} speakers ({len(labels)} labels), {len(readings)} readings "
          f"({', '.join(f'{k} {sum(r[3] == k for r in readings)}' for k in DEGRADATIONS)}), made and embedded in "
          f"{made:.0f} s")
    print(f"pairs: {len(same_a)} same-speaker, {len(diff_a)} different-speaker")
    print(f"same-speaker similarity: mean {same_a.mean():.3f}, 5th percentile {np.percentile(same_a, 5):.3f}; "
          f"different: mean {diff_a.mean():.3f}, 95th percentile {np.percentile(diff_a, 95):.3f}")
    print(f"EER {eer:.2%} at threshold {threshold:.3f} (all pairs)")
    fit_eer, fit_threshold = equal_error_rate(np.array(pairs_of[0][0]), np.array(pairs_of[0][1]))
    far, frr = rates(np.array(pairs_of[1][0]), np.array(pairs_of[1][1]), fit_threshold)
    print(f"fitted on even speakers: EER {fit_eer:.2%} at {fit_threshold:.3f}; on odd speakers at that threshold: "
          f"false accepts {far:.2%}, false rejects {frr:.2%}")
    chosen = round(threshold, 2)
    far, frr = rates(same_a, diff_a, chosen)
    print(f"chosen threshold {chosen:.2f}: false accepts {far:.2%}, false rejects {frr:.2%} (all pairs)")
    return chosen


def table(threshold: float, trials: int) -> None:
    """The full consent check for each base voice (`trials` times, new sentences and another impostor each
    time): pass/fail per case, totals, and seconds per check."""
    from myna.features.verification import SpeakerVerifier, WhisperListener
    from myna.train.synth.voices import base_voices
    from myna.voices.consent import ChallengeStore, ConsentChecker, ConsentRefused

    names = ["flite-slt", "flite-rms", "flite-awb", "flite-kal16", "festival-slt-hts", "festival-ked",
             "espeak-us-f2", "espeak-us-m3"]
    voices = base_voices(names)

    def impostor(index: int, trial: int):
        """Another voice (never one of the same recorded person), a different one each trial."""
        others = [v for v in voices[index + 1 :] + voices[:index] if v.family != voices[index].family]
        return others[trial % len(others)]

    clock = [time.time()]
    with tempfile.TemporaryDirectory(prefix="myna-consent-bench-") as tmp:
        checker = ConsentChecker(ChallengeStore(Path(tmp) / "c.sqlite3"), WhisperListener(threads=1),
                                 SpeakerVerifier(), threshold=threshold, clock=lambda: clock[0])

        def wav(audio: np.ndarray, rate: int) -> bytes:
            buffer = io.BytesIO()
            sf.write(buffer, audio, rate, format="WAV")
            return buffer.getvalue()

        def attempt(challenge_id: str, recording: bytes, clip: bytes) -> tuple[str, float]:
            start = time.perf_counter()
            try:
                checker.verify(challenge_id, recording, clip)
                outcome = "pass"
            except ConsentRefused as exc:
                outcome = exc.check
            return outcome, time.perf_counter() - start

        warm = checker.issue("en")  # warm the models once so the timings are per call
        first = voices[0].render(warm.text)
        attempt(warm.id, wav(*first), wav(*voices[0].render(SENTENCES[1])))
        cases = ("right", "wrong sentence", "wrong speaker", "replayed", "expired", "silence")
        widths = (14, 18, 18, 20, 20, 10)
        print(f"\n{'voice':<18} " + " ".join(f"{c:>{w}}" for c, w in zip(cases, widths, strict=True)))
        seconds, outcomes = [], {case: [] for case in cases}
        for trial in range(trials):
            for index, voice in enumerate(voices):
                clip = wav(*voice.render(SENTENCES[(2 + trial) % len(SENTENCES)] + " " + SENTENCES[5]))
                row = []
                right = checker.issue("en")
                recording = wav(*voice.render(right.text))
                row.append(attempt(right.id, recording, clip))
                other = checker.issue("en")
                row.append(attempt(other.id, wav(*voice.render(checker.issue("en").text)), clip))
                wrong = checker.issue("en")
                row.append(attempt(wrong.id, wav(*impostor(index, trial).render(wrong.text)), clip))
                row.append(attempt(right.id, recording, clip))
                late = checker.issue("en")
                clock[0] += checker.ttl + 1
                row.append(attempt(late.id, wav(*voice.render(late.text)), clip))
                quiet = checker.issue("en")
                row.append(attempt(quiet.id, wav(np.zeros(48000, np.float32), 16000), clip))
                seconds += [s for (_, s) in row[:3]]
                for case, (outcome, _) in zip(cases, row, strict=True):
                    outcomes[case].append(outcome)
                print(f"{voice.name:<18} " + " ".join(f"{o:>{w}}" for (o, _), w in zip(row, widths, strict=True)))
        expected = ("pass", "wrong_sentence", "wrong_speaker", "challenge_replayed", "challenge_expired", "silence")
        total = len(outcomes["right"])
        print(f"right speaker and sentence: {outcomes['right'].count('pass')}/{total} pass")
        for case, want in zip(cases[1:], expected[1:], strict=True):
            refused = sum(o != "pass" for o in outcomes[case])
            print(f"{case}: {refused}/{total} refused ({outcomes[case].count(want)} as {want})")
        print(f"consent check: {np.mean(seconds):.2f} s per call on average (max {max(seconds):.2f} s; Whisper tiny.en, "
              f"beam 5, one thread, recordings of about 6 s)")


def main() -> None:
    """Calibrate, then optionally run the pass/fail table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pseudo", type=int, default=8, help="pitch/formant-shifted pseudo-speakers (default 8)")
    parser.add_argument("--utterances", type=int, default=5, help="readings per speaker (default 5)")
    parser.add_argument("--voices", help="comma-separated base voices (default: every installed one)")
    parser.add_argument("--sv", type=Path, help="v2Pro speaker-verification file: calibrate ERes2NetV2 instead")
    parser.add_argument("--table", action="store_true", help="also run the full consent check per voice")
    parser.add_argument("--trials", type=int, default=1, help="rounds of the table (default 1)")
    parser.add_argument("--threshold", type=float, help="skip the calibration and run the table at this threshold")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from myna.features.verification import SpeakerVerifier

    threshold = args.threshold if args.threshold is not None else calibrate(args, SpeakerVerifier(args.sv))
    if args.table or args.threshold is not None:
        table(threshold, args.trials)


if __name__ == "__main__":
    main()
