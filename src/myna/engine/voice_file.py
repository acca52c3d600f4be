"""`voice.json`: the one description of a voice on disk (its model files, a reference clip, languages).

Every voice folder has one: a voice trained with `myna train` (DATA_DIR/trained/NAME/), the default
voice (`myna/assets/default/`) and any folder `MYNA_DEFAULT_VOICE` names.

    {"name": "anna", "version": "v2", "gpt": "anna_s1.ckpt", "sovits": "anna_s2.pth",
     "hubert": "/models/chinese-hubert-base", "bert": "/models/chinese-roberta-wwm-ext-large", "sv": null,
     "ref": "work/prepared/wavs/0003.wav", "ref_text": "...", "ref_lang": "en", "lang": null,
     "notice": null, "encoders": null}

Files inside the folder are written relative to it, so the folder can be moved or copied whole; files
elsewhere (the base model's HuBERT and BERT folders, a clip from the user's `.list`) stay absolute.
`lang` is the text language `say` assumes when `--lang` is not given; `notice` a line `say` prints
whenever it speaks with the voice; `encoders` what a voice trained with `--preset` reads instead of
HuBERT and a speaker-verification model (informational: the SoVITS file records them too).
Older files are read as well: absolute paths everywhere, and `content`/`speaker`/`preset` as
top-level keys instead of `encoders`.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from myna.atomic import atomic_write
from myna.errors import InputError

VOICE_FILE = "voice.json"
PATH_KEYS = ("gpt", "sovits", "hubert", "bert", "sv", "ref")
TEXT_KEYS = ("name", "version", "ref_text", "ref_lang", "lang", "notice")
_OLD_ENCODER_KEYS = ("content", "speaker", "preset")  # top-level in voice.json files written before `encoders`


@dataclass(frozen=True)
class VoiceFile:
    """What a voice.json says, paths absolute (resolved against the voice folder)."""

    gpt: Path
    sovits: Path
    hubert: Path | None = None
    bert: Path | None = None
    sv: Path | None = None
    ref: Path | None = None
    ref_text: str | None = None
    ref_lang: str | None = None
    lang: str | None = None
    name: str | None = None
    version: str | None = None
    notice: str | None = None
    encoders: dict[str, str] | None = None

    @classmethod
    def from_dict(cls, record: Any, root: str | Path, source: str = VOICE_FILE) -> VoiceFile:
        """Parse a voice.json object; relative paths are taken from `root`. `source` names the file in errors."""
        if not isinstance(record, dict):
            raise InputError(f"{source}: expected a JSON object")
        values: dict[str, Any] = {}
        for key in PATH_KEYS:
            value = record.get(key)
            if value in (None, ""):
                if key in ("gpt", "sovits"):
                    raise InputError(f"{source}: no {key!r} entry")
                continue
            if not isinstance(value, str):
                raise InputError(f"{source}: {key!r} must be a path (a string), got {value!r}")
            path = Path(value)
            values[key] = path if path.is_absolute() else (Path(root) / path).resolve()
        for key in TEXT_KEYS:
            value = record.get(key)
            if value is not None and not isinstance(value, str):
                raise InputError(f"{source}: {key!r} must be a string, got {value!r}")
            values[key] = value or None
        encoders = record.get("encoders")
        if encoders is None and any(record.get(key) for key in _OLD_ENCODER_KEYS):
            encoders = {key: record[key] for key in _OLD_ENCODER_KEYS if record.get(key)}
        if encoders is not None and not (isinstance(encoders, dict)
                                         and all(isinstance(v, str) for v in encoders.values())):
            raise InputError(f"{source}: 'encoders' must map names to strings, got {encoders!r}")
        return cls(**values, encoders=encoders)

    def to_dict(self, root: str | Path) -> dict[str, Any]:
        """The voice.json object for a file in folder `root`: paths inside it relative, others absolute."""
        base = Path(os.path.abspath(root))
        record: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name in PATH_KEYS and value is not None:
                absolute = Path(os.path.abspath(value))
                value = absolute.relative_to(base).as_posix() if absolute.is_relative_to(base) else str(absolute)
            record[item.name] = value
        return record

    def missing_files(self) -> list[tuple[str, Path]]:
        """(key, path) of every named file or folder that does not exist."""
        return [(key, path) for key in PATH_KEYS if (path := getattr(self, key)) is not None and not path.exists()]


def read_voice_file(folder: str | Path, check_files: bool = True) -> VoiceFile:
    """The voice.json in `folder`; InputError says what is wrong (and, with `check_files`, what is missing)."""
    manifest = Path(folder) / VOICE_FILE
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{Path(folder)} is not a voice folder ({manifest} is missing)") from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{manifest}: not a readable voice manifest ({exc})") from None
    voice = VoiceFile.from_dict(record, folder, str(manifest))
    if check_files:
        for key, path in voice.missing_files():
            raise InputError(f"{manifest}: {key} file {path} is missing")
    return voice


def write_voice_file(folder: str | Path, voice: VoiceFile) -> Path:
    """Write `voice` as `folder`/voice.json (atomically); returns its path."""
    manifest = Path(folder) / VOICE_FILE
    atomic_write(manifest, json.dumps(voice.to_dict(folder), ensure_ascii=False, indent=2) + "\n")
    return manifest


def trained_voice_dir(data_dir: str | Path, name: str) -> Path:
    """Where `myna train --name NAME` puts a voice: DATA_DIR/trained/NAME."""
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise InputError(f"voice name {name!r} must be a plain file name (no slashes, not starting with '.')")
    return Path(data_dir) / "trained" / name


def read_trained_voice(data_dir: str | Path, name: str) -> VoiceFile:
    """The voice.json of the voice trained as `name`, its files checked."""
    folder = trained_voice_dir(data_dir, name)
    if not (folder / VOICE_FILE).is_file():
        raise InputError(f"no trained voice {name!r} (looked for {folder / VOICE_FILE}); "
                         f"train one with `myna train --name {name}`")
    return read_voice_file(folder)
