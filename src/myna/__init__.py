"""myna: few-shot voice-cloning text-to-speech compatible with GPT-SoVITS.

    from myna import ModelPaths, load_model, SynthesisOptions
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


def load_model(paths: ModelPaths, device: str = "cpu") -> Synthesizer:
    """Load the models named in `paths` into a ready Synthesizer (its audio watermarked unless MYNA_WATERMARK=0)."""
    from myna.engine.loading import load_synthesizer

    return load_synthesizer(paths, device)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'myna' has no attribute {name!r}")
