"""The default reference clip is chosen by measured quality (SNR, speech ratio, transcript confidence)."""

from __future__ import annotations

import numpy as np
import pytest

from myna.audio.io import write_wav
from myna.errors import InputError
from myna.train.dataset import CachedUtterance, FeatureCache
from myna.train.refpick import pick, rank_references
from myna.train.stages import default_reference

RATE = 32000


def _cache(tmp_path, clips: dict[str, np.ndarray]) -> FeatureCache:
    items = []
    for name, audio in clips.items():
        write_wav(tmp_path / f"{name}.wav", audio, RATE)
        items.append(CachedUtterance(tmp_path, {"name": name, "audio": str(tmp_path / f"{name}.wav"), "text": name,
                                                "lang": "en", "seconds": audio.shape[0] / RATE,
                                                "wav32k": f"{name}.wav"}))
    return FeatureCache(tmp_path, "v2", "v2", {}, items)


def test_a_clean_clip_beats_a_noisy_one_closer_to_6_s(speech, tmp_path):
    clean = np.concatenate([speech["audio"][3], np.zeros(RATE // 3, np.float32)])  # ~4-5 s, quiet pauses
    long = np.concatenate([speech["audio"][2], speech["audio"][0]])[: 6 * RATE]
    noisy = long + 0.03 * np.random.default_rng(0).standard_normal(long.shape[0]).astype(np.float32)
    cache = _cache(tmp_path, {"noisy": noisy, "clean": clean})
    assert default_reference(cache)["ref_text"] == "clean"  # not the noisy one, though it is exactly 6 s
    ranked = rank_references(cache)
    assert [c.text for c in ranked] == ["clean", "noisy"] and ranked[0].snr_db > ranked[1].snr_db + 10
    # a transcript Whisper doubted costs points too
    doubtful = rank_references(cache, {"clean.wav": 0.1, "noisy.wav": 0.99})
    assert doubtful[0].score < ranked[0].score
    assert pick(ranked, "noisy.wav").text == "noisy" and pick(ranked, None).text == "clean"
    with pytest.raises(InputError, match="not one of the training clips"):
        pick(ranked, "other.wav")


def test_a_run_started_before_a_setting_existed_still_resumes():
    from myna.train.runs import RunRecord, check_against

    old = RunRecord("data", "base", {"gpt": {"batch_size": 8}}, {"gpt": 15})
    new = RunRecord("data", "base", {"gpt": {"batch_size": 8, "attention_budget": 204800}}, {"gpt": 15})
    assert check_against(old, new, "anna", restart=False, continue_training=False) == "resume"
    changed = RunRecord("data", "base", {"gpt": {"batch_size": 4, "attention_budget": 204800}}, {"gpt": 15})
    with pytest.raises(InputError, match="gpt batch_size"):
        check_against(old, changed, "anna", restart=False, continue_training=False)
