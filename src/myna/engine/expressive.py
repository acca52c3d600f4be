"""Speak a plan with prosody and timing: SSML or plain text -> fragments -> GPT -> alignment -> warped
SoVITS decode -> effects (loudness contour, per-span and emphasis gain and pitch, request pitch/volume).

Used by `Synthesizer.speak` / `stream_speech` (and by `synthesize` / `stream` when SSML or a prosody
option is given). With plain text and no prosody option, the audio equals `synthesize`'s sample for
sample: the same fragments, random draws and decode; timing is computed on the side.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from myna.audio.prosody import Change, apply_gain, curve, follow_contour, frame_levels, shift_pitch
from myna.audio.spectrogram import linear_spectrogram
from myna.engine.duration import fragment_frames
from myna.engine.plan import EMPHASIS, Layout, PlannedFragment, layout
from myna.engine.t2s_decode import seeded_generator
from myna.engine.timing import (
    PhonemeTiming,
    Speech,
    SpeechChunk,
    WordTiming,
    fragment_timing,
    output_edges,
    phoneme_frames,
    warp_positions,
)
from myna.errors import InputError
from myna.text import ssml

if TYPE_CHECKING:
    from myna.engine.emotion import EmotionVoice
    from myna.engine.options import SynthesisOptions
    from myna.engine.synthesizer import StopCheck, Synthesizer
    from myna.engine.voice import Voice


def is_ssml(text: str, options: SynthesisOptions) -> bool:
    """Whether `text` is read as SSML: `options.ssml`, or when unset, whether it starts with <speak>."""
    return options.ssml if options.ssml is not None else ssml.looks_like_ssml(text)


def wanted(text: str, options: SynthesisOptions) -> bool:
    """True when the request needs this path (SSML or a prosody option) rather than the plain one."""
    return isinstance(text, str) and (options.shapes_prosody or is_ssml(text, options))


def plan_layout(synth: Synthesizer, text: str, lang: str, options: SynthesisOptions,
                voice: EmotionVoice) -> tuple[Layout, dict[int, Voice]]:
    """The fragments of `text` (SSML or plain) with their parts, words and pauses, and each one's Voice
    (by id; emotion routing, myna.engine.emotion: `[label]` tags and `options.emotion`)."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("the text to speak is empty")
    items = ssml.parse(text, lang, synth.version) if is_ssml(text, options) else ssml.plain_plan(text)

    def make_layout(group: list) -> Layout:
        return layout(group, lang, options.split, options.pause, synth.version, synth.bert, synth.polyphones)

    return voice.layout(items, lang, options.emotion, options.emotion_strength, make_layout,
                        mixing=synth.decoder is None)


@dataclass
class _Work:
    """One fragment between GPT and SoVITS: its tokens and the time warp its prosody asks for."""

    planned: PlannedFragment
    tokens: torch.Tensor
    counts: np.ndarray  # source (50 Hz content) frames per phoneme
    factors: np.ndarray  # output frames per source frame, relative

    @property
    def natural(self) -> float:
        """Output frames at the requested rates, before any duration fitting."""
        return float(self.factors.sum())


