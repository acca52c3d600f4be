"""Batched T2S decoding: each request gets the tokens it gets alone, whatever else is in flight."""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path

import pytest
import torch

from myna.engine.batch_decode import BatchDecoder
from myna.engine.t2s_decode import SamplingParams, iter_semantic_tokens, seeded_generator
from myna.errors import Cancelled, InputError
from myna.models.t2s import T2SModel

_spec = importlib.util.spec_from_file_location("t2s_fixtures", Path(__file__).parents[1] / "models" / "t2s_fixtures.py")
fx = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fx)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest (and steadiest on a loaded machine) on one intra-op thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tiny() -> T2SModel:
    return fx.tiny_model()


def make_requests(count: int) -> list[dict]:
    """Mixed requests: text and prompt lengths, ref-free ones, seeds, sampling options, early stops."""
    gen = torch.Generator().manual_seed(3)
    params = [SamplingParams(), SamplingParams(top_k=5, temperature=0.7), SamplingParams(top_p=0.8, top_k=30),
              SamplingParams(repetition_penalty=1.0, temperature=1.2)]
    requests = []
    for i in range(count):
        text_len, prompt_len = 5 + 7 * i, (0 if i % 3 == 2 else 10 + 9 * i)
        requests.append({
            "phones": torch.randint(0, 732, (1, text_len), generator=gen),
            "bert": 0.5 * torch.randn(1, 1024, text_len, generator=gen),
            "prompt": torch.randint(0, 1024, (1, prompt_len), generator=gen) if prompt_len else None,
            "params": params[i % len(params)],
            "seed": 40 + i,
            "early_stop_num": [-1, 30, 100, 7, 55][i % 5],
        })
    return requests


def solo(model: T2SModel, request: dict) -> list[int]:
    return list(iter_semantic_tokens(model, request["phones"], request["bert"], request["prompt"], request["params"],
                                     seeded_generator(request["seed"]), early_stop_num=request["early_stop_num"]))


def batched(decoder: BatchDecoder, request: dict, should_stop=None) -> list[int]:
    return list(decoder.iter_tokens(request["phones"], request["bert"], request["prompt"], request["params"],
                                    seeded_generator(request["seed"]), early_stop_num=request["early_stop_num"],
                                    should_stop=should_stop))


def run_together(decoder: BatchDecoder, requests: list[dict], stops=None) -> list[object]:
    """Decode every request from its own thread at once; each result is its tokens or the exception raised."""
    results: list[object] = [None] * len(requests)

    def run(i: int) -> None:
        try:
            results[i] = batched(decoder, requests[i], None if stops is None else stops[i])
        except Exception as exc:  # collected and asserted on by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(requests))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_batched_tokens_equal_solo_tokens(tiny: T2SModel) -> None:
    """7 requests on 3 rows: rows join and leave mid-decode; every request's tokens are its solo tokens."""
    requests = make_requests(7)
    expected = [solo(tiny, r) for r in requests]
    assert len({len(e) for e in expected}) > 3  # rows really leave at different steps
    decoder = BatchDecoder(tiny, slots=3)
    assert run_together(decoder, requests) == expected
    assert decoder.rows_stepped > decoder.steps > 0  # steps really were shared
    alone = BatchDecoder(tiny, slots=3)
    assert [batched(alone, r) for r in requests] == expected
    assert alone.rows_stepped == alone.steps


def test_int8_batched_tokens_equal_solo_int8_tokens(tiny: T2SModel) -> None:
    """int8's activation scale is per call: batched steps run its projections row by row, so rows stay apart."""
    import copy

    from myna.engine.precision import prepare_gpt

    model = prepare_gpt(copy.deepcopy(tiny), "int8")
    requests = make_requests(5)
    expected = [solo(model, r) for r in requests]
    decoder = BatchDecoder(model, slots=3)
    assert decoder.min_rows == 1  # no padding rows needed
    assert run_together(decoder, requests) == expected
    assert decoder.rows_stepped > decoder.steps > 0
    assert not any(layer.per_row for layer in decoder._int8)  # unbatched calls quantize per call again


