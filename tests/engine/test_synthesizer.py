"""The Synthesizer end to end on a tiny seeded model set, against upstream GPT-SoVITS.

Reference: data/engine_upstream.json, produced by upstream commit 48b1a01's TTS.run (as api_v2 runs it,
via tools/upstream_reference/make_engine_reference.py) on the files tiny_voice.py writes; see data/README.md.
"""

import json
import wave
from pathlib import Path

import numpy as np
import pytest

from myna.audio.io import AudioError
from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.engine.synthesizer import Synthesizer
from myna.errors import InputError

HERE = Path(__file__).parent
REF = json.loads((HERE / "data/engine_upstream.json").read_text())


@pytest.fixture(scope="module")
def setup(tiny_set):
    synth = load_synthesizer(ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"]),
                             watermark=False)  # the decoder's own numbers (the mark: test_watermark_output.py)
    return synth, tiny_set["clips"], tiny_set["root"]


def _options(case: dict) -> SynthesisOptions:
    return SynthesisOptions(
        top_k=case["top_k"], top_p=case.get("top_p", 1.0), temperature=case.get("temperature", 1.0),
        seed=case["seed"], noise_scale=case["noise_scale"], split=case["split"], speed=case.get("speed", 1.0),
    )


def _spy_tokens(synth: Synthesizer, monkeypatch) -> list[list[int]]:
    """Record the semantic tokens of every fragment, in the order they are generated."""
    calls: list[list[int]] = []
    real = synth.semantic_tokens

    def recording(*args, **kwargs):
        tokens = real(*args, **kwargs)
        calls.append(tokens.tolist())
        return tokens

    monkeypatch.setattr(synth, "semantic_tokens", recording)
    return calls


@pytest.mark.parametrize("case", REF["cases"], ids=lambda c: c["name"])
def test_matches_upstream(setup, case, monkeypatch):
    synth, clips, _ = setup
    voice = synth.voice(clips[case.get("ref", 0)], case["ref_text"], case["ref_lang"])
    if case["ref_text"] is not None:
        assert voice.semantic[0].tolist() == case["prompt_semantic"]
    calls = _spy_tokens(synth, monkeypatch)
    audio = synth.synthesize(case["text"], case["lang"], voice, _options(case))
    assert calls == case["tokens"]
    assert audio.shape == (case["samples"],)
    np.testing.assert_allclose(audio[:: case["stride"]], case["every_stride"], atol=1e-4, rtol=0)
    assert abs(float(np.abs(audio).sum()) - case["abs_sum"]) <= 1e-4 * max(1.0, case["abs_sum"])


def test_streaming_equals_whole(setup):
    synth, clips, _ = setup
    voice = synth.voice(clips[0], "This is my reference voice.", "en")
    options = SynthesisOptions(top_k=1, seed=3, noise_scale=0.0, split="cut5")
    text = "One. Two words here! And a third sentence."
    whole = synth.synthesize(text, "en", voice, options)
    chunks = list(synth.stream(text, "en", voice, options))
    assert len(chunks) == 2  # "One." is merged with the next piece (pieces under 5 characters are)
    np.testing.assert_array_equal(np.concatenate(chunks), whole)


def test_same_seed_same_audio_other_seed_other_audio(setup):
    synth, clips, _ = setup
    voice = synth.voice(clips[0], "这是一段参考音频。", "zh")
    text = "今天我们去公园散步。"
    a = synth.synthesize(text, "zh", voice, SynthesisOptions(seed=11, split="cut0"))
    b = synth.synthesize(text, "zh", voice, SynthesisOptions(seed=11, split="cut0"))
    c = synth.synthesize(text, "zh", voice, SynthesisOptions(seed=12, split="cut0"))
    np.testing.assert_array_equal(a, b)
    assert a.shape != c.shape or not np.array_equal(a, c)


def test_voice_is_cached_and_several_references_are_averaged(setup):
    synth, clips, _ = setup
    one = synth.voice(clips[0], "参考。", "zh")
    assert synth.voice(clips[0], "参考。", "zh") is one
    two = synth.voice(clips[0], "参考。", "zh", aux_refs=[clips[1]])
    assert len(two.specs) == 2 and two.semantic.equal(one.semantic)
    options = SynthesisOptions(top_k=1, seed=0, noise_scale=0.0, split="cut0")
    assert not np.array_equal(synth.synthesize("你好世界。", "zh", one, options),
                              synth.synthesize("你好世界。", "zh", two, options))


def _write_clip(path: Path, samples: np.ndarray, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())
    return path


