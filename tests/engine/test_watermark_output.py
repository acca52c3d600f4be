"""Every output path of the engine carries the watermark, unless the operator turned it off."""

import numpy as np
import pytest

from myna.audio.watermark import Watermarker
from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.errors import InputError

TEXT = "Hello there, my good friend. How are you today? I am fine, thank you very much."


@pytest.fixture(scope="module")
def models(tiny_set):
    """A Synthesizer as loaded by default (MYNA_WATERMARK unset), and one loaded with the mark off."""
    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("MYNA_WATERMARK", raising=False)
        marked = load_synthesizer(paths)
    return marked, load_synthesizer(paths, watermark=False), tiny_set["clips"][0]


def test_synthesize_output_is_marked_with_its_payload(models):
    marked, plain, clip = models
    options = SynthesisOptions(seed=1, max_tokens=120)
    audio = marked.synthesize(TEXT, "en", marked.voice(clip, None, "en"), options, watermark_payload=0xFEEDBEEF)
    raw = plain.synthesize(TEXT, "en", plain.voice(clip, None, "en"), options)
    assert audio.shape == raw.shape and not np.array_equal(audio, raw)
    found = Watermarker().detect(audio, marked.sampling_rate)
    assert found.watermarked and found.payload == 0xFEEDBEEF
    assert not Watermarker().detect(raw, plain.sampling_rate).watermarked


@pytest.mark.parametrize("chunk_tokens", [0, 8])
def test_streamed_chunks_joined_carry_the_mark(models, chunk_tokens):
    marked, plain, clip = models
    options = SynthesisOptions(seed=2, max_tokens=120, stream_chunk_tokens=chunk_tokens)
    chunks = list(marked.stream(TEXT, "en", marked.voice(clip, None, "en"), options, watermark_payload=7))
    raw = list(plain.stream(TEXT, "en", plain.voice(clip, None, "en"), options))
    assert [len(c) for c in chunks] == [len(c) for c in raw]  # marking adds no delay and cuts nothing
    found = Watermarker().detect(np.concatenate(chunks), marked.sampling_rate)
    assert found.watermarked and found.payload == 7


def test_a_bad_payload_fails_before_streaming(models):
    marked, _, clip = models
    with pytest.raises(InputError, match="32-bit"):
        marked.stream(TEXT, "en", marked.voice(clip, None, "en"), watermark_payload=-1)


def test_the_operator_setting_decides(models, tiny_set, monkeypatch):
    assert models[0].watermarker is not None  # on by default
    monkeypatch.setenv("MYNA_WATERMARK", "0")
    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    assert load_synthesizer(paths).watermarker is None
