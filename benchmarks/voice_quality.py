"""Quality of the default voice: word error rate, speaker similarity, real-time factor.

    python benchmarks/voice_quality.py [--voice-dir DIR] [--corpus DIR] [--sentences 40] [--quick]

- WER: the held-out sentences (myna/train/synth/heldout.txt, never trained on) spoken with the
  voice's own reference clip, transcribed by the bundled Whisper tiny.en; both sides lower-cased,
  punctuation dropped and numbers spelled out (myna's English normalizer) before jiwer's WER.
- Speaker similarity (with --corpus, a `myna data synth` folder): for seen voices (training
  speakers of corpus.list) and unseen ones (heldout_speakers.list), each reference clip clones a few
  sentences zero-shot; the outputs are embedded with Resemblyzer's GE2E encoder and compared by
  cosine with their own reference and with every other reference of the group. Reported: mean
  similarity to the own reference, to the closest other reference, and the share of voices whose
  outputs are on average closer to their own reference than to every other one.
- RTF: synthesis seconds per second of audio (models loaded, prompt cached).
--quick (2 sentences, 2 voices per group) is the reduced mode the test suite runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HELDOUT = Path(__file__).resolve().parents[1] / "src" / "myna" / "train" / "synth" / "heldout.txt"


def heldout_sentences(path: Path = HELDOUT) -> list[str]:
    """The held-out sentences (comment lines skipped)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def normalize_words(text: str) -> str:
    """Lower-case words with numbers spelled out and punctuation dropped, for WER."""
    from myna.text.en.normalize import normalize

    spoken = normalize(text).lower().replace("-", " ")
    return " ".join(re.sub(r"[^a-z' ]+", " ", spoken).split())


def word_error_rate(references: list[str], hypotheses: list[str]) -> float:
    """Corpus WER of normalized texts (jiwer)."""
    import jiwer

    return float(jiwer.wer([normalize_words(r) for r in references], [normalize_words(h) or "-" for h in hypotheses]))


@dataclass
class Report:
    """The measured figures."""

    wer: float | None = None
    sentences: int = 0
    audio_seconds: float = 0.0
    synth_seconds: float = 0.0
    similarity: dict[str, dict[str, float]] = field(default_factory=dict)
    samples: list[tuple[str, str]] = field(default_factory=list)

    @property
    def rtf(self) -> float:
        """Synthesis time per second of audio."""
        return self.synth_seconds / max(self.audio_seconds, 1e-9)


class Bench:
    """A loaded default voice, Whisper tiny.en and the GE2E embedder."""

    def __init__(self, voice_dir: Path | None, seed: int = 0):
        from myna.engine.default_voice import find_default_voice
        from myna.engine.loading import load_synthesizer
        from myna.features.asr import Transcriber
        from myna.features.ge2e import GE2ESpeakerEmbedder

        self.default = find_default_voice(voice_dir)
        self.synth = load_synthesizer(self.default.paths)
        self.asr = Transcriber()
        self.ge2e = GE2ESpeakerEmbedder()
        self.seed = seed

    def speak(self, text: str, ref: Path, ref_text: str | None, report: Report) -> np.ndarray:
        """Synthesize `text` in the voice of `ref`, adding to the report's timing."""
        from myna.engine.options import SynthesisOptions

        voice = self.synth.voice(ref, ref_text, "en")
        start = time.perf_counter()
        audio = self.synth.synthesize(text, "en", voice, SynthesisOptions(seed=self.seed))
        report.synth_seconds += time.perf_counter() - start
        report.audio_seconds += len(audio) / self.synth.sampling_rate
        return audio

    def measure_wer(self, sentences: list[str], report: Report) -> None:
        """WER of the held-out sentences in the voice's own reference."""
        from myna.audio.io import resample_soxr

        hypotheses = []
        for text in sentences:
            audio = self.speak(text, self.default.ref, self.default.ref_text, report)
            heard = self.asr.transcribe(resample_soxr(audio, self.synth.sampling_rate, 16000), "en")[0]
            hypotheses.append(heard)
            report.samples.append((text, heard))
        report.wer, report.sentences = word_error_rate(sentences, hypotheses), len(sentences)

    def measure_similarity(self, group: str, refs: list[tuple[Path, str]], sentences: list[str],
                           report: Report) -> None:
        """Own-vs-other reference similarity of zero-shot outputs for one group of reference voices."""
        from myna.audio.io import read_audio

        clips = [read_audio(path) for path, _ in refs]
        ref_embs = [self.ge2e.embed(audio.mean(axis=0), rate) for audio, rate in clips]
        own, best_other, closer = [], [], 0
        for index, (path, text) in enumerate(refs):
            outputs = [self.ge2e.embed(self.speak(s, path, text, report), self.synth.sampling_rate) for s in sentences]
            sims = np.array([[float((out * ref).sum()) for ref in ref_embs] for out in outputs]).mean(axis=0)
            others = np.delete(sims, index)
            own.append(sims[index])
            best_other.append(others.max())
            closer += int(sims[index] > others.max())
        report.similarity[group] = {"voices": len(refs), "own": float(np.mean(own)),
                                    "closest_other": float(np.mean(best_other)), "closer_share": closer / len(refs)}


