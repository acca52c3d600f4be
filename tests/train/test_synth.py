"""`myna data synth`: sentences, local voices, pseudo-speakers, the corpus folder and its licence record."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from myna.errors import InputError
from myna.train.listfile import read_list
from myna.train.synth.augment import Speaker, plan_speakers, shift
from myna.train.synth.corpus import HELDOUT_LIST, TRAIN_LIST, SynthOptions, build_corpus, split_heldout
from myna.train.synth.sentences import (
    generate_sentences,
    generate_wide_sentences,
    heldout_sentences,
    sentence_key,
    wide_vocabulary,
)
from myna.train.synth.voices import BASE_VOICES, VoiceUnavailable

_MISSING = [b for b in ("flite", "espeak-ng", "rubberband") if shutil.which(b) is None]
needs_engines = pytest.mark.skipif(bool(_MISSING), reason=f"not installed: {', '.join(_MISSING)} "
                                   "(scripts/setup.sh installs flite, espeak-ng and rubberband-cli)")
ARPABET = set("AA AE AH AO AW AY B CH D DH EH ER EY F G HH IH IY JH K L M N NG OW OY P R S SH T TH UH UW V W "
              "Y Z ZH".split())


def test_sentences_are_deterministic_distinct_and_varied():
    first, again = generate_sentences(400, seed=3), generate_sentences(400, seed=3)
    assert first == again
    assert first != generate_sentences(400, seed=4)
    assert len({sentence_key(s) for s in first}) == 400
    endings = {s[-1] for s in first}
    assert {".", "?", "!"} <= endings
    lengths = [len(s.split()) for s in first]
    assert min(lengths) <= 8 and max(lengths) >= 18 and max(lengths) <= 26
    assert any(ch.isdigit() for s in first for ch in s)  # numbers, money, dates


def test_generator_never_emits_heldout_sentences():
    held = heldout_sentences()
    assert len(held) == 40 and len({sentence_key(s) for s in held}) == 40
    keys = {sentence_key(s) for s in held}
    assert not keys & {sentence_key(s) for s in generate_sentences(5000, seed=0)}
    # the filter itself: declare generated sentences held out and they disappear from the output
    plain = generate_sentences(30, seed=1)
    filtered = generate_sentences(30, seed=1, heldout=[plain[0].upper(), plain[5].rstrip(".?!")])
    assert plain[0] not in filtered and plain[5] not in filtered and filtered[:4] == plain[1:5]


def test_wide_sentences_draw_on_a_wide_vocabulary():
    plain, wide = generate_sentences(400, seed=2), generate_wide_sentences(400, seed=2)
    assert wide == generate_wide_sentences(400, seed=2) and wide != generate_wide_sentences(400, seed=3)
    assert len({sentence_key(s) for s in wide}) == 400
    assert not {sentence_key(s) for s in wide} & {sentence_key(s) for s in heldout_sentences()}
    words = {w for s in wide for w in sentence_key(s).split()}
    assert len(words) > 2 * len({w for s in plain for w in sentence_key(s).split()})
    # the open classes come from the vocabulary given; the templates' other words stay
    assert generate_wide_sentences(0) == [] and generate_sentences(0) == []  # none asked for: none made
    tiny = generate_wide_sentences(50, seed=2, vocabulary=("quokka", "zeppelin"))
    assert sum("quokka" in s or "zeppelin" in s for s in tiny) > 40
    assert all(s[-1] in ".?!" for s in tiny)


def test_wide_vocabulary_is_common_pronounceable_words():
    from myna.text.en.lexicon import lexicon

    words = wide_vocabulary()
    assert len(words) > 10_000 and len(set(words)) == len(words)
    assert all(w.isalpha() and w.islower() and 3 <= len(w) <= 12 and w in lexicon() for w in words)
    assert "the" not in words and "and" not in words  # the most frequent (function) words are left out
    # the order follows frequency: everyday words come before rare ones
    assert words.index("water") < words.index("mountain") < len(words) // 4 < words.index("telescope")
    assert "wor" not in words  # a word fragment of the byte-pair vocabulary, not in the lexicon


def test_sentences_cover_every_english_phoneme():
    from myna.text.en.g2p import g2p
    from myna.text.en.normalize import normalize

    phones = {p.rstrip("012") for s in generate_sentences(120, seed=0) for p in g2p(normalize(s))}
    assert ARPABET <= phones


def test_pseudo_speakers_are_seeded_and_held_out_split():
    bases = [BASE_VOICES["flite-slt"], BASE_VOICES["festival-ked"]]
    speakers = plan_speakers(bases, 4, seed=7)
    assert speakers == plan_speakers(bases, 4, seed=7) and speakers != plan_speakers(bases, 4, seed=8)
    assert [s.augmented for s in speakers] == [False, False, True, True, True, True]
    assert all(abs(s.pitch_semitones) >= 1 or abs(np.log2(s.formant_ratio)) >= 0.05 for s in speakers[2:])
    held = split_heldout(speakers, "ked", 3)
    assert {s.name for s in held} >= {"festival-ked", "festival-ked-p01", "festival-ked-p03"}
    with pytest.raises(InputError, match="every speaker"):
        split_heldout(speakers[1:2], "ked", 1)


def test_missing_engine_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(VoiceUnavailable, match="apt-get install festival festvox-us-slt-hts"):
        BASE_VOICES["festival-slt-hts"].check()
    with pytest.raises(VoiceUnavailable, match="apt-get install flite"):
        BASE_VOICES["flite-awb"].render("Hello.")


def _f0(audio: np.ndarray, rate: int) -> float:
    """Median F0 of voiced 40 ms frames by autocorrelation (60-400 Hz)."""
    size = int(0.04 * rate)
    values = []
    for start in range(0, audio.size - size, size // 2):
        frame = audio[start:start + size] - audio[start:start + size].mean()
        corr = np.correlate(frame, frame, "full")[size - 1:]
        low, high = rate // 400, rate // 60
        lag = low + int(np.argmax(corr[low:high]))
        if corr[0] > 1e-3 and corr[lag] > 0.5 * corr[0]:
            values.append(rate / lag)
    return float(np.median(values))


def _envelope_scale(source: np.ndarray, shifted: np.ndarray, rate: int) -> float:
    """The frequency scaling that best maps the long-term spectrum (dB, 200-5000 Hz) of `source` onto `shifted`."""
    def ltas(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        frames = np.lib.stride_tricks.sliding_window_view(audio, 1024)[::256]
        energy = (frames**2).mean(axis=1)
        power = (np.abs(np.fft.rfft(frames[energy > 0.1 * energy.max()] * np.hanning(1024))) ** 2).mean(axis=0)
        return np.fft.rfftfreq(1024, 1 / rate), 10 * np.log10(power + 1e-12)

    freqs, before = ltas(source)
    _, after = ltas(shifted)
    band = (freqs > 200) & (freqs < 5000)
    scales = np.arange(0.75, 1.35, 0.01)
    fits = [np.corrcoef(np.interp(freqs[band] / a, freqs, before), after[band])[0, 1] for a in scales]
    return float(scales[int(np.argmax(fits))])


@needs_engines
def test_shift_moves_pitch_and_formants_the_right_way():
    base = BASE_VOICES["flite-rms"]
    audio, rate = base.render("Did the yellow violin arrive on a rainy Sunday morning? She measured the beige treasure.")
    up = shift(audio, rate, Speaker("up", base, pitch_semitones=4.0))
    down = shift(audio, rate, Speaker("down", base, pitch_semitones=-4.0))
    f0, f0_up, f0_down = _f0(audio, rate), _f0(up, rate), _f0(down, rate)
    assert f0_up / f0 == pytest.approx(2 ** (4 / 12), rel=0.08)
    assert f0_down / f0 == pytest.approx(2 ** (-4 / 12), rel=0.08)
    assert _envelope_scale(audio, up, rate) == pytest.approx(1.0, abs=0.04)  # pitch moves, formants stay
    shorter = shift(audio, rate, Speaker("tract", base, formant_ratio=1.2))
    assert _f0(shorter, rate) == pytest.approx(f0, rel=0.08)  # formants move, the pitch stays
    assert _envelope_scale(audio, shorter, rate) == pytest.approx(1.2, abs=0.04)
    longer = shift(audio, rate, Speaker("tract", base, formant_ratio=0.85))
    assert _envelope_scale(audio, longer, rate) == pytest.approx(0.85, abs=0.04)
    slow = shift(audio, rate, Speaker("slow", base, tempo=0.8))
    assert slow.size / audio.size == pytest.approx(1 / 0.8, rel=0.03)


@needs_engines
def test_build_corpus_writes_lists_wavs_and_sources(tmp_path):
    options = SynthOptions(tmp_path / "corpus", utterances=2, wide_utterances=1, voices=("flite-slt", "espeak-us-f2"),
                           pseudo_speakers=1, seed=5, jobs=2, rate=22050, heldout_family=None,
                           heldout_speakers=1, heldout_utterances=2, progress=False)
    report = build_corpus(options)
    assert not report.failures
    train, problems = read_list(options.out / TRAIN_LIST)
    held, held_problems = read_list(options.out / HELDOUT_LIST)
    assert not problems and not held_problems
    assert {e.speaker for e in train} == {"flite-slt", "espeak-us-f2"} and len(train) == 6
    # each training speaker also speaks one wide-vocabulary sentence, in its own file; held-out speakers none
    wide = [e for e in train if Path(e.audio).name.startswith("w")]
    assert sorted(Path(e.audio).name for e in wide) == ["w0000.wav", "w0000.wav"]
    assert {e.speaker for e in wide} == {"flite-slt", "espeak-us-f2"}
    assert {e.speaker for e in held} == {"flite-slt-p00"}
    assert [e.text for e in held] == [t for t in heldout_sentences()[:2]]  # already in their spoken form
    assert not {sentence_key(e.text) for e in train} & {sentence_key(s) for s in heldout_sentences()}
    for entry in train + held:
        audio, rate = sf.read(entry.audio, dtype="float32")
        assert rate == 22050 and audio.ndim == 1 and sf.info(entry.audio).subtype == "PCM_16"
        assert 0.8 < audio.size / rate < 14 and np.sqrt(np.mean(audio**2)) > 0.02
    sources = json.loads((options.out / "sources.json").read_text())
    licences = {p["package"]: p for p in sources["packages"]}
    assert {"flite", "libflite1", "espeak-ng", "espeak-ng-data", "rubberband-cli"} <= set(licences)
    assert licences["libflite1"]["licence"].startswith("CMU") and licences["espeak-ng"]["licence"].startswith("GPL")
    assert all(p["version"] and p["evidence_found"] for p in licences.values())
    pseudo = next(s for s in sources["speakers"] if s["name"] == "flite-slt-p00")
    assert pseudo["split"] == "heldout" and pseudo["base"] == "flite-slt" and pseudo["pitch_semitones"] != 0
    assert "CMU" in (options.out / "SOURCES.md").read_text()
    again = build_corpus(options)  # resumable: everything is reused, nothing rendered
    assert again.reused == 8 and again.rendered_seconds == 0 and again.speakers == report.speakers


def test_cli_rejects_an_unknown_voice(tmp_path, capsys):
    from myna.cli import main

    code = main(["data", "synth", "--out", str(tmp_path / "c"), "--voices", "flite-nobody", "-q"])
    assert code == 1
    assert "unknown voice(s) flite-nobody" in capsys.readouterr().err
