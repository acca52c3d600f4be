"""Request bodies -> synthesis options: which requests stream token chunks."""

import pytest

from myna.errors import InputError
from myna.server.schemas import SpeechRequest, TTSRequest


@pytest.mark.parametrize(("mode", "expected"), [(False, 0), (True, 0), (0, 0), (1, 0), (2, 8), (3, 8)])
def test_tts_chunked_streaming_modes_use_min_chunk_length(mode, expected):
    assert TTSRequest(streaming_mode=mode, min_chunk_length=8).options().stream_chunk_tokens == expected


def test_tts_chunked_mode_rejects_an_empty_chunk():
    with pytest.raises(InputError, match="min_chunk_length"):
        TTSRequest(streaming_mode=2, min_chunk_length=0).options()
    assert TTSRequest(streaming_mode=1, min_chunk_length=0).options().stream_chunk_tokens == 0  # unused there


def test_openai_speech_chunks_only_when_streamed():
    assert SpeechRequest(input="hi", voice="v").options(12).stream_chunk_tokens == 12
    assert SpeechRequest(input="hi", voice="v", stream=False).options(12).stream_chunk_tokens == 0