def test_bad_reference_clips_are_refused_clearly(setup):
    synth, _, root = setup
    noise = np.random.default_rng(0).standard_normal(16000 * 4) * 0.1
    cases = {
        "missing.wav": None,
        "text.wav": b"this is not audio",
        "silent.wav": np.zeros(16000 * 4),
        "short.wav": noise[:8000],
    }
    for name, content in cases.items():
        path = root / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            _write_clip(path, content)
        with pytest.raises(AudioError, match=name):
            synth.voice(path, "参考。", "zh")


def test_long_reference_is_trimmed_and_said_so(setup):
    synth, _, root = setup
    rng = np.random.default_rng(1)
    minutes = rng.standard_normal(16000 * 600).astype(np.float32) * 0.01
    minutes[16000 * 300 : 16000 * 306] *= 30  # the loudest stretch
    voice = synth.voice(_write_clip(root / "ten_minutes.wav", minutes), None, "en")
    assert voice.notes and "600.0 s" in voice.notes[0] and "loudest" in voice.notes[0]
    frames = voice.specs[0].shape[-1]
    assert 3 * 50 <= frames <= 10 * 50  # 3-10 s of 32 kHz audio at 50 frames/s


@pytest.mark.parametrize("text", ["", "   ", "。。。！"])
def test_empty_text_is_refused(setup, text):
    synth, clips, _ = setup
    voice = synth.voice(clips[0], None, "zh")
    with pytest.raises(InputError, match="nothing to speak|empty|no text"):
        synth.synthesize(text, "zh", voice)


def test_errors_come_before_the_first_chunk(setup):
    synth, clips, _ = setup
    voice = synth.voice(clips[0], None, "en")
    with pytest.raises(InputError, match="unsupported language"):
        synth.stream("Hello.", "xx", voice)  # raised by the call itself, not by next()


def test_bad_options_are_refused():
    with pytest.raises(InputError, match="speed"):
        SynthesisOptions(speed=0)
    with pytest.raises(InputError, match="top_k"):
        SynthesisOptions(top_k=0)
    with pytest.raises(InputError, match="cut9|split"):
        SynthesisOptions(split="cut9")


def test_g2pw_predictor_reaches_every_fragment(setup):
    from myna.engine.textprep import split_fragments
    from myna.text import g2p
    from myna.text.zh.g2pw import load_g2pw

    synth = setup[0]
    dummy = HERE.parent / "text/data/g2pw_dummy"
    predictor = load_g2pw(str(dummy / "G2PWModel"), str(dummy / "bert"))
    text = "他长得很高,头发很长。"
    plain = split_fragments(text, "all_zh", "cut0", "v2", synth.bert)
    with_g2pw = split_fragments(text, "all_zh", "cut0", "v2", synth.bert, predictor)
    assert with_g2pw[0].phone_ids.tolist() == g2p(text, "zh", polyphones=predictor).ids
    assert with_g2pw[0].phone_ids.tolist() != plain[0].phone_ids.tolist()


def test_model_paths_with_g2pw_load_the_predictor(tiny_set):
    g2pw_dir = HERE.parent / "text/data/g2pw_dummy/G2PWModel"
    paths = ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"], g2pw=g2pw_dir)
    assert load_synthesizer(paths).polyphones is not None
    with pytest.raises(InputError, match="BERT"):
        load_synthesizer(ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], g2pw=g2pw_dir))


def test_a_reference_at_absurd_amplitude_is_scaled_to_full_scale(setup, tmp_path):
    """Float clips peaking above 2 would saturate the voice; up to 2, upstream's level rule (and numbers) hold."""
    import soundfile

    from myna.engine.reference import load_reference

    synth, clips, _ = setup
    audio, rate = soundfile.read(clips[0], dtype="float32")
    audio /= np.abs(audio).max()  # peaks exactly at full scale
    paths = {}
    for name, gain in (("normal", 1.0), ("loud", 80.0), ("hot", 1.5)):
        paths[name] = tmp_path / f"{name}.wav"
        soundfile.write(paths[name], audio * np.float32(gain), rate, subtype="FLOAT")
    normal, loud, hot = (load_reference(paths[name]) for name in ("normal", "loud", "hot"))
    np.testing.assert_allclose(loud.wave_16k, normal.wave_16k, atol=1e-6)
    np.testing.assert_allclose(loud.wave_model.numpy(), normal.wave_model.numpy(), atol=1e-6)
    assert "80.0 times full scale" in loud.notes[0] and not normal.notes and not hot.notes
    np.testing.assert_allclose(hot.wave_16k, normal.wave_16k * 1.5, atol=1e-6)  # as read, as upstream
    options = SynthesisOptions(seed=3)
    speak = [synth.synthesize("Hello there.", "en", synth.voice(paths[name], "This is my reference voice.", "en"), options)
             for name in ("normal", "loud")]  # fmt: skip
    np.testing.assert_allclose(speak[1], speak[0], atol=1e-4)
