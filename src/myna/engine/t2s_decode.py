"""Autoregressive semantic-token decoding for the T2S GPT, numerically upstream's.

Reproduces what upstream GPT-SoVITS's ``TTS.run`` does with api_v2's defaults (batch size 1,
``parallel_infer=True``): ``infer_panel_batch_infer`` with a prompt, and its fallback
``infer_panel_naive`` in ref-free mode (no prompt tokens). Per step:

1. logits of the next token; for the first ``MIN_STEPS`` steps the EOS column is cut off, so
   EOS can neither be sampled nor be the argmax;
2. repetition penalty on every id seen so far, prompt included (divide if > 0, multiply if < 0);
3. top-p (nucleus) on the penalised logits, then temperature, then top-k (ties at the k-th
   value are kept), softmax;
4. a sample by the exponential race ``argmax(p / Exp(1))`` drawn from the caller's generator;
5. stop when the sample or the argmax of the penalised logits is EOS (that step's token is
   dropped), after ``early_stop_num`` tokens, or after ``MAX_STEPS`` steps.

Upstream draws the race noise from torch's global RNG right after ``torch.manual_seed(seed)``;
a CPU ``torch.Generator`` seeded with the same seed yields the same numbers, so the same seed
gives upstream's tokens. The generator is shared by all fragments of one request, as upstream's
global RNG is.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from myna.errors import InputError
from myna.models.t2s import T2SModel

MAX_STEPS = 1500  # upstream's hard cap on decoding steps
MIN_STEPS = 11  # steps during which EOS is impossible
TOKENS_PER_SECOND = 50  # semantic token rate: early stop after 50 * max_sec tokens


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling options (upstream/api_v2 defaults)."""

    top_k: int = 15
    top_p: float = 1.0
    temperature: float = 1.0
    repetition_penalty: float = 1.35

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise InputError(f"top_k must be >= 1 (got {self.top_k}); use 1 for greedy decoding.")
        if not 0.0 <= self.top_p <= 1.0:  # 0 keeps only the best token, as upstream
            raise InputError(f"top_p must be in [0, 1] (got {self.top_p}).")
        if not self.temperature >= 0.0:  # 0 acts as 1e-5 (near greedy), as upstream
            raise InputError(f"temperature must be >= 0 (got {self.temperature}).")
        if not self.repetition_penalty > 0.0:
            raise InputError(f"repetition_penalty must be > 0 (got {self.repetition_penalty}).")


