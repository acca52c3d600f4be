"""myna data features: the per-utterance feature cache, on espeak-ng speech and the tiny model set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from myna.audio.decode import decode
from myna.audio.io import resample_soxr
from myna.cli import main
from myna.features.content import HubertContentEncoder
from myna.train.dataset import FeatureCache
from myna.train.features import FeatureModels, extract_features
from myna.train.listfile import ListEntry, write_list


@pytest.fixture()
def dataset(speech, tmp_path: Path) -> Path:
    entries = [ListEntry(clip, "anna", "en", text) for clip, text in zip(speech["clips"][:3], speech["texts"], strict=False)]
    entries.append(ListEntry(speech["clips"][3], "anna", "zh", "今天天气很好。"))
    return write_list(tmp_path / "data" / "dataset.list", entries)


def _models(tiny_set: dict) -> FeatureModels:
    return FeatureModels(tiny_set["hubert"], tiny_set["sovits"], tiny_set["bert"])


def test_features_cached_and_reused(dataset: Path, tiny_set: dict, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    first = extract_features(dataset, cache_dir, _models(tiny_set))
    assert first.items == 4 and first.skipped == []
    assert dict(first.computed) == {"phonemes": 4, "wav32k": 4, "hubert": 4, "semantic": 4}
    assert sorted(first.loaded_models) == ["bert", "hubert", "sovits"]

    cache = FeatureCache.open(cache_dir)
    assert (cache.version, cache.symbols, len(cache.items)) == ("v2", "v2", 4)
    for item in cache.items:
        ssl, codes, ids, bert = item.ssl(), item.semantic(), item.phone_ids(), item.bert()
        frames = ssl.shape[-1]
        assert ssl.shape[:2] == (1, 768) and ssl.dtype == torch.float32
        assert abs(frames - item.record["seconds"] * 50) <= 2
        assert codes.dtype == torch.long and codes.shape == (frames // 2,)  # the tiny SoVITS is 25 Hz
        assert bert.shape == (1024, ids.shape[0]) == (1024, item.record["phones"])
        assert (bert.abs().sum() > 0) == (item.record["lang"] == "zh")
        assert item.sv_emb() is None and item.wav().dtype == np.float32
    assert cache.items[3].text_info()["norm_text"] == "今天天气很好."
    assert sum(cache.items[3].text_info()["word2ph"]) == cache.items[3].phone_ids().shape[0]

    again = extract_features(dataset, cache_dir, _models(tiny_set))
    assert sum(again.computed.values()) == 0 and again.loaded_models == []
    assert dict(again.reused) == dict(first.computed)
    assert FeatureCache.open(cache_dir).items == cache.items


def test_edited_transcript_recomputes_only_its_phonemes(dataset: Path, tiny_set: dict, tmp_path: Path) -> None:
    extract_features(dataset, tmp_path / "cache", _models(tiny_set))
    text = dataset.read_text(encoding="utf-8").replace("lazy dog", "sleepy cat")
    dataset.write_text(text, encoding="utf-8")
    edited = extract_features(dataset, tmp_path / "cache", _models(tiny_set))
    assert dict(edited.computed) == {"phonemes": 1} and edited.loaded_models == []
    assert "sleepy cat" in FeatureCache.open(tmp_path / "cache").items[0].record["text"]


def test_waveform_and_hubert_input_follow_upstream(dataset: Path, speech, tiny_set: dict, tmp_path: Path) -> None:
    extract_features(dataset, tmp_path / "cache", _models(tiny_set))
    item = FeatureCache.open(tmp_path / "cache").items[0]
    audio = decode(speech["clips"][0], 32000)
    mixed = audio / np.abs(audio).max() * 0.475 + 0.5 * audio  # upstream's 0.95-peak half mix
    expected = (mixed.astype(np.float64) * 32768).astype(np.int16)
    assert np.array_equal((item.wav() * 32768).astype(np.int16), expected)
    wave_16k = resample_soxr((mixed * 1145.14).astype(np.float32), 32000, 16000)
    ssl = HubertContentEncoder(tiny_set["hubert"]).encode(torch.from_numpy(wave_16k)[None])
    torch.testing.assert_close(item.ssl(), ssl, rtol=0, atol=1e-5)


def test_unreadable_audio_is_skipped_with_a_reason(speech, tiny_set: dict, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio at all")
    entries = [ListEntry(speech["clips"][0], "a", "en", speech["texts"][0]), ListEntry(broken, "a", "en", "hello")]
    report = extract_features(entries, tmp_path / "cache", _models(tiny_set))
    assert report.items == 1
    assert report.skipped[0][0] == str(broken) and "not a readable audio file" in report.skipped[0][1]


def test_cli_features_and_prepare_refusal(dataset: Path, speech, tiny_set: dict, tmp_path: Path, capsys) -> None:
    code = main(["data", "features", str(dataset), "--out", str(tmp_path / "cache"), "-q",
                 "--hubert", str(tiny_set["hubert"]), "--sovits", str(tiny_set["sovits"]), "--bert", str(tiny_set["bert"])])
    captured = capsys.readouterr()
    assert code == 0 and captured.out.strip() == str(tmp_path / "cache" / "features.json")
    assert "4 utterances" in captured.err and "hubert: computed 4, reused 0" in captured.err
    assert len(json.loads((tmp_path / "cache" / "features.json").read_text("utf-8"))["items"]) == 4
    code = main(["data", "prepare", str(speech["clips"][0]), "--out", str(tmp_path / "out"), "-q"])
    assert code == 1 and "at least 20 s" in capsys.readouterr().err
