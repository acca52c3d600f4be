"""T2S GPT: upstream key names and shapes, upstream logits, cache vs full-sequence equivalence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import t2s_fixtures as fx
import torch

from myna.errors import InputError
from myna.models.t2s import MAX_POSITIONS, T2SConfig, T2SModel

DATA = Path(__file__).parent / "data"
KEYS = json.loads((DATA / "t2s_keys.json").read_text(encoding="utf-8"))
UPSTREAM = json.loads((DATA / "t2s_upstream.json").read_text(encoding="utf-8"))

S1LONGER_V2 = {  # GPT_SoVITS/configs/s1longer-v2.yaml, model + data.max_sec
    "model": {"vocab_size": 1025, "phoneme_vocab_size": 732, "embedding_dim": 512, "hidden_dim": 512,
              "head": 16, "linear_units": 2048, "n_layer": 24, "dropout": 0, "EOS": 1024, "random_bert": 0},
    "data": {"max_sec": 54, "pad_val": 1024},
    "inference": {"top_k": 15},
}


@pytest.fixture(scope="module")
def tiny() -> T2SModel:
    torch.manual_seed(0)
    return fx.tiny_model()


def shapes(model: T2SModel) -> dict[str, list[int]]:
    return {k: list(v.shape) for k, v in model.state_dict().items()}


def test_tiny_keys_and_shapes_equal_upstream(tiny: T2SModel) -> None:
    assert shapes(tiny) == KEYS["tiny"]
    assert list(tiny.state_dict()) == list(KEYS["tiny"])  # same order too


def test_full_size_keys_and_shapes_equal_upstream() -> None:
    with torch.device("meta"):
        model = T2SModel(T2SConfig.from_dict(S1LONGER_V2))
    assert shapes(model) == KEYS["full"]
    assert sum(v.numel() for v in model.state_dict().values()) == 77606402


def test_cache_buffers_stay_out_of_the_state_dict(tiny: T2SModel) -> None:
    tiny.setup_cache(1, 16)
    assert shapes(tiny) == KEYS["tiny"]


def test_config_round_trip_and_defaults() -> None:
    config = T2SConfig.from_dict(S1LONGER_V2)
    assert config == T2SConfig()
    assert config.max_sec == 54 and config.ffn_dim == 2048
    assert T2SConfig.from_dict(config.to_dict()) == config
    assert T2SConfig.from_dict(S1LONGER_V2["model"]).max_sec == 54  # model section alone: default max_sec


@pytest.mark.parametrize("change", [{"EOS": 1000}, {"embedding_dim": 256}, {"head": 5}])
def test_config_rejects_shapes_upstream_cannot_build(change: dict) -> None:
    with pytest.raises(InputError):
        T2SConfig.from_dict({**S1LONGER_V2["model"], **change})


@pytest.mark.parametrize("case", ["greedy_prompt", "greedy_ref_free"])
def test_prefill_logits_match_upstream(tiny: T2SModel, case: str) -> None:
    ref = next(c for c in UPSTREAM["cases"] if c["name"] == case)
    inputs = fx.tiny_inputs()
    prompt = inputs["prompt"] if ref["prompt"] else None
    tiny.setup_cache(1, 64)
    with torch.inference_mode():
        logits = tiny.prefill(inputs["phones"], inputs["bert"], prompt)
    expected = torch.tensor(ref["logits"]["0"])  # upstream had cut the EOS column at step 0
    assert logits.shape == (1, 1025)
    # fp32 rounding: the BLAS kernel chosen can vary with the process's earlier thread settings (~1e-5 on logits ~3)
    torch.testing.assert_close(logits[0, :-1], expected, rtol=0, atol=2e-5)


@pytest.mark.parametrize("with_prompt", [True, False])
@pytest.mark.parametrize("static_shapes", [False, True])
def test_cached_decoding_equals_full_sequence_pass(tiny: T2SModel, with_prompt: bool, static_shapes: bool) -> None:
    inputs = fx.tiny_inputs(prompt_len=9, text_len=11)
    prompt = inputs["prompt"] if with_prompt else None
    prompt_len = 9 if with_prompt else 0
    generated = torch.randint(0, 1024, (1, 7), generator=torch.Generator().manual_seed(3))
    prefix = inputs["phones"].shape[1] + prompt_len
    tiny.setup_cache(1, prefix + 20)
    with torch.inference_mode():
        full_tokens = generated if prompt is None else torch.cat([prompt, generated], dim=1)
        full = tiny(inputs["phones"], inputs["bert"], full_tokens)[:, prompt_len:]
        steps = [tiny.prefill(inputs["phones"], inputs["bert"], prompt)]
        for i in range(generated.shape[1]):
            pos = prefix + i
            steps.append(tiny.decode_step(generated[:, i : i + 1], torch.tensor([pos]),
                                          torch.tensor([prompt_len + i]), None if static_shapes else pos + 1))
    # one query row vs a masked S x S attention: same maths, float32 rounding of ~1e-5 on logits of ~10
    torch.testing.assert_close(torch.stack(steps, dim=1), full, rtol=0, atol=1e-4)


def test_prefill_needs_a_cache_big_enough(tiny: T2SModel) -> None:
    inputs = fx.tiny_inputs()
    tiny.setup_cache(1, 8)
    with pytest.raises(RuntimeError, match="cache"):
        tiny.prefill(inputs["phones"], inputs["bert"], inputs["prompt"])


def test_mismatched_bert_features_are_an_input_error(tiny: T2SModel) -> None:
    inputs = fx.tiny_inputs()
    with pytest.raises(InputError, match="BERT"):
        tiny(inputs["phones"], inputs["bert"][:, :, :-1], None)


def test_positions_beyond_upstream_table_are_an_input_error(tiny: T2SModel) -> None:
    tokens = torch.zeros(1, MAX_POSITIONS + 1, dtype=torch.long)
    with pytest.raises(InputError, match="too long"):
        tiny.embed_audio(tokens)
