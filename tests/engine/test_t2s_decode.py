"""Semantic-token decoding: upstream's tokens (greedy and seeded sampling), stop rules, sampling maths."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from myna.engine import t2s_decode
from myna.engine.t2s_decode import (
    SamplingParams,
    filter_probs,
    generate_semantic,
    iter_semantic_tokens,
    penalize_repeats,
    seeded_generator,
)
from myna.errors import InputError
from myna.models.t2s import T2SModel

MODELS_TESTS = Path(__file__).parents[1] / "models"
_spec = importlib.util.spec_from_file_location("t2s_fixtures", MODELS_TESTS / "t2s_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)
UPSTREAM = json.loads((MODELS_TESTS / "data" / "t2s_upstream.json").read_text(encoding="utf-8"))
CASES = {case["name"]: case for case in UPSTREAM["cases"]}


@pytest.fixture(scope="module")
def tiny() -> T2SModel:
    return fx.tiny_model()


def params_of(case: dict) -> SamplingParams:
    return SamplingParams(top_k=case["top_k"], top_p=case["top_p"], temperature=case["temperature"],
                          repetition_penalty=case.get("repetition_penalty", 1.35))


def run_case(model: T2SModel, case: dict, **overrides) -> torch.Tensor:
    inputs = fx.tiny_inputs()
    prompt = inputs["prompt"] if case["prompt"] else None
    kwargs = {"early_stop_num": case["early_stop_num"], **overrides}
    return generate_semantic(model, inputs["phones"], inputs["bert"], prompt, params_of(case),
                             seeded_generator(case["seed"]), **kwargs)


@pytest.mark.parametrize("name", sorted(CASES))
def test_tokens_equal_upstream_with_the_same_seed(tiny: T2SModel, name: str, monkeypatch) -> None:
    case = CASES[name]
    seen_logits: list[torch.Tensor] = []
    penalize = t2s_decode.penalize_repeats

    def recording(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
        seen_logits.append(logits.clone())
        return penalize(logits, seen, penalty)

    monkeypatch.setattr(t2s_decode, "penalize_repeats", recording)
    tokens = run_case(tiny, case)
    assert tokens.tolist() == case["tokens"]
    assert len(seen_logits) == case["steps"]
    for step, expected in case.get("logits", {}).items():
        # CPUs differ in the last bits of a float32 GEMM (AVX2 vs AVX-512 kernels): the tokens must be equal,
            # the logits within float32 noise
            torch.testing.assert_close(seen_logits[int(step)][0], torch.tensor(expected), rtol=0, atol=1e-4)


def test_stop_rules_as_upstream(tiny: T2SModel) -> None:
    # prompted (batch path): the token that trips the early stop is dropped
    assert CASES["greedy_prompt"]["early_stop_num"] == 100 and len(CASES["greedy_prompt"]["tokens"]) == 100
    # ref-free (naive path): it is kept
    assert len(run_case(tiny, CASES["early_ref_free"])) == 31
    # a hard step cap behaves the same way
    assert len(run_case(tiny, CASES["greedy_prompt"], max_steps=40)) == 39
    assert len(run_case(tiny, CASES["early_ref_free"], max_steps=12)) == 12
    # EOS never comes back, and never before MIN_STEPS tokens
    tokens = run_case(tiny, CASES["greedy_ref_free"])
    assert len(tokens) >= t2s_decode.MIN_STEPS - 1 and int(tokens.max()) < 1024


def test_default_early_stop_is_fifty_tokens_per_second_of_max_sec(tiny: T2SModel) -> None:
    tokens = run_case(tiny, CASES["greedy_prompt"], early_stop_num=None)
    assert len(tokens) == 50 * fx.TINY_MAX_SEC


def test_same_seed_same_tokens_other_seed_other_tokens(tiny: T2SModel) -> None:
    case = CASES["default_prompt"]
    first = run_case(tiny, case)
    assert torch.equal(first, run_case(tiny, case))
    assert not torch.equal(first, run_case(tiny, {**case, "seed": case["seed"] + 1}))


def test_ref_free_accepts_none_or_an_empty_prompt(tiny: T2SModel) -> None:
    inputs = fx.tiny_inputs()
    params = SamplingParams(top_k=1)
    empty = torch.zeros(1, 0, dtype=torch.long)
    a = generate_semantic(tiny, inputs["phones"], inputs["bert"], None, params, seeded_generator(0), 30)
    b = generate_semantic(tiny, inputs["phones"], inputs["bert"], empty, params, seeded_generator(0), 30)
    assert torch.equal(a, b) and a.dtype == torch.long


def test_iterator_does_not_leak_inference_mode(tiny: T2SModel) -> None:
    inputs = fx.tiny_inputs()
    tokens = iter_semantic_tokens(tiny, inputs["phones"], inputs["bert"], inputs["prompt"],
                                  SamplingParams(), seeded_generator(1))
    next(tokens)
    assert not torch.is_inference_mode_enabled()
    tokens.close()


def test_cache_is_reused_when_big_enough(tiny: T2SModel) -> None:
    run_case(tiny, CASES["greedy_prompt"])
    shape = tiny.cache_shape()
    assert run_case(tiny, CASES["greedy_ref_free"]).tolist() == CASES["greedy_ref_free"]["tokens"]
    assert tiny.cache_shape() == shape


def test_repetition_penalty_divides_positive_and_multiplies_negative() -> None:
    logits = torch.tensor([[2.0, -2.0, 3.0, -1.0]])
    seen = torch.tensor([[True, True, False, False, True]])  # wider than the logits: EOS column cut
    assert penalize_repeats(logits, seen, 2.0).tolist() == [[1.0, -4.0, 3.0, -1.0]]
    assert penalize_repeats(logits, seen, 1.0) is logits


def test_top_k_keeps_ties_and_top_p_keeps_the_best() -> None:
    logits = torch.tensor([[1.0, 3.0, 2.0, 2.0, 0.0]])
    probs = filter_probs(logits, SamplingParams(top_k=2))
    assert (probs[0] > 0).tolist() == [False, True, True, True, False]
    probs = filter_probs(torch.tensor([[0.0, 10.0, 1.0]]), SamplingParams(top_k=3, top_p=0.01))
    assert probs[0].tolist() == [0.0, 1.0, 0.0]


def test_zero_top_p_and_zero_temperature_mean_greedy_as_upstream() -> None:
    logits = torch.tensor([[0.5, 2.0, 1.0]])
    assert filter_probs(logits, SamplingParams(top_p=0.0)).tolist() == [[0.0, 1.0, 0.0]]
    assert filter_probs(logits, SamplingParams(temperature=0.0)).tolist() == [[0.0, 1.0, 0.0]]


def test_temperature_applies_before_top_k() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0]])
    probs = filter_probs(logits, SamplingParams(top_k=3, temperature=0.5))
    torch.testing.assert_close(probs, torch.softmax(logits / 0.5, dim=-1))


@pytest.mark.parametrize("bad", [{"top_k": 0}, {"top_p": -0.1}, {"top_p": 1.5}, {"temperature": -1.0},
                                 {"repetition_penalty": 0.0}])
def test_invalid_sampling_options_are_input_errors(bad: dict) -> None:
    with pytest.raises(InputError):
        SamplingParams(**bad)


def test_invalid_inputs_are_input_errors(tiny: T2SModel) -> None:
    inputs = fx.tiny_inputs()
    with pytest.raises(InputError, match="BERT"):
        generate_semantic(tiny, inputs["phones"], inputs["bert"][:, :, 1:], None, SamplingParams(),
                          seeded_generator(0))
    with pytest.raises(InputError, match="Prompt"):
        generate_semantic(tiny, inputs["phones"], inputs["bert"], torch.full((1, 3), 1024), SamplingParams(),
                          seeded_generator(0))


def test_seeded_generator_matches_torch_manual_seed() -> None:
    torch.manual_seed(42)
    expected = torch.empty(8).exponential_(1.0)
    assert torch.equal(torch.empty(8).exponential_(1.0, generator=seeded_generator(42)), expected)
    with pytest.raises(InputError):
        seeded_generator(-5)
    assert isinstance(seeded_generator(-1), torch.Generator)