def corpus_refs(list_path: Path, voices: int) -> list[tuple[Path, str]]:
    """One 3-10 s clip per speaker of a .list (the first `voices` speakers), with its transcript."""
    import soundfile

    from myna.train.listfile import read_list

    picked: dict[str, tuple[Path, str]] = {}
    for entry in read_list(list_path)[0]:
        if entry.speaker in picked or len(picked) >= voices:
            continue
        if 3.0 <= soundfile.info(entry.audio).duration <= 10.0:
            picked[entry.speaker] = (entry.audio, entry.text)
    return list(picked.values())


def run(voice_dir: Path | None, corpus: Path | None, sentences: int, voices: int, per_voice: int,
        seed: int = 0) -> Report:
    """Measure everything; `corpus` None skips speaker similarity."""
    bench, report = Bench(voice_dir, seed), Report()
    texts = heldout_sentences()
    bench.measure_wer(texts[:sentences], report)
    if corpus is not None:
        clone_texts = texts[-per_voice:]
        bench.measure_similarity("seen", corpus_refs(corpus / "corpus.list", voices), clone_texts, report)
        bench.measure_similarity("unseen", corpus_refs(corpus / "heldout_speakers.list", voices), clone_texts, report)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print the figures (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--voice-dir", type=Path, help="default-voice folder (default: MYNA_DEFAULT_VOICE or the bundled one)")
    parser.add_argument("--corpus", type=Path, help="a `myna data synth` folder for the speaker-similarity test")
    parser.add_argument("--sentences", type=int, default=40, help="held-out sentences for WER (default all 40)")
    parser.add_argument("--voices", type=int, default=6, help="reference voices per group (seen / unseen)")
    parser.add_argument("--per-voice", type=int, default=3, help="sentences cloned per reference voice")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="reduced mode: 2 sentences, 2 voices, 1 per voice")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)
    if args.quick:
        args.sentences, args.voices, args.per_voice = 2, 2, 1
    if args.voice_dir is None:
        from myna.config import Settings

        args.voice_dir = Settings.from_env().default_voice
    report = run(args.voice_dir, args.corpus, args.sentences, args.voices, args.per_voice, args.seed)
    figures = {"wer": report.wer, "sentences": report.sentences, "rtf": report.rtf,
               "audio_seconds": report.audio_seconds, "similarity": report.similarity}
    if args.json:
        print(json.dumps(figures))
        return 0
    print(f"word error rate      {report.wer:.3f} over {report.sentences} held-out sentences (Whisper tiny.en)")
    for group, sim in report.similarity.items():
        print(f"similarity {group:<7}   own {sim['own']:.3f}  closest other {sim['closest_other']:.3f}  "
              f"closer to own: {sim['closer_share']:.0%} of {sim['voices']} voices")
    print(f"real-time factor     {report.rtf:.3f} ({report.audio_seconds:.1f} s of audio)")
    for said, heard in report.samples[:3]:
        print(f"  said:  {said}\n  heard: {heard}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
