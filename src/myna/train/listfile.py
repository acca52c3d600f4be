"""Upstream GPT-SoVITS's transcript list: one utterance per line, `audio path|speaker|LANG|text`.

Upstream's ASR tools write the language upper-case (`ZH`, `EN`, `JA`, also `KO`, `YUE`); its dataset
scripts accept several spellings of each (`JP`, `ja`, `En`, ...). myna writes the upper-case codes and
reads every spelling upstream reads; utterances in languages without a myna text front-end are
reported instead of read. Relative audio paths are resolved against the list's own folder.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from myna.atomic import atomic_write
from myna.errors import InputError
from myna.text.frontend import LANGUAGES

# Every spelling upstream's 1-get-text.py accepts, mapped to its language.
_SPELLINGS = {
    "ZH": "zh", "zh": "zh",
    "JP": "ja", "jp": "ja", "JA": "ja", "ja": "ja",
    "EN": "en", "en": "en", "En": "en",
    "KO": "ko", "Ko": "ko", "ko": "ko",
    "yue": "yue", "YUE": "yue", "Yue": "yue",
}
_WRITTEN = {"zh": "ZH", "ja": "JA", "en": "EN", "ko": "KO", "yue": "YUE"}


@dataclass(frozen=True)
class ListEntry:
    """One utterance of a transcript list; `lang` is myna's code (zh, en, ja)."""

    audio: Path
    speaker: str
    lang: str
    text: str

    def line(self) -> str:
        """The entry as one `.list` line."""
        return f"{self.audio}|{self.speaker}|{_WRITTEN[self.lang]}|{self.text}"


def language_code(spelling: str) -> str:
    """myna's language code for an upstream list spelling (or whisper code); InputError if unusable."""
    lang = _SPELLINGS.get(spelling.strip(), spelling.strip().lower())
    if lang not in LANGUAGES:
        raise InputError(
            f"language {spelling!r} is not supported for training (myna's text front-end covers "
            f"{', '.join(code.upper() for code in LANGUAGES)})"
        )
    return lang


def read_list(path: str | Path) -> tuple[list[ListEntry], list[tuple[int, str]]]:
    """Entries of a `.list` file, and (line number, reason) for each line that could not be used."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read the transcript list ({exc}); it must be UTF-8 text") from exc
    entries: list[ListEntry] = []
    problems: list[tuple[int, str]] = []
    for number, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split("|")
        if len(fields) != 4:
            problems.append((number, f"expected 4 fields 'path|speaker|LANG|text', found {len(fields)}"))
            continue
        audio, speaker, spelling, text = (field.strip() for field in fields)
        try:
            lang = language_code(spelling)
        except InputError as exc:
            problems.append((number, str(exc)))
            continue
        if not text:
            problems.append((number, "the transcript is empty"))
            continue
        audio_path = Path(audio)
        if not audio_path.is_absolute():
            audio_path = path.parent / audio_path
        entries.append(ListEntry(audio_path, speaker, lang, text))
    return entries, problems


def write_list(path: str | Path, entries: Iterable[ListEntry]) -> Path:
    """Write entries as a `.list` file atomically (a temporary file renamed into place)."""
    path = Path(path)
    lines = []
    for entry in entries:
        if "|" in entry.text or "\n" in entry.text or "|" in entry.speaker:
            raise InputError(f"{entry.audio}: '|' and line breaks cannot appear in a .list speaker or text")
        lines.append(entry.line())
    atomic_write(path, "\n".join(lines) + ("\n" if lines else ""), parents=True)
    return path


