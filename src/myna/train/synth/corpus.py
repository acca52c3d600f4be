"""`myna data synth`: render a multi-speaker English corpus from local voices and pseudo-speakers.

Layout of OUT: `wavs/SPEAKER/NNNN.wav` (16-bit mono at `rate`) and `wavs/SPEAKER/wNNNN.wav` (the
wide-vocabulary sentences, `SynthOptions.wide_utterances`), `corpus.list` (training speakers, generated
sentences), `heldout_speakers.list` (speakers kept out of training, speaking the held-out
benchmark sentences), `sources.json` + `SOURCES.md`. Re-running skips utterances already written.
The transcript is the text after myna's English normalisation, which is also what the voice reads,
so numbers and money are spoken exactly as the text front-end will spell them when training.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from myna.atomic import atomic_output
from myna.audio.io import resample_soxr
from myna.errors import InputError, MynaError
from myna.train.extras import require
from myna.train.listfile import ListEntry, write_list
from myna.train.synth.augment import RUBBERBAND_PACKAGE, Speaker, check_rubberband, plan_speakers, shift
from myna.train.synth.licences import write_sources
from myna.train.synth.sentences import generate_sentences, generate_wide_sentences, heldout_sentences
from myna.train.synth.voices import DEFAULT_VOICES, base_voices

TRAIN_LIST = "corpus.list"
HELDOUT_LIST = "heldout_speakers.list"
_TARGET_RMS = 0.08      # about -22 dBFS
_PEAK = 0.95
_EDGE_S = 0.12          # silence kept before and after speech


@dataclass(frozen=True)
class SynthOptions:
    """What to build: voices, pseudo-speakers, utterances per training speaker, held-out split."""

    out: Path
    utterances: int = 100
    wide_utterances: int = 0  # more per training speaker, of wide-vocabulary sentences (generate_wide_sentences)
    voices: tuple[str, ...] = DEFAULT_VOICES
    pseudo_speakers: int = 16
    seed: int = 0
    jobs: int = 1
    rate: int = 22050
    heldout_family: str | None = "ked"
    heldout_speakers: int = 3
    heldout_utterances: int | None = None   # default: every held-out sentence
    progress: bool = True


@dataclass
class SynthReport:
    """What was written and how long it took to make."""

    out: Path
    train_list: Path
    heldout_list: Path | None
    speakers: dict[str, int] = field(default_factory=dict)
    heldout: list[str] = field(default_factory=list)
    audio_seconds: float = 0.0
    rendered_seconds: float = 0.0
    wall_seconds: float = 0.0
    reused: int = 0
    failures: list[str] = field(default_factory=list)

    def summary(self) -> list[str]:
        """Human-readable lines."""
        speed = self.rendered_seconds / self.wall_seconds if self.wall_seconds else 0.0
        lines = [f"{sum(self.speakers.values())} utterances from {len(self.speakers)} speakers, "
                 f"{self.audio_seconds / 3600:.2f} h of audio ({self.reused} reused)",
                 f"held out: {', '.join(self.heldout) or 'none'}",
                 f"rendered {self.rendered_seconds:.0f} s of audio in {self.wall_seconds:.0f} s ({speed:.1f}x real time)"]
        lines += [f"failed: {f}" for f in self.failures[:10]]
        return lines


@dataclass(frozen=True)
class _Task:
    speaker: Speaker
    text: str
    path: Path


def split_heldout(speakers: list[Speaker], family: str | None, count: int) -> list[Speaker]:
    """Speakers kept out of training: every one of `family`, topped up with the last pseudo-speakers to `count`."""
    held = [s for s in speakers if family and s.base.family == family]
    for speaker in reversed(speakers):
        if len(held) >= count:
            break
        if speaker.augmented and speaker not in held:
            held.append(speaker)
    if len(held) == len(speakers):
        raise InputError("every speaker would be held out; add voices or pseudo-speakers, or pass --heldout-speakers 0")
    return held


def _clean(audio: np.ndarray, rate: int) -> np.ndarray:
    """Trim leading/trailing silence (keeping a short edge) and set a common loudness."""
    frame = max(1, rate // 100)
    energy = np.sqrt(np.convolve(audio.astype(np.float64) ** 2, np.ones(frame) / frame, mode="same"))
    voiced = np.flatnonzero(energy > max(1e-4, 0.02 * energy.max()))
    if voiced.size:
        edge = int(_EDGE_S * rate)
        audio = audio[max(0, voiced[0] - edge): voiced[-1] + edge]
    rms = float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) or 1.0
    gain = min(_TARGET_RMS / rms, _PEAK / max(float(np.abs(audio).max()), 1e-9))
    return (audio * gain).astype(np.float32)


def _render(task: _Task, rate: int) -> float:
    """Render one utterance to its wav (atomically); returns its duration in seconds."""
    audio, source_rate = task.speaker.base.render(task.text)
    # loudness last, after resampling, so the resampler's overshoot cannot push peaks into clipping
    audio = _clean(resample_soxr(shift(audio, source_rate, task.speaker), source_rate, rate), rate)
    with atomic_output(task.path, parents=True) as partial:
        sf.write(str(partial), np.clip(audio, -1.0, 1.0), rate, format="WAV", subtype="PCM_16")
    return audio.size / rate


def _tasks(out: Path, speakers: list[Speaker], texts: dict[str, list[str]], prefix: str = "") -> list[_Task]:
    return [_Task(s, text, out / "wavs" / s.name / f"{prefix}{i:04d}.wav") for s in speakers
            for i, text in enumerate(texts.get(s.name, ()))]


def build_corpus(options: SynthOptions) -> SynthReport:
    """Render the corpus described by `options` into `options.out` (resumable); see the module docstring."""
    import time

    tqdm = require("tqdm").tqdm

    from myna.text.en.normalize import normalize

    if options.utterances < 1 or options.jobs < 1 or options.pseudo_speakers < 0 or options.wide_utterances < 0:
        raise InputError("--utterances and --jobs must be at least 1, --pseudo-speakers and --wide-utterances "
                         "at least 0")
    bases = base_voices(list(options.voices))
    if options.pseudo_speakers:
        check_rubberband()
    speakers = plan_speakers(bases, options.pseudo_speakers, options.seed)
    held = split_heldout(speakers, options.heldout_family, options.heldout_speakers)
    training = [s for s in speakers if s not in held]
    sentences = generate_sentences(options.utterances * len(training), options.seed)
    texts = {s.name: [normalize(t) for t in sentences[i::len(training)]] for i, s in enumerate(training)}
    heldout_texts = [normalize(t) for t in heldout_sentences()[:options.heldout_utterances]]
    texts |= {s.name: heldout_texts for s in held}
    wide = generate_wide_sentences(options.wide_utterances * len(training), options.seed)
    wide_texts = {s.name: [normalize(t) for t in wide[i::len(training)]] for i, s in enumerate(training)}
    out = Path(options.out)
    tasks = _tasks(out, speakers, texts) + _tasks(out, training, wide_texts, "w")
    report = SynthReport(out, out / TRAIN_LIST, out / HELDOUT_LIST if held else None, heldout=[s.name for s in held])
    durations: dict[Path, float] = {}
    todo = []
    for task in tasks:
        if task.path.is_file():
            durations[task.path] = sf.info(task.path).duration
        else:
            todo.append(task)
    report.reused = len(durations)
    start = time.monotonic()
    with ThreadPoolExecutor(max_workers=options.jobs) as pool, \
            tqdm(total=len(todo), desc="synth", unit="utt", disable=not options.progress) as bar:
        futures = {pool.submit(_render, task, options.rate): task for task in todo}
        for future, task in futures.items():
            try:
                durations[task.path] = future.result()
                report.rendered_seconds += durations[task.path]
            except MynaError as exc:
                report.failures.append(str(exc))
            bar.update(1)
    report.wall_seconds = time.monotonic() - start
    if not durations:
        raise InputError("no utterance could be rendered: " + (report.failures[0] if report.failures else "?"))
    _write_lists(report, tasks, durations, held)
    records = [s.record() | {"split": "heldout" if s in held else "train",
                             "utterances": report.speakers.get(s.name, 0)} for s in speakers]
    stats = {"speakers": len(report.speakers), "utterances": sum(report.speakers.values()),
             "hours": round(report.audio_seconds / 3600, 3), "sample_rate": options.rate, "seed": options.seed,
             "heldout_speakers": report.heldout, "wide_utterances": options.wide_utterances}
    write_sources(out, records, [RUBBERBAND_PACKAGE] if options.pseudo_speakers else [], stats)
    return report


def _write_lists(report: SynthReport, tasks: list[_Task], durations: dict[Path, float], held: list[Speaker]) -> None:
    train: list[ListEntry] = []
    heldout: list[ListEntry] = []
    for task in tasks:
        if task.path not in durations:
            continue
        entry = ListEntry(task.path.relative_to(report.out), task.speaker.name, "en", task.text)
        (heldout if task.speaker in held else train).append(entry)
        report.speakers[task.speaker.name] = report.speakers.get(task.speaker.name, 0) + 1
        report.audio_seconds += durations[task.path]
    write_list(report.train_list, train)
    if report.heldout_list is not None:
        write_list(report.heldout_list, heldout)
