"""Finding the audio files a dataset is made of (each is decoded by `myna.audio.decode.decode`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

AUDIO_SUFFIXES = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".aac")
LIST_SUFFIX = ".list"


def find_inputs(inputs: Iterable[str | Path]) -> tuple[list[Path], list[Path], list[tuple[Path, str]]]:
    """Split INPUT arguments into audio files, `.list` files and (path, reason) for unusable ones.

    Folders are searched recursively for audio files (sorted, so runs are reproducible).
    """
    audio: list[Path] = []
    lists: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for item in inputs:
        path = Path(item)
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
            if not found:
                skipped.append((path, f"the folder holds no audio files ({', '.join(AUDIO_SUFFIXES)})"))
            audio.extend(found)
        elif not path.is_file():
            skipped.append((path, "no such file or folder"))
        elif path.suffix.lower() == LIST_SUFFIX:
            lists.append(path)
        elif path.suffix.lower() in AUDIO_SUFFIXES:
            audio.append(path)
        else:
            skipped.append((path, f"not an audio file ({', '.join(AUDIO_SUFFIXES)}) or a .list transcript"))
    return audio, lists, skipped
