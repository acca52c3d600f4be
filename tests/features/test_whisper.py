"""WhisperContentEncoder: bundled tiny.en encoder states at 50 frames/s, cropped to the clip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from espeak_clips import SENTENCES, espeak_clip, needs_espeak

from myna.audio.io import resample_soxr
from myna.errors import InputError
from myna.features.whisper import WhisperContentEncoder


@pytest.fixture(scope="module")
def encoder() -> WhisperContentEncoder:
    return WhisperContentEncoder(threads=1)


@needs_espeak
def test_shape_rate_and_determinism(encoder, tmp_path):
    audio, rate = espeak_clip(tmp_path, "en-us", SENTENCES[0])
    wave = torch.from_numpy(resample_soxr(audio, rate, 16000))[None]
    features = encoder.encode(wave)
    assert encoder.dim == 384
    assert features.shape == (1, 384, -(-wave.shape[1] // 320))  # 50 frames per second of audio
    assert torch.isfinite(features).all() and features.std() > 0.1
    assert torch.equal(features, encoder.encode(wave))
    # speech and silence give different states (the encoder sees the clip, not padding)
    silence = encoder.encode(torch.zeros(1, wave.shape[1]))
    assert (features - silence).abs().mean() > 0.1


def test_long_clip_is_encoded_in_windows(encoder):
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal(16000 * 31).astype(np.float32) * 0.05)
    features = encoder.encode(noise[None])
    assert features.shape == (1, 384, 31 * 50)
    assert torch.isfinite(features).all()


def test_bad_input_is_refused(encoder):
    with pytest.raises(InputError, match="one clip"):
        encoder.encode(torch.zeros(2, 16000))
    with pytest.raises(InputError, match="too short"):
        encoder.encode(torch.zeros(1, 100))
