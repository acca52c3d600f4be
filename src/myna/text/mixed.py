"""Mixed-language text -> phonemes, with upstream GPT-SoVITS's language modes (api_v2 `text_lang`).

Modes:
- `all_zh` / `all_ja`: the whole text in one language (English letters segmented out only where
  upstream's segmenter marks them as English).
- `zh` / `ja`: that language plus English: runs the segmenter finds to be English are phonemized
  as English, everything else in the given language.
- `en`: the whole text as English.
- `auto`: every segment in the language the segmenter detects.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from myna.errors import UnsupportedLanguageError
from myna.text import symbols as sym
from myna.text.frontend import Phonemes, clean_input, g2p

if TYPE_CHECKING:
    from myna.text.zh.g2pw import G2PW

MODES = ("auto", "zh", "ja", "en", "all_zh", "all_ja")
# Fewer phonemes than this in total and upstream phonemizes the text again with a "." in front.
_MIN_PHONES = 6
_SPACE_RUN = re.compile(r" {2,}")


def check_mode(mode: str) -> str:
    """Return `mode` if it is a supported language mode, else raise."""
    if mode not in MODES:
        raise UnsupportedLanguageError(f"unsupported language mode {mode!r}; expected one of {', '.join(MODES)}")
    return mode


def language_segments(text: str, mode: str) -> list[tuple[str, str]]:
    """Split `text` into (language, text) runs the way upstream assigns languages in `mode`."""
    from myna.text import langseg

    check_mode(mode)
    if mode == "en":
        return [("en", text)]
    if mode in ("all_zh", "all_ja"):
        return langseg.segment(text, mode.removeprefix("all_"))
    if mode == "auto":
        return langseg.segment(text)
    runs: list[tuple[str, str]] = []
    for lang, part in langseg.segment(text):
        lang = "en" if lang == "en" else mode
        if runs and runs[-1][0] == lang:
            runs[-1] = (lang, runs[-1][1] + part)
        else:
            runs.append((lang, part))
    return runs


def g2p_mixed(text: str, mode: str, version: str = "v2", polyphones: G2PW | None = None) -> Phonemes:
    """Phonemize possibly mixed-language `text`; the result's `segments` hold each language run.

    `polyphones`: an optional g2pW predictor for the Chinese runs (see `myna.text.g2p`).
    """
    check_mode(mode)
    sym.check_version(version)
    text = _SPACE_RUN.sub(" ", clean_input(text))
    result = _phonemize_runs(text, mode, version, polyphones)
    if len(result.phones) < _MIN_PHONES:
        result = _phonemize_runs("." + text, mode, version, polyphones)
    return result


def _phonemize_runs(text: str, mode: str, version: str, polyphones: G2PW | None) -> Phonemes:
    segments = []
    for lang, part in language_segments(text, mode):
        if lang not in ("zh", "en", "ja"):
            raise UnsupportedLanguageError(
                f"the text contains {lang!r} ({part!r}), which myna cannot phonemize; "
                "remove it or choose a mode that reads it as zh, ja or en"
            )
        segments.append(g2p(part, lang, version, polyphones if lang == "zh" else None))
    phones = [p for s in segments for p in s.phones]
    ids = [i for s in segments for i in s.ids]
    word2ph = None
    if segments and all(s.word2ph is not None for s in segments):
        word2ph = [n for s in segments for n in s.word2ph]
    norm_text = "".join(s.norm_text for s in segments)
    language = segments[0].language if len({s.language for s in segments}) == 1 else "mixed"
    return Phonemes(phones, ids, word2ph, norm_text, language, version, segments)
