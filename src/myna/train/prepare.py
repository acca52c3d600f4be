"""`myna data prepare`: recordings (or an existing `.list`) -> utterance WAVs + a proofreadable `.list`.

Audio files are decoded to mono 32 kHz, optionally denoised, cut at pauses into 2-12 s utterances,
checked (too short/long, clipped, near-silent), loudness-normalized, written as 16-bit WAVs and
transcribed with faster-whisper. Entries of an input `.list` are used as they are (only checked to
be readable). Work happens in a staging folder inside OUT; the WAVs and the list are moved into
place only when the whole dataset is ready, so an error or refusal leaves nothing half-written.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from myna.audio.decode import decode
from myna.audio.io import AudioError, resample_soxr, write_wav
from myna.errors import InputError
from myna.train.conditioning import TARGET_LUFS, check_piece, normalize_loudness
from myna.train.extras import require
from myna.train.listfile import ListEntry, language_code, read_list, write_list
from myna.train.slicing import SliceConfig, slice_on_silence
from myna.train.sources import find_inputs

PREPARED_RATE = 32000
MIN_TOTAL_SECONDS = 20.0
LIST_NAME = "dataset.list"
WAV_DIR = "wavs"


@dataclass(frozen=True)
class PrepareOptions:
    """How `prepare_dataset` slices, cleans and transcribes."""

    speaker: str | None = None  # default: the output folder's name
    lang: str | None = None  # language hint for the ASR (whisper code); None: detected
    asr_model: Path | None = None  # None: the bundled Whisper tiny.en
    denoise: bool = False
    slicing: SliceConfig = field(default_factory=SliceConfig)
    target_lufs: float = TARGET_LUFS
    min_total_seconds: float = MIN_TOTAL_SECONDS
    device: str = "cpu"
    threads: int = 0  # ASR CPU threads; 0: faster-whisper's default
    progress: bool = False


@dataclass(frozen=True)
class Dropped:
    """A piece of audio left out of the dataset, and why."""

    source: str
    start: float
    stop: float
    reason: str
    detail: str = ""


@dataclass
class PrepareReport:
    """What `prepare_dataset` wrote, and everything it skipped or dropped with the reason."""

    list_path: Path
    entries: list[ListEntry]
    seconds: float
    skipped_files: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def dropped_counts(self) -> dict[str, int]:
        """Number of dropped pieces per reason."""
        return dict(Counter(piece.reason for piece in self.dropped))

    def summary(self) -> list[str]:
        """Human-readable lines: totals, then every skipped file and a count per drop reason."""
        lines = [f"{len(self.entries)} utterances, {self.seconds:.1f} s of speech -> {self.list_path}"]
        lines += [f"skipped {source}: {reason}" for source, reason in self.skipped_files]
        lines += [f"dropped {count} piece(s): {reason}" for reason, count in sorted(self.dropped_counts().items())]
        return lines


@dataclass
class _Staged:
    path: Path
    source: Path
    start: float
    stop: float


def prepare_dataset(inputs: Iterable[str | Path], out_dir: str | Path, options: PrepareOptions | None = None,
                    transcriber=None) -> PrepareReport:
    """Turn recordings and/or `.list` files into OUT/wavs/*.wav and OUT/dataset.list; see the module doc.

    `transcriber`: an object with `transcribe(audio_16k, language) -> (text, lang)`; by default a
    `myna.features.asr.Transcriber` is loaded when there is audio to transcribe.
    """
    options = options or PrepareOptions()
    out_dir = Path(out_dir)
    audio_files, list_files, skipped = find_inputs(inputs)
    skipped_files = [(str(path), reason) for path, reason in skipped]
    if not audio_files and not list_files:
        raise InputError("no audio files or .list transcripts among the inputs"
                         + "".join(f"; {p}: {r}" for p, r in skipped_files))
    speaker = options.speaker or out_dir.resolve().name
    if "|" in speaker:
        raise InputError(f"the speaker name {speaker!r} cannot contain '|'")
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=out_dir))
    try:
        dropped: list[Dropped] = []
        staged = _stage_audio(audio_files, staging, options, skipped_files, dropped)
        listed = _check_listed(list_files, skipped_files, dropped)
        seconds = sum(piece.stop - piece.start for piece in staged) + sum(s for _, s in listed)
        _require_enough(seconds, options.min_total_seconds, skipped_files, dropped)
        entries, seconds = _transcribe(staged, speaker, options, transcriber, dropped)
        entries += [entry for entry, _ in listed]
        seconds += sum(s for _, s in listed)
        _require_enough(seconds, options.min_total_seconds, skipped_files, dropped)
        entries = _publish(entries, staging, out_dir / WAV_DIR)
        list_path = write_list(out_dir / LIST_NAME, entries)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if created and not any(out_dir.iterdir()):
            out_dir.rmdir()
        raise
    shutil.rmtree(staging, ignore_errors=True)
    return PrepareReport(list_path, entries, seconds, skipped_files, dropped)


def _stage_audio(files: list[Path], staging: Path, options: PrepareOptions,
                 skipped: list[tuple[str, str]], dropped: list[Dropped]) -> list[_Staged]:
    """Decode, (denoise,) slice, check and normalize every file; write kept pieces into `staging`."""
    tqdm = require("tqdm").tqdm

    denoiser = None
    if options.denoise and files:
        from myna.train.denoise import Denoiser

        denoiser = Denoiser()
    rate, limits = PREPARED_RATE, options.slicing
    staged: list[_Staged] = []
    used_names: set[str] = set()
    for path in tqdm(files, desc="slicing", unit="file", disable=not options.progress):
        try:
            audio = decode(path, rate)
        except AudioError as exc:
            skipped.append((str(path), str(exc)))
            continue
        clean = denoiser(audio, rate) if denoiser is not None else audio
        pieces = slice_on_silence(clean, rate, limits)
        if not pieces:
            dropped.append(Dropped(str(path), 0.0, len(audio) / rate, "near-silent", "no speech found"))
            continue
        stem = _unique_stem(path.stem, used_names)
        for number, (start, stop) in enumerate(pieces):
            verdict = check_piece(audio[start:stop], rate, limits.min_seconds, limits.max_seconds)
            if not verdict.ok:
                dropped.append(Dropped(str(path), start / rate, stop / rate, verdict.kind, verdict.detail))
                continue
            wav = staging / f"{stem}_{number:04d}_{start * 1000 // rate:08d}.wav"
            write_wav(wav, normalize_loudness(clean[start:stop], rate, options.target_lufs), rate)
            staged.append(_Staged(wav, path, start / rate, stop / rate))
    return staged


def _unique_stem(stem: str, used: set[str]) -> str:
    """`stem`, or `stem-2`, `stem-3`, ... when two inputs share a file name; '|' replaced."""
    stem = stem.replace("|", "_") or "audio"
    candidate, n = stem, 1
    while candidate in used:
        n += 1
        candidate = f"{stem}-{n}"
    used.add(candidate)
    return candidate


def _check_listed(lists: list[Path], skipped: list[tuple[str, str]],
                  dropped: list[Dropped]) -> list[tuple[ListEntry, float]]:
    """Entries of input `.list` files whose audio is readable, with their durations."""
    kept = []
    for list_path in lists:
        entries, problems = read_list(list_path)
        skipped.extend((f"{list_path}:{number}", reason) for number, reason in problems)
        for entry in entries:
            try:
                seconds = len(decode(entry.audio, PREPARED_RATE)) / PREPARED_RATE
            except AudioError as exc:
                skipped.append((str(entry.audio), str(exc)))
                continue
            kept.append((ListEntry(entry.audio.resolve(), entry.speaker, entry.lang, entry.text), seconds))
    return kept


def _transcribe(staged: list[_Staged], speaker: str, options: PrepareOptions, transcriber,
                dropped: list[Dropped]) -> tuple[list[ListEntry], float]:
    """Transcribe staged pieces; pieces with no recognized words or an unsupported language are dropped."""
    tqdm = require("tqdm").tqdm

    if not staged:
        return [], 0.0
    if transcriber is None:
        from myna.features.asr import Transcriber

        transcriber = Transcriber(options.asr_model, options.device, options.threads)
    entries, seconds = [], 0.0
    for piece in tqdm(staged, desc="transcribing", unit="utt", disable=not options.progress):
        audio = resample_soxr(decode(piece.path, PREPARED_RATE), PREPARED_RATE, 16000)
        text, detected = transcriber.transcribe(audio, options.lang)
        text = " ".join(text.replace("|", " ").split())
        if not text:
            dropped.append(Dropped(str(piece.source), piece.start, piece.stop, "no words recognized"))
            continue
        try:
            lang = language_code(detected)
        except InputError:
            dropped.append(Dropped(str(piece.source), piece.start, piece.stop, "unsupported language", detected))
            continue
        entries.append(ListEntry(piece.path, speaker, lang, text))
        seconds += piece.stop - piece.start
    return entries, seconds


def _require_enough(seconds: float, minimum: float, skipped: list[tuple[str, str]], dropped: list[Dropped]) -> None:
    """Refuse a dataset with less usable speech than `minimum` seconds, saying what was lost."""
    if seconds >= minimum:
        return
    lost = Counter(piece.reason for piece in dropped)
    details = [f"{count} piece(s) {reason}" for reason, count in sorted(lost.items())]
    if skipped:
        details.append(f"{len(skipped)} input(s) skipped as unreadable")
    raise InputError(
        f"only {seconds:.1f} s of usable speech; fine-tuning needs at least {minimum:g} s "
        f"(1 minute or more works better). Add recordings"
        + (f" (left out: {'; '.join(details)})" if details else "")
    )


def _publish(entries: list[ListEntry], staging: Path, wav_dir: Path) -> list[ListEntry]:
    """Move staged WAVs into `wav_dir` and point their entries there; listed entries stay as they are."""
    wav_dir.mkdir(parents=True, exist_ok=True)
    published = []
    for entry in entries:
        if entry.audio.parent == staging:
            target = (wav_dir / entry.audio.name).resolve()
            os.replace(entry.audio, target)
            entry = ListEntry(target, entry.speaker, entry.lang, entry.text)
        published.append(entry)
    return published
