"""Tiny T2S GPT with weights and inputs rebuilt bit-for-bit from fixed seeds.

Only torch is imported, so the same recipe also runs in upstream GPT-SoVITS's environment, which
is how `tools/upstream_reference/make_t2s_reference.py` produced the reference outputs (see data/README.md).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import torch

TINY_MODEL = {
    "vocab_size": 1025,
    "phoneme_vocab_size": 732,
    "embedding_dim": 32,
    "hidden_dim": 32,
    "head": 2,
    "linear_units": 128,
    "n_layer": 2,
    "dropout": 0,
    "EOS": 1024,
    "random_bert": 0,
}
TINY_MAX_SEC = 2  # early stop after 100 tokens
WEIGHT_SEED = 0
INPUT_SEED = 1
EOS_ROW_BOOST = 1.3


def tiny_weights(shapes: Mapping[str, Sequence[int]]) -> dict[str, torch.Tensor]:
    """Random weights per key (sorted order, one generator): sharp attention, wide logits."""
    gen = torch.Generator().manual_seed(WEIGHT_SEED)
    weights: dict[str, torch.Tensor] = {}
    for key in sorted(shapes):
        shape = tuple(shapes[key])
        noise = torch.randn(shape, generator=gen)
        if key.endswith("alpha") or (".norm" in key and key.endswith("weight")):
            value = 1.0 + 0.1 * noise
        elif key.endswith("bias"):
            value = 0.1 * noise
        elif "word_embeddings" in key:
            value = noise
        elif key.endswith("in_proj_weight"):
            value = noise * (2.5 / math.sqrt(shape[1]))
        elif key.endswith("ar_predict_layer.weight"):
            value = noise * (3.0 / math.sqrt(shape[1]))
            value[-1] *= EOS_ROW_BOOST
        else:
            value = noise / math.sqrt(shape[1])
        weights[key] = value
    return weights


def tiny_inputs(prompt_len: int = 24, text_len: int = 18) -> dict[str, torch.Tensor]:
    """Fixed phonemes (1, T), BERT features (1, 1024, T) with zero columns, prompt tokens (1, P)."""
    gen = torch.Generator().manual_seed(INPUT_SEED)
    phones = torch.randint(0, TINY_MODEL["phoneme_vocab_size"], (1, text_len), generator=gen)
    bert = 0.5 * torch.randn(1, 1024, text_len, generator=gen)
    bert[:, :, : text_len // 3] = 0.0  # a non-Chinese stretch, as upstream feeds zeros there
    prompt = torch.randint(0, TINY_MODEL["EOS"], (1, prompt_len), generator=gen)
    return {"phones": phones, "bert": bert, "prompt": prompt}


@torch.inference_mode()
def teacher_forced_logits(model, tokens: Sequence[int]) -> torch.Tensor:
    """Logits (len(tokens), vocab) of `model` (a myna T2SModel) on `tiny_inputs()` while fed `tokens`."""
    inputs = tiny_inputs()
    prefix = inputs["phones"].shape[1] + inputs["prompt"].shape[1]
    model.setup_cache(1, prefix + len(tokens))
    logits = [model.prefill(inputs["phones"], inputs["bert"], inputs["prompt"])]
    for step, token in enumerate(tokens[:-1]):
        pos = torch.tensor([step])
        logits.append(model.decode_step(torch.tensor([[token]]), pos + prefix, pos + inputs["prompt"].shape[1],
                                        attend_len=prefix + step + 1))
    return torch.cat(logits)


def tiny_model():
    """The tiny GPT as a myna `T2SModel` in eval mode with `tiny_weights` (myna is imported here, so that
    this module itself still imports in upstream's environment)."""
    from myna.models.t2s import T2SConfig, T2SModel

    model = T2SModel(T2SConfig.from_dict({"model": TINY_MODEL, "data": {"max_sec": TINY_MAX_SEC}})).eval()
    model.load_state_dict(tiny_weights({k: v.shape for k, v in model.state_dict().items()}), strict=True)
    return model