def test_rows_are_computed_alike_whatever_the_batch(tiny: T2SModel) -> None:
    """A row's logits are bitwise the same in batches of 4 and 8, at any row; close to the one-row step."""
    gen = torch.Generator().manual_seed(0)
    heads, head_dim = tiny.config.head, tiny.config.hidden_dim // tiny.config.head
    caches = [(torch.randn(8, heads, 64, head_dim, generator=gen), torch.randn(8, heads, 64, head_dim, generator=gen))
              for _ in tiny.h.layers]
    tokens, cache_pos = torch.randint(0, 1024, (8, 1), generator=gen), torch.tensor([20, 5, 33, 9, 60, 1, 17, 40])
    audio_pos = cache_pos - 3

    def step(rows: list[int]) -> torch.Tensor:
        with torch.inference_mode():
            tiny.setup_cache(len(rows), 64)
            for layer, (k, v) in zip(tiny.h.layers, caches, strict=True):
                layer.self_attn.kv_cache.k_cache.copy_(k[rows])
                layer.self_attn.kv_cache.v_cache.copy_(v[rows])
            return tiny.decode_step(tokens[rows], cache_pos[rows], audio_pos[rows],
                                    attend_len=[int(cache_pos[r]) + 1 for r in rows])

    eight = step(list(range(8)))
    four = step([4, 0, 6, 2])
    assert torch.equal(four, eight[[4, 0, 6, 2]])
    one = step([2])
    assert torch.allclose(one[0], eight[2], atol=1e-5)


def test_cancelling_one_row_leaves_the_others_alone(tiny: T2SModel) -> None:
    requests = make_requests(4)
    requests[1]["early_stop_num"] = -1
    expected = [solo(tiny, r) for r in requests]
    emitted = threading.Event()
    stops = [None, emitted.is_set, None, None]
    decoder = BatchDecoder(tiny, slots=4)

    def watcher() -> None:  # stop row 1 once the decoder has run a few steps
        while decoder.steps < 5:
            threading.Event().wait(0.001)
        emitted.set()

    threading.Thread(target=watcher, daemon=True).start()
    results = run_together(decoder, requests, stops)
    assert isinstance(results[1], Cancelled)
    assert [results[i] for i in (0, 2, 3)] == [expected[i] for i in (0, 2, 3)]


def test_leaving_early_frees_the_row(tiny: T2SModel) -> None:
    request = make_requests(2)[1]
    request["early_stop_num"] = -1
    decoder = BatchDecoder(tiny, slots=2)
    tokens = decoder.iter_tokens(request["phones"], request["bert"], request["prompt"], request["params"],
                                 seeded_generator(1), early_stop_num=-1)
    first = [next(tokens) for _ in range(3)]
    tokens.close()
    assert len(first) == 3
    for _ in range(2000):
        if decoder.active == 0:
            break
        threading.Event().wait(0.001)
    assert decoder.active == 0
    assert batched(decoder, make_requests(1)[0]) == solo(tiny, make_requests(1)[0])  # the decoder goes on serving


def test_bad_inputs_fail_in_the_caller_and_close_ends_the_thread(tiny: T2SModel) -> None:
    decoder = BatchDecoder(tiny, slots=2)
    with pytest.raises(InputError):
        list(decoder.iter_tokens(torch.zeros(1, 0, dtype=torch.long), torch.zeros(1, 1024, 0), None, SamplingParams(),
                                 seeded_generator(0)))
    request = make_requests(1)[0]
    assert batched(decoder, request) == solo(tiny, request)
    thread = decoder._thread
    assert thread is not None and thread.is_alive()  # idle, waiting for work
    decoder.close(timeout=10)
    assert not thread.is_alive()
    assert batched(decoder, request) == solo(tiny, request)  # a closed decoder still serves late requests
    decoder.close(timeout=10)
