"""Text -> the sparse features the emotion model weighs: cues, punctuation, shape, n-grams.

Feature names are stable strings (they key the weights in data/model.json):
- `cue:LABEL` / `neg:LABEL`: how many cues of LABEL matched, plain (1.5 when intensified) or negated;
- `w:LANG:CUE` / `nw:LANG:CUE`: that particular cue, plain or negated (its own weight, learnt where
  the training sentences use it);
- `p:...`: punctuation (`!`, `?`, `?!`, an ellipsis, a tilde, a final mark, stage directions);
- `s:...`: shape (an intensifier anywhere, digits or counted quantities, an all-capitals word, no
  cue at all, short or long);
- `g:LANG:..`: character bigrams (zh, ja) or word uni/bigrams (en), the model's view beyond the
  lexicons.
"""

from __future__ import annotations

import re
import unicodedata

from myna.text.emotion.cues import CueMatch, lexicon

LANGUAGES = ("zh", "en", "ja")

_KANA = re.compile(r"[\u3041-\u309f\u30a1-\u30fa\u30fc]")
_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_LATIN_WORD = re.compile(r"[A-Za-z]{2,}")
_CAPS_WORD = re.compile(r"\b[A-Z]{3,}\b")
_DIGITS = re.compile(r"\d")
# A number written in Chinese characters followed by a counter or unit: 十八度, 三点, 四十二亿.
_HAN_QUANTITY = re.compile(r"[零一二三四五六七八九十百千万两〇]+[点時时分号號月日年度元円岁歳億亿万%％番階层層件人]")
_EN_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
_CJK_RUN = re.compile(r"[\u3041-\u309f\u30a1-\u30fa\u30fc\u3400-\u4dbf\u4e00-\u9fff]+")
_STAGE_DIRECTION = re.compile(r"^\s*[(（\[*][^)）\]*]{1,30}[)）\]*]")
_CUE_CAP = 3.0


def normalize(text: str) -> str:
    """NFKC (full-width marks and letters become ASCII, half-width kana full-width), lowercased."""
    return unicodedata.normalize("NFKC", text).lower()


def detect_language(text: str) -> str:
    """zh, en or ja from the script alone: any kana -> ja, else any Han character -> zh, else en."""
    if _KANA.search(text):
        return "ja"
    if _HAN.search(text):
        return "zh"
    return "en"


def matched_cues(text: str, lang: str) -> list[tuple[str, CueMatch]]:
    """Cue matches in normalized `text` read as `lang`, with the lexicon each came from.

    English words inside Chinese or Japanese text are read with the English lexicon, kana inside
    text declared Chinese with the Japanese one, Chinese characters in text declared English with
    the Chinese one; emoji and emoticons count in every language.
    """
    lexicons = [lang, "any"]
    if lang != "en" and _LATIN_WORD.search(text):
        lexicons.append("en")
    if lang != "ja" and _KANA.search(text):
        lexicons.append("ja")
    elif lang == "en" and _HAN.search(text):
        lexicons.append("zh")
    found: list[tuple[str, CueMatch]] = []
    for name in lexicons:
        found.extend((name, match) for match in lexicon(name).match(text))
    return found


def _add(features: dict[str, float], name: str, value: float = 1.0) -> None:
    features[name] = features.get(name, 0.0) + value


def _punctuation(text: str, features: dict[str, float]) -> None:
    stripped = text.rstrip()
    if "!" in text:
        _add(features, "p:!")
        if text.count("!") > 1:
            _add(features, "p:!!")
    if "?" in text:
        _add(features, "p:?")
    if "?!" in text or "!?" in text:
        _add(features, "p:?!")
    if "..." in text or "…" in text or "。。" in text:
        _add(features, "p:...")
    if "~" in text or "〜" in text:
        _add(features, "p:~")
    if stripped:
        last = stripped[-1]
        if last in "!?":
            _add(features, f"p:end{last}")
        elif last in ".。":
            _add(features, "p:end.")
    if _STAGE_DIRECTION.match(text):
        _add(features, "p:stage")


def _ngrams(text: str, lang: str, features: dict[str, float]) -> None:
    if lang == "en":
        words = _EN_WORD.findall(text.replace("’", "'"))
        for word in words:
            features[f"g:en:{word}"] = 1.0
        for first, second in zip(words, words[1:], strict=False):
            features[f"g:en:{first}_{second}"] = 1.0
        return
    for run in _CJK_RUN.findall(text):
        for start in range(len(run) - 1):
            features[f"g:{lang}:{run[start:start + 2]}"] = 1.0


def extract(text: str, lang: str, ngrams: bool = True) -> dict[str, float]:
    """The feature vector of one sentence (or any short text) read as `lang`."""
    raw = text
    text = normalize(text)
    features: dict[str, float] = {}
    emotional = False
    intensifiers = 0
    for source, match in matched_cues(text, lang):
        weight = 1.5 if match.intensified and not match.negated else 1.0
        intensifiers += match.intensified
        kind = "neg" if match.negated else "cue"
        for label in match.labels:
            if label == "whisper":
                continue
            _add(features, f"{kind}:{label}", weight)
            emotional = emotional or label != "neutral"
        features[f"{'nw' if match.negated else 'w'}:{source}:{match.cue}"] = 1.0
    for name, value in list(features.items()):
        if name.startswith(("cue:", "neg:")):
            features[name] = min(value, _CUE_CAP)
    _punctuation(text, features)
    if intensifiers:
        _add(features, "s:intensified")
    if _DIGITS.search(text) or _HAN_QUANTITY.search(text):
        _add(features, "s:quantity")
    if _CAPS_WORD.search(raw):
        _add(features, "s:caps")
    if not emotional:
        _add(features, "s:nocue")
    length = len(_EN_WORD.findall(text)) if lang == "en" else len(text)
    _add(features, "s:short" if length <= (4 if lang == "en" else 6) else "s:long")
    features[f"s:lang:{lang}"] = 1.0
    if ngrams:
        _ngrams(text, lang, features)
    return features
