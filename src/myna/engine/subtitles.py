"""Word timing -> subtitle files (SubRip .srt, WebVTT .vtt) and the JSON timestamps sidecar.

Words are grouped into cues at pauses (a silence of `GAP_SECONDS` or more between words) and when a
cue would grow past `MAX_CUE_CHARS`, so cues follow the speech's phrases.
"""

from __future__ import annotations

import json
from pathlib import Path

from myna.engine.timing import Speech, WordTiming
from myna.errors import InputError

GAP_SECONDS = 0.25
MAX_CUE_CHARS = 42
FORMATS = ("srt", "vtt")


def cues(words: list[WordTiming]) -> list[tuple[float, float, str]]:
    """(start, end, text) cues from word timing, split at pauses and at `MAX_CUE_CHARS`."""
    groups: list[list[WordTiming]] = []
    for word in words:
        if groups:
            last = groups[-1]
            text = _join([w.text for w in last] + [word.text])
            if word.start - last[-1].end < GAP_SECONDS and len(text) <= MAX_CUE_CHARS:
                last.append(word)
                continue
        groups.append([word])
    return [(g[0].start, g[-1].end, _join([w.text for w in g])) for g in groups]


def _join(texts: list[str]) -> str:
    """Words joined as written: a space between two alphabetic words, none next to CJK characters."""
    out = ""
    for text in texts:
        if out and (out[-1].isascii() and out[-1].isalnum()) and (text[:1].isascii() and text[:1].isalnum()):
            out += " "
        out += text
    return out


def _clock(seconds: float, separator: str) -> str:
    millis = max(0, int(round(seconds * 1000)))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def to_srt(words: list[WordTiming]) -> str:
    """SubRip text: numbered cues with `HH:MM:SS,mmm --> HH:MM:SS,mmm` times."""
    blocks = [f"{i}\n{_clock(a, ',')} --> {_clock(b, ',')}\n{text}\n" for i, (a, b, text) in enumerate(cues(words), 1)]
    return "\n".join(blocks)


def to_vtt(words: list[WordTiming]) -> str:
    """WebVTT text: the `WEBVTT` header, then cues with `HH:MM:SS.mmm --> HH:MM:SS.mmm` times."""
    blocks = [f"{_clock(a, '.')} --> {_clock(b, '.')}\n{text}\n" for a, b, text in cues(words)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def subtitle_format(path: str | Path) -> str:
    """The subtitle format a file name asks for (by its extension), or an error naming the choices."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FORMATS:
        raise InputError(f"{path}: subtitles are written as .srt or .vtt; name the file with one of those")
    return suffix


def write_subtitles(path: str | Path, speech: Speech) -> None:
    """Write `speech`'s words as .srt or .vtt, chosen by the file's extension."""
    text = to_srt(speech.words) if subtitle_format(path) == "srt" else to_vtt(speech.words)
    Path(path).write_text(text, encoding="utf-8")


def write_timestamps(path: str | Path, speech: Speech) -> None:
    """Write the JSON timestamps sidecar (`Speech.timing_dict`)."""
    Path(path).write_text(json.dumps(speech.timing_dict(), ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
