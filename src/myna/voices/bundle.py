"""Moving a trained voice between machines: `myna voices export NAME -o anna.zip` / `myna voices import anna.zip`.

The archive holds voice.json and every file the voice folder owns (weights, reference clips in refs/,
per-epoch weights in epochs/, emotion references in references.json and references/); not the training
work folder. Encoders (HuBERT, BERT, speaker model) are
named, not copied: by pulled version (`models:...`, found again on a machine that pulled the same
version) or by absolute path. `--include-encoders` copies them into the archive (encoders/), so the
voice needs nothing else. A clip of an older voice that lies outside its folder is copied in as well.
Import unpacks into DATA_DIR/trained/NAME after checking every entry (no absolute paths, no `..`, no
links, a size limit), then says which encoders this machine lacks and how to get them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import replace
from pathlib import Path

from myna.engine.voice_file import VOICE_FILE, read_voice_file, trained_voice_dir, write_voice_file
from myna.errors import InputError
from myna.voices.references import CLIPS_FOLDER, REFERENCES_FILE

_MAX_UNPACKED = 32 * 2**30
_OWN_FOLDERS = ("refs", "epochs", CLIPS_FOLDER)
_ENCODERS = ("hubert", "bert", "sv")


def export_voice(folder: str | Path, out: str | Path, include_encoders: bool = False) -> Path:
    """Write the voice in `folder` as a zip archive at `out`; returns `out`."""
    folder, out = Path(folder), Path(out)
    voice = read_voice_file(folder)
    if not out.parent.is_dir():
        raise InputError(f"{out.parent} is not a folder")
    members: dict[str, Path] = {}  # archive name -> file on disk
    updates: dict[str, str] = {}  # voice.json entries that change inside the archive
    home = folder.resolve()
    for key in ("gpt", "sovits", "ref"):
        path = getattr(voice, key)
        if path is None:
            continue
        if path.resolve().is_relative_to(home):
            members[path.resolve().relative_to(home).as_posix()] = path
        else:  # an older voice's clip in the user's data folder: bring it along
            name = f"refs/{path.name}" if key == "ref" else path.name
            members[name] = path
            updates[key] = name
    for sub in _OWN_FOLDERS:
        for path in sorted((folder / sub).rglob("*")) if (folder / sub).is_dir() else []:
            if path.is_file():
                members[path.relative_to(folder).as_posix()] = path
    if (folder / REFERENCES_FILE).is_file():
        members[REFERENCES_FILE] = folder / REFERENCES_FILE
    if include_encoders:
        for key in _ENCODERS:
            path = getattr(voice, key)
            if path is None:
                continue
            files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
            for file in files:
                inner = file.name if path.is_file() else file.relative_to(path).as_posix()
                members[f"encoders/{key}/{inner}"] = file
            updates[key] = f"encoders/{key}/{path.name}" if path.is_file() else f"encoders/{key}"
    record = {**voice.to_dict(folder), **updates}
    partial = out.with_name(out.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            archive.writestr(VOICE_FILE, json.dumps(record, ensure_ascii=False, indent=2) + "\n")
            for name, path in members.items():
                archive.write(path, name)
        os.replace(partial, out)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise InputError(f"could not write {out}: {exc}") from None
    return out


def import_voice(archive: str | Path, data_dir: str | Path, name: str | None = None,
                 overwrite: bool = False) -> tuple[Path, list[str]]:
    """Unpack a voice archive as DATA_DIR/trained/NAME (NAME: `name`, else the archive's voice name);
    returns voice.json's path and a line per encoder this machine lacks."""
    archive = Path(archive)
    try:
        with zipfile.ZipFile(archive) as zf:
            record = json.loads(zf.read(VOICE_FILE).decode("utf-8"))
            name = name or record.get("name") or archive.stem
            target = trained_voice_dir(data_dir, name)
            if target.exists() and not overwrite:
                raise InputError(f"a voice named {name!r} already exists ({target}); pass --name OTHER or --force")
            members = [m for m in zf.infolist() if not m.is_dir()]
            if sum(m.file_size for m in members) > _MAX_UNPACKED:
                raise InputError(f"{archive}: would unpack to more than {_MAX_UNPACKED >> 30} GiB; refusing")
            for m in members:
                parts = Path(m.filename).parts
                if m.filename.startswith("/") or ".." in parts or (m.external_attr >> 16) & 0o170000 == 0o120000:
                    raise InputError(f"{archive}: unsafe entry {m.filename!r}; refusing")
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".import-{name}-", dir=target.parent))
            try:
                zf.extractall(staging, members)
                voice = read_voice_file(staging, check_files=False)
                voice = replace(voice, name=name)
                write_voice_file(staging, voice)
                for key in ("gpt", "sovits"):
                    if not getattr(voice, key).is_file():
                        raise InputError(f"{archive}: the archive lacks the voice's {key} file")
                if target.exists():
                    shutil.rmtree(target)
                os.replace(staging, target)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise InputError(f"{archive}: not a voice archive made by `myna voices export` ({exc})") from None
    voice = read_voice_file(target, check_files=False)
    missing = [f"{key}: {path} is not on this machine" + _how_to_get(voice.version)
               for key, path in voice.missing_files()]
    return target / VOICE_FILE, missing


def _how_to_get(version: str | None) -> str:
    return (f" (pull it with `myna models pull {version}`, or export the voice with --include-encoders)"
            if version else " (export the voice with --include-encoders)")
