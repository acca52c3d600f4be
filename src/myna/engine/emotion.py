"""Emotion routing: per piece of text, which clip prompts the GPT and which conditions SoVITS.

GPT-SoVITS takes two things from a reference clip. The GPT is prompted with the clip's semantic
tokens and its transcript's phonemes, and continues them: rhythm, pace, pitch movement and
emotion come from there. SoVITS takes the clip's spectrogram (its style vector `ge`, and on
v2Pro/v2ProPlus a speaker-verification embedding): who speaks. Routing gives each its own clip:

* the **timbre clip** (the voice's main clip, with `--aux-ref` clips) always conditions SoVITS;
* the **emotion clip** (the voice's reference with the asked label, or a one-off clip) prompts
  the GPT, so a calm voice can speak angrily and still be itself.

`emotion_strength` s in [0, 1.5] blends the two GPT prompts (myna.engine.emotion_decode):
s = 0 is the timbre clip alone (the output without an emotion, bit for bit), s = 1 the emotion
clip's prompt alone; otherwise both prompts are decoded in step and the next-token distribution
is p_timbre^(1-s) * p_emotion^s, normalized (s > 1 extrapolates away from the timbre prompt).

What is asked, per piece (myna.text.split's pieces): an inline tag (`[happy] ...`, until the next
tag) wins over `options.emotion` (a label, or `auto`: myna.text.emotion's classifier picks a label
per sentence). The labels found are then matched to the voice's references:

* a label the voice has -> that reference prompts the GPT;
* `neutral` without a neutral reference -> the main clip (it counts as neutral), no note;
* any other missing label -> the main clip, and a note saying so (never silently another emotion).

`plan_emotions` (text only, no models) makes that plan, so a server can report the notes before it
queues any work; `EmotionVoice.fragments` turns it into (fragment, voice) pairs for the Synthesizer's
plain path, `EmotionVoice.layout` does the same for SSML and prosody requests (myna.engine.expressive):
tags work inside SSML text too.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from myna.engine.plan import Layout
from myna.engine.textprep import Fragment
from myna.engine.voice import PromptMix, Voice
from myna.errors import InputError
from myna.text.emotion_markup import AUTO, parse_tags, tag_items
from myna.text.split import collapse_punctuation, split_text
from myna.text.ssml import Break, PlanItem
from myna.voices.references import EmotionReference

NEUTRAL = "neutral"
# myna.text.emotion reads zh, en and ja; the engine's text modes map onto them.
_CLASSIFIER_LANGUAGES = {"zh": "zh", "all_zh": "zh", "en": "en", "ja": "ja", "all_ja": "ja", "auto": "auto"}
PrepareVoice = Callable[[Path, str, str], Voice]  # Synthesizer.voice: clip, transcript, language -> Voice


@dataclass(frozen=True)
class EmotionPiece:
    """One piece of text to synthesize, the label asked for it and the reference label it gets."""

    text: str
    asked: str | None  # None: no emotion asked (the voice's main clip)
    label: str | None  # the reference used; None: the main clip
    source: str = "option"  # what asked: "tag", "option" or "classifier"


@dataclass
class EmotionPlan:
    """The pieces of a text with their emotions, and notes for the user (fallbacks)."""

    pieces: list[EmotionPiece]
    notes: list[str] = field(default_factory=list)

    def labels(self) -> set[str]:
        """The reference labels the plan uses."""
        return {piece.label for piece in self.pieces if piece.label is not None}


def plan_emotions(text: str, lang: str, split: str, emotion: str | None, labels: Collection[str]) -> EmotionPlan:
    """Cut `text` as the engine does and give each piece its emotion; `labels`: the voice's reference labels.

    Without tags and with `emotion` None every piece keeps the main clip, and the pieces are
    exactly those the engine cuts without routing.
    """
    pieces: list[EmotionPiece] = []
    for run in parse_tags(text):
        pieces += _asked(split_text(collapse_punctuation(run.text), lang, split), run.label, emotion, lang)
    return _route(pieces, labels)


def _asked(texts: list[str], tag: str | None, emotion: str | None, lang: str) -> list[EmotionPiece]:
    """The pieces of one tagged run with the label asked for each (the tag, else the option; auto: classified)."""
    asked, source = (tag, "tag") if tag is not None else (emotion, "option")
    if asked != AUTO:
        return [EmotionPiece(text, asked, None, source) for text in texts]
    from myna.text.emotion import classify_pieces

    guesses = classify_pieces(texts, _CLASSIFIER_LANGUAGES.get(lang, "auto"))
    return [EmotionPiece(text, guess.label, None, "classifier") for text, guess in zip(texts, guesses, strict=True)]


def _route(pieces: list[EmotionPiece], labels: Collection[str]) -> EmotionPlan:
    """Give each piece the reference of its label, or the main clip (with a note unless neutral)."""
    routed = [replace(piece, label=piece.asked if piece.asked in labels else None) for piece in pieces]
    missing = Counter((p.asked, p.source) for p in routed if p.asked not in (None, NEUTRAL) and p.label is None)
    how = {"tag": "by a tag", "option": "by the request", "classifier": "by the text classifier (auto)"}
    notes = [
        f"no {asked!r} emotion reference for this voice: {count} piece{'s' if count > 1 else ''} asked for "
        f"{how[source]} used the voice's main clip instead; add a reference labelled {asked!r} to the voice"
        for (asked, source), count in missing.items()
    ]
    return EmotionPlan(routed, notes)


class EmotionVoice:
    """A voice with emotion references: its timbre voice, and a GPT prompt per label (prepared on first use).

    Make one with `Synthesizer.with_references` and pass it to `synthesize` / `stream` / `speak` /
    `stream_speech` in place of a `Voice`; after each call `notes` holds what the user should know
    (labels the voice lacks, trimmed clips).
    """

    def __init__(self, timbre: Voice, references: Sequence[EmotionReference], prepare: PrepareVoice) -> None:
        self.timbre = timbre
        self.references = {ref.emotion: ref for ref in references}  # a later one with a label wins
        self.prepare = prepare
        self.notes: list[str] = []

    @property
    def labels(self) -> set[str]:
        """The labels of its references."""
        return set(self.references)

    def voice_for(self, label: str | None, strength: float) -> Voice:
        """The Voice for a piece: SoVITS always gets the timbre clip, the GPT the prompt `strength` asks for."""
        if label is None or strength == 0.0:
            return self.timbre
        ref = self.references[label]
        prompted = self.prepare(ref.clip, ref.text, ref.lang)
        self.notes += [note for note in prompted.notes if note not in self.notes]
        if strength == 1.0:
            return replace(self.timbre, semantic=prompted.semantic, prompt=prompted.prompt, notes=[], mix=None)
        return replace(self.timbre, notes=[], mix=PromptMix(prompted.semantic, prompted.prompt, strength))

    def fragments(self, text: str, lang: str, split: str, emotion: str | None, strength: float,
                  fragment_of: Callable[[str], Fragment | None], mixing: bool = True) -> list[tuple[Fragment, Voice]]:
        """The fragments of plain `text` (`fragment_of` phonemizes a piece), each with its Voice; `notes` is reset.

        `mixing` False (a batched GPT) refuses strengths that would decode two prompts at once.
        """
        plan = plan_emotions(text, lang, split, emotion, self.labels)
        voices = self._voices(plan, strength, mixing)
        pairs = []
        for piece in plan.pieces:
            fragment = fragment_of(piece.text)
            if fragment is not None:
                pairs.append((fragment, voices[piece.label]))
        return pairs

    def layout(self, items: list[PlanItem], lang: str, emotion: str | None, strength: float,
               make_layout: Callable[[list[PlanItem]], Layout], mixing: bool = True) -> tuple[Layout, dict[int, Voice]]:
        """A plan's layout (myna.engine.plan, via `make_layout`) cut at its tags, and each fragment's Voice by id.

        Each tagged group is laid out alone and the layouts joined as one would have been: a tag ends
        a fragment, and breaks keep their place. Without tags the layout is `make_layout(items)`.
        """
        parts, pieces = [], []
        for tag, group in tag_items(items):
            part = make_layout(group)
            pieces += _asked([planned.fragment.norm_text for planned in part.fragments], tag, emotion, lang)
            parts.append((part, isinstance(group[-1], Break)))
        plan = _route(pieces, self.labels)
        voices = self._voices(plan, strength, mixing)
        joined = _join_layouts(parts)
        return joined, {id(planned): voices[piece.label]
                        for planned, piece in zip(joined.fragments, plan.pieces, strict=True)}

    def _voices(self, plan: EmotionPlan, strength: float, mixing: bool) -> dict[str | None, Voice]:
        """The Voice of every label the plan uses (None: the timbre voice); `notes` becomes the plan's."""
        self.notes = list(plan.notes)
        if not mixing and strength not in (0.0, 1.0) and plan.labels():
            raise InputError(f"emotion_strength {strength:g} mixes two GPT prompts, which batched decoding "
                             "(--batch-size above 1) does not do; use 0 or 1, or serve with --batch-size 1")
        return {label: self.voice_for(label, strength) for label in {piece.label for piece in plan.pieces}}


def _join_layouts(parts: list[tuple[Layout, bool]]) -> Layout:
    """Layouts of consecutive groups as one: a group's leading breaks replace the pause before it, as a
    break inside one layout does (added to it when the group before also ended with a break)."""
    joined = Layout(0.0)
    replaced = False
    for part, ends_with_break in parts:
        if not joined.fragments:
            joined.lead += part.lead
        elif part.lead:
            last = joined.fragments[-1]
            last.pause_after = (last.pause_after if replaced else 0.0) + part.lead
        joined.fragments += part.fragments
        replaced = ends_with_break
    return joined
