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
queues any work; `EmotionVoice.fragments` turns it into (fragment, voice) pairs for the Synthesizer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from myna.engine.textprep import Fragment
from myna.engine.voice import PromptMix, Voice
from myna.errors import InputError
from myna.text.emotion_markup import AUTO, parse_tags
from myna.text.split import collapse_punctuation, split_text
from myna.voices.references import EmotionReference

NEUTRAL = "neutral"
MAX_STRENGTH = 1.5
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
        asked, source = (run.label, "tag") if run.label is not None else (emotion, "option")
        cut = split_text(collapse_punctuation(run.text), lang, split)
        if asked == AUTO:
            from myna.text.emotion import classify_pieces

            guesses = classify_pieces(cut, _CLASSIFIER_LANGUAGES.get(lang, "auto"))
            pieces += [EmotionPiece(piece, guess.label, None, "classifier") for piece, guess in zip(cut, guesses, strict=True)]
        else:
            pieces += [EmotionPiece(piece, asked, None, source) for piece in cut]
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

    Make one with `Synthesizer.with_references` and pass it to `synthesize` / `stream` in place of a
    `Voice`; after each call `notes` holds what the user should know (labels the voice lacks,
    trimmed clips).
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
        """The fragments of `text` (`fragment_of` phonemizes a piece), each with its Voice; `notes` is reset.

        `mixing` False (a batched GPT) refuses strengths that would decode two prompts at once.
        """
        plan = plan_emotions(text, lang, split, emotion, self.labels)
        self.notes = list(plan.notes)
        if not mixing and strength not in (0.0, 1.0) and plan.labels():
            raise InputError(f"emotion_strength {strength:g} mixes two GPT prompts, which batched decoding "
                             "(--batch-size above 1) does not do; use 0 or 1, or serve with --batch-size 1")
        voices: dict[str | None, Voice] = {}
        pairs = []
        for piece in plan.pieces:
            fragment = fragment_of(piece.text)
            if fragment is None:
                continue
            if piece.label not in voices:
                voices[piece.label] = self.voice_for(piece.label, strength)
            pairs.append((fragment, voices[piece.label]))
        return pairs