def seeded_generator(seed: int | None, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator seeded like upstream's ``set_seed``: None or -1 picks a random 32-bit seed."""
    if seed is None or seed == -1:
        seed = random.SystemRandom().randint(0, 2**32 - 1)
    if seed < 0:
        raise InputError(f"seed must be -1 (random) or a non-negative integer (got {seed}).")
    return torch.Generator(device=device).manual_seed(int(seed))


def penalize_repeats(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Push down logits of ids already seen: (B, V) logits, (B, >=V) boolean ``seen``."""
    if penalty == 1.0:
        return logits
    seen = seen[:, : logits.shape[-1]]
    penalized = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, penalized, logits)


def filter_probs(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Top-p, then temperature, then top-k on already penalised logits; returns probabilities."""
    if params.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True)
        cumulative = torch.cumsum(torch.softmax(sorted_logits, dim=-1), dim=-1)
        drop_sorted = cumulative > params.top_p
        drop_sorted[:, 0] = False
        drop = drop_sorted.scatter(1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    logits = logits / max(params.temperature, 1e-5)
    kth = torch.topk(logits, min(params.top_k, logits.shape[-1])).values[:, -1:]
    logits = torch.where(logits < kth, float("-inf"), logits)
    return torch.softmax(logits, dim=-1)


def draw(probs: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """One id per row by the exponential race argmax(p / E), E ~ Exp(1); (B, 1) long."""
    noise = torch.empty_like(probs).exponential_(1.0, generator=generator)
    return torch.argmax(probs / noise, dim=-1, keepdim=True)


def _check_inputs(model: T2SModel, phones: torch.Tensor, bert: torch.Tensor, prompt: torch.Tensor | None) -> None:
    if phones.dim() != 2 or phones.shape[0] != 1 or phones.shape[1] == 0:
        raise InputError(f"T2S decoding takes one non-empty phoneme sequence of shape (1, T); got {tuple(phones.shape)}.")
    if bert.dim() != 3 or bert.shape[0] != 1 or bert.shape[2] != phones.shape[1]:
        raise InputError(
            f"BERT features must be (1, 1024, {phones.shape[1]}) to match the phonemes; got {tuple(bert.shape)}."
        )
    if prompt is not None:
        if prompt.dim() != 2 or prompt.shape[0] != 1:
            raise InputError(f"Prompt semantic tokens must be shaped (1, T); got {tuple(prompt.shape)}.")
        if prompt.numel() and (int(prompt.min()) < 0 or int(prompt.max()) >= model.config.EOS):
            raise InputError(f"Prompt semantic tokens must lie in [0, {model.config.EOS}).")


def decode_steps(model: T2SModel, early_stop_num: int | None, max_steps: int) -> tuple[int, int]:
    """(early_stop_num resolved, steps the decoding may take at most) for one sequence."""
    if early_stop_num is None:
        early_stop_num = TOKENS_PER_SECOND * model.config.max_sec
    if early_stop_num < -1 or max_steps < 1:
        raise InputError(f"early_stop_num must be -1 or >= 0 and max_steps >= 1 (got {early_stop_num}, {max_steps}).")
    return early_stop_num, max_steps if early_stop_num < 0 else min(max_steps, early_stop_num + 1)


class TokenSampler:
    """One sequence's sampling and stop rules, step by step: logits in, (token to keep or None, done) out."""

    def __init__(self, params: SamplingParams, generator: torch.Generator, prompt: torch.Tensor | None, eos: int,
                 vocab_size: int, early_stop_num: int, max_steps: int, device: torch.device | str = "cpu"):
        self.params, self.generator, self.eos = params, generator, eos
        self.early_stop_num, self.max_steps = early_stop_num, max_steps
        self.ref_free = prompt is None or prompt.shape[1] == 0
        self.seen = torch.zeros(1, vocab_size, dtype=torch.bool, device=device)
        if not self.ref_free:
            self.seen[0, prompt[0].long()] = True
        self.step = 0
        self.token: torch.Tensor | None = None  # (1, 1): the last sample, fed to the next decode step

    @torch.inference_mode()
    def sample(self, logits: torch.Tensor) -> tuple[int | None, bool]:
        """Sample from (1, vocab) logits; returns (the token to keep or None, whether decoding is over)."""
        step = self.step
        if step < MIN_STEPS:
            logits = logits[:, :-1]
        logits = penalize_repeats(logits, self.seen, self.params.repetition_penalty)
        token = draw(filter_probs(logits, self.params), self.generator)
        token_id = int(token[0, 0])
        if token_id == self.eos or int(torch.argmax(logits[0])) == self.eos:
            return None, True
        if (self.early_stop_num != -1 and step + 1 > self.early_stop_num) or step == self.max_steps - 1:
            return (token_id if self.ref_free else None), True
        self.seen[0, token_id] = True
        self.token = token
        self.step += 1
        return token_id, False


def iter_semantic_tokens(
    model: T2SModel,
    phones: torch.Tensor,
    bert: torch.Tensor,
    prompt: torch.Tensor | None,
    params: SamplingParams,
    generator: torch.Generator,
    early_stop_num: int | None = None,
    max_steps: int = MAX_STEPS,
) -> Iterator[int]:
    """Yield semantic tokens one by one (EOS never included), as upstream's decoding keeps them.

    ``phones`` (1, Tx) holds prompt + target phonemes, ``bert`` (1, 1024, Tx) their features,
    ``prompt`` (1, Ty) the reference's semantic tokens or None for ref-free mode.
    ``early_stop_num`` defaults to 50 * config.max_sec; -1 disables it. When it fires, the
    prompted path drops that step's token and the ref-free path keeps it, as upstream does.
    """
    _check_inputs(model, phones, bert, prompt)
    early_stop_num, steps = decode_steps(model, early_stop_num, max_steps)
    ref_free = prompt is None or prompt.shape[1] == 0
    prompt_len = 0 if ref_free else prompt.shape[1]
    device = phones.device
    # the cache never holds the last sampled token: it is only fed if decoding goes on
    prefix_len = phones.shape[1] + prompt_len
    needed = prefix_len + max(steps - 1, 0)
    shape = model.cache_shape()
    if shape is None or shape[0] != 1 or shape[1] < needed:
        model.setup_cache(1, needed, device=device)

    sampler = TokenSampler(params, generator, prompt, model.config.EOS, model.config.vocab_size, early_stop_num,
                           max_steps, device)
    with torch.inference_mode():  # never held across a yield: the caller's grad mode stays its own
        logits = model.prefill(phones, bert, None if ref_free else prompt)
    while True:
        token_id, done = sampler.sample(logits)
        if token_id is not None:
            yield token_id
        if done:
            return
        step, token = sampler.step - 1, sampler.token
        with torch.inference_mode():
            cache_pos = torch.tensor([prefix_len + step], device=device)
            audio_pos = torch.tensor([prompt_len + step], device=device)
            logits = model.decode_step(token, cache_pos, audio_pos, attend_len=prefix_len + step + 1)


def generate_semantic(
    model: T2SModel,
    phones: torch.Tensor,
    bert: torch.Tensor,
    prompt: torch.Tensor | None,
    params: SamplingParams,
    generator: torch.Generator,
    early_stop_num: int | None = None,
    max_steps: int = MAX_STEPS,
) -> torch.Tensor:
    """All semantic tokens for one fragment as a (N,) long tensor (what upstream hands SoVITS)."""
    tokens = list(iter_semantic_tokens(model, phones, bert, prompt, params, generator, early_stop_num, max_steps))
    return torch.tensor(tokens, dtype=torch.long, device=phones.device)
