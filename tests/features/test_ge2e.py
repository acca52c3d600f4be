"""GE2E speaker embeddings from Resemblyzer's weights: unit vectors that separate voices."""

from __future__ import annotations

import pytest
import torch
from espeak_clips import SENTENCES, espeak_clip, needs_espeak

from myna.checkpoints import CheckpointError
from myna.errors import InputError
from myna.features.ge2e import BUNDLED, GE2ESpeakerEmbedder, partial_starts, read_ge2e_weights


@pytest.fixture(scope="module")
def embedder() -> GE2ESpeakerEmbedder:
    return GE2ESpeakerEmbedder()


@needs_espeak
def test_same_voice_is_closer_than_another_voice(embedder, tmp_path):
    embs = {(voice, i): embedder.embed(*espeak_clip(tmp_path, voice, SENTENCES[i]))
            for voice in ("en-us", "en-us+f3") for i in range(2)}
    for emb in embs.values():
        assert emb.shape == (1, 256)
        assert torch.linalg.vector_norm(emb).item() == pytest.approx(1.0, abs=1e-5)
    same = [embedder.similarity(embs[v, 0], embs[v, 1]) for v in ("en-us", "en-us+f3")]
    other = [embedder.similarity(embs["en-us", i], embs["en-us+f3", j]) for i in range(2) for j in range(2)]
    assert min(same) > max(other) + 0.1
    audio, rate = espeak_clip(tmp_path, "en-us", SENTENCES[0])
    assert torch.equal(embedder.embed(audio, rate), embedder.embed(torch.from_numpy(audio)[None], rate))


def test_reads_resemblyzer_pretrained_layout(tmp_path):
    state = read_ge2e_weights(BUNDLED)
    original = tmp_path / "pretrained.pt"
    torch.save({"step": 1, "model_state": {**state, "similarity_weight": torch.ones(1)}}, original)
    a, b = GE2ESpeakerEmbedder(original), GE2ESpeakerEmbedder()
    assert all(torch.equal(a.model.state_dict()[k], b.model.state_dict()[k]) for k in state)
    torch.save({"model_state": {"lstm.weight_ih_l0": torch.zeros(3, 3)}}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="LSTM voice encoder"):
        GE2ESpeakerEmbedder(tmp_path / "bad.pt")


def test_partials_cover_the_clip():
    assert partial_starts(8000) == [0]  # shorter than one partial: one, zero-padded
    starts = partial_starts(16000 * 5)
    assert starts[0] == 0 and all(b - a == 77 for a, b in zip(starts, starts[1:], strict=False))
    assert (starts[-1] + 160) * 160 >= 16000 * 5 * 0.75


def test_silence_is_refused(embedder):
    with pytest.raises(InputError, match="silence"):
        embedder.embed(torch.zeros(16000))
