"""The default voice: models and a reference clip that `myna say` uses when it is given none.

A default voice is a folder with a `voice.json` (`myna.engine.voice_file`) whose files lie inside it,
named by paths relative to the folder:

    {"gpt": "s1.ckpt", "sovits": "s2.pth", "ref": "ref.wav", "ref_text": "...", "ref_lang": "en",
     "lang": "en", "hubert": null, "bert": null, "sv": null, "notice": null, ...}

`lang` is the language `say` assumes for the text when `--lang` is not given; `notice`, when set, is
a line `say` prints whenever it speaks with this voice (what a user should know about its quality). The models trained
from scratch with `myna train --preset` record their own encoders, so `hubert`/`bert`/`sv` stay null
for them. The bundled voice lives in `myna/assets/default/` (see its MODEL_CARD.md);
`MYNA_DEFAULT_VOICE` points elsewhere. `write_bundle` turns a trained voice into such a folder.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path

from myna.engine.loading import ModelPaths
from myna.engine.voice_file import VOICE_FILE, VoiceFile, read_voice_file, write_voice_file
from myna.errors import InputError

BUNDLED_DIR = Path(__file__).resolve().parent.parent / "assets" / "default"
_BUNDLED_NAMES = (("gpt", "s1"), ("sovits", "s2"), ("ref", "ref"))


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
    if not (root / VOICE_FILE).is_file():
        where = "this installation has no bundled default voice" if directory is None else f"{root} is not a voice folder"
        raise InputError(
            f"{where} ({root / VOICE_FILE} is missing): pass --ref CLIP with --model-dir DIR (or --gpt/--sovits/--hubert), "
            "or --voice NAME of a voice trained with `myna train`"
        )
    voice = read_voice_file(root)
    if voice.ref is None:
        raise InputError(f"{root / VOICE_FILE}: no 'ref' entry")
    ref_lang = voice.ref_lang or "en"
    paths = ModelPaths(gpt=voice.gpt, sovits=voice.sovits, hubert=voice.hubert, bert=voice.bert, sv=voice.sv)
    return DefaultVoice(root, paths, voice.ref, voice.ref_text, ref_lang, voice.lang or ref_lang, voice.notice)


def write_bundle(voice: VoiceFile | str | Path, out_dir: str | Path, lang: str = "en",
                 notice: str | None = None) -> Path:
    """Copy a trained voice (a VoiceFile, or the folder or voice.json of one) into a self-contained
    default-voice folder; returns its voice.json.

    The files keep their format (upstream .ckpt/.pth or their .safetensors twins) under fixed names;
    `notice` goes into the manifest for `say` to print.
    """
    if not isinstance(voice, VoiceFile):
        source = Path(voice)
        voice = read_voice_file(source.parent if source.name == VOICE_FILE else source, check_files=False)
    for key in ("hubert", "bert", "sv"):
        if getattr(voice, key) is not None:
            raise InputError(f"the voice needs external model files ({key}: {getattr(voice, key)}); only voices "
                             "trained with --preset are self-contained")
    if voice.ref is None:
        raise InputError("the voice has no reference clip ('ref') to bundle")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    copies = {}
    for key, stem in _BUNDLED_NAMES:
        source = getattr(voice, key)
        if not source.is_file():
            raise InputError(f"cannot bundle the voice: its {key} file {source} is missing")
        copies[key] = out / (stem + source.suffix)
        shutil.copyfile(source, copies[key])
    bundled = replace(voice, **copies, ref_lang=voice.ref_lang or lang, lang=lang, notice=notice)
    return write_voice_file(out, bundled)
