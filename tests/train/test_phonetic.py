"""Phonetic tokens: labels, Viterbi alignment, flat-start training and the classifier-as-quantizer identity."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from myna.errors import InputError
from myna.models.sovits import SoVITS
from myna.text.symbols import symbol_to_id
from myna.train import phonetic
from myna.train.presets import get_preset


def _ids(*names: str) -> list[int]:
    table = symbol_to_id("v2")
    return [table[n] for n in names]


def _cls(name: str) -> int:
    return phonetic.PHONE_CLASSES.index(name)


def test_symbol_classes_split_stress_and_merge_pauses():
    classes = phonetic.symbol_classes()
    ah0, ah1, ah2, k, comma, dot = (classes[i] for i in _ids("AH0", "AH1", "AH2", "K", ",", "."))
    assert ah0 == _cls("AH0") and ah1 == ah2 == _cls("AH1") and ah0 != ah1
    assert k == _cls("K")
    assert comma == dot == phonetic.SILENCE
    assert classes[symbol_to_id("v2")["a1"]] == -1  # not an English phone


def test_phone_states_make_pauses_and_ends_optional():
    states = phonetic.phone_states(_ids("HH", "AY1", ",", "DH", "EH1", "R", "."), phonetic.symbol_classes())
    names = [phonetic.PHONE_CLASSES[c] for c in states.classes]
    assert names == ["SIL", "HH", "AY1", "SIL", "DH", "EH1", "R", "SIL"]
    assert states.optional.tolist() == [True, False, False, True, False, False, False, True]
    # each state's phoneme: the comma is index 2, the end silence has none, the final "." replaces it
    assert states.phones.tolist() == [-1, 0, 1, 2, 3, 4, 5, 6]
    leading = phonetic.phone_states(_ids(",", "K", "AE1"), phonetic.symbol_classes())
    assert leading.phones.tolist() == [0, 1, 2, -1]  # the opening silence is the leading pause
    with pytest.raises(InputError, match="not an English phone"):
        phonetic.phone_states(_ids("a1"), phonetic.symbol_classes())


def test_viterbi_finds_the_planted_segmentation_and_skips_unused_silences():
    states = phonetic.phone_states(_ids("K", "AE1", ",", "T"), phonetic.symbol_classes())
    truth = np.array([_cls("K")] * 3 + [_cls("AE1")] * 5 + [_cls("T")] * 4 + [phonetic.SILENCE] * 2)
    rng = np.random.default_rng(0)
    scores = rng.normal(0, 0.3, (len(truth), len(phonetic.PHONE_CLASSES)))
    scores[np.arange(len(truth)), truth] += 3.0  # the true class scores clearly best
    labels = phonetic.viterbi(scores, states)
    assert labels.tolist() == truth.tolist()  # no leading silence, no pause at the comma


def test_viterbi_keeps_every_required_phone():
    states = phonetic.phone_states(_ids("S", "IY1", "T"), phonetic.symbol_classes())
    scores = np.zeros((6, len(phonetic.PHONE_CLASSES)))
    scores[:, _cls("S")] = 5.0  # the scores favour one phone everywhere
    labels = phonetic.viterbi(scores, states)
    assert {_cls("S"), _cls("IY1"), _cls("T")} <= set(labels.tolist())
    assert len(labels) == 6


def test_flat_start_alignment_recovers_phone_boundaries():
    gen = torch.Generator().manual_seed(0)
    dim, words = 16, [("K", "AE1", "T"), ("S", "IY1"), ("D", "AO1", "G")]
    means = {name: torch.randn(dim, generator=gen) * 3 for name in phonetic.PHONE_CLASSES}
    clips, ids, truths, where = [], [], [], []
    for n in range(60):
        word = words[n % len(words)]
        lengths = torch.randint(2, 7, (len(word),), generator=gen).tolist()
        truth = ["SIL"] * 2 + [p for p, k in zip(word, lengths, strict=True) for _ in range(k)] + ["SIL"] * 2
        clips.append(torch.stack([means[p] + 0.3 * torch.randn(dim, generator=gen) for p in truth]))
        ids.append(_ids(*word))
        truths.append([_cls(p) for p in truth])
        where.append([-1] * 2 + [i for i, k in enumerate(lengths) for _ in range(k)] + [-1] * 2)
    labels, positions = phonetic.align_corpus(clips, ids, iterations=3, context=1, hidden=32, epochs=4,
                                              batch=64, positions=True)
    accuracy = np.mean(np.concatenate(labels) == np.concatenate(truths))
    assert accuracy > 0.9
    assert np.mean(np.concatenate(positions) == np.concatenate(where)) > 0.9
    for clip_positions in positions:  # monotonic, and every phoneme is visited
        spoken = clip_positions[clip_positions >= 0]
        assert np.all(np.diff(spoken) >= 0) and len(np.unique(spoken)) == spoken.max() + 1


@pytest.mark.parametrize("rate", ["25hz", "50hz"])
def test_installed_tokenizer_is_the_classifier_argmax(rate):
    torch.manual_seed(0)
    model = SoVITS(replace(get_preset("tiny").sovits, semantic_frame_rate=rate)).eval()
    span = 2 if rate == "25hz" else 1
    weight, bias = torch.randn(55, span * 384) * 0.1, torch.randn(55)
    phonetic.install_tokenizer(model, weight, bias)
    x = torch.randn(2, 384, 60) * 2 + 0.5
    codes = model.extract_latent(x)[:, 0]
    frames = x.unfold(2, span, span).permute(0, 2, 3, 1).reshape(2, -1, span * 384)
    expected = (frames.double() @ weight.double().t() + bias.double()).argmax(-1)
    assert torch.equal(codes, expected)
    assert int(codes.max()) < 55  # codebook entries past the classes never win


def test_install_tokenizer_refuses_too_many_classes():
    model = SoVITS(get_preset("tiny").sovits)
    with pytest.raises(InputError, match="tokenizer"):
        phonetic.install_tokenizer(model, torch.randn(400, 768), torch.zeros(400))


def test_product_codes_pick_the_class_then_its_nearest_centroid():
    torch.manual_seed(1)
    model = SoVITS(get_preset("tiny").sovits).eval()
    classes, per_class, extra = 5, 3, 8
    weight, bias = torch.randn(classes, 768) * 0.1, torch.randn(classes)
    sub_proj, offset = torch.randn(extra, 768) * 0.05, torch.randn(extra)
    centroids = torch.randn(classes, per_class, extra)
    phonetic.install_tokenizer(model, weight, bias, sub=(sub_proj, offset, centroids), weight_scale=30.0)
    x = torch.randn(2, 384, 40)
    codes = model.extract_latent(x)[:, 0]
    pairs = x.unfold(2, 2, 2).permute(0, 2, 3, 1).reshape(2, -1, 768).double()
    cls = (pairs @ weight.double().t() + bias.double()).argmax(-1)
    projected = pairs @ sub_proj.double().t() + offset.double()
    nearest = ((projected[..., None, :] - centroids.double()[cls]) ** 2).sum(-1).argmin(-1)
    assert torch.equal(codes, cls * per_class + nearest)


@pytest.mark.parametrize("per_class", [1, 4])
def test_fitted_tokenizer_reads_the_phones_of_synthetic_clips(per_class):
    gen = torch.Generator().manual_seed(3)
    words = [("K", "AE1", "T"), ("S", "IY1"), ("D", "AO1", "G")]
    means = {name: torch.randn(384, generator=gen) * 2 for name in phonetic.PHONE_CLASSES}
    clips, ids = [], []
    for n in range(45):
        word = words[n % len(words)]
        lengths = (2 * torch.randint(2, 5, (len(word),), generator=gen)).tolist()  # whole 25 Hz tokens
        truth = ["SIL"] * 4 + [p for p, k in zip(word, lengths, strict=True) for _ in range(k)] + ["SIL"] * 4
        clips.append(torch.stack([means[p] + 0.5 * torch.randn(384, generator=gen) for p in truth]))
        ids.append(_ids(*word))
    model = SoVITS(get_preset("tiny").sovits).eval()
    match, aligned = phonetic.fit_phone_tokenizer(model, clips, ids, iterations=2, per_class=per_class)
    assert match > 0.9 and len(aligned) == len(clips)
    codes = model.extract_latent(clips[0].t().unsqueeze(0))[0, 0]
    assert {phonetic.PHONE_CLASSES[int(c) // per_class] for c in codes} >= {"K", "AE1", "T"}
    assert int(codes.max()) < len(phonetic.PHONE_CLASSES) * per_class


def test_text_following_tells_tokens_that_say_their_text_from_tokens_that_do_not():
    # four codes per phone class, spoken 3 tokens a phone (label frames at twice the token rate)
    rng = np.random.default_rng(0)
    words = [_ids("HH", "AY1"), _ids("DH", "EH1", "R"), _ids("K", "AE1", "T"), _ids("S", "IY1"), _ids("M", "UW1", "N")]
    classes = phonetic.symbol_classes()

    def speak(ids: list[int]) -> tuple[np.ndarray, np.ndarray]:
        labels = np.repeat([classes[i] for i in ids], 6)
        return 4 * labels[::2] + rng.integers(0, 4, len(labels) // 2), labels

    clips = [speak(words[i % 5] + words[(i + 2) % 5]) for i in range(40)]
    scores = phonetic.code_phone_scores([t for t, _ in clips], [lab for _, lab in clips], 4 * len(phonetic.PHONE_CLASSES))
    assert scores.shape == (4 * len(phonetic.PHONE_CLASSES), len(phonetic.PHONE_CLASSES))
    text, other = words[0] + words[2], words[3] + words[4]
    tokens, _ = speak(text)
    assert phonetic.text_following(scores, tokens.tolist(), text, other) > 1.0
    # tokens of another text, or of no text at all, do not follow this one
    assert phonetic.text_following(scores, speak(other)[0].tolist(), text, other) < -1.0
    babble = rng.integers(0, 4 * len(phonetic.PHONE_CLASSES), len(tokens))
    assert abs(phonetic.text_following(scores, babble.tolist(), text, other)) < 0.5
