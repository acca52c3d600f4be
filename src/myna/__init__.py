"""myna: few-shot voice-cloning text-to-speech compatible with GPT-SoVITS.

    from myna import ModelPaths, load_model, SynthesisOptions
    synth = load_model("v2ProPlus")    # pulled with `myna models pull v2ProPlus`; or load_model() for MYNA_MODEL / the newest
    synth = load_model(ModelPaths.from_model_dir("pretrained_models"))
    voice = synth.voice("ref.wav", "参考音频的文字。", "zh")
    audio = synth.synthesize("你好，世界。", "zh", voice, SynthesisOptions(seed=0))
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from myna.errors import MynaError

if TYPE_CHECKING:
    from myna.engine.loading import ModelPaths
    from myna.engine.options import SynthesisOptions
    from myna.engine.synthesizer import Synthesizer, Voice

__all__ = ["ModelPaths", "MynaError", "SynthesisOptions", "Synthesizer", "Voice", "load_model"]
__version__ = "0.1.0"

# Heavy modules (torch, transformers) load on first use, so `myna phonemes` starts fast.
_LAZY = {
    "ModelPaths": "myna.engine.loading",
    "SynthesisOptions": "myna.engine.options",
    "Synthesizer": "myna.engine.synthesizer",
    "Voice": "myna.engine.synthesizer",
}


def load_model(paths: ModelPaths | str | None = None, device: str = "cpu") -> Synthesizer:
    """Load the models named in `paths` into a ready Synthesizer (its audio watermarked unless MYNA_WATERMARK=0).

    `paths` may also name a version pulled with `myna models pull` ("v2ProPlus", ...); None means
    MYNA_MODEL, else the newest pulled version (with the pulled G2PW model, if any). Nothing is
    downloaded here.
    """
    from myna.engine.loading import ModelPaths, load_synthesizer

    if paths is None or isinstance(paths, str):
        from myna.config import Settings
        from myna.weights.store import ModelStore

        settings = Settings.from_env()
        pulled = ModelStore(settings.models_dir).locate(paths or settings.model)
        paths = ModelPaths.from_model_dir(pulled.root, pulled.version)
        if pulled.g2pw is not None and pulled.version != "v1":  # pulled with --g2pw: polyphones as upstream reads them
            import dataclasses

            paths = dataclasses.replace(paths, g2pw=pulled.g2pw)
    return load_synthesizer(paths, device)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'myna' has no attribute {name!r}")
