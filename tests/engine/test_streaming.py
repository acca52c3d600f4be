"""Token-chunk streaming (myna.engine.streaming) and the SoVITS speed modes (myna.engine.sovits_fast)."""

import copy

import numpy as np
import pytest
import torch

from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.engine.sovits_fast import NwcConv1d, prepare_sovits
from myna.engine.streaming import ChunkPlan, NoiseTape, StreamDecoder, WindowDecoder, snr_db, whole_decode
from myna.errors import Cancelled, InputError

TEXT = "Hello there, my friend. Good night."


@pytest.fixture(scope="module")
def synth_voice(tiny_set):
    synth = load_synthesizer(ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"]),
                             watermark=False)  # the decoder's own numbers (the mark: test_watermark_output.py)
    return synth, synth.voice(tiny_set["clips"][0], "This is my reference voice.", "en")


@pytest.fixture(scope="module")
def window_inputs(synth_voice):
    synth, voice = synth_voice
    tokens = torch.randint(0, 1024, (20,), generator=torch.Generator().manual_seed(0))
    phones = torch.randint(1, 700, (30,), generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ge = synth.sovits.timbre(voice.specs)
    return synth.sovits, tokens, phones, ge


def _stream(sovits, tokens, phones, ge, plan: ChunkPlan, seed: int = 3) -> tuple[np.ndarray, list[np.ndarray]]:
    def window():
        noise = NoiseTape(sovits.config.inter_channels, torch.Generator().manual_seed(seed))
        return WindowDecoder(sovits, phones, ge, noise)

    whole = whole_decode(window(), tokens)
    decoder = StreamDecoder(window(), plan)
    chunks = [c for c in (decoder.push(t) for t in tokens.tolist()) if c is not None]
    last = decoder.finish()
    return whole, chunks + ([last] if last is not None else [])


def test_noise_tape_is_independent_of_chunking():
    one, two = NoiseTape(4, torch.Generator().manual_seed(0)), NoiseTape(4, torch.Generator().manual_seed(0))
    whole = one.frames(0, 10)
    parts = torch.cat([two.frames(0, 3), two.frames(2, 7), two.frames(7, 10)], dim=2)
    assert torch.equal(whole[..., :3], parts[..., :3])
    assert torch.equal(whole[..., 2:7], parts[..., 3:8]) and torch.equal(whole[..., 7:], parts[..., 8:])


def test_whole_decode_equals_sovits_decode_without_noise(synth_voice, window_inputs):
    sovits, tokens, phones, ge = window_inputs
    window = WindowDecoder(sovits, phones, ge, NoiseTape(sovits.config.inter_channels, None), noise_scale=0.0)
    with torch.inference_mode():
        reference = sovits.decode(tokens, phones, synth_voice[1].specs, noise_scale=0.0)[0, 0].numpy()
    mine = whole_decode(window, tokens)
    assert mine.shape == reference.shape == (tokens.numel() * 1280,)
    assert snr_db(reference, mine) > 80


def test_stitched_stream_matches_whole_decode_with_full_context(window_inputs):
    sovits, tokens, phones, ge = window_inputs
    plan = ChunkPlan(first=6, size=8, lookahead=tokens.numel() - 6, context=6, encoder_context=tokens.numel())
    whole, chunks = _stream(sovits, tokens, phones, ge, plan)
    assert len(chunks) == 2
    assert sum(len(c) for c in chunks) == len(whole)
    assert snr_db(whole, np.concatenate(chunks)) > 60  # seams and noise are exact; only float rounding


def test_stitched_stream_is_close_to_whole_decode(window_inputs):
    sovits, tokens, phones, ge = window_inputs
    whole, chunks = _stream(sovits, tokens, phones, ge, ChunkPlan(first=4, size=6))
    assert [len(c) for c in chunks] == [4 * 1280, 6 * 1280, 6 * 1280, 4 * 1280]
    assert sum(len(c) for c in chunks) == len(whole)
    # random weights attend everywhere, so frames miss their unseen future; tiny v2 measured ~40 dB here
    assert snr_db(whole, np.concatenate(chunks)) > 25


def test_stream_chunks_arrive_before_the_tokens_end(synth_voice):
    synth, voice = synth_voice
    polls = []
    chunks = synth.stream(TEXT, "en", voice, SynthesisOptions(seed=4, stream_chunk_tokens=4, pause=0.0, max_tokens=24),
                          should_stop=lambda: polls.append(1) is not None)
    first = next(chunks)
    polls_at_first = len(polls)
    rest = list(chunks)
    assert len(first) == 4 * 1280
    assert polls_at_first < len(polls) - 2
    assert len(rest) >= 2


def test_chunked_stream_has_the_tokens_and_length_of_the_fragment_stream(synth_voice):
    synth, voice = synth_voice
    fragments = list(synth.stream(TEXT, "en", voice, SynthesisOptions(seed=5, top_k=5, max_tokens=16)))
    chunked = list(synth.stream(TEXT, "en", voice, SynthesisOptions(seed=5, top_k=5, max_tokens=16, stream_chunk_tokens=6)))
    again = list(synth.stream(TEXT, "en", voice, SynthesisOptions(seed=5, top_k=5, max_tokens=16, stream_chunk_tokens=6)))
    assert len(fragments) >= 2 and len(chunked) > len(fragments)
    assert sum(map(len, chunked)) == sum(map(len, fragments))  # same tokens per fragment, same pauses
    assert len(again) == len(chunked) and all(np.array_equal(a, b) for a, b in zip(again, chunked, strict=True))


def test_cancel_mid_stream(synth_voice):
    synth, voice = synth_voice
    polls = []

    def stop_later() -> bool:
        polls.append(1)
        return len(polls) > 12

    chunks = synth.stream(TEXT, "en", voice, SynthesisOptions(seed=6, stream_chunk_tokens=4, max_tokens=30), should_stop=stop_later)
    assert len(next(chunks)) == 4 * 1280
    with pytest.raises(Cancelled):
        list(chunks)
    assert synth._lock.acquire(timeout=1)  # the fragment's lock was released
    synth._lock.release()


def test_stream_chunk_tokens_is_validated():
    with pytest.raises(InputError, match="stream_chunk_tokens"):
        SynthesisOptions(stream_chunk_tokens=-1)
    with pytest.raises(InputError):
        ChunkPlan(first=0)


def test_sovits_modes_stay_close_to_exact(window_inputs):
    sovits, tokens, phones, ge = window_inputs
    spec = [torch.rand(1, 1025, 40, generator=torch.Generator().manual_seed(2))]

    def decode(model):
        wave = model.decode(tokens[:12], phones, spec, generator=torch.Generator().manual_seed(7))
        return wave[0, 0].float().numpy()

    exact = decode(sovits)
    assert np.array_equal(decode(prepare_sovits(copy.deepcopy(sovits), "fp32")), exact)
    assert snr_db(exact, decode(prepare_sovits(copy.deepcopy(sovits), "nwc"))) > 100  # summation order only
    assert snr_db(exact, decode(prepare_sovits(copy.deepcopy(sovits), "bf16"))) > 25
    assert snr_db(exact, decode(prepare_sovits(copy.deepcopy(sovits), "onnx", threads=1))) > 60
    with pytest.raises(InputError, match="unknown SoVITS mode"):
        prepare_sovits(sovits, "int4")


@pytest.mark.parametrize("transposed", [False, True])
def test_nwc_convolution_matches_the_1d_one_and_leaves_channels_last_output(transposed):
    torch.manual_seed(0)
    if transposed:
        conv = torch.nn.ConvTranspose1d(6, 4, 8, stride=4, padding=2)
    else:
        conv = torch.nn.Conv1d(6, 4, 5, dilation=3, padding=6)
    x = torch.randn(2, 6, 50)
    nwc = NwcConv1d(conv)
    with torch.no_grad():
        out, expected = nwc(x), conv(x)
        assert out.shape == expected.shape
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        assert out.stride(1) == 1  # (B, T, C) in memory: the next convolution reads it without a copy
        again = NwcConv1d(torch.nn.Conv1d(4, 3, 3, padding=1))
        torch.testing.assert_close(again(out), again(out.contiguous()))


def test_nwc_refuses_convolutions_it_would_get_wrong():
    with pytest.raises(InputError, match="zero padding"):
        NwcConv1d(torch.nn.Conv1d(2, 2, 3, padding=1, padding_mode="reflect"))
    with pytest.raises(InputError, match="output padding"):
        NwcConv1d(torch.nn.ConvTranspose1d(2, 2, 4, stride=2, output_padding=1))


def test_fast_precisions_speed_up_sovits_for_the_cpu(tiny_set):
    from myna.engine.precision import native_bf16

    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"])
    fast = load_synthesizer(paths, precision="int8").sovits
    convs = [m for m in fast.dec.modules() if isinstance(m, NwcConv1d)]
    assert convs  # channels-last convolutions in both fast modes
    # bf16 where it is native (all but the last stage), else fp32
    assert {m.weight.dtype for m in convs} == ({torch.bfloat16, torch.float32} if native_bf16("cpu") else {torch.float32})
    assert fast.dec.conv_post.weight.dtype == torch.float32
    exact = load_synthesizer(paths, precision="fp32").sovits
    assert not any(isinstance(m, NwcConv1d) for m in exact.modules())
