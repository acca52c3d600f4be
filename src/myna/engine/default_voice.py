"""The default voice: models and a reference clip that `myna say` uses when it is given none.

A default voice is a folder with a `voice.json` manifest whose paths are relative to the folder:

    {"gpt": "s1.ckpt", "sovits": "s2.pth", "ref": "ref.wav", "ref_text": "...", "ref_lang": "en",
     "lang": "en", "hubert": null, "bert": null, "sv": null, "notice": null}

`lang` is the language `say` assumes for the text when `--lang` is not given; `notice`, when set, is
a line `say` prints whenever it speaks with this voice (what a user should know about its quality). The models trained
from scratch with `myna train --preset` record their own encoders, so `hubert`/`bert`/`sv` stay null
for them. The bundled voice lives in `myna/assets/default/` (see its MODEL_CARD.md);
`MYNA_DEFAULT_VOICE` points elsewhere. `write_bundle` turns a trained voice into such a folder.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from myna.engine.loading import ModelPaths
from myna.errors import InputError

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "default"
MANIFEST = "voice.json"
_MODEL_KEYS = ("gpt", "sovits", "hubert", "bert", "sv")


@dataclass(frozen=True)
class DefaultVoice:
    """A resolved default voice: model files, reference clip and transcript, the text language."""

    root: Path
    paths: ModelPaths
    ref: Path
    ref_text: str | None
    ref_lang: str
    lang: str
    notice: str | None = None


def find_default_voice(directory: str | Path | None = None) -> DefaultVoice:
    """Read the default voice in `directory` (default: the bundled one); InputError says what is missing."""
    root = Path(directory) if directory is not None else BUNDLED_DIR
    manifest = root / MANIFEST
    if not manifest.is_file():
        where = "this installation has no bundled default voice" if directory is None else f"{root} is not a voice folder"
        raise InputError(
            f"{where} ({manifest} is missing): pass --ref CLIP with --model-dir DIR (or --gpt/--sovits/--hubert), "
            "or --voice NAME of a voice trained with `myna train`"
        )
    try:
        record = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{manifest}: not a readable voice manifest ({exc})") from None
    if not isinstance(record, dict):
        raise InputError(f"{manifest}: expected a JSON object")

    def resolve(key: str, required: bool) -> Path | None:
        value = record.get(key)
        if not value:
            if required:
                raise InputError(f"{manifest}: no {key!r} entry")
            return None
        path = (root / value).resolve()
        if not path.exists():
            raise InputError(f"{manifest}: {key} file {path} is missing")
        return path

    files = {key: resolve(key, key in ("gpt", "sovits")) for key in _MODEL_KEYS}
    ref = resolve("ref", True)
    notice = record.get("notice")
    return DefaultVoice(root, ModelPaths(**files), ref, record.get("ref_text"), str(record.get("ref_lang", "en")),
                        str(record.get("lang", record.get("ref_lang", "en"))), str(notice) if notice else None)


def write_bundle(voice_json: str | Path, out_dir: str | Path, lang: str = "en", notice: str | None = None) -> Path:
    """Copy a voice trained with `myna train` (its voice.json) into a self-contained default-voice folder.

    The files keep their format (upstream .ckpt/.pth or their .safetensors twins) under fixed names;
    `notice` goes into the manifest for `say` to print.
    """
    voice_json = Path(voice_json)
    record = json.loads(voice_json.read_text(encoding="utf-8"))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    names = {key: stem + Path(record[key]).suffix for key, stem in (("gpt", "s1"), ("sovits", "s2"), ("ref", "ref"))}
    manifest: dict[str, object] = {key: None for key in _MODEL_KEYS}
    for key, name in names.items():
        source = Path(record[key])
        if not source.is_absolute():
            source = voice_json.parent / source
        shutil.copyfile(source, out / name)
        manifest[key] = name
    for key in ("hubert", "bert", "sv"):
        if record.get(key):
            raise InputError(f"{voice_json}: the voice needs external model files ({key}); only voices trained "
                             "with --preset are self-contained")
    manifest.update(ref_text=record.get("ref_text"), ref_lang=record.get("ref_lang", lang), lang=lang, notice=notice)
    (out / MANIFEST).write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return out / MANIFEST
