"""Emotion strength: two GPT prompts decoded in step, their next-token distributions mixed.

Row 0 is the GPT prompted with the timbre clip (the voice's own), row 1 the same GPT prompted with
the emotion clip; both continue with the same target phonemes and are fed the same sampled
tokens. Per step, after each row's repetition penalty (each with its own prompt's tokens seen),

    logits = l_timbre + s * (l_emotion - l_timbre)      i.e.   p ∝ p_timbre^(1-s) * p_emotion^s,

a geometric mixture of the two distributions (a log-linear interpolation): s = 0 is the timbre
prompt's distribution, s = 1 the emotion prompt's, s in (0, 1) between them, s > 1 extrapolates
(the emotion prompt's preferences are amplified where they differ from the timbre prompt's, as
classifier-free guidance does with its unconditioned branch). Then top-p, temperature and top-k
as usual (myna.engine.t2s_decode), and one sample from the request's generator. The mixture's
distance to each side (KL per step) is measurable: benchmarks/emotion_strength.py prints it.

The engine calls this only for 0 < s != 1 (s = 0 and s = 1 decode one prompt, as without
routing). Both rows live in one 2-row KV cache and run one batched `decode_step` per token (the
linear layers on both rows at once, attention row by row over each row's own length).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from myna.engine.precision import int8_layers
from myna.engine.t2s_decode import (
    MAX_STEPS,
    MIN_STEPS,
    SamplingParams,
    _check_inputs,
    decode_steps,
    draw,
    filter_probs,
    penalize_repeats,
)
from myna.models.t2s import KVCache, T2SModel

GptInput = tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]  # phones (1, N), bert (1, 1024, N), prompt (1, T)


def mix_logits(logits: torch.Tensor, strength: float) -> torch.Tensor:
    """(2, V) logits of the timbre and emotion rows -> (1, V) mixed logits, l_t + s * (l_e - l_t)."""
    timbre, emotion = logits[0:1], logits[1:2]
    return timbre + strength * (emotion - timbre)


class MixedSampler:
    """Upstream's sampling and stop rules (myna.engine.t2s_decode.TokenSampler) on mixed logits of two rows."""

    def __init__(self, params: SamplingParams, generator: torch.Generator, prompts: list[torch.Tensor | None],
                 strength: float, eos: int, vocab_size: int, early_stop_num: int, max_steps: int,
                 device: torch.device | str = "cpu"):
        self.params, self.generator, self.strength, self.eos = params, generator, strength, eos
        self.early_stop_num, self.max_steps = early_stop_num, max_steps
        self.ref_free = all(prompt is None or prompt.shape[1] == 0 for prompt in prompts)
        self.seen = torch.zeros(len(prompts), vocab_size, dtype=torch.bool, device=device)
        for row, prompt in enumerate(prompts):
            if prompt is not None and prompt.shape[1]:
                self.seen[row, prompt[0].long()] = True
        self.step = 0
        self.token: torch.Tensor | None = None  # (1, 1): the last sample

    @torch.inference_mode()
    def sample(self, logits: torch.Tensor) -> tuple[int | None, bool]:
        """Sample from (2, vocab) logits; returns (the token to keep or None, whether decoding is over)."""
        step = self.step
        if step < MIN_STEPS:
            logits = logits[:, :-1]
        mixed = mix_logits(penalize_repeats(logits, self.seen, self.params.repetition_penalty), self.strength)
        token = draw(filter_probs(mixed, self.params), self.generator)
        token_id = int(token[0, 0])
        if token_id == self.eos or int(torch.argmax(mixed[0])) == self.eos:
            return None, True
        if (self.early_stop_num != -1 and step + 1 > self.early_stop_num) or step == self.max_steps - 1:
            return (token_id if self.ref_free else None), True
        self.seen[:, token_id] = True
        self.token = token
        self.step += 1
        return token_id, False


def _prefill_rows(model: T2SModel, rows: list[GptInput], steps: int) -> tuple[torch.Tensor, list[int], list[int]]:
    """Prefill each row alone, then give the model one cache holding both; (first logits (2, V), prefix lengths,
    prompt lengths)."""
    logits, prefixes, prompts, filled = [], [], [], []
    for phones, bert, prompt in rows:
        prompt_len = 0 if prompt is None else prompt.shape[1]
        prefix = phones.shape[1] + prompt_len
        model.setup_cache(1, prefix, device=phones.device)
        logits.append(model.prefill(phones, bert, prompt if prompt_len else None))
        filled.append([(layer.self_attn.kv_cache.k_cache, layer.self_attn.kv_cache.v_cache) for layer in model.h.layers])
        prefixes.append(prefix)
        prompts.append(prompt_len)
    length = max(prefixes) + max(steps - 1, 0)
    own = model.h.layers[0].self_attn.kv_cache.k_cache
    for index, layer in enumerate(model.h.layers):
        cache = KVCache(len(rows), own.shape[1], length, own.shape[3], own.dtype, own.device)
        for row, prefix in enumerate(prefixes):
            keys, values = filled[row][index]
            cache.k_cache[row, :, :prefix] = keys[0]
            cache.v_cache[row, :, :prefix] = values[0]
        layer.self_attn.kv_cache = cache
    return torch.cat(logits), prefixes, prompts


def iter_mixed_tokens(
    model: T2SModel,
    timbre: GptInput,
    emotion: GptInput,
    strength: float,
    params: SamplingParams,
    generator: torch.Generator,
    early_stop_num: int | None = None,
    max_steps: int = MAX_STEPS,
) -> Iterator[int]:
    """Yield the semantic tokens of the two prompts' mixture at `strength` (EOS never included).

    `timbre` and `emotion` are each (phones, bert, prompt tokens) as `iter_semantic_tokens` takes
    them: the same target phonemes after each clip's transcript phonemes.
    """
    for phones, bert, prompt in (timbre, emotion):
        _check_inputs(model, phones, bert, prompt)
    early_stop_num, steps = decode_steps(model, early_stop_num, max_steps)
    device = timbre[0].device
    with torch.inference_mode():
        logits, prefixes, prompt_lens = _prefill_rows(model, [timbre, emotion], steps)
    sampler = MixedSampler(params, generator, [timbre[2], emotion[2]], strength, model.config.EOS,
                           model.config.vocab_size, early_stop_num, max_steps, device)
    int8 = int8_layers(model)
    while True:
        token_id, done = sampler.sample(logits)
        if token_id is not None:
            yield token_id
        if done:
            return
        step = sampler.step - 1
        with torch.inference_mode():
            for layer in int8:  # each row's activations quantized on their own, as in batched decoding
                layer.per_row = True
            try:
                logits = model.decode_step(
                    sampler.token.expand(2, 1).contiguous(),
                    torch.tensor([prefix + step for prefix in prefixes], device=device),
                    torch.tensor([length + step for length in prompt_lens], device=device),
                    attend_len=[prefix + step + 1 for prefix in prefixes],
                )
            finally:
                for layer in int8:
                    layer.per_row = False