class _Speaker:
    """One request's state: the synthesizer, voice, options, generator and stop check."""

    def __init__(self, synth: Synthesizer, voice: Voice, options: SynthesisOptions, should_stop: StopCheck,
                 voices: dict[int, Voice] | None = None):
        self.synth, self.voice, self.options, self.should_stop = synth, voice, options, should_stop
        self.voices = voices or {}  # a fragment's own Voice by id (emotion routing); else `voice`
        self.generator = seeded_generator(options.seed)
        self.rate = synth.sampling_rate
        self.frame_seconds = synth.sovits.config.samples_per_frame / self.rate
        self._reference_levels: np.ndarray | None = None

    def analyse(self, planned: PlannedFragment) -> _Work:
        """GPT tokens, alignment and time warp of one fragment."""
        tokens = self.synth.semantic_tokens_locked(planned.fragment, self.voice_of(planned), self.options,
                                                   self.generator, self.should_stop)
        if tokens.numel() == 0:
            return _Work(planned, tokens, np.zeros(len(planned.phones), int), np.zeros(0))
        with torch.inference_mode():
            attention = self.synth.sovits.text_alignment(tokens, planned.fragment.phone_ids)
        counts = phoneme_frames(attention.float().cpu().numpy())
        factors = np.full(int(counts.sum()), 1.0 / self.options.speed)
        starts = np.concatenate([[0], np.cumsum(counts)])
        for part in planned.parts:
            style = part.style
            factors[starts[part.start] : starts[part.end]] /= style.rate
            stretch = EMPHASIS.get(style.emphasis or "none", EMPHASIS["none"])[1]
            if stretch != 1.0:
                for word in part.words:
                    factors[starts[word.start] : starts[word.end]] *= stretch
        return _Work(planned, tokens, counts, factors)

    def render(self, work: _Work, out_frames: int | None = None) -> tuple[np.ndarray, list, list]:
        """Decode one fragment (warped where asked), apply its effects; audio and fragment-local timing."""
        planned = work.planned
        if work.tokens.numel() == 0:
            return np.zeros(0, np.float32), [], []
        speed = self.options.speed
        uniform = out_frames is None and bool(np.all(work.factors == 1.0 / speed))
        if uniform:  # SoVITS's own speed warp: upstream's samples
            frames = len(work.factors)
            out_frames = frames if speed == 1.0 else int(frames / speed) + 1
            audio = self.synth.decode_tokens(work.tokens, planned.fragment, self.voice_of(planned), self.options,
                                             self.generator)
        else:
            out_frames = out_frames or max(1, round(work.natural))
            positions = torch.from_numpy(warp_positions(work.factors, out_frames)).float()
            audio = self.synth.decode_tokens(work.tokens, planned.fragment, self.voice_of(planned), self.options,
                                             self.generator, frame_positions=positions)
        edges = output_edges(work.factors, out_frames)
        words, phones = fragment_timing(planned.phones, work.counts, edges, planned.words, self.frame_seconds, 0.0)
        return self.effects(audio, planned, words, phones), words, phones

    def voice_of(self, planned: PlannedFragment) -> Voice:
        """The Voice a fragment is spoken with (its emotion's GPT prompt; SoVITS's timbre is always `voice`'s)."""
        return self.voices.get(id(planned), self.voice)

    def effects(self, audio: np.ndarray, planned: PlannedFragment, words: list[WordTiming],
                phones: list[PhonemeTiming]) -> np.ndarray:
        """Loudness contour, then pitch (request, spans, emphasis; loudness kept), then gain (likewise)."""
        options = self.options
        if options.energy:
            audio = follow_contour(audio, self.rate, self.reference_levels(), options.energy,
                                   self.synth.sovits.config.hop_length, self._levels(audio))
        changes = []
        by_text = {id(span): timing for span, timing in zip(planned.words, words, strict=True)}
        for part in planned.parts:
            style = part.style
            if (style.volume or style.pitch) and part.end > part.start:
                changes.append(Change(phones[part.start].start, phones[part.end - 1].end, style.volume, style.pitch))
            gain, _, semitones = EMPHASIS.get(style.emphasis or "none", EMPHASIS["none"])
            if gain or semitones:
                for span in part.words:
                    timing = by_text.get(id(span))
                    if timing is None:
                        continue
                    changes.append(Change(timing.start, timing.end, gain, semitones))
        if options.pitch or any(c.semitones for c in changes):
            audio = shift_pitch(audio, self.rate, options.pitch, changes)
        if changes or options.volume:
            audio = apply_gain(audio, curve(len(audio), self.rate, changes, "gain_db", options.volume))
        return audio.astype(np.float32, copy=False)

    def reference_levels(self) -> np.ndarray:
        """dB per frame of the (first) reference clip, from its spectrogram."""
        if self._reference_levels is None:
            self._reference_levels = frame_levels(self.voice.specs[0][0].float().cpu().numpy())
        return self._reference_levels

    def _levels(self, audio: np.ndarray) -> np.ndarray:
        cfg = self.synth.sovits.config
        wave = torch.from_numpy(np.pad(audio, (0, cfg.filter_length)))
        return frame_levels(linear_spectrogram(wave, cfg.filter_length, cfg.hop_length, cfg.win_length)[0].numpy())

    def silence(self, seconds: float) -> np.ndarray:
        """`seconds` of silence at the output rate."""
        return np.zeros(int(round(seconds * self.rate)), np.float32)


