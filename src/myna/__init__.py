"""myna: few-shot voice-cloning text-to-speech compatible with GPT-SoVITS."""

from myna.errors import MynaError

__all__ = ["MynaError"]
__version__ = "0.1.0"
