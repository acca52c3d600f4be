"""Offline text emotion classifier (zh, en, ja): which emotion label suits a sentence.

`classify(text, lang)` gives an `EmotionGuess` (label, confidence, a score per label);
`classify_sentences(text, lang)` cuts text into sentences and guesses each; `classify_pieces(pieces,
lang)` labels the pieces the engine synthesizes, reading the pieces of one sentence together.

How it decides: cue lexicons written for myna (data/cues_*.txt: emotion words and phrases,
interjections, emoji, with negation and intensifiers per language) and punctuation give features
that a multinomial logistic regression, trained on sentences written for myna (`python -m
myna.train.emotion_text`), turns into probabilities over neutral, happy, sad, angry, surprised,
fearful and calm. `whisper` is a speaking style text rarely shows, so it is chosen only from an
explicit cue: a whisper verb or stage direction ("whispered", "(whispering)", 小声, 囁いた), a hush
("shh", "psst", 嘘 in Chinese, しーっ), "keep your voice down", or telling a secret ("between you
and me", 别告诉别人, ここだけの話). Deterministic, no network, no torch: plain Python over small
bundled files.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from myna.errors import UnsupportedLanguageError
from myna.text.emotion.features import LANGUAGES, detect_language, extract, matched_cues, normalize
from myna.text.emotion.model import EmotionModel, bundled_model
from myna.text.split import SENTENCE_MARKS

LABELS = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "calm", "whisper")
# The score `whisper` gets when an explicit cue asks for it; the model's scores share the rest.
WHISPER_SCORE = 0.8

# Sentence-final marks among myna.text.split's sentence marks (the others end clauses only).
_FINAL_MARKS = "".join(sorted(SENTENCE_MARKS - set(",，:：—"))) + "！？"
_CLOSERS = "\"'”’」』)）]】》〉"
_SENTENCE = re.compile(rf"[^{re.escape(_FINAL_MARKS)}]*(?:[{re.escape(_FINAL_MARKS)}]+[{re.escape(_CLOSERS)}]*|$)")
_ABBREVIATION = re.compile(r"(?:^|\s)(?:mr|mrs|ms|dr|prof|st|mt|jr|sr|vs|etc|e\.g|i\.e|no)\.$", re.IGNORECASE)


@dataclass(frozen=True)
class EmotionGuess:
    """The label chosen for a text, its probability, and the probability of every label."""

    label: str
    confidence: float
    scores: dict[str, float]


@dataclass(frozen=True)
class SentenceEmotion:
    """One sentence of a longer text and the guess for it."""

    text: str
    guess: EmotionGuess


def _check_language(lang: str, text: str) -> str:
    if lang == "auto":
        return detect_language(text)
    if lang not in LANGUAGES:
        raise UnsupportedLanguageError(f"emotion classification reads zh, en, ja or auto, not {lang!r}")
    return lang


def _neutral() -> EmotionGuess:
    return EmotionGuess("neutral", 1.0, {label: float(label == "neutral") for label in LABELS})


def classify(text: str, lang: str = "auto", model: EmotionModel | None = None) -> EmotionGuess:
    """Guess the emotion of one sentence (or a short text) in zh, en or ja (`auto`: by script)."""
    lang = _check_language(lang, text)
    normalized = normalize(text)
    cues = matched_cues(normalized, lang)
    if not cues and not any(char.isalnum() for char in normalized):
        return _neutral()  # empty, blank or punctuation only: nothing to read
    model = model or bundled_model()
    probabilities = model.probabilities(extract(text, lang, ngrams=model.ngrams))
    scores = {label: probabilities.get(label, 0.0) for label in LABELS}
    if any("whisper" in match.labels and not match.negated for _, match in cues):
        scores = {label: score * (1.0 - WHISPER_SCORE) for label, score in scores.items()}
        scores["whisper"] = WHISPER_SCORE
    label = max(LABELS, key=lambda name: scores[name])  # ties go to the earlier label (neutral first)
    return EmotionGuess(label, scores[label], scores)


def _ends_sentence(sentence: str, rest: str) -> bool:
    if rest.lstrip()[:1].islower():
        return False  # "Run!" she shouted. / e.g. this
    if sentence.endswith(("」", "』")) and rest.startswith(("と", "って")):
        return False  # 「逃げて！」と叫んだ。
    sentence = sentence.rstrip(_CLOSERS)
    if not sentence.endswith("."):
        return True
    if len(sentence) > 1 and sentence[-2].isdigit() and rest[:1].isdigit():
        return False  # a decimal point: 3.5
    return not _ABBREVIATION.search(sentence)


def cut_sentences(text: str) -> list[str]:
    """Cut text after its sentence-final marks (those of myna.text.split), keeping every character.

    A mark inside a number (3.5), after an abbreviation (Dr.) or before a lowercase word ("Run!"
    she said) does not end the sentence; closing quotes and brackets stay with it.
    """
    pieces = [piece for piece in _SENTENCE.findall(text) if piece]
    sentences: list[str] = []
    current = ""
    for index, piece in enumerate(pieces):
        current += piece
        rest = "".join(pieces[index + 1:index + 2])
        if _ends_sentence(current, rest):
            sentences.append(current)
            current = ""
    if current:
        sentences.append(current)
    return [sentence.strip() for sentence in sentences if sentence.strip()]


def classify_sentences(text: str, lang: str = "auto", model: EmotionModel | None = None) -> list[SentenceEmotion]:
    """Cut `text` into sentences and guess each one's emotion (`auto` decides the language once)."""
    lang = _check_language(lang, text)
    return [SentenceEmotion(sentence, classify(sentence, lang, model)) for sentence in cut_sentences(text)]


def classify_pieces(pieces: Sequence[str], lang: str = "auto",
                    model: EmotionModel | None = None) -> list[EmotionGuess]:
    """One guess per piece to synthesize; consecutive pieces that form one sentence share it.

    A piece closes its sentence when it ends with a sentence-final mark, so clause-sized pieces
    (myna's `punctuation` cut) are read with the rest of their sentence.
    """
    lang = _check_language(lang, "".join(pieces))
    guesses: list[EmotionGuess] = []
    group: list[str] = []
    for index, piece in enumerate(pieces):
        group.append(piece)
        last = piece.rstrip().rstrip(_CLOSERS)[-1:]
        closes = bool(last) and last in _FINAL_MARKS
        if closes or index == len(pieces) - 1:
            guess = classify("".join(group), lang, model)
            guesses.extend(guess for _ in group)
            group = []
    return guesses


__all__ = ["LABELS", "WHISPER_SCORE", "EmotionGuess", "SentenceEmotion", "classify", "classify_pieces",
           "classify_sentences", "cut_sentences"]