def speak(synth: Synthesizer, text: str, lang: str, voice: Voice | EmotionVoice, options: SynthesisOptions,
          should_stop: StopCheck = None) -> Speech:
    """The whole utterance with word and phoneme timing."""
    routed = synth.routed(voice)
    plan, voices = plan_layout(synth, text, lang, options, routed)
    speaker = _Speaker(synth, routed.timbre, options, should_stop, voices)
    fragments = plan.fragments
    rendered: list[tuple[np.ndarray, list, list] | None] = [None] * len(fragments)
    if options.duration is not None:
        works = [speaker.analyse(f) for f in fragments]
        for index, frames in enumerate(_fit(speaker, plan, works)):
            rendered[index] = speaker.render(works[index], frames or None)
    else:
        order = range(len(fragments))
        if options.speed == 1.0:  # synthesize()'s order (upstream's bucketing): the same random draws
            order = sorted(order, key=lambda i: len(fragments[i].fragment.norm_text))
        for index in order:
            rendered[index] = speaker.render(speaker.analyse(fragments[index]))
    return _assemble(speaker, plan, rendered)


def stream_speech(synth: Synthesizer, text: str, lang: str, voice: Voice | EmotionVoice, options: SynthesisOptions,
                  should_stop: StopCheck = None) -> Iterator[SpeechChunk]:
    """Validate and plan now; then a generator of chunks (one per fragment, its pause included), each
    with the timing of the words it completes (seconds from the start of the stream)."""
    routed = synth.routed(voice)
    plan, voices = plan_layout(synth, text, lang, options, routed)
    speaker = _Speaker(synth, routed.timbre, options, should_stop, voices)

    def chunks() -> Iterator[SpeechChunk]:
        offset = 0
        if plan.lead:
            lead = speaker.silence(plan.lead)
            offset += len(lead)
            yield SpeechChunk(lead)
        frames = None
        works = None
        if options.duration is not None:  # every fragment's length must be known first
            works = [speaker.analyse(f) for f in plan.fragments]
            frames = _fit(speaker, plan, works)
        for index, planned in enumerate(plan.fragments):
            work = works[index] if works is not None else speaker.analyse(planned)
            audio, words, phones = speaker.render(work, frames[index] if frames else None)
            pause = _pause(speaker, plan, index, frames, works)
            shift = offset / speaker.rate
            yield SpeechChunk(np.concatenate([audio, pause]), _shifted(words, shift), _shifted(phones, shift))
            offset += len(audio) + len(pause)

    return chunks()


def _fit(speaker: _Speaker, plan: Layout, works: list[_Work]) -> list[int]:
    silence = plan.lead + sum(f.pause_after for f in plan.fragments)
    return fragment_frames([w.natural for w in works], silence, speaker.options.duration, speaker.frame_seconds)


def _pause(speaker: _Speaker, plan: Layout, index: int, frames: list[int] | None, works) -> np.ndarray:
    """The silence after fragment `index`; with a duration, the last one also takes up the rounding."""
    pause = speaker.silence(plan.fragments[index].pause_after)
    if frames is None or index != len(plan.fragments) - 1:
        return pause
    spf = speaker.synth.sovits.config.samples_per_frame
    total = int(round(speaker.options.duration * speaker.rate))
    before = len(speaker.silence(plan.lead)) + sum(len(speaker.silence(f.pause_after)) for f in plan.fragments[:-1])
    speech = sum(n * spf for n, w in zip(frames, works, strict=True) if w.tokens.numel())
    return np.zeros(max(0, total - before - speech), np.float32)


def _assemble(speaker: _Speaker, plan: Layout, rendered: list) -> Speech:
    pieces = [speaker.silence(plan.lead)]
    words: list[WordTiming] = []
    phones: list[PhonemeTiming] = []
    offset = len(pieces[0])
    frames = None
    if speaker.options.duration is not None:
        spf = speaker.synth.sovits.config.samples_per_frame
        frames = [len(audio) // spf for audio, _, _ in rendered]
    for index, (audio, fragment_words, fragment_phones) in enumerate(rendered):
        words += _shifted(fragment_words, offset / speaker.rate)
        phones += _shifted(fragment_phones, offset / speaker.rate)
        pause = speaker.silence(plan.fragments[index].pause_after)
        pieces += [audio, pause]
        offset += len(audio) + len(pause)
    audio = np.concatenate(pieces)
    if frames is not None:  # exact to the sample: the final silence takes up the rounding
        total = int(round(speaker.options.duration * speaker.rate))
        audio = np.pad(audio, (0, max(0, total - len(audio))))[:total]
    return Speech(audio, speaker.rate, words, phones)


def _shifted(timings: list, seconds: float) -> list:
    return [type(t)(*(getattr(t, f) for f in t.__dataclass_fields__ if f not in ("start", "end")),
                    t.start + seconds, t.end + seconds) for t in timings]
