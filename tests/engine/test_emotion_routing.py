"""Emotion routing on the tiny seeded models: which clip reaches which model, strength 0 bit for bit,
per-tag switching, --emotion auto, the fallback, mixed decoding."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from myna.engine.batch_decode import BatchDecoder
from myna.engine.emotion import plan_emotions
from myna.engine.emotion_decode import iter_mixed_tokens, mix_logits
from myna.engine.loading import ModelPaths, load_synthesizer
from myna.engine.options import SynthesisOptions
from myna.engine.t2s_decode import SamplingParams, iter_semantic_tokens, seeded_generator
from myna.errors import InputError
from myna.voices.references import EmotionReference

_spec = importlib.util.spec_from_file_location("tiny_voice", Path(__file__).parent / "tiny_voice.py")
tiny_voice = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tiny_voice)

MAIN_TEXT = "This is my reference voice."
HAPPY_TEXT = "What a lovely day it is."
SAD_TEXT = "I am so sorry to hear that."


@pytest.fixture(scope="module")
def setup(tiny_set, tmp_path_factory):
    # unmarked: the tests compare exact samples with the output without emotion (the watermark has its own tests)
    synth = load_synthesizer(ModelPaths(tiny_set["gpt"], tiny_set["sovits"], tiny_set["hubert"], tiny_set["bert"]),
                             precision="fp32", watermark=False)
    sad_clip = tiny_voice.write_reference_clip(tmp_path_factory.mktemp("emotion") / "sad.wav", 3.8, 321)
    main, happy = tiny_set["clips"]
    refs = [EmotionReference("h1", "happy", happy, HAPPY_TEXT, "en"), EmotionReference("s1", "sad", sad_clip, SAD_TEXT, "en")]
    voices = {"main": synth.voice(main, MAIN_TEXT, "en"), "happy": synth.voice(happy, HAPPY_TEXT, "en"),
              "sad": synth.voice(sad_clip, SAD_TEXT, "en")}
    return synth, refs, voices, main


class Spy:
    """Records what reaches the real GPT (prefill: phonemes and prompt tokens) and SoVITS (reference specs)."""

    def __init__(self, synth, monkeypatch):
        self.prefills, self.specs = [], []
        gpt_prefill, sovits_decode = synth.gpt.prefill, synth.sovits.decode

        def prefill(phones, bert, prompt):
            self.prefills.append((phones.clone(), None if prompt is None else prompt.clone()))
            return gpt_prefill(phones, bert, prompt)

        def decode(codes, phone_ids, refer_specs, *args, **kwargs):
            self.specs.append([spec.clone() for spec in refer_specs])
            return sovits_decode(codes, phone_ids, refer_specs, *args, **kwargs)

        monkeypatch.setattr(synth.gpt, "prefill", prefill)
        monkeypatch.setattr(synth.sovits, "decode", decode)


def options(**changes) -> SynthesisOptions:
    return SynthesisOptions(**{"seed": 5, "max_tokens": 24, "split": "cut5", **changes})


def prompted_by(prefill, voice) -> bool:
    """Whether a GPT prefill got this voice's prompt: its semantic tokens and its transcript's phonemes first."""
    phones, prompt = prefill
    n = voice.prompt.phone_ids.numel()
    return torch.equal(prompt, voice.semantic) and torch.equal(phones[0, :n], voice.prompt.phone_ids)


def same_specs(specs, voice) -> bool:
    return len(specs) == len(voice.specs) and all(torch.equal(a, b) for a, b in zip(specs, voice.specs, strict=True))


def test_strength_one_prompts_the_gpt_with_the_emotion_clip_and_sovits_with_the_timbre_clip(setup, monkeypatch):
    synth, refs, voices, _ = setup
    spy = Spy(synth, monkeypatch)
    voice = synth.with_references(voices["main"], refs)
    synth.synthesize("Great news, it works!", "en", voice, options(emotion="happy"))
    assert spy.prefills and all(prompted_by(p, voices["happy"]) for p in spy.prefills)
    assert spy.specs and all(same_specs(s, voices["main"]) for s in spy.specs)
    assert not same_specs(spy.specs[0], voices["happy"])  # the clips differ: the check can fail
    assert voice.notes == []


def test_strength_zero_is_the_timbre_clip_alone_bit_for_bit(setup):
    synth, refs, voices, _ = setup
    text = "Great news, it works! But not for everyone."
    plain = synth.synthesize(text, "en", voices["main"], options())
    routed = synth.synthesize(text, "en", synth.with_references(voices["main"], refs),
                              options(emotion="happy", emotion_strength=0.0))
    assert routed.dtype == plain.dtype and np.array_equal(routed, plain)
    full = synth.synthesize(text, "en", synth.with_references(voices["main"], refs), options(emotion="happy"))
    assert not np.array_equal(full, plain)  # strength 1 does change the output


def test_tags_switch_the_gpt_prompt_per_sentence(setup, monkeypatch):
    synth, refs, voices, _ = setup
    spy = Spy(synth, monkeypatch)
    voice = synth.with_references(voices["main"], refs)
    chunks = list(synth.stream("[happy] Great news, it works! [sad] But not for everyone. [neutral] Details follow.",
                               "en", voice, options(split="cut0")))
    assert len(chunks) == 3  # a tag ends a fragment even with cut0 (no cutting)
    assert [prompted_by(p, voices["happy"]) for p in spy.prefills] == [True, False, False]
    assert [prompted_by(p, voices["sad"]) for p in spy.prefills] == [False, True, False]
    assert prompted_by(spy.prefills[2], voices["main"])  # neutral without a neutral reference: the main clip
    assert all(same_specs(s, voices["main"]) for s in spy.specs)
    assert voice.notes == []


def test_missing_label_falls_back_to_the_main_clip_with_a_note(setup):
    synth, refs, voices, _ = setup
    voice = synth.with_references(voices["main"], refs)
    text = "Great news, it works!"
    angry = synth.synthesize(text, "en", voice, options(emotion="angry"))
    assert np.array_equal(angry, synth.synthesize(text, "en", voices["main"], options()))
    assert len(voice.notes) == 1 and "'angry'" in voice.notes[0] and "main clip" in voice.notes[0]
    synth.synthesize(text, "en", voice, options(emotion="neutral"))
    assert voice.notes == []  # notes are the last call's; the main clip counts as neutral


def test_auto_lets_the_classifier_pick_per_sentence(setup, monkeypatch):
    synth, refs, voices, _ = setup
    text = "I'm so happy, we won the championship! I cried all night after my grandmother died."
    plan = plan_emotions(text, "en", "cut5", "auto", {"happy", "sad"})
    # cut5 cuts at the comma too; a sentence's pieces share the classifier's label
    assert [(p.text.strip(), p.label, p.source) for p in plan.pieces] == [
        ("I'm so happy,", "happy", "classifier"), ("we won the championship!", "happy", "classifier"),
        ("I cried all night after my grandmother died.", "sad", "classifier")]
    spy = Spy(synth, monkeypatch)
    synth.synthesize(text, "en", synth.with_references(voices["main"], refs), options(emotion="auto"))
    # fragments are decoded shortest first: the happy clause, the happy sentence end, the sad sentence
    assert [prompted_by(p, voices["happy"]) for p in spy.prefills] == [True, True, False]
    assert prompted_by(spy.prefills[2], voices["sad"])


def test_between_strengths_decode_both_prompts_and_keep_the_timbre(setup, monkeypatch):
    synth, refs, voices, _ = setup
    spy = Spy(synth, monkeypatch)
    synth.synthesize("Great news, it works!", "en", synth.with_references(voices["main"], refs),
                     options(emotion="happy", emotion_strength=0.5, split="cut0"))
    assert len(spy.prefills) == 2
    assert prompted_by(spy.prefills[0], voices["main"]) and prompted_by(spy.prefills[1], voices["happy"])
    assert all(same_specs(s, voices["main"]) for s in spy.specs)


def gpt_rows(synth, voices, text="Great news, it works!"):
    from myna.engine.synthesizer import _gpt_text
    from myna.engine.textprep import text_fragment

    fragment = text_fragment(text, "en", synth.version, synth.bert)
    return [(*_gpt_text(voices[name].prompt, fragment), voices[name].semantic) for name in ("main", "happy")]


@pytest.mark.parametrize(("strength", "row"), [(0.0, 0), (1.0, 1)])
def test_mixed_decoding_at_the_ends_gives_each_prompt_s_own_tokens(setup, strength, row):
    synth, _, voices, _ = setup
    rows = gpt_rows(synth, voices)
    params = SamplingParams(top_k=5)
    mixed = list(iter_mixed_tokens(synth.gpt, rows[0], rows[1], strength, params, seeded_generator(9), 40))
    alone = list(iter_semantic_tokens(synth.gpt, *rows[row], params, seeded_generator(9), 40))
    assert mixed == alone


def test_mix_is_the_normalized_geometric_mixture():
    logits = torch.randn(2, 50, generator=torch.Generator().manual_seed(0))
    p_t, p_e = torch.softmax(logits[0], -1), torch.softmax(logits[1], -1)
    for s in (0.25, 0.5, 1.5):
        expected = p_t ** (1 - s) * p_e**s
        torch.testing.assert_close(torch.softmax(mix_logits(logits, s)[0], -1), expected / expected.sum())


def test_batched_decoding_refuses_mixing_strengths_but_takes_zero_and_one(setup):
    synth, refs, _, main_clip = setup
    decoder = BatchDecoder(synth.gpt, 2)
    batched = synth.with_decoder(decoder)
    try:
        voice = batched.with_references(batched.voice(main_clip, MAIN_TEXT, "en"), refs)
        with pytest.raises(InputError, match="batch"):
            batched.stream("Great news, it works!", "en", voice, options(emotion="happy", emotion_strength=0.5))
        audio = batched.synthesize("Great news, it works!", "en", voice, options(emotion="happy"))
        assert audio.size > 0
    finally:
        decoder.close(timeout=5)


@pytest.mark.parametrize(("changes", "message"), [
    ({"emotion": "very happy"}, "label"),
    ({"emotion_strength": 1.6}, "emotion_strength"),
    ({"emotion_strength": -0.1}, "emotion_strength"),
])
def test_bad_emotion_options_are_refused(changes, message):
    with pytest.raises(InputError, match=message):
        SynthesisOptions(**changes)


def test_labels_are_stored_lower_case():
    assert SynthesisOptions(emotion="Happy").emotion == "happy"
    assert SynthesisOptions(emotion="AUTO").emotion == "auto"


# -- SSML and prosody requests (myna.engine.expressive) ---------------------------------------------


def test_tags_inside_ssml_keep_the_breaks_where_they_stand(setup):
    from myna.engine.expressive import plan_layout

    synth, refs, voices, _ = setup
    voice = synth.with_references(voices["main"], refs)
    tagged = ('<speak><break time="300ms"/>[happy] Great news, it works! <break time="500ms"/>'
              '[sad] But not for everyone. [calm] Fine.</speak>')
    plan, routed = plan_layout(synth, tagged, "en", options(split="cut0"), voice)
    # a tag ends a fragment (even with cut0); the break before [sad] stays after the happy fragment, replacing
    # its pause, and the one before the first tag stays the lead, as in one layout without tags
    assert plan.lead == 0.3 and len(plan.fragments) == 3
    assert [f.pause_after for f in plan.fragments] == [0.5, 0.3, 0.3]
    prompts = [routed[id(f)] for f in plan.fragments]
    assert prompts[0].semantic is voices["happy"].semantic and prompts[1].semantic is voices["sad"].semantic
    assert prompts[2] is voices["main"] and "'calm'" in voice.notes[0]


def test_prosody_requests_route_emotions_too(setup, monkeypatch):
    synth, refs, voices, _ = setup
    voice = synth.with_references(voices["main"], refs)
    text = "Great news, it works!"
    plain = synth.speak(text, "en", voices["main"], options(volume=-6.0))
    zero = synth.speak(text, "en", voice, options(volume=-6.0, emotion="happy", emotion_strength=0.0))
    assert np.array_equal(zero.audio, plain.audio)  # strength 0: bit for bit, on this path too
    spy = Spy(synth, monkeypatch)
    speech = synth.speak(text, "en", voice, options(volume=-6.0, emotion="happy"))
    assert speech.words and spy.prefills and all(prompted_by(p, voices["happy"]) for p in spy.prefills)
    assert all(same_specs(s, voices["main"]) for s in spy.specs)
